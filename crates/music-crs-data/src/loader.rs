//! The loader the pipeline calls: resolve a [`PartSpec`] to shards, read and join them.

use std::collections::HashMap;
use std::collections::HashSet;
use std::path::PathBuf;

use music_crs_core::{Catalog, EmbeddingTable, Session, Track, TurnContext, UserProfile};

use crate::embeddings::{USER_EMBEDDING_ID_COLUMN, read_embedding_shards};
use crate::hub::HubParams;
use crate::spec::{DatasetSpec, PartSpec};
use crate::turns::turn_contexts;
use crate::{
    Error, Result, Source, TRACK_EMBEDDING_ID_COLUMN, read_sessions, read_tracks, read_users,
};

/// Reads dataset parts from local directories or the hub.
///
/// Every `load_*` method resolves the part's source and split to its parquet shards
/// ([`Loader::shards`]), reads each shard and joins them in shard order.
#[derive(Debug, Clone, Default)]
pub struct Loader {
    hub: HubParams,
}

impl Loader {
    /// A loader with these hub settings.
    pub fn new(hub: HubParams) -> Self {
        Loader { hub }
    }

    /// A loader with the hub settings of the environment ([`HubParams::from_env`]).
    pub fn from_env() -> Self {
        Loader::new(HubParams::from_env())
    }

    /// The hub settings.
    pub fn hub_params(&self) -> &HubParams {
        &self.hub
    }

    /// The local parquet files of a part, sorted (hub shards are downloaded or taken from
    /// the cache first).
    pub fn shards(&self, part: &PartSpec) -> Result<Vec<PathBuf>> {
        let source = Source::parse(&part.source).map_err(|e| match e {
            // Name the split's layout: the generic message cannot know it.
            Error::NotFound { path, .. } => Error::NotFound {
                path,
                expected: format!(
                    "a directory holding {}, a parquet file, or a hub dataset id owner/name",
                    crate::source::expected_layout(&part.split)
                ),
            },
            other => other,
        })?;
        let shards = source.shards(&part.split, &self.hub)?;
        tracing::debug!(%part, shards = shards.len(), "resolved");
        Ok(shards)
    }

    /// Every session of a conversations part (see [`read_sessions`] for the schema and the
    /// checks). A session id repeated across rows is an error naming the file.
    pub fn load_sessions(&self, part: &PartSpec) -> Result<Vec<Session>> {
        let mut sessions = Vec::new();
        let mut seen = HashSet::new();
        for shard in self.shards(part)? {
            for session in read_sessions(&shard)? {
                if !seen.insert(session.session_id.clone()) {
                    return Err(Error::DuplicateId {
                        what: "session",
                        id: session.session_id,
                        path: shard,
                    });
                }
                sessions.push(session);
            }
        }
        tracing::info!(%part, sessions = sessions.len(), "loaded sessions");
        Ok(sessions)
    }

    /// Every track of a Track-Metadata part, in shard then row order (see [`read_tracks`]).
    pub fn load_tracks(&self, part: &PartSpec) -> Result<Vec<Track>> {
        let mut tracks = Vec::new();
        for shard in self.shards(part)? {
            tracks.extend(read_tracks(&shard)?);
        }
        Ok(tracks)
    }

    /// The catalog of a Track-Metadata part. A track id repeated across rows is an error.
    pub fn load_catalog(&self, part: &PartSpec) -> Result<Catalog> {
        let tracks = self.load_tracks(part)?;
        let catalog = Catalog::new(tracks)?;
        tracing::info!(%part, tracks = catalog.len(), "loaded catalog");
        Ok(catalog)
    }

    /// Every user of a User-Metadata part, in shard then row order (see [`read_users`]);
    /// each profile's `user_id` is set.
    pub fn load_users(&self, part: &PartSpec) -> Result<Vec<UserProfile>> {
        let mut users = Vec::new();
        for shard in self.shards(part)? {
            users.extend(read_users(&shard)?);
        }
        Ok(users)
    }

    /// The users of a part by id. An id repeated across rows keeps its first profile (user
    /// splits such as `test_warm+test_cold` may overlap).
    pub fn load_user_map(&self, part: &PartSpec) -> Result<HashMap<String, UserProfile>> {
        let mut map = HashMap::new();
        for user in self.load_users(part)? {
            let id = user.user_id.clone().unwrap_or_default();
            map.entry(id).or_insert(user);
        }
        Ok(map)
    }

    /// One [`EmbeddingTable`] per embedding column of a Track-Embeddings part, ids from
    /// `track_id`. `kinds` selects columns (e.g. `["cf-bpr"]`; see
    /// [`crate::TRACK_EMBEDDING_KINDS`]); empty loads every numeric-list column. Dimensions
    /// come from the data; empty lists are missing rows.
    pub fn load_track_embeddings(
        &self,
        part: &PartSpec,
        kinds: &[&str],
    ) -> Result<Vec<EmbeddingTable>> {
        read_embedding_shards(&self.shards(part)?, TRACK_EMBEDDING_ID_COLUMN, kinds)
    }

    /// One [`EmbeddingTable`] per embedding column of a User-Embeddings part, ids from
    /// `user_id` (as [`Loader::load_track_embeddings`]). Ids repeated across splits keep
    /// their first vector.
    pub fn load_user_embeddings(
        &self,
        part: &PartSpec,
        kinds: &[&str],
    ) -> Result<Vec<EmbeddingTable>> {
        read_embedding_shards(&self.shards(part)?, USER_EMBEDDING_ID_COLUMN, kinds)
    }
}

/// A [`DatasetSpec`] bound to a [`Loader`]: each method loads one part of the spec.
#[derive(Debug, Clone)]
pub struct Dataset {
    spec: DatasetSpec,
    loader: Loader,
}

impl Dataset {
    /// A dataset read through `loader`.
    pub fn new(spec: DatasetSpec, loader: Loader) -> Self {
        Dataset { spec, loader }
    }

    /// The spec.
    pub fn spec(&self) -> &DatasetSpec {
        &self.spec
    }

    /// The loader.
    pub fn loader(&self) -> &Loader {
        &self.loader
    }

    /// The sessions of the conversations part.
    pub fn sessions(&self) -> Result<Vec<Session>> {
        self.loader.load_sessions(&self.spec.conversations)
    }

    /// The turns to predict of the conversations part, per the spec's split kind.
    pub fn turn_contexts(&self) -> Result<Vec<TurnContext>> {
        turn_contexts(&self.sessions()?, self.spec.split_kind)
    }

    /// The catalog.
    pub fn catalog(&self) -> Result<Catalog> {
        self.loader.load_catalog(&self.spec.tracks)
    }

    /// The users by id, when the spec has a users part.
    pub fn users(&self) -> Result<Option<HashMap<String, UserProfile>>> {
        self.spec
            .users
            .as_ref()
            .map(|part| self.loader.load_user_map(part))
            .transpose()
    }

    /// The track embeddings of these kinds (all when empty), when the spec has that part.
    pub fn track_embeddings(&self, kinds: &[&str]) -> Result<Option<Vec<EmbeddingTable>>> {
        self.spec
            .track_embeddings
            .as_ref()
            .map(|part| self.loader.load_track_embeddings(part, kinds))
            .transpose()
    }

    /// The user embeddings of these kinds (all when empty), when the spec has that part.
    pub fn user_embeddings(&self, kinds: &[&str]) -> Result<Option<Vec<EmbeddingTable>>> {
        self.spec
            .user_embeddings
            .as_ref()
            .map(|part| self.loader.load_user_embeddings(part, kinds))
            .transpose()
    }
}
