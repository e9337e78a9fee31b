//! Everything a run reads, loaded once with `music-crs-data` before anything is built: the
//! conversations to predict, the catalog, the users and what the retriever says it needs
//! ([`RetrieverConfig::needs`](crate::config::RetrieverConfig::needs)).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use music_crs_core::{Catalog, EmbeddingTable, LabeledTurn, Session, TurnContext, UserProfile};
use music_crs_data::{
    Dataset, DatasetConfig, Loader, PartSpec, Source, SplitKind, labeled_turns, turn_contexts,
};
use tracing::info;

use crate::config::{DataNeeds, SplitNeed};
use crate::{CrsConfig, Error, Result};

/// What a run reads: the conversations to predict, the catalog, the user profiles and the
/// retriever's own inputs.
#[derive(Debug, Clone, Default)]
pub struct RunData {
    /// The sessions of the conversations split (empty for chat).
    pub sessions: Vec<Session>,
    /// Whether every turn or only the final one is predicted.
    pub split_kind: SplitKind,
    /// The track catalog.
    pub catalog: Arc<Catalog>,
    /// User profiles by id (empty when the config has no users part).
    pub users: HashMap<String, UserProfile>,
    /// What the retriever reads besides (empty until loaded for a method).
    pub retriever_inputs: RetrieverInputs,
}

/// What a retriever reads besides the conversations, catalog and users.
#[derive(Debug, Clone, Default)]
pub struct RetrieverInputs {
    /// The sessions of the split the retriever counts or learns from (`train_split`,
    /// `popularity_split`); empty when it reads none.
    pub split_sessions: Vec<Session>,
    /// Track-Embeddings tables, one per kind the retriever names.
    pub track_embeddings: Vec<Arc<EmbeddingTable>>,
    /// User-Embeddings tables, one per kind the retriever names.
    pub user_embeddings: Vec<Arc<EmbeddingTable>>,
    /// What was loaded: a retriever is built only over inputs loaded for its own needs.
    pub needs: DataNeeds,
}

/// The one place a dataset config becomes a readable dataset.
fn open(config: &DatasetConfig) -> Result<Dataset> {
    Ok(Dataset::new(config.to_spec()?, Loader::from_env()))
}

impl RunData {
    /// Loads the conversations, catalog and users of a dataset config. Conversations and
    /// catalog are read in parallel. Hub ids need the `hub` feature.
    pub fn load(config: &DatasetConfig) -> Result<Self> {
        Self::read(&open(config)?, true)
    }

    /// Loads everything a method reads: the conversations to predict, the catalog, the users
    /// and its retriever's inputs. Model files the method needs are checked first, so a
    /// missing one fails before any loading.
    pub fn load_for(config: &CrsConfig) -> Result<Self> {
        Self::load_method(config, true)
    }

    /// [`RunData::load_for`] without the conversations to predict (for chat and serving).
    pub fn load_for_chat(config: &CrsConfig) -> Result<Self> {
        Self::load_method(config, false)
    }

    /// What `music-crs train-ranker` reads: the catalog, users and the retriever's inputs
    /// (the train split, embeddings), but neither the conversations to predict nor the model
    /// file it is about to write.
    pub fn load_for_training(config: &CrsConfig) -> Result<Self> {
        let mut needs = config.retriever.needs();
        needs.model_files.clear();
        Self::load_with(config, needs, false)
    }

    /// Loads the catalog and users only (no conversations to predict, no retriever inputs).
    pub fn load_catalog_and_users(config: &DatasetConfig) -> Result<Self> {
        Self::read(&open(config)?, false)
    }

    /// The Track-Embeddings tables of `kinds` (hub column names), as a retriever reading them
    /// would load them; a missing part or kind is an error naming it.
    pub fn load_track_embeddings(
        config: &DatasetConfig,
        kinds: &[String],
    ) -> Result<Vec<Arc<EmbeddingTable>>> {
        let needs = DataNeeds {
            track_embeddings: kinds.to_vec(),
            ..DataNeeds::default()
        };
        Ok(RetrieverInputs::load(&open(config)?, &needs)?.track_embeddings)
    }

    fn load_method(config: &CrsConfig, conversations: bool) -> Result<Self> {
        Self::load_with(config, config.retriever.needs(), conversations)
    }

    fn load_with(config: &CrsConfig, needs: DataNeeds, conversations: bool) -> Result<Self> {
        for path in &needs.model_files {
            if !path.exists() {
                return Err(Error::RankerModelMissing { path: path.clone() });
            }
        }
        let dataset = open(&config.dataset)?;
        let (data, inputs) = rayon::join(
            || Self::read(&dataset, conversations),
            || RetrieverInputs::load(&dataset, &needs),
        );
        let mut data = data?;
        data.retriever_inputs = inputs?;
        Ok(data)
    }

    fn read(dataset: &Dataset, conversations: bool) -> Result<Self> {
        let (sessions, (catalog, users)) = rayon::join(
            || {
                if conversations {
                    dataset.sessions()
                } else {
                    Ok(Vec::new())
                }
            },
            || rayon::join(|| dataset.catalog(), || dataset.users()),
        );
        let data = RunData {
            sessions: sessions?,
            split_kind: dataset.spec().split_kind,
            catalog: Arc::new(catalog?),
            users: users?.unwrap_or_default(),
            retriever_inputs: RetrieverInputs::default(),
        };
        if conversations {
            info!(
                sessions = data.sessions.len(),
                tracks = data.catalog.len(),
                users = data.users.len(),
                "loaded {}",
                dataset.spec().conversations
            );
        }
        Ok(data)
    }

    /// The turns to predict: every turn of a full split, the final user turn of each row of
    /// a blind split.
    pub fn turns(&self) -> Result<Vec<TurnContext>> {
        Ok(turn_contexts(&self.sessions, self.split_kind)?)
    }

    /// [`RunData::turns`] with their labels (the gold tracks, none on a blind split), for
    /// scoring.
    pub fn labeled_turns(&self) -> Result<Vec<LabeledTurn>> {
        Ok(labeled_turns(&self.sessions, self.split_kind)?)
    }
}

impl RetrieverInputs {
    /// Loads what `needs` names from the dataset (the three parts in parallel).
    pub fn load(dataset: &Dataset, needs: &DataNeeds) -> Result<Self> {
        if needs == &DataNeeds::default() {
            return Ok(RetrieverInputs::default());
        }
        let needs = needs.clone();
        let started = Instant::now();
        let (split_sessions, (track_embeddings, user_embeddings)) = rayon::join(
            || match &needs.split {
                Some(split) => load_split_sessions(dataset, split),
                None => Ok(Vec::new()),
            },
            || {
                rayon::join(
                    || {
                        load_tables(&needs.track_embeddings, "track", |k| {
                            dataset.track_embeddings(k)
                        })
                    },
                    || {
                        load_tables(&needs.user_embeddings, "user", |k| {
                            dataset.user_embeddings(k)
                        })
                    },
                )
            },
        );
        let inputs = RetrieverInputs {
            split_sessions: split_sessions?,
            track_embeddings: track_embeddings?,
            user_embeddings: user_embeddings?,
            needs,
        };
        info!(
            split = inputs.needs.split.as_ref().map(|s| s.split.as_str()),
            split_sessions = inputs.split_sessions.len(),
            track_embeddings = ?inputs.needs.track_embeddings,
            user_embeddings = ?inputs.needs.user_embeddings,
            "retriever inputs loaded in {:.2}s",
            started.elapsed().as_secs_f64()
        );
        Ok(inputs)
    }
}

/// The sessions of another split of the conversations source (e.g. `train`).
fn load_split_sessions(dataset: &Dataset, need: &SplitNeed) -> Result<Vec<Session>> {
    let part = PartSpec::new(dataset.spec().conversations.source.clone(), &need.split);
    if let Source::Local(path) = Source::parse(&part.source)?
        && path.is_file()
    {
        return Err(Error::InvalidSetting {
            key: need.key.into(),
            reason: format!(
                "the conversations source {} is a single file: it has no {:?} split",
                path.display(),
                need.split
            ),
        });
    }
    Ok(dataset.loader().load_sessions(&part)?)
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
