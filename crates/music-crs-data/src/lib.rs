//! # music-crs-data
//!
//! Loads the TalkPlayData datasets of the Music-CRS challenge (conversations, track catalog,
//! users, pre-extracted track and user embeddings) from a local directory or the Hugging
//! Face hub into the domain types of `music-crs-core`, and turns sessions into the turns to
//! predict.
//!
//! - [`Source`]: a local directory (`data/<split>-NNNNN-of-NNNNN.parquet` inside, as on the
//!   hub), one parquet file, or a hub dataset id such as
//!   `talkpl-ai/TalkPlayData-Challenge-Dataset`.
//! - [`PartSpec`] (source + split) per part, gathered in a [`DatasetSpec`]; [`Preset`] names
//!   the dataset families (`challenge-dev`, `challenge-blind-a`, `talkplaydata2-test`,
//!   `demo-test`, ...) and [`DatasetConfig`] is the serde form a pipeline config embeds
//!   (a preset with per-part overrides).
//! - [`Loader`] reads a part: [`Loader::load_sessions`], [`Loader::load_catalog`],
//!   [`Loader::load_users`] / [`Loader::load_user_map`], [`Loader::load_track_embeddings`],
//!   [`Loader::load_user_embeddings`]; [`Dataset`] binds a spec to a loader.
//! - [`turn_contexts`] with a [`SplitKind`]: every turn of a full split, or the one final
//!   turn of each blind row; [`check_tracks_in_catalog`] reports gold tracks the catalog
//!   lacks.
//! - Single files: [`read_sessions`], [`read_tracks`], [`read_users`], [`read_embeddings`].
//!
//! Errors ([`Error`]) name the file, column, row, session and turn at fault; unknown columns
//! are ignored and missing optional ones tolerated.
//!
//! ```
//! use music_crs_data::{Loader, PartSpec, Source};
//! use polars::prelude::*;
//!
//! // A local dataset directory laid out as on the hub: data/<split>-NNNNN-of-NNNNN.parquet.
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir_all(dir.path().join("data"))?;
//! let mut users = df!(
//!     "user_id" => ["u1", "u2"],
//!     "age" => [Some(31i64), None],
//!     "country_code" => [Some("KR"), Some("BR")],
//!     "ignored_extra_column" => [1.5, 2.5],
//! )?;
//! let file = std::fs::File::create(dir.path().join("data/all_users-00000-of-00001.parquet"))?;
//! ParquetWriter::new(file).finish(&mut users)?;
//!
//! let part = PartSpec::new(dir.path().to_string_lossy(), "all_users");
//! assert!(matches!(Source::parse(&part.source)?, Source::Local(_)));
//! let users = Loader::default().load_users(&part)?;
//! assert_eq!(users.len(), 2);
//! assert_eq!(users[0].user_id.as_deref(), Some("u1"));
//! assert_eq!(users[0].age, Some(31));
//! assert_eq!(users[1].country_code.as_deref(), Some("BR"));
//!
//! // A split the directory lacks is an error naming the layout expected.
//! let err = Loader::default().load_users(&PartSpec::new(part.source.clone(), "test")).unwrap_err();
//! assert!(err.to_string().contains("data/test-NNNNN-of-NNNNN.parquet"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Loading from the hub (needs the network or a cached copy):
//!
//! ```no_run
//! use music_crs_data::{Dataset, Loader, Preset};
//!
//! // HF_HOME / HF_HUB_CACHE, HF_HUB_OFFLINE, HF_TOKEN and HF_ENDPOINT are honoured.
//! let dataset = Dataset::new(Preset::ChallengeDev.spec(), Loader::from_env());
//! let catalog = dataset.catalog()?;
//! let turns = dataset.turn_contexts()?;
//! println!("{} turns to predict over {} tracks", turns.len(), catalog.len());
//! # Ok::<(), music_crs_data::Error>(())
//! ```
//!
//! ## Crate features
//!
//! - `hub` (default): resolve hub dataset ids with `hf-hub` (sync `ureq` client, cached
//!   downloads). Without it a hub id is an [`Error::HubDisabled`]; local paths still work.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod columns;
mod conversations;
mod embeddings;
mod error;
mod hub;
mod loader;
mod source;
mod spec;
mod tracks;
mod turns;
mod users;

pub mod demo;
pub mod writer;

pub use conversations::{SESSION_OPTIONAL_COLUMNS, SESSION_REQUIRED_COLUMNS, read_sessions};
pub use embeddings::{
    TRACK_EMBEDDING_ID_COLUMN, TRACK_EMBEDDING_KINDS, USER_EMBEDDING_ID_COLUMN,
    USER_EMBEDDING_KINDS, read_embeddings,
};
pub use error::{Error, Result};
pub use hub::{
    HF_ENDPOINT_ENV, HF_HOME_ENV, HF_HUB_CACHE_ENV, HF_HUB_OFFLINE_ENV, HF_TOKEN_ENV, HubParams,
};
pub use loader::{Dataset, Loader};
pub use source::{DATA_DIR, HUB_PREFIX, Source};
pub use spec::{
    DEMO_DIR, DatasetConfig, DatasetSpec, HUB_ORG, PART_DIRS, PartOverride, PartSpec, Preset,
};
pub use tracks::{
    DURATION_COLUMNS, ISRC_COLUMNS, TRACK_ID_COLUMN, TRACK_LIST_COLUMNS, read_tracks,
};
pub use turns::{Problem, SplitKind, check_tracks_in_catalog, labeled_turns, turn_contexts};
pub use users::{USER_ID_COLUMN, USER_STRING_COLUMNS, read_users};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
