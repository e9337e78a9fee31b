//! Types shared by retrievers, generators, the metrics and the submission pipeline.

use serde::{Deserialize, Serialize};

use crate::{Track, TurnContext};

/// The most track ids a challenge prediction may hold.
pub const MAX_PREDICTED_TRACKS: usize = 20;

/// One retrieved track with its score; higher is better.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredTrack {
    /// The track's catalog id.
    pub track_id: String,
    /// The retriever's score (comparable only within one retriever and query).
    pub score: f32,
}

impl ScoredTrack {
    /// A scored track.
    pub fn new(track_id: impl Into<String>, score: f32) -> Self {
        ScoredTrack {
            track_id: track_id.into(),
            score,
        }
    }
}

/// Everything a generator needs to write the reply of one turn.
#[derive(Debug, Clone, Default)]
pub struct GenerationRequest {
    /// The turn: conversation so far, current message, user profile.
    pub context: TurnContext,
    /// The recommended tracks, best first; the reply is grounded on the first.
    pub recommended: Vec<Track>,
    /// Catalog metadata of the tracks played in earlier turns, in the order of
    /// `context.played_track_ids` (tracks the catalog lacks are left out).
    pub played: Vec<Track>,
}

/// One row of a challenge prediction file (`exp/inference/<method>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The session.
    pub session_id: String,
    /// The listener (may be empty in blind B).
    pub user_id: String,
    /// The turn predicted.
    pub turn_number: u32,
    /// Up to [`MAX_PREDICTED_TRACKS`] unique ids, best first.
    pub predicted_track_ids: Vec<String>,
    /// The natural-language reply.
    pub predicted_response: String,
}
