//! The dense text retriever (`kind = "bert"`): a Candle BERT sentence encoder embeds the
//! catalog documents once (cached under `exp/cache/embeddings`) and each turn's query text.

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
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
    // Encoding a full catalog takes minutes: show a bar, unless logs are quiet (`--quiet`
    // lowers the filter below info) or stderr is not a terminal.
    let bar = if std::io::stderr().is_terminal() && tracing::enabled!(tracing::Level::INFO) {
        let bar = ProgressBar::new(catalog.len() as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} catalog documents encoded ({per_sec}, ETA {eta})",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let report = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let vectors = EmbeddingCache::new(EMBEDDING_CACHE_DIR).load_or_encode(
        encoder.as_ref(),
        catalog,
        &settings.fields,
        &encode,
        Some(&report),
    );
    bar.finish_and_clear();
    let vectors = vectors?;
    let index = IndexParams::Exact.build(vectors.ids, vectors.data, vectors.dim)?;
    let renderer = query_renderer(&settings.query, catalog)?;
    Ok(Box::new(VectorRetriever::text(index, encoder, renderer)?))
}
