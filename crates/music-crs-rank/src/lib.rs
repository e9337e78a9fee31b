//! # music-crs-rank
//!
//! Multi-channel candidate generation and learned ranking for conversational music
//! recommendation, as composable [`Retriever`](music_crs_retrieval::Retriever)s. Inside the
//! crate a track is its catalog position: a [`Channel`] proposes positions
//! ([`ChannelHit`]), fusion, the candidate union, the features and the ranker keep them, and
//! they become track ids once, at the `Retriever` boundary ([`ChannelRetriever`], or the
//! `Retriever` impl of each channel, [`Fusion`] and [`RankedRetriever`]).
//!
//! - Channels that each propose tracks for one reason: [`ContinuityChannel`] (same artist or
//!   album as the played tracks), [`CoOccurrenceChannel`] (tracks that shared a session with,
//!   or followed, the played tracks in the training split), [`PopularityPrior`]; and, through
//!   [`ChannelConfig`], the retrieval crate's enriched BM25, item-item embedding neighbours
//!   and user similarity (through [`RetrieverChannel`], which looks their ids up as
//!   positions). None of them returns a track already played.
//! - [`Fusion`]: weighted reciprocal-rank fusion of named children.
//! - A learned ranker: [`train_ranker`] fits a LambdaMART model (gradient-boosted trees on
//!   LambdaRank gradients, written here: see the README for why) on features of every
//!   (turn, candidate) pair — each channel's rank, score and presence, popularity, artist and
//!   album matches with the played tracks, tag overlap with the conversation, embedding
//!   similarities, turn number. [`RankerModel::save`] / [`RankerModel::load`] keep it in a
//!   versioned JSON file, and [`RankedRetriever`] applies it.
//! - [`RankerConfig`] / [`build_channel`]: the serde form a pipeline's TOML describes them in.
//!
//! ```
//! use std::sync::Arc;
//! use music_crs_core::{Catalog, Message, Role, Session, Track};
//! use music_crs_rank::{
//!     CatalogIndex, ChannelSet, ContinuityChannel, ContinuityParams, FeatureExtractor,
//!     NamedChannel, RankedRetriever, RankerModel, RankerParams, train_ranker,
//! };
//! use music_crs_retrieval::Retriever;
//!
//! // Two artists with three tracks each; every session stays with one artist.
//! let mut tracks = Vec::new();
//! for artist in ["a", "b"] {
//!     for n in 0..3 {
//!         let mut track = Track::new(format!("{artist}{n}"), format!("song {n}"), artist);
//!         track.popularity = Some(n as f64);
//!         tracks.push(track);
//!     }
//! }
//! let index = Arc::new(CatalogIndex::new(Arc::new(Catalog::new(tracks)?)));
//! let session = |id: &str, played: [&str; 2]| Session {
//!     session_id: id.into(),
//!     messages: played
//!         .iter()
//!         .enumerate()
//!         .flat_map(|(i, t)| {
//!             let turn = i as u32 + 1;
//!             [
//!                 Message::new(turn, Role::User, "more please"),
//!                 Message::new(turn, Role::Music, *t),
//!                 Message::new(turn, Role::Assistant, "here"),
//!             ]
//!         })
//!         .collect(),
//!     ..Session::default()
//! };
//! let sessions: Vec<Session> = (0..20)
//!     .map(|i| if i % 2 == 0 { session(&format!("s{i}"), ["a0", "a2"]) }
//!               else { session(&format!("s{i}"), ["b1", "b0"]) })
//!     .collect();
//! let channels = || -> music_crs_rank::Result<ChannelSet> {
//!     ChannelSet::new(vec![NamedChannel {
//!         name: "continuity".into(),
//!         depth: 10,
//!         channel: Box::new(ContinuityChannel::new(
//!             "continuity", index.clone(), ContinuityParams::default())?),
//!     }])
//! };
//! let features = FeatureExtractor::without_embeddings(index.clone());
//! let params = RankerParams { trees: 5, min_data_in_leaf: 1, validation_fraction: 0.0,
//!                             ..RankerParams::default() };
//! let model = train_ranker(&sessions, &channels()?, &features, &params)?;
//!
//! let dir = tempfile::tempdir()?;
//! model.save(dir.path().join("ranker.json"))?;
//! let model = RankerModel::load(dir.path().join("ranker.json"))?;
//! let ranked = RankedRetriever::new("ranked", channels()?, features, model)?;
//! let turn = sessions[0].turn_contexts()?.remove(1);
//! let hits = ranked.retrieve(&turn, 3)?;
//! assert_eq!(hits[0].track_id, "a2"); // same artist, played a0 left out
//! assert!(hits.iter().all(|h| h.track_id != "a0"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod candidates;
mod catalog_index;
pub mod channels;
mod config;
mod error;
mod features;
mod fingerprint;
mod fusion;
mod lambdamart;
mod model;
mod ranked;
mod retriever_config;

pub use candidates::{ChannelSet, ChannelSpec, NamedChannel};
pub use catalog_index::CatalogIndex;
pub use channels::{
    Channel, ChannelHit, ChannelRetriever, CoOccurrenceChannel, CoOccurrenceMode,
    CoOccurrenceParams, ContinuityChannel, ContinuityParams, PopularityPrior,
    PopularityPriorParams, RetrieverChannel,
};
pub use config::{
    Bm25ChannelConfig, ChannelConfig, ChannelResources, DEFAULT_CHANNEL_DEPTH, FusionChildConfig,
    FusionConfig, ItemNeighboursConfig, NamedChannelConfig, RankerConfig, UserSimilarityConfig,
    build_channel, build_channel_set,
};
pub use error::{Error, Result};
pub use features::{FEATURES_REVISION, FeatureExtractor, FeatureSpec};
pub use fingerprint::ChannelFingerprint;
pub use fusion::{Fusion, FusionChild, FusionParams, rrf};
pub use model::{
    CrossValidation, FigureEstimate, MODEL_FORMAT, MODEL_VERSION, RankerModel, RankerParams,
    TrainingProgress, TrainingSummary, train_ranker, train_ranker_with_progress,
};
pub use ranked::RankedRetriever;
pub use retriever_config::{
    ChannelEntry, ChannelsRetrieverConfig, DEFAULT_CHANNEL_WEIGHT, DEFAULT_TRAIN_SPLIT,
    RankedRetrieverConfig,
};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
