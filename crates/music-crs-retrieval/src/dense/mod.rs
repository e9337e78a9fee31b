//! Dense retrieval: exact and HNSW vector search, pre-extracted embedding channels and (with
//! the `bert` feature) a Candle BERT sentence encoder.
