//! Co-occurrence and next-track counts learned from training sessions.

use std::collections::HashMap;
use std::sync::Arc;

use music_crs_core::{Role, Session, TurnContext};
use serde::{Deserialize, Serialize};

use super::{Channel, ChannelHit, recency_weights, top_k};
use crate::{CatalogIndex, Error, Result};

/// Which pairs of a session's tracks are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoOccurrenceMode {
    /// Every ordered pair of distinct tracks within `window` turns of each other.
    Session,
    /// Only a track and the one played right after it.
    Next,
}

/// Parameters of a [`CoOccurrenceChannel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoOccurrenceParams {
    /// Which pairs are counted.
    pub mode: CoOccurrenceMode,
    /// For [`CoOccurrenceMode::Session`]: the largest turn distance counted (0 = any).
    pub window: usize,
    /// Weight of each older played track relative to the next one, in `(0, 1]`.
    pub recency_decay: f32,
    /// When the query's session is one of the training sessions, leave its own pairs out of
    /// the counts. Needed when the ranker learns on the split the counts came from: otherwise
    /// the target pair is always counted and the ranker learns to trust the channel too much.
    pub leave_session_out: bool,
}

impl CoOccurrenceParams {
    /// Default [`CoOccurrenceParams::window`]: the whole session.
    pub const DEFAULT_WINDOW: usize = 0;
    /// Default [`CoOccurrenceParams::recency_decay`].
    pub const DEFAULT_RECENCY_DECAY: f32 = 0.5;

    /// Checks every value.
    pub fn validate(&self) -> Result<()> {
        if !(self.recency_decay > 0.0 && self.recency_decay <= 1.0) {
            return Err(Error::param(
                "recency_decay",
                format!("{} is outside (0, 1]", self.recency_decay),
            ));
        }
        Ok(())
    }
}

impl Default for CoOccurrenceParams {
    fn default() -> Self {
        CoOccurrenceParams {
            mode: CoOccurrenceMode::Session,
            window: Self::DEFAULT_WINDOW,
            recency_decay: Self::DEFAULT_RECENCY_DECAY,
            leave_session_out: true,
        }
    }
}

/// Proposes tracks that followed (or shared a session with) the played tracks in the training
/// sessions, weighted by how often and by how recent the played track is.
#[derive(Debug, Clone)]
pub struct CoOccurrenceChannel {
    name: String,
    index: Arc<CatalogIndex>,
    params: CoOccurrenceParams,
    /// CSR adjacency: neighbours of track `t` are `neighbours[offsets[t]..offsets[t + 1]]`.
    offsets: Vec<usize>,
    neighbours: Vec<(u32, f32)>,
    /// Each training session's tracks (catalog positions, in turn order), by session id.
    sessions: HashMap<String, Vec<u32>>,
}

impl CoOccurrenceChannel {
    /// Counts the pairs of `sessions` (music messages in turn order; ids the catalog lacks are
    /// skipped). Fails on invalid params.
    pub fn build(
        name: impl Into<String>,
        index: Arc<CatalogIndex>,
        sessions: &[Session],
        params: CoOccurrenceParams,
    ) -> Result<Self> {
        params.validate()?;
        let mut counts: HashMap<(u32, u32), f32> = HashMap::new();
        let mut by_session = HashMap::with_capacity(sessions.len());
        for session in sessions {
            let sequence = session_tracks(&index, session);
            for (a, b) in pairs(&sequence, &params) {
                *counts.entry((a, b)).or_default() += 1.0;
            }
            by_session.insert(session.session_id.clone(), sequence);
        }
        let mut entries: Vec<((u32, u32), f32)> = counts.into_iter().collect();
        entries.sort_unstable_by_key(|&(pair, _)| pair);
        let mut offsets = vec![0usize; index.len() + 1];
        for &((a, _), _) in &entries {
            offsets[a as usize + 1] += 1;
        }
        for t in 0..index.len() {
            offsets[t + 1] += offsets[t];
        }
        let neighbours = entries.into_iter().map(|((_, b), c)| (b, c)).collect();
        tracing::debug!(sessions = sessions.len(), "co-occurrence counts built");
        Ok(CoOccurrenceChannel {
            name: name.into(),
            index,
            params,
            offsets,
            neighbours,
            sessions: by_session,
        })
    }

    /// Number of distinct counted pairs.
    pub fn pair_count(&self) -> usize {
        self.neighbours.len()
    }

    fn scores(&self, query: &TurnContext, played: &[u32]) -> HashMap<u32, f32> {
        let mut scores: HashMap<u32, f32> = HashMap::new();
        let weights: Vec<f32> = recency_weights(played.len(), self.params.recency_decay).collect();
        for (&p, &w) in played.iter().zip(&weights) {
            for &(t, count) in
                &self.neighbours[self.offsets[p as usize]..self.offsets[p as usize + 1]]
            {
                *scores.entry(t).or_default() += w * count;
            }
        }
        let own = self
            .params
            .leave_session_out
            .then(|| self.sessions.get(&query.session_id))
            .flatten();
        if let Some(own) = own {
            // Counts are whole numbers, so subtracting the session's own pairs is exact.
            let own_pairs = pairs(own, &self.params);
            for (&p, &w) in played.iter().zip(&weights) {
                for &(a, b) in &own_pairs {
                    if a == p {
                        *scores.entry(b).or_default() -= w;
                    }
                }
            }
        }
        scores
    }
}

fn session_tracks(index: &CatalogIndex, session: &Session) -> Vec<u32> {
    let mut music: Vec<(u32, &str)> = session
        .messages
        .iter()
        .filter(|m| m.role == Role::Music)
        .map(|m| (m.turn_number, m.content.as_str()))
        .collect();
    music.sort_by_key(|&(turn, _)| turn);
    music
        .into_iter()
        .filter_map(|(_, id)| index.position(id))
        .collect()
}

fn pairs(sequence: &[u32], params: &CoOccurrenceParams) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for (i, &a) in sequence.iter().enumerate() {
        for (j, &b) in sequence.iter().enumerate() {
            if a == b {
                continue;
            }
            let counted = match params.mode {
                CoOccurrenceMode::Next => j == i + 1,
                CoOccurrenceMode::Session => {
                    i != j && (params.window == 0 || i.abs_diff(j) <= params.window)
                }
            };
            if counted {
                out.push((a, b));
            }
        }
    }
    out
}

impl Channel for CoOccurrenceChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn propose(&self, query: &TurnContext, k: usize) -> Result<Vec<ChannelHit>> {
        let played = self.index.positions(&query.played_track_ids);
        let scores = self.scores(query, &played);
        // Scores below half a count are leftovers of subtraction, not evidence.
        let scores = scores.into_iter().filter(|&(_, s)| s > 1e-3);
        Ok(top_k(scores, &played, k))
    }
}

super::retriever_from_channel!(CoOccurrenceChannel);

#[cfg(test)]
mod tests {
    use music_crs_core::ScoredTrack;
    use music_crs_retrieval::Retriever;

    use super::super::test_support::{index, session, track};
    use super::*;

    fn catalog() -> Arc<CatalogIndex> {
        index(
            ["a", "b", "c", "d", "e"]
                .iter()
                .map(|id| track(id, id, id, 0.0))
                .collect(),
        )
    }

    fn ids(hits: &[ScoredTrack]) -> Vec<&str> {
        hits.iter().map(|h| h.track_id.as_str()).collect()
    }

    fn query(session_id: &str, played: &[&str]) -> TurnContext {
        TurnContext {
            session_id: session_id.into(),
            played_track_ids: played.iter().map(|s| s.to_string()).collect(),
            ..TurnContext::from_message("more")
        }
    }

    #[test]
    fn next_track_counts_follow_order() {
        let sessions = vec![
            session("s1", &["a", "b", "c"]),
            session("s2", &["a", "b"]),
            session("s3", &["a", "d"]),
        ];
        let params = CoOccurrenceParams {
            mode: CoOccurrenceMode::Next,
            ..CoOccurrenceParams::default()
        };
        let channel = CoOccurrenceChannel::build("next", catalog(), &sessions, params).unwrap();
        let hits = channel.retrieve(&query("new", &["a"]), 10).unwrap();
        assert_eq!(ids(&hits), vec!["b", "d"]);
        assert_eq!(hits[0].score, 2.0);
        // Nothing ever followed c.
        assert!(
            channel
                .retrieve(&query("new", &["c"]), 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn session_mode_counts_both_directions_and_skips_played() {
        let sessions = vec![session("s1", &["a", "b", "c"]), session("s2", &["c", "e"])];
        let channel =
            CoOccurrenceChannel::build("co", catalog(), &sessions, CoOccurrenceParams::default())
                .unwrap();
        let hits = channel.retrieve(&query("new", &["c", "b"]), 10).unwrap();
        // b (most recent, weight 1) co-occurs with a and c; c (weight 0.5) with a, b and e.
        assert_eq!(ids(&hits), vec!["a", "e"]);
        assert_eq!(hits[0].score, 1.5);
        assert_eq!(hits[1].score, 0.5);
        let batch = channel
            .retrieve_batch(&[query("new", &["c", "b"])], 10)
            .unwrap();
        assert_eq!(batch, vec![hits]);
    }

    #[test]
    fn own_session_is_left_out() {
        let sessions = vec![session("s1", &["a", "b"]), session("s2", &["a", "c"])];
        let params = CoOccurrenceParams {
            mode: CoOccurrenceMode::Next,
            ..CoOccurrenceParams::default()
        };
        let channel =
            CoOccurrenceChannel::build("next", catalog(), &sessions, params.clone()).unwrap();
        // Inside s1, the pair a→b is s1's own target: only s2's evidence remains.
        let hits = channel.retrieve(&query("s1", &["a"]), 10).unwrap();
        assert_eq!(ids(&hits), vec!["c"]);
        let keep = CoOccurrenceParams {
            leave_session_out: false,
            ..params
        };
        let channel = CoOccurrenceChannel::build("next", catalog(), &sessions, keep).unwrap();
        assert_eq!(
            ids(&channel.retrieve(&query("s1", &["a"]), 10).unwrap()),
            vec!["b", "c"]
        );
    }
}
