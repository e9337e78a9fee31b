//! The `ranked` retriever's training (`music-crs train-ranker`) and the rank crate's view of a
//! run's loaded data. The `channels` and `ranked` tables and their builders live in
//! `music-crs-rank` ([`ChannelsRetrieverConfig`](music_crs_rank::ChannelsRetrieverConfig),
//! [`RankedRetrieverConfig`]).

use std::sync::Arc;
use std::time::Instant;

use music_crs_rank::{CatalogIndex, ChannelResources, RankedRetrieverConfig, RankerModel};
use tracing::debug;

use crate::config::RetrieverConfig;
use crate::{CrsConfig, Error, Result, RunData};

/// What the channels and the ranker read, from a run's loaded data: the catalog (indexed
/// here, once), the sessions of the train split and the embedding tables.
pub fn channel_resources(data: &RunData) -> ChannelResources<'_> {
    let inputs = &data.retriever_inputs;
    ChannelResources {
        index: Arc::new(CatalogIndex::new(data.catalog.clone())),
        train_sessions: &inputs.split_sessions,
        track_embeddings: &inputs.track_embeddings,
        user_embeddings: &inputs.user_embeddings,
    }
}

/// The `[retriever]` table of a `ranked` config, or an error naming the kind it has.
pub fn ranked_config(config: &CrsConfig) -> Result<&RankedRetrieverConfig> {
    match &config.retriever {
        RetrieverConfig::Ranked(ranked) => Ok(ranked),
        other => Err(Error::InvalidSetting {
            key: "retriever.kind".into(),
            reason: format!(
                "{:?} has no trained ranker: kind \"ranked\" expected",
                other.kind().as_str()
            ),
        }),
    }
}

/// Trains the ranker of a `ranked` config on the loaded train split and writes the model
/// (atomically) to `retriever.model`, creating its directory.
pub fn train_ranker(config: &CrsConfig, data: &RunData) -> Result<RankerModel> {
    train_ranker_with_progress(config, data, &|_| {})
}

/// [`train_ranker`], reporting each batch of turns and each tree to `progress` (for a
/// progress bar with the total trees and an ETA).
pub fn train_ranker_with_progress(
    config: &CrsConfig,
    data: &RunData,
    progress: &(dyn Fn(music_crs_rank::TrainingProgress) + Sync),
) -> Result<RankerModel> {
    let ranked = ranked_config(config)?;
    if let Some(dir) = ranked.model.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs_err::create_dir_all(dir)?;
    }
    let started = Instant::now();
    let model = ranked.train(&channel_resources(data), progress)?;
    let summary = model.summary();
    // The summary is the caller's to show (the CLI prints it once); logs keep it at debug.
    debug!(
        model = %ranked.model.display(),
        trees = model.tree_count(),
        features = model.feature_names().len(),
        turns = summary.turns,
        train_rows = summary.train_rows,
        candidate_recall = summary.candidate_recall,
        valid_ndcg_model = summary.valid_ndcg_model,
        valid_ndcg_union = summary.valid_ndcg_union,
        "ranker trained in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    Ok(model)
}
