//! # music-crs
//!
//! The Music-CRS submission pipeline: load a TalkPlayData split, rank tracks for every turn
//! with a [`Retriever`], write a reply grounded on the first track with a [`Generator`], and
//! save the predictions in the challenge's JSON format.
//!
//! - [`CrsConfig`] (module [`config`]): one TOML file per method under `config/` — dataset
//!   preset and overrides, retriever and its parameters, generator, method name. Each
//!   retriever kind's table is defined beside its builder in `music-crs-retrieval` or
//!   `music-crs-rank`.
//! - [`RunData`]: everything a run reads, loaded once before anything is built: the
//!   sessions, catalog, users and what the retriever says it needs
//!   ([`RetrieverConfig::needs`](config::RetrieverConfig::needs)).
//! - [`build_crs`]: the retriever and generator a config names, built from the loaded data
//!   without further dataset I/O.
//! - [`Crs`]: `chat` for one turn, `predict` for a whole split (batch retrieval, replies in
//!   parallel), giving challenge [`Prediction`](music_crs_core::Prediction) rows;
//!   [`Conversation`] keeps a live chat's history.
//! - [`output`]: atomic writing of prediction files and coverage checks for blind sets;
//!   [`checkpoint`]: the checkpoint that makes a killed run resumable; [`replies`]: the counts
//!   and per-turn table of empty and degenerate replies.
//! - [`train_ranker`], which writes the model a `ranked` config names, and
//!   [`cross_validation`], its out-of-fold estimate.
//!
//! The binary (`music-crs run | train-ranker | evaluate | validate | demo-data | chat |
//! serve`) wraps
//! these.
//!
//! ```
//! use std::sync::Arc;
//!
//! use music_crs::core::{Catalog, Track, TrackField};
//! use music_crs::{Conversation, Crs};
//! use music_crs_generate::{TemplateGenerator, TemplateParams};
//! use music_crs_retrieval::{Bm25Index, Bm25Params, Bm25Retriever, QueryRenderParams, QueryRenderer};
//!
//! let catalog = Arc::new(Catalog::new(vec![
//!     Track::new("t1", "Blue in Green", "Miles Davis"),
//!     Track::new("t2", "Take Five", "The Dave Brubeck Quartet"),
//!     Track::new("t3", "Smells Like Teen Spirit", "Nirvana"),
//! ])?);
//! let index = Bm25Index::from_catalog(&catalog, &TrackField::BASELINE, Bm25Params::default())?;
//! let renderer = QueryRenderer::new(catalog.clone(), QueryRenderParams::default())?;
//! let crs = Crs::new(
//!     Box::new(Bm25Retriever::new(index, renderer)),
//!     Box::new(TemplateGenerator::new(TemplateParams::default())?),
//!     catalog,
//! )
//! .with_top_k(2)?;
//!
//! let mut chat = Conversation::new("demo", "");
//! let reply = chat.say(&crs, "play some Miles Davis")?;
//! assert_eq!(reply.tracks[0].track_id, "t1");
//! assert!(reply.response.contains("Blue in Green"));
//! // The query holds the whole conversation, so Miles Davis still counts at turn 2.
//! let next = chat.say(&crs, "now something by Nirvana")?;
//! assert!(next.tracks.iter().any(|t| t.track_id == "t3"));
//! assert_eq!(chat.messages().len(), 6); // user, music, assistant per turn
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Crate features
//!
//! - `llama`: Candle Llama replies (safetensors and GGUF), `generator.kind = "llama"`.
//! - `bert`: the Candle BERT sentence encoder, `retriever.kind = "bert"`.
//! - `hub`: datasets and models from the Hugging Face hub.
//! - `serve`: the `serve` module, the HTTP API and web chat page of `music-crs serve` (axum, tokio).
//! - `cuda`, `metal`: Candle's GPU backends for the Llama generator and the BERT retriever
//!   (`--device`, or `device` in their config tables). Never on by default; untested here.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "bert")]
mod bert;
mod build;
pub mod checkpoint;
pub mod config;
mod conversation;
pub mod cross_validation;
mod data;
mod error;
pub mod export;
pub mod output;
mod pipeline;
mod rank;
pub mod replies;
#[cfg(feature = "serve")]
#[cfg_attr(docsrs, doc(cfg(feature = "serve")))]
pub mod serve;

pub use build::{build_crs, build_generator, build_retriever, fallback_tracks};
pub use config::CrsConfig;
pub use conversation::Conversation;
pub use data::{RetrieverInputs, RunData};
pub use error::{Error, Result};
pub use pipeline::{Crs, DEFAULT_BATCH_SIZE, PredictedTurn, Reply};
pub use rank::{channel_resources, ranked_config, train_ranker, train_ranker_with_progress};

pub use music_crs_core as core;
pub use music_crs_generate::Generator;
pub use music_crs_retrieval::Retriever;

/// The `open.spotify.com` link of a track id, when the id looks like a Spotify id (22
/// base-62 characters, as in TalkPlayData-2); `None` for other ids (the challenge's UUIDs).
pub fn spotify_link(track_id: &str) -> Option<String> {
    (track_id.len() == 22 && track_id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| format!("https://open.spotify.com/track/{track_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spotify_links_only_for_spotify_ids() {
        assert_eq!(
            spotify_link("4uLU6hMCjMI75M1A2tKUQC").as_deref(),
            Some("https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC")
        );
        assert_eq!(spotify_link("0b9c1f4e-7d3a-4a8e-9c55-1d2e3f4a5b6c"), None);
        assert_eq!(spotify_link("4uLU6hMCjMI75M1A2tKUQ!"), None);
    }
}
