//! A popularity prior: catalog popularity blended with play counts of training sessions.

use std::collections::HashMap;
use std::sync::Arc;

use music_crs_core::{Role, Session, TurnContext};
use serde::{Deserialize, Serialize};

use super::{Channel, ChannelHit, check_range, ranked};
use crate::{CatalogIndex, Error, Result};

/// Parameters of a [`PopularityPrior`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PopularityPriorParams {
    /// Weight of catalog popularity, scaled from 0..100 to 0..1.
    pub catalog_weight: f32,
    /// Weight of `ln(1 + plays)`, plays counted over the training sessions.
    pub play_count_weight: f32,
    /// Leave the query's own session out of the play counts (see
    /// [`crate::CoOccurrenceParams::leave_session_out`]).
    pub leave_session_out: bool,
}

impl PopularityPriorParams {
    /// Default [`PopularityPriorParams::catalog_weight`].
    pub const DEFAULT_CATALOG_WEIGHT: f32 = 0.1;
    /// Default [`PopularityPriorParams::play_count_weight`].
    pub const DEFAULT_PLAY_COUNT_WEIGHT: f32 = 1.0;

    /// Checks every value.
    pub fn validate(&self) -> Result<()> {
        check_range("catalog_weight", self.catalog_weight, 0.0, 1e6)?;
        check_range("play_count_weight", self.play_count_weight, 0.0, 1e6)?;
        if self.catalog_weight == 0.0 && self.play_count_weight == 0.0 {
            return Err(Error::param(
                "catalog_weight",
                "catalog_weight and play_count_weight are both 0",
            ));
        }
        Ok(())
    }
}

impl Default for PopularityPriorParams {
    fn default() -> Self {
        PopularityPriorParams {
            catalog_weight: Self::DEFAULT_CATALOG_WEIGHT,
            play_count_weight: Self::DEFAULT_PLAY_COUNT_WEIGHT,
            leave_session_out: true,
        }
    }
}

/// Ranks every catalog track by a fixed popularity prior; played tracks are skipped.
#[derive(Debug, Clone)]
pub struct PopularityPrior {
    name: String,
    index: Arc<CatalogIndex>,
    params: PopularityPriorParams,
    plays: Vec<u32>,
    /// Catalog positions by descending prior, ties by position.
    order: Vec<u32>,
    sessions: HashMap<String, Vec<u32>>,
}

impl PopularityPrior {
    /// Counts plays in `sessions` (may be empty: catalog popularity only).
    pub fn build(
        name: impl Into<String>,
        index: Arc<CatalogIndex>,
        sessions: &[Session],
        params: PopularityPriorParams,
    ) -> Result<Self> {
        params.validate()?;
        let mut plays = vec![0u32; index.len()];
        let mut by_session = HashMap::with_capacity(sessions.len());
        for session in sessions {
            let tracks: Vec<u32> = session
                .messages
                .iter()
                .filter(|m| m.role == Role::Music)
                .filter_map(|m| index.position(&m.content))
                .collect();
            for &t in &tracks {
                plays[t as usize] += 1;
            }
            by_session.insert(session.session_id.clone(), tracks);
        }
        let mut channel = PopularityPrior {
            name: name.into(),
            index,
            params,
            plays,
            order: Vec::new(),
            sessions: by_session,
        };
        let mut order: Vec<u32> = (0..channel.index.len() as u32).collect();
        order.sort_by(|&a, &b| {
            channel
                .prior(b, 0)
                .total_cmp(&channel.prior(a, 0))
                .then(a.cmp(&b))
        });
        channel.order = order;
        Ok(channel)
    }

    fn prior(&self, position: u32, own_plays: u32) -> f32 {
        let plays = self.plays[position as usize].saturating_sub(own_plays) as f32;
        self.params.catalog_weight * self.index.info(position).popularity / 100.0
            + self.params.play_count_weight * plays.ln_1p()
    }
}

impl Channel for PopularityPrior {
    fn name(&self) -> &str {
        &self.name
    }

    fn propose(&self, query: &TurnContext, k: usize) -> Result<Vec<ChannelHit>> {
        let played = self.index.positions(&query.played_track_ids);
        let own: &[u32] = match self.params.leave_session_out {
            true => self
                .sessions
                .get(&query.session_id)
                .map_or(&[], Vec::as_slice),
            false => &[],
        };
        // Leaving the session out only lowers priors, and of at most `own.len()` tracks: the
        // true top k lies within the first k + own.len() + played.len() of the fixed order.
        let window = k + own.len() + played.len();
        let mut hits: Vec<(u32, f32)> = self
            .order
            .iter()
            .take(window)
            .filter(|&&t| !played.contains(&t))
            .map(|&t| {
                let own_plays = own.iter().filter(|&&o| o == t).count() as u32;
                (t, self.prior(t, own_plays))
            })
            .collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(ranked(hits, k))
    }
}

super::retriever_from_channel!(PopularityPrior);

#[cfg(test)]
mod tests {
    use music_crs_core::ScoredTrack;
    use music_crs_retrieval::Retriever;

    use super::super::test_support::{index, session, track};
    use super::*;

    fn ids(hits: &[ScoredTrack]) -> Vec<&str> {
        hits.iter().map(|h| h.track_id.as_str()).collect()
    }

    #[test]
    fn play_counts_rank_and_own_session_is_left_out() {
        let catalog = index(vec![
            track("a", "a", "a", 90.0),
            track("b", "b", "b", 10.0),
            track("c", "c", "c", 50.0),
        ]);
        let sessions = vec![session("s1", &["b", "c"]), session("s2", &["b"])];
        let channel =
            PopularityPrior::build("pop", catalog, &sessions, PopularityPriorParams::default())
                .unwrap();
        let mut query = TurnContext::from_message("hi");
        assert_eq!(
            ids(&channel.retrieve(&query, 3).unwrap()),
            vec!["b", "c", "a"]
        );
        // Inside s1, b and c each lose one play: b (1 play) still leads, c falls behind a.
        query.session_id = "s1".into();
        assert_eq!(
            ids(&channel.retrieve(&query, 3).unwrap()),
            vec!["b", "a", "c"]
        );
        query.played_track_ids = vec!["b".into()];
        assert_eq!(ids(&channel.retrieve(&query, 1).unwrap()), vec!["a"]);
    }
}
