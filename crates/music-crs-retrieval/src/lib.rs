//! # music-crs-retrieval
//!
//! Retrievers for conversational music recommendation behind one object-safe
//! [`Retriever`] trait: given a turn's [`TurnContext`](music_crs_core::TurnContext), rank
//! catalog tracks best first.
//!
//! - [`Bm25Index`] / [`Bm25Retriever`]: a pure-Rust BM25 that tokenizes and scores exactly
//!   like bm25s 0.3.16, the library of the official BM25 baseline (lucene variant, k1 1.5,
//!   b 0.75, f32 scores), over an inverted index with per-posting precomputed weights; batch
//!   search runs on rayon. Indexes save to and load from a versioned, checksummed file.
//! - [`QueryRenderer`]: the turn context as query text — the official recipe (history as
//!   `role: content` lines, played tracks as their lower-cased catalog metadata, then the
//!   current message), the current message only, or the current message weighted, with
//!   optional tags, thoughts and conversation goal.
//! - [`RandomRetriever`] and [`PopularityRetriever`]: the floor every method must beat.
//! - [`ExcludePlayed`]: drops the tracks already played in the conversation.
//!
//! The default build depends on the core crate, serde, regex, rayon and rand only — never on
//! polars or candle — so other projects can use it as is.
//!
//! ```
//! use std::sync::Arc;
//! use music_crs_core::{Catalog, Message, Role, Session, Track, TrackField};
//! use music_crs_retrieval::{
//!     Bm25Index, Bm25Params, Bm25Retriever, ExcludePlayed, QueryRenderParams, QueryRenderer,
//!     Retriever,
//! };
//!
//! let catalog = Arc::new(Catalog::new(vec![
//!     Track::new("t1", "Blue in Green", "Miles Davis"),
//!     Track::new("t2", "So What", "Miles Davis"),
//!     Track::new("t3", "Wild Ones", "Flo Rida"),
//! ])?);
//! let index = Bm25Index::from_catalog(&catalog, &TrackField::BASELINE, Bm25Params::default())?;
//! let renderer = QueryRenderer::new(catalog.clone(), QueryRenderParams::default())?;
//! let bm25 = ExcludePlayed::new(Bm25Retriever::new(index, renderer));
//!
//! let session = Session {
//!     session_id: "s1".into(),
//!     messages: vec![
//!         Message::new(1, Role::User, "some Miles Davis please"),
//!         Message::new(1, Role::Music, "t1"),
//!         Message::new(1, Role::Assistant, "Here is Blue in Green."),
//!         Message::new(2, Role::User, "more by him"),
//!     ],
//!     ..Session::default()
//! };
//! let turn = session.final_turn_context()?;
//! let hits = bm25.retrieve(&turn, 2)?;
//! // t1 was played at turn 1, so the other Miles Davis track comes first.
//! assert_eq!(hits[0].track_id, "t2");
//! assert!(hits.iter().all(|hit| hit.track_id != "t1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Crate features
//!
//! - *default*: the trait, query rendering, BM25, random and popularity baselines.
//! - `dense`: exact and HNSW vector search and pre-extracted embedding channels (no candle;
//!   its only dependency of its own is `pulp`, for SIMD). The HNSW graph is this crate's own
//!   (flat arrays, parallel build, one checksummed file); it replaced hnsw_rs, which on
//!   50,000 x 384 vectors built 2.8-3.6x slower than faiss and searched at 0.40x faiss's
//!   queries/s at recall@20 >= 0.95, and whose recall stayed below 0.89 on 500,000 x 128
//!   (`dense::HnswIndex` and the crate README have the measurements).
//! - `bert`: a Candle BERT sentence encoder for dense text retrieval (implies `dense`).
//! - `hub`: download encoder models from the Hugging Face hub (hf-hub, sync ureq).
//! - `cuda`, `metal`: with `bert`, Candle's CUDA or Metal backend, so the encoder can run on
//!   an NVIDIA or Apple GPU (`device = "cuda"` in `BertRetrieverConfig`, `BertParams`).
//!   Never on by default; `cuda` needs the CUDA toolkit (nvcc) to build. Without them a GPU
//!   device is an error naming the feature.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod baselines;
mod bm25;
mod config;
mod error;
mod exclude;
mod hash;
mod query;
mod retriever;
mod tokenizer;

// Vector search and sentence encoders, behind the `dense` / `bert` features.
#[cfg(feature = "dense")]
#[cfg_attr(docsrs, doc(cfg(feature = "dense")))]
pub mod dense;

pub use baselines::{PopularityParams, PopularityRetriever, RandomParams, RandomRetriever};
pub use bm25::{Bm25Index, Bm25Params, Bm25Retriever, FORMAT_VERSION, INDEX_FILE_NAME};
pub use config::{
    BertRetrieverConfig, Bm25RetrieverConfig, DEFAULT_TOP_K, PopularityRetrieverConfig,
    RandomRetrieverConfig, validate_top_k,
};
pub use error::{Error, Result};
pub use exclude::ExcludePlayed;
pub use query::{MissingTrack, QueryMode, QueryRenderParams, QueryRenderer};
pub use retriever::Retriever;
pub use tokenizer::{STOPWORDS_EN_TEXT, StopWords, Tokenizer, TokenizerParams};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
