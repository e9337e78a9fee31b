//! The simplest retrievers: seeded random tracks and the most popular tracks.

use std::collections::HashMap;
use std::sync::Arc;

use music_crs_core::{Catalog, MAX_PREDICTED_TRACKS, Role, ScoredTrack, Session, TurnContext};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::hash::{FNV_OFFSET, fnv1a};
use crate::{Error, Result, Retriever};

/// Settings of a [`RandomRetriever`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RandomParams {
    /// The base seed; each (session, turn) derives its own stream from it.
    pub seed: u64,
}

impl RandomParams {
    /// Default for [`RandomParams::seed`].
    pub const DEFAULT_SEED: u64 = 42;

    /// Checks the settings (any seed is valid).
    pub fn validate(&self) -> Result<()> {
        Ok(())
    }
}

impl Default for RandomParams {
    fn default() -> Self {
        RandomParams {
            seed: Self::DEFAULT_SEED,
        }
    }
}

/// Uniformly random distinct tracks, deterministic per (seed, session, turn): the same turn
/// always gets the same tracks, whatever the batch order or thread count.
#[derive(Debug, Clone)]
pub struct RandomRetriever {
    track_ids: Arc<[String]>,
    params: RandomParams,
}

impl RandomRetriever {
    /// Draws from these track ids; fails on a repeated id (results must be unique).
    pub fn new(track_ids: impl IntoIterator<Item = String>, params: RandomParams) -> Result<Self> {
        params.validate()?;
        let track_ids: Arc<[String]> = track_ids.into_iter().collect();
        let mut seen = std::collections::HashSet::with_capacity(track_ids.len());
        if let Some(repeated) = track_ids.iter().find(|id| !seen.insert(id.as_str())) {
            return Err(Error::DuplicateDocument(repeated.clone()));
        }
        Ok(RandomRetriever { track_ids, params })
    }

    /// Draws from every catalog track.
    pub fn from_catalog(catalog: &Catalog, params: RandomParams) -> Result<Self> {
        Self::new(catalog.tracks().iter().map(|t| t.track_id.clone()), params)
    }

    /// The settings.
    pub fn params(&self) -> &RandomParams {
        &self.params
    }

    /// The seed of one turn's stream: FNV-1a of the base seed, session id and turn number.
    fn turn_seed(&self, query: &TurnContext) -> u64 {
        let state = fnv1a(FNV_OFFSET, &self.params.seed.to_le_bytes());
        let state = fnv1a(state, query.session_id.as_bytes());
        // A separator keeps ("s1", 12) and ("s11", 2) apart.
        let state = fnv1a(state, &[0xff]);
        fnv1a(state, &query.turn_number.to_le_bytes())
    }
}

impl Retriever for RandomRetriever {
    fn name(&self) -> &str {
        "random"
    }

    /// `k` distinct tracks in random order, scored `1 / rank`.
    fn retrieve(&self, query: &TurnContext, k: usize) -> Result<Vec<ScoredTrack>> {
        let amount = k.min(self.track_ids.len());
        let mut rng = ChaCha8Rng::seed_from_u64(self.turn_seed(query));
        Ok(
            rand::seq::index::sample(&mut rng, self.track_ids.len(), amount)
                .into_iter()
                .enumerate()
                .map(|(rank, i)| {
                    ScoredTrack::new(self.track_ids[i].clone(), 1.0 / (rank + 1) as f32)
                })
                .collect(),
        )
    }

    fn retrieve_batch(&self, queries: &[TurnContext], k: usize) -> Result<Vec<Vec<ScoredTrack>>> {
        queries.par_iter().map(|q| self.retrieve(q, k)).collect()
    }
}

/// Settings of a [`PopularityRetriever`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PopularityParams {
    /// How many of the most popular tracks are kept (the baseline keeps 20).
    pub max_tracks: usize,
}

impl PopularityParams {
    /// Default for [`PopularityParams::max_tracks`]: a full prediction.
    pub const DEFAULT_MAX_TRACKS: usize = MAX_PREDICTED_TRACKS;

    /// Checks the settings: at least one track.
    pub fn validate(&self) -> Result<()> {
        if self.max_tracks == 0 {
            return Err(Error::InvalidParameter {
                name: "popularity.max_tracks",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

impl Default for PopularityParams {
    fn default() -> Self {
        PopularityParams {
            max_tracks: Self::DEFAULT_MAX_TRACKS,
        }
    }
}

/// The same most-popular tracks for every turn.
#[derive(Debug, Clone)]
pub struct PopularityRetriever {
    ranked: Vec<ScoredTrack>,
}

impl PopularityRetriever {
    /// The tracks recommended most often (music messages) in `sessions`, e.g. the training
    /// split, scored by their count. Equal counts keep the order of first appearance, as
    /// Python's `Counter.most_common` does.
    pub fn from_sessions(sessions: &[Session], params: PopularityParams) -> Result<Self> {
        params.validate()?;
        let mut first_seen: Vec<&str> = Vec::new();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for message in sessions
            .iter()
            .flat_map(|s| &s.messages)
            .filter(|m| m.role == Role::Music)
        {
            let count = counts.entry(message.content.as_str()).or_insert(0);
            if *count == 0 {
                first_seen.push(message.content.as_str());
            }
            *count += 1;
        }
        // Stable sort: ties stay in first-appearance order.
        first_seen.sort_by_key(|id| std::cmp::Reverse(counts[id]));
        let ranked = first_seen
            .into_iter()
            .take(params.max_tracks)
            .map(|id| ScoredTrack::new(id, counts[id] as f32))
            .collect();
        Ok(PopularityRetriever { ranked })
    }

    /// The tracks with the highest catalog `popularity` field, scored by it; equal values
    /// keep catalog order and tracks without a value are left out.
    pub fn from_catalog_popularity(catalog: &Catalog, params: PopularityParams) -> Result<Self> {
        params.validate()?;
        let mut tracks: Vec<(usize, f64)> = catalog
            .tracks()
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.popularity.filter(|p| p.is_finite()).map(|p| (i, p)))
            .collect();
        tracks.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let ranked = tracks
            .into_iter()
            .take(params.max_tracks)
            .map(|(i, p)| ScoredTrack::new(catalog.tracks()[i].track_id.clone(), p as f32))
            .collect();
        Ok(PopularityRetriever { ranked })
    }

    /// The kept tracks, most popular first.
    pub fn ranked(&self) -> &[ScoredTrack] {
        &self.ranked
    }
}

impl Retriever for PopularityRetriever {
    fn name(&self) -> &str {
        "popularity"
    }

    fn retrieve(&self, _query: &TurnContext, k: usize) -> Result<Vec<ScoredTrack>> {
        Ok(self.ranked.iter().take(k).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use music_crs_core::{Message, Track};

    use super::*;

    fn turn(session: &str, turn_number: u32) -> TurnContext {
        TurnContext {
            session_id: session.into(),
            turn_number,
            ..TurnContext::default()
        }
    }

    fn random() -> RandomRetriever {
        RandomRetriever::new((0..100).map(|i| format!("t{i}")), RandomParams::default()).unwrap()
    }

    #[test]
    fn random_is_deterministic_per_turn_and_order_free() {
        let retriever = random();
        let queries = vec![turn("a", 1), turn("a", 2), turn("b", 1)];
        let batch = retriever.retrieve_batch(&queries, 10).unwrap();
        let mut reversed = queries.clone();
        reversed.reverse();
        let mut batch_reversed = retriever.retrieve_batch(&reversed, 10).unwrap();
        batch_reversed.reverse();
        assert_eq!(batch, batch_reversed);
        assert_eq!(batch[0], retriever.retrieve(&queries[0], 10).unwrap());
        // Different turns and sessions draw different tracks.
        assert_ne!(batch[0], batch[1]);
        assert_ne!(batch[0], batch[2]);
        // A different seed changes the draw.
        let other =
            RandomRetriever::new((0..100).map(|i| format!("t{i}")), RandomParams { seed: 7 })
                .unwrap();
        assert_ne!(other.retrieve(&queries[0], 10).unwrap(), batch[0]);
    }

    #[test]
    fn random_returns_distinct_ranked_tracks() {
        let hits = random().retrieve(&turn("a", 1), 20).unwrap();
        assert_eq!(hits.len(), 20);
        let mut ids: Vec<&str> = hits.iter().map(|h| h.track_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 20);
        assert!(hits.windows(2).all(|w| w[0].score > w[1].score));
        // Fewer tracks than k: all of them.
        let small = RandomRetriever::new(vec!["x".to_string()], RandomParams::default()).unwrap();
        assert_eq!(small.retrieve(&turn("a", 1), 5).unwrap().len(), 1);
        assert!(
            RandomRetriever::new(vec!["x".into(), "x".into()], RandomParams::default()).is_err()
        );
    }

    fn session(tracks: &[&str]) -> Session {
        Session {
            session_id: "s".into(),
            messages: tracks
                .iter()
                .enumerate()
                .flat_map(|(i, t)| {
                    [
                        Message::new(i as u32 + 1, Role::User, "hi"),
                        Message::new(i as u32 + 1, Role::Music, *t),
                    ]
                })
                .collect(),
            ..Session::default()
        }
    }

    fn ranked_ids(retriever: &PopularityRetriever) -> Vec<&str> {
        retriever
            .ranked()
            .iter()
            .map(|t| t.track_id.as_str())
            .collect()
    }

    #[test]
    fn popularity_counts_music_messages_with_first_seen_ties() {
        let sessions = vec![
            session(&["b", "a", "c"]),
            session(&["a", "d", "c"]),
            session(&["e"]),
        ];
        let retriever =
            PopularityRetriever::from_sessions(&sessions, PopularityParams { max_tracks: 4 })
                .unwrap();
        // a and c twice (a seen first), then b before d (first appearance).
        assert_eq!(ranked_ids(&retriever), ["a", "c", "b", "d"]);
        assert_eq!(retriever.ranked()[0].score, 2.0);
        let hits = retriever.retrieve(&turn("x", 1), 2).unwrap();
        assert_eq!(hits.len(), 2);
        assert!(
            PopularityRetriever::from_sessions(&sessions, PopularityParams { max_tracks: 0 })
                .is_err()
        );
    }

    #[test]
    fn catalog_popularity_orders_by_field() {
        let mut tracks: Vec<Track> = (0..4)
            .map(|i| Track::new(format!("t{i}"), "n", "a"))
            .collect();
        tracks[0].popularity = Some(10.0);
        tracks[1].popularity = Some(80.0);
        tracks[2].popularity = None;
        tracks[3].popularity = Some(80.0);
        let catalog = Catalog::new(tracks).unwrap();
        let retriever =
            PopularityRetriever::from_catalog_popularity(&catalog, PopularityParams::default())
                .unwrap();
        assert_eq!(ranked_ids(&retriever), ["t1", "t3", "t0"]);
    }
}
