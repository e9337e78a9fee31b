//! Dense retrieval: exact and HNSW vector search, pre-extracted embedding channels and (with
//! the `bert` feature) a Candle BERT sentence encoder.
//!
//! - [`VectorIndex`]: cosine search by vector, batch-first; [`ExactIndex`] (a register-tiled
//!   SIMD kernel, multithreaded) and [`HnswIndex`] (an HNSW graph in flat arrays, built in
//!   parallel), chosen by [`IndexParams`]; both save and reload with their id map in one
//!   checksummed file.
//! - [`Encoder`]: texts to vectors; [`encode_catalog`] and [`EmbeddingCache`] encode a catalog
//!   once and keep the vectors on disk, keyed by model, fields and catalog ids.
//! - Retrievers: [`VectorRetriever`] (a [`TurnEmbedder`] plus an index: text queries through
//!   an encoder), [`ItemNeighbourRetriever`] (neighbours of the played tracks in a
//!   Track-Embeddings kind) and [`UserSimilarityRetriever`] (the listener's cf-bpr vector).
//! - [`DenseConfig`]: the serde form a pipeline reads to pick one of them.
//!
//! ```
//! use std::sync::Arc;
//! use music_crs_core::{EmbeddingTable, TurnContext};
//! use music_crs_retrieval::Retriever;
//! use music_crs_retrieval::dense::{ItemNeighbourRetriever, NeighbourParams};
//!
//! let table = EmbeddingTable::new("cf-bpr", 2, vec![
//!     ("a".to_string(), Some(vec![1.0, 0.0])),
//!     ("b".to_string(), Some(vec![0.9, 0.1])),
//!     ("c".to_string(), Some(vec![0.0, 1.0])),
//! ])?;
//! let retriever = ItemNeighbourRetriever::new(Arc::new(table), NeighbourParams::default())?;
//! let mut turn = TurnContext::from_message("more like that");
//! turn.played_track_ids = vec!["a".into()];
//! let hits = retriever.retrieve(&turn, 2)?;
//! assert_eq!(hits[0].track_id, "b");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod encoder;
mod hnsw;
mod index;
mod retrievers;
mod scan;
mod store;
mod vectors;

#[cfg(feature = "bert")]
mod bert;

use std::path::PathBuf;

use music_crs_core::TrackField;
use serde::{Deserialize, Serialize};

#[cfg(feature = "bert")]
#[cfg_attr(docsrs, doc(cfg(feature = "bert")))]
pub use bert::{BertEncoder, BertParams};
pub use encoder::{
    DEFAULT_BATCH_SIZE, EmbeddingCache, EncodeParams, Encoder, Progress, catalog_key,
    encode_catalog, encode_texts,
};
pub use hnsw::{
    DEFAULT_EF_CONSTRUCTION, DEFAULT_EF_SEARCH, DEFAULT_MAX_LAYER, DEFAULT_MAX_NB_CONNECTION,
    HnswIndex, HnswParams, MAX_LAYER_LIMIT, MAX_NB_CONNECTION_LIMIT,
};
pub use index::{ExactIndex, IndexParams, Neighbour, VectorIndex};
pub use retrievers::{
    Aggregation, DEFAULT_RECENCY_DECAY, ItemNeighbourRetriever, NeighbourParams, RenderQuery,
    TextTurnEmbedder, TurnEmbedder, UserSimilarityRetriever, UserTurnEmbedder, VectorRetriever,
};
pub use store::VectorFile;
pub use vectors::{dot, normalize};

use crate::Result;

/// How a BERT sentence encoder pools token states into one vector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Mean over the tokens the attention mask keeps (sentence-transformers' default).
    #[default]
    Mean,
    /// The first (`[CLS]`) token's state.
    Cls,
}

/// The default text encoder: a better general-purpose sentence model than the baseline's.
pub const DEFAULT_TEXT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// The BERT baseline's encoder.
pub const BASELINE_TEXT_MODEL: &str = "bert-base-uncased";

/// Options of a dense text channel (the runtime objects are built by the pipeline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TextConfig {
    /// A local model directory or (with the `hub` feature) a hub id.
    pub model: String,
    /// Token pooling.
    pub pooling: Pooling,
    /// Track fields of the document text.
    pub fields: Vec<TrackField>,
    /// Batch size of catalog encoding.
    pub encode: EncodeParams,
    /// Where catalog embeddings are cached (none: encode every run).
    pub cache_dir: Option<PathBuf>,
    /// The index over the catalog vectors.
    pub index: IndexParams,
}

impl Default for TextConfig {
    fn default() -> Self {
        TextConfig {
            model: DEFAULT_TEXT_MODEL.into(),
            pooling: Pooling::Mean,
            fields: TrackField::BASELINE.to_vec(),
            encode: EncodeParams::default(),
            cache_dir: None,
            index: IndexParams::Exact,
        }
    }
}

/// Which dense channel to run, as written in a pipeline config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DenseConfig {
    /// [`VectorRetriever::text`] over encoded catalog documents (needs the `bert` feature).
    Text(TextConfig),
    /// [`ItemNeighbourRetriever`] over one Track-Embeddings kind.
    ItemNeighbours {
        /// The Track-Embeddings column, e.g. `audio-laion_clap`.
        embedding: String,
        /// Aggregation, recency and index.
        #[serde(default)]
        params: NeighbourParams,
    },
    /// [`UserSimilarityRetriever`]: User-Embeddings `cf-bpr` against Track-Embeddings `cf-bpr`.
    UserSimilarity {
        /// The index over track vectors.
        #[serde(default)]
        index: IndexParams,
    },
}

impl DenseConfig {
    /// Checks every parameter.
    pub fn validate(&self) -> Result<()> {
        match self {
            DenseConfig::Text(text) => {
                text.encode.validate()?;
                text.index.validate()
            }
            DenseConfig::ItemNeighbours { params, .. } => params.validate(),
            DenseConfig::UserSimilarity { index } => index.validate(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_config_reads_from_json() {
        let config: DenseConfig = serde_json::from_str(
            r#"{"kind": "item_neighbours", "embedding": "audio-laion_clap",
                "params": {"aggregation": "max_sim", "recency_decay": 0.7,
                           "index": {"kind": "hnsw", "ef_search": 80}}}"#,
        )
        .unwrap();
        config.validate().unwrap();
        let DenseConfig::ItemNeighbours { embedding, params } = &config else {
            panic!("wrong variant: {config:?}");
        };
        assert_eq!(embedding, "audio-laion_clap");
        assert_eq!(params.aggregation, Aggregation::MaxSim);
        assert_eq!(
            params.index,
            IndexParams::Hnsw(HnswParams {
                ef_search: 80,
                ..HnswParams::default()
            })
        );
        let text: DenseConfig = serde_json::from_str(r#"{"kind": "text"}"#).unwrap();
        assert_eq!(text, DenseConfig::Text(TextConfig::default()));
        let round = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<DenseConfig>(&round).unwrap(), config);
        let bad: DenseConfig = serde_json::from_str(
            r#"{"kind": "user_similarity", "index": {"kind": "hnsw", "max_layer": 0}}"#,
        )
        .unwrap();
        assert!(bad.validate().is_err());
    }
}
