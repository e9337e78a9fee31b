//! Continuity: tracks by the same artist or from the same album as the played tracks.

use std::collections::HashMap;
use std::sync::Arc;

use music_crs_core::TurnContext;
use serde::{Deserialize, Serialize};

use super::{Channel, ChannelHit, check_range, recency_weights, top_k};
use crate::{CatalogIndex, Result};

/// Parameters of a [`ContinuityChannel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContinuityParams {
    /// Score for sharing an artist with a played track (0 turns the artist part off).
    pub artist_weight: f32,
    /// Score for sharing an album with a played track (0 turns the album part off).
    pub album_weight: f32,
    /// Weight of each older played track relative to the next one, in `(0, 1]`.
    pub recency_decay: f32,
    /// Weight of catalog popularity (0..100 scaled to 0..1) that orders tracks of one artist.
    pub popularity_weight: f32,
}

impl ContinuityParams {
    /// Default [`ContinuityParams::artist_weight`].
    pub const DEFAULT_ARTIST_WEIGHT: f32 = 1.0;
    /// Default [`ContinuityParams::album_weight`].
    pub const DEFAULT_ALBUM_WEIGHT: f32 = 1.0;
    /// Default [`ContinuityParams::recency_decay`].
    pub const DEFAULT_RECENCY_DECAY: f32 = 0.6;
    /// Default [`ContinuityParams::popularity_weight`]: small, so it only breaks ties.
    pub const DEFAULT_POPULARITY_WEIGHT: f32 = 0.05;

    /// Checks every value.
    pub fn validate(&self) -> Result<()> {
        check_range("artist_weight", self.artist_weight, 0.0, 1e6)?;
        check_range("album_weight", self.album_weight, 0.0, 1e6)?;
        check_range("popularity_weight", self.popularity_weight, 0.0, 1e6)?;
        if self.artist_weight == 0.0 && self.album_weight == 0.0 {
            return Err(crate::Error::param(
                "artist_weight",
                "artist_weight and album_weight are both 0: the channel would find nothing",
            ));
        }
        if !(self.recency_decay > 0.0 && self.recency_decay <= 1.0) {
            return Err(crate::Error::param(
                "recency_decay",
                format!("{} is outside (0, 1]", self.recency_decay),
            ));
        }
        Ok(())
    }
}

impl Default for ContinuityParams {
    fn default() -> Self {
        ContinuityParams {
            artist_weight: Self::DEFAULT_ARTIST_WEIGHT,
            album_weight: Self::DEFAULT_ALBUM_WEIGHT,
            recency_decay: Self::DEFAULT_RECENCY_DECAY,
            popularity_weight: Self::DEFAULT_POPULARITY_WEIGHT,
        }
    }
}

/// Proposes the tracks of the played tracks' artists and albums, the most recent played track
/// weighing most, popular tracks first among equals. Played tracks are never returned.
///
/// In the challenge data the target shares an artist with an earlier track about half the time.
#[derive(Debug, Clone)]
pub struct ContinuityChannel {
    name: String,
    index: Arc<CatalogIndex>,
    params: ContinuityParams,
}

impl ContinuityChannel {
    /// A channel over `index`; fails on invalid params.
    pub fn new(
        name: impl Into<String>,
        index: Arc<CatalogIndex>,
        params: ContinuityParams,
    ) -> Result<Self> {
        params.validate()?;
        Ok(ContinuityChannel {
            name: name.into(),
            index,
            params,
        })
    }

    fn scores(&self, played: &[u32]) -> HashMap<u32, f32> {
        let mut scores: HashMap<u32, f32> = HashMap::new();
        let weights = recency_weights(played.len(), self.params.recency_decay);
        for (&position, weight) in played.iter().zip(weights) {
            let info = self.index.info(position);
            if self.params.artist_weight > 0.0 {
                for &artist in &info.artists {
                    for &t in self.index.artist_tracks(artist) {
                        *scores.entry(t).or_default() += weight * self.params.artist_weight;
                    }
                }
            }
            if self.params.album_weight > 0.0 {
                for &album in &info.albums {
                    for &t in self.index.album_tracks(album) {
                        *scores.entry(t).or_default() += weight * self.params.album_weight;
                    }
                }
            }
        }
        for (&t, score) in scores.iter_mut() {
            *score += self.params.popularity_weight * self.index.info(t).popularity / 100.0;
        }
        scores
    }
}

impl Channel for ContinuityChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn propose(&self, query: &TurnContext, k: usize) -> Result<Vec<ChannelHit>> {
        let played = self.index.positions(&query.played_track_ids);
        Ok(top_k(self.scores(&played), &played, k))
    }
}

super::retriever_from_channel!(ContinuityChannel);

#[cfg(test)]
mod tests {
    use music_crs_core::ScoredTrack;
    use music_crs_retrieval::Retriever;

    use super::super::test_support::{index, track};
    use super::*;

    fn catalog() -> Arc<CatalogIndex> {
        index(vec![
            track("a1", "A", "A-one", 10.0),
            track("a2", "A", "A-one", 90.0),
            track("a3", "A", "A-two", 50.0),
            track("b1", "B", "B-one", 99.0),
            track("b2", "B", "B-one", 20.0),
            track("c1", "C", "C-one", 80.0),
        ])
    }

    fn ids(hits: &[ScoredTrack]) -> Vec<&str> {
        hits.iter().map(|h| h.track_id.as_str()).collect()
    }

    #[test]
    fn same_album_beats_same_artist_and_played_is_excluded() {
        let channel =
            ContinuityChannel::new("continuity", catalog(), ContinuityParams::default()).unwrap();
        let mut query = TurnContext::from_message("more");
        query.played_track_ids = vec!["a1".into()];
        let hits = channel.retrieve(&query, 10).unwrap();
        // a2 shares artist and album, a3 only the artist; b and c share nothing.
        assert_eq!(ids(&hits), vec!["a2", "a3"]);
        let batch = channel.retrieve_batch(&[query.clone(), query], 10).unwrap();
        assert_eq!(batch, vec![hits.clone(), hits]);
    }

    #[test]
    fn the_most_recent_played_track_weighs_most() {
        let channel =
            ContinuityChannel::new("continuity", catalog(), ContinuityParams::default()).unwrap();
        let mut query = TurnContext::from_message("more");
        query.played_track_ids = vec!["a1".into(), "b1".into()];
        let hits = channel.retrieve(&query, 10).unwrap();
        assert_eq!(ids(&hits), vec!["b2", "a2", "a3"]);
    }

    #[test]
    fn album_only_mode_and_bad_params() {
        let params = ContinuityParams {
            artist_weight: 0.0,
            ..ContinuityParams::default()
        };
        let channel = ContinuityChannel::new("album", catalog(), params).unwrap();
        let mut query = TurnContext::from_message("more");
        query.played_track_ids = vec!["a1".into()];
        assert_eq!(ids(&channel.retrieve(&query, 10).unwrap()), vec!["a2"]);
        let bad = ContinuityParams {
            recency_decay: 0.0,
            ..ContinuityParams::default()
        };
        let err = ContinuityChannel::new("x", catalog(), bad).unwrap_err();
        assert!(err.to_string().contains("recency_decay"), "{err}");
    }

    #[test]
    fn first_turn_finds_nothing() {
        let channel =
            ContinuityChannel::new("continuity", catalog(), ContinuityParams::default()).unwrap();
        let hits = channel
            .retrieve(&TurnContext::from_message("hi"), 10)
            .unwrap();
        assert!(hits.is_empty());
    }
}
