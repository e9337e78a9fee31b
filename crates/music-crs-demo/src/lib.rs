//! # music-crs-demo
//!
//! A synthetic, TalkPlayData-shaped demo dataset, generated deterministically from a seed, and
//! the [`writer`] that stores core types as parquet in the schema of the TalkPlayData hub
//! datasets. The loading crate (`music-crs-data`) reads what this crate writes and does not
//! depend on it: this crate depends on the loader only for the hub layout (part directories,
//! split file names, embedding kinds and id columns).
//!
//! The demo is a believable miniature of the challenge data, not noise: artists have a home
//! genre and era and release albums of several tracks; tags name genres, sub-genres, moods,
//! instruments and decades; popularity has a long tail. Listeners have profiles and tastes,
//! and each conversation is built from a listening session in which the next track often
//! comes from the same album or artist, and otherwise shares tags with the one before. The
//! user messages ask for what the upcoming track is (its mood, genre, era, instrument, album
//! or artist) and react to the previous one; the assistant names the track and its artist.
//! Embeddings carry signal: content kinds mix tag-topic, artist and album vectors, `cf-bpr`
//! follows co-listening in the train split. The same users appear in train and test, so
//! statistics learnt on train transfer.
//!
//! [`DemoDataset::write`] lays the files out as the hub does, so the loaders read them like
//! the real datasets:
//!
//! ```text
//! root/conversations/data/{train,test,blind}-00000-of-00001.parquet
//! root/tracks/data/all_tracks-00000-of-00001.parquet
//! root/users/data/all_users-00000-of-00001.parquet
//! root/track_embeddings/data/all_tracks-00000-of-00001.parquet
//! root/user_embeddings/data/all_users-00000-of-00001.parquet
//! root/blind_ground_truth.json
//! ```
//!
//! ```
//! use music_crs_demo::{DemoDataset, DemoParams};
//!
//! let params = DemoParams {
//!     num_tracks: 300,
//!     num_users: 20,
//!     num_train_sessions: 40,
//!     num_test_sessions: 10,
//!     num_blind_sessions: 5,
//!     ..DemoParams::default()
//! };
//! let demo = DemoDataset::generate(&params)?;
//! assert_eq!(demo.tracks.len(), 300);
//! assert_eq!(demo.train[0].messages.len(), 24);
//! let stats = demo.continuity();
//! assert!(stats.same_artist_rate() > 0.2);
//! # Ok::<(), music_crs_demo::Error>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod dataset;
mod error;
pub mod writer;

pub use dataset::{
    BLIND_GROUND_TRUTH_FILE, BlindAnswer, CHALLENGE_EMBEDDING_DIMS, ContinuityStats,
    DEFAULT_CF_EMBEDDING_DIM, DEFAULT_COLD_USER_SHARE, DEFAULT_CONTENT_EMBEDDING_DIM,
    DEFAULT_MISSING_EMBEDDING_RATE, DEFAULT_NUM_BLIND_SESSIONS, DEFAULT_NUM_TEST_SESSIONS,
    DEFAULT_NUM_TRACKS, DEFAULT_NUM_TRAIN_SESSIONS, DEFAULT_NUM_USERS, DEFAULT_SAME_ALBUM_RATE,
    DEFAULT_SAME_ARTIST_RATE, DEFAULT_SEED, DEFAULT_TURNS_PER_SESSION, DemoDataset, DemoParams,
    continuity_stats, generate_demo, split_file,
};
pub use error::{Error, Result};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
