//! The data of one run, loaded with `music-crs-data`.

use std::collections::HashMap;
use std::sync::Arc;

use music_crs_core::{Catalog, Session, TurnContext, UserProfile};
use music_crs_data::{Dataset, DatasetConfig, Loader, SplitKind, turn_contexts};
use tracing::info;

use crate::Result;

/// What a run reads: the conversations to predict, the catalog and the user profiles.
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
}

impl RunData {
    /// Loads the conversations, catalog and users of a dataset config. Conversations and
    /// catalog are read in parallel. Hub ids need the `hub` feature.
    pub fn load(config: &DatasetConfig) -> Result<Self> {
        let dataset = Dataset::new(config.to_spec()?, Loader::from_env());
        let (sessions, (catalog, users)) = rayon::join(
            || dataset.sessions(),
            || rayon::join(|| dataset.catalog(), || dataset.users()),
        );
        let data = RunData {
            sessions: sessions?,
            split_kind: dataset.spec().split_kind,
            catalog: Arc::new(catalog?),
            users: users?.unwrap_or_default(),
        };
        info!(
            sessions = data.sessions.len(),
            tracks = data.catalog.len(),
            users = data.users.len(),
            "loaded {}",
            dataset.spec().conversations
        );
        Ok(data)
    }

    /// Loads the catalog and users only (for chat: no conversations to predict).
    pub fn load_catalog_and_users(config: &DatasetConfig) -> Result<Self> {
        let dataset = Dataset::new(config.to_spec()?, Loader::from_env());
        let (catalog, users) = rayon::join(|| dataset.catalog(), || dataset.users());
        Ok(RunData {
            sessions: Vec::new(),
            split_kind: dataset.spec().split_kind,
            catalog: Arc::new(catalog?),
            users: users?.unwrap_or_default(),
        })
    }

    /// The turns to predict: every turn of a full split, the final user turn of each row of
    /// a blind split.
    pub fn turns(&self) -> Result<Vec<TurnContext>> {
        Ok(turn_contexts(&self.sessions, self.split_kind)?)
    }
}
