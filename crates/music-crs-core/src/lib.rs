//! # music-crs-core
//!
//! The small core every other music-crs crate depends on: the domain types of the
//! Music-CRS challenge (tracks, users, sessions and their messages, the context of one
//! turn to predict) and the types shared by the `Retriever` trait of
//! `music-crs-retrieval` and the `Generator` trait of `music-crs-generate`.
//!
//! It depends on `serde` and `thiserror` only, so any project can use these types
//! without pulling in polars or candle. Its [`hub`] module holds the Hugging Face hub
//! settings and name checks every crate shares; the `hub` feature adds the download client
//! (hf-hub, blocking ureq).
//!
//! ```
//! use music_crs_core::{Catalog, Message, Role, Session, Track};
//!
//! let catalog = Catalog::new(vec![Track::new("t1", "Blue in Green", "Miles Davis")])?;
//! let session = Session {
//!     session_id: "s1".into(),
//!     user_id: "u1".into(),
//!     messages: vec![
//!         Message::new(1, Role::User, "something calm and jazzy"),
//!         Message::new(1, Role::Music, "t1"),
//!         Message::new(1, Role::Assistant, "Try Blue in Green by Miles Davis."),
//!         Message::new(2, Role::User, "more like that"),
//!     ],
//!     ..Session::default()
//! };
//! let turns = session.turn_contexts()?;
//! assert_eq!(turns.len(), 2);
//! assert_eq!(turns[1].played_track_ids, vec!["t1".to_string()]);
//! // The answer is kept apart from what a method sees.
//! let labeled = session.labeled_turns()?;
//! assert_eq!(labeled[0].gold_track_id.as_deref(), Some("t1"));
//! assert_eq!(catalog.get("t1").unwrap().artist(), "Miles Davis");
//! # Ok::<(), music_crs_core::Error>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod atomic;
mod catalog;
pub mod device;
mod embedding;
mod error;
pub mod hub;
mod session;
pub mod shared;
mod track;
mod types;

pub use catalog::Catalog;
pub use device::ComputeDevice;
pub use embedding::EmbeddingTable;
pub use error::{Error, Result};
pub use session::{
    ConversationGoal, GoalProgress, LabeledTurn, Message, Role, Session, TurnContext, UserProfile,
};
pub use track::{Track, TrackField};
pub use types::{GenerationRequest, MAX_PREDICTED_TRACKS, Prediction, ScoredTrack};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
