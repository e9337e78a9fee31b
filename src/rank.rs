//! The `channels` and `ranked` retrievers of `music-crs-rank`, built from a config, and the
//! training of a ranker (`music-crs train-ranker`).
//!
//! Both kinds read the same `[[retriever.channels]]` list. Their resources come from the
//! config's dataset: the catalog, the sessions of the train split of the same conversations
//! source (co-occurrence and play counts, the ranker's training turns) and only the embedding
//! kinds that a channel or feature names.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use music_crs_core::{Catalog, EmbeddingTable, Session};
use music_crs_data::{Dataset, Loader};
use music_crs_rank::{
    CatalogIndex, ChannelConfig, ChannelResources, FusionChildConfig, FusionConfig,
    NamedChannelConfig, RankedRetriever, RankerConfig, RankerModel, build_channel,
};
use music_crs_retrieval::Retriever;
use tracing::{debug, info};

use crate::build::load_split_sessions;
use crate::config::{
    DEFAULT_CHANNEL_DEPTH, DEFAULT_CHANNEL_WEIGHT, RetrieverConfig, RetrieverKind,
};
use crate::{CrsConfig, Error, Result};

/// What the channels and the ranker read besides the turns: the indexed catalog, the train
/// split's sessions and the embedding tables the config names.
#[derive(Debug, Clone)]
pub struct RankData {
    /// The catalog, indexed by artist, album and tag.
    pub index: Arc<CatalogIndex>,
    /// The sessions of `retriever.train_split` (default `train`) of the conversations source.
    pub train_sessions: Vec<Session>,
    /// Track-Embeddings tables, one per kind a channel or feature names.
    pub track_embeddings: Vec<Arc<EmbeddingTable>>,
    /// User-Embeddings tables, one per kind a channel or feature names.
    pub user_embeddings: Vec<Arc<EmbeddingTable>>,
}

impl RankData {
    /// Loads the train split and the embedding kinds a `channels` or `ranked` config needs
    /// (the three parts in parallel); the catalog is the run's.
    pub fn load(config: &CrsConfig, catalog: Arc<Catalog>) -> Result<Self> {
        let settings = &config.retriever;
        if !settings.kind.uses_channels() {
            return Err(Error::InvalidSetting {
                key: "retriever.kind".into(),
                reason: format!(
                    "{:?} has no channels: kind \"channels\" or \"ranked\" expected",
                    settings.kind.as_str()
                ),
            });
        }
        let started = Instant::now();
        let (track_kinds, user_kinds) = embedding_kinds(settings);
        let dataset = Dataset::new(config.dataset.to_spec()?, Loader::from_env());
        let split = settings.train_split();
        let (train_sessions, (track_embeddings, user_embeddings)) = rayon::join(
            || load_split_sessions(config, split, "retriever.train_split"),
            || {
                rayon::join(
                    || load_tables(&track_kinds, "track", |k| dataset.track_embeddings(k)),
                    || load_tables(&user_kinds, "user", |k| dataset.user_embeddings(k)),
                )
            },
        );
        let data = RankData {
            index: Arc::new(CatalogIndex::new(catalog)),
            train_sessions: train_sessions?,
            track_embeddings: track_embeddings?,
            user_embeddings: user_embeddings?,
        };
        info!(
            train_split = split,
            train_sessions = data.train_sessions.len(),
            track_embeddings = ?track_kinds,
            user_embeddings = ?user_kinds,
            "channel resources loaded in {:.2}s",
            started.elapsed().as_secs_f64()
        );
        Ok(data)
    }

    /// The rank crate's view of these resources.
    pub fn resources(&self) -> ChannelResources<'_> {
        ChannelResources {
            index: self.index.clone(),
            train_sessions: &self.train_sessions,
            track_embeddings: &self.track_embeddings,
            user_embeddings: &self.user_embeddings,
        }
    }
}

/// The embedding kinds (track, user) that the channels and features of `settings` read.
pub fn embedding_kinds(settings: &RetrieverConfig) -> (Vec<String>, Vec<String>) {
    fn add(kinds: &mut Vec<String>, kind: &str) {
        if !kinds.iter().any(|k| k == kind) {
            kinds.push(kind.to_string());
        }
    }
    fn walk(channel: &ChannelConfig, tracks: &mut Vec<String>, users: &mut Vec<String>) {
        match channel {
            ChannelConfig::ItemNeighbours(options) => add(tracks, &options.embedding),
            ChannelConfig::UserSimilarity(options) => {
                add(tracks, &options.embedding);
                add(users, &options.embedding);
            }
            ChannelConfig::Fusion(fusion) => {
                for child in &fusion.children {
                    walk(&child.channel, tracks, users);
                }
            }
            _ => {}
        }
    }
    let (mut tracks, mut users) = (Vec::new(), Vec::new());
    for entry in &settings.channels {
        walk(&entry.channel, &mut tracks, &mut users);
    }
    if settings.kind == RetrieverKind::Ranked
        && let Some(features) = &settings.features
    {
        for kind in &features.similarity_kinds {
            add(&mut tracks, kind);
        }
        if let Some(kind) = &features.user_kind {
            add(&mut tracks, kind);
            add(&mut users, kind);
        }
    }
    (tracks, users)
}

/// Loads the tables of `kinds` (none when no kind is asked for: an empty list would load
/// every column).
fn load_tables(
    kinds: &[String],
    what: &str,
    load: impl Fn(&[&str]) -> music_crs_data::Result<Option<Vec<EmbeddingTable>>>,
) -> Result<Vec<Arc<EmbeddingTable>>> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = kinds.iter().map(String::as_str).collect();
    let tables = load(&names)?.ok_or_else(|| Error::InvalidSetting {
        key: format!("dataset.{what}_embeddings"),
        reason: format!(
            "the retriever reads {what} embeddings {kinds:?}, but the dataset has no \
             {what}_embeddings part: set its `source` and `split`"
        ),
    })?;
    Ok(tables.into_iter().map(Arc::new).collect())
}

/// The weighted RRF fusion of a `channels` retriever's channels, in the rank crate's form.
pub fn fusion_config(settings: &RetrieverConfig) -> ChannelConfig {
    ChannelConfig::Fusion(FusionConfig {
        params: settings.fusion.clone().unwrap_or_default(),
        children: settings
            .channels
            .iter()
            .map(|entry| FusionChildConfig {
                name: entry.name.clone(),
                weight: entry.weight.unwrap_or(DEFAULT_CHANNEL_WEIGHT),
                channel: entry.channel.clone(),
            })
            .collect(),
    })
}

/// The rank crate's config of a `ranked` retriever: model file, channels with their depths,
/// features and training parameters.
pub fn ranker_config(settings: &RetrieverConfig) -> Result<RankerConfig> {
    let model = settings
        .ranker_model_path()
        .ok_or_else(|| Error::InvalidSetting {
            key: "retriever.model".into(),
            reason: "a ranker needs kind \"ranked\" and its model file".into(),
        })?;
    Ok(RankerConfig {
        model,
        channels: settings
            .channels
            .iter()
            .map(|entry| NamedChannelConfig {
                name: entry.name.clone(),
                depth: entry.depth.unwrap_or(DEFAULT_CHANNEL_DEPTH),
                channel: entry.channel.clone(),
            })
            .collect(),
        features: settings.features.clone().unwrap_or_default(),
        params: settings.training.clone().unwrap_or_default(),
    })
}

/// The `channels` retriever: the weighted RRF fusion of its channels.
pub fn build_channels(settings: &RetrieverConfig, data: &RankData) -> Result<Box<dyn Retriever>> {
    Ok(build_channel(
        "channels",
        &fusion_config(settings),
        &data.resources(),
    )?)
}

/// The `ranked` retriever: its channels, features and the trained model the config names.
/// A missing model file is [`Error::RankerModelMissing`]; a model trained with other
/// channels or features asks to retrain.
pub fn build_ranked(settings: &RetrieverConfig, data: &RankData) -> Result<RankedRetriever> {
    let ranker = ranker_config(settings)?;
    require_model(&ranker.model)?;
    ranker
        .load("ranked", &data.resources())
        .map_err(|err| match err {
            music_crs_rank::Error::ModelMismatch(reason) => Error::InvalidSetting {
                key: "retriever.model".into(),
                reason: format!(
                    "{}: {reason}; retrain it with `music-crs train-ranker`",
                    ranker.model.display()
                ),
            },
            other => other.into(),
        })
}

/// Trains the ranker of a `ranked` config on `data.train_sessions` and writes the model
/// (atomically) to `retriever.model`, creating its directory.
pub fn train_ranker(config: &CrsConfig, data: &RankData) -> Result<RankerModel> {
    train_ranker_with_progress(config, data, &|_| {})
}

/// [`train_ranker`], reporting each batch of turns and each tree to `progress` (for a
/// progress bar with the total trees and an ETA).
pub fn train_ranker_with_progress(
    config: &CrsConfig,
    data: &RankData,
    progress: &(dyn Fn(music_crs_rank::TrainingProgress) + Sync),
) -> Result<RankerModel> {
    let ranker = ranker_config(&config.retriever)?;
    if let Some(dir) = ranker.model.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs_err::create_dir_all(dir)?;
    }
    let started = Instant::now();
    let model = ranker.train_with_progress(&data.resources(), progress)?;
    let summary = model.summary();
    // The summary is the caller's to show (the CLI prints it once); logs keep it at debug.
    debug!(
        model = %ranker.model.display(),
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

/// Fails with [`Error::RankerModelMissing`] when the model file does not exist.
pub(crate) fn require_model(path: &std::path::Path) -> Result<()> {
    if path.exists() {
        Ok(())
    } else {
        Err(Error::RankerModelMissing {
            path: PathBuf::from(path),
        })
    }
}
