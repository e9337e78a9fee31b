//! The dense text retriever (`kind = "bert"`) with a progress bar while the catalog is
//! encoded; the catalog embeddings are cached under `exp/cache/embeddings`.

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use music_crs_core::Catalog;
use music_crs_retrieval::dense::EmbeddingCache;
use music_crs_retrieval::{BertRetrieverConfig, Retriever};

use crate::Result;

/// Where catalog embeddings are cached between runs.
pub const EMBEDDING_CACHE_DIR: &str = "exp/cache/embeddings";

/// Builds the dense text retriever of a `kind = "bert"` config.
pub(crate) fn build_bert(
    settings: &BertRetrieverConfig,
    catalog: &Arc<Catalog>,
) -> Result<Box<dyn Retriever>> {
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
    let retriever = settings.build(
        catalog,
        &EmbeddingCache::new(EMBEDDING_CACHE_DIR),
        Some(&report),
    );
    bar.finish_and_clear();
    Ok(Box::new(retriever?))
}
