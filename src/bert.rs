//! The dense text retriever (`kind = "bert"`): a Candle BERT sentence encoder embeds the
//! catalog documents once (cached under `exp/cache/embeddings`) and each turn's query text.

use std::sync::Arc;

use music_crs_core::Catalog;
use music_crs_retrieval::Retriever;
use music_crs_retrieval::dense::{
    BertEncoder, BertParams, EmbeddingCache, EncodeParams, IndexParams, VectorRetriever,
};

use crate::build::query_renderer;
use crate::config::RetrieverConfig;
use crate::{Error, Result};

/// Where catalog embeddings are cached between runs.
pub const EMBEDDING_CACHE_DIR: &str = "exp/cache/embeddings";

/// Builds the dense text retriever of a `kind = "bert"` config.
pub(crate) fn build_bert(
    settings: &RetrieverConfig,
    catalog: &Arc<Catalog>,
) -> Result<Box<dyn Retriever>> {
    let model = settings
        .model
        .as_deref()
        .ok_or_else(|| Error::InvalidSetting {
            key: "retriever.model".into(),
            reason: "kind \"bert\" needs an encoder".into(),
        })?;
    let encoder = Arc::new(BertEncoder::load(model, BertParams::default())?);
    let mut encode = EncodeParams::default();
    if let Some(batch_size) = settings.batch_size {
        encode.batch_size = batch_size;
    }
    let vectors = EmbeddingCache::new(EMBEDDING_CACHE_DIR).load_or_encode(
        encoder.as_ref(),
        catalog,
        &settings.fields,
        &encode,
        None,
    )?;
    let index = IndexParams::Exact.build(vectors.ids, vectors.data, vectors.dim)?;
    let renderer = query_renderer(&settings.query, catalog)?;
    Ok(Box::new(VectorRetriever::text(index, encoder, renderer)?))
}
