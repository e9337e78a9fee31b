//! Candidate channels: retrievers that each propose tracks for one reason (continuity with the
//! played tracks, co-occurrence in training sessions, a popularity prior). None of them ever
//! returns a track already played in the conversation.

/// Implements [`Retriever`](music_crs_retrieval::Retriever) for a channel struct with a `name`
/// field and an infallible `fn top(&self, query: &TurnContext, k: usize) -> Vec<ScoredTrack>`:
/// every channel answers one turn the same way and a batch in parallel over its turns.
macro_rules! channel_retriever {
    ($channel:ty) => {
        impl music_crs_retrieval::Retriever for $channel {
            fn name(&self) -> &str {
                &self.name
            }

            fn retrieve(
                &self,
                query: &music_crs_core::TurnContext,
                k: usize,
            ) -> music_crs_retrieval::Result<Vec<music_crs_core::ScoredTrack>> {
                Ok(self.top(query, k))
            }

            fn retrieve_batch(
                &self,
                queries: &[music_crs_core::TurnContext],
                k: usize,
            ) -> music_crs_retrieval::Result<Vec<Vec<music_crs_core::ScoredTrack>>> {
                use rayon::prelude::*;
                Ok(queries.par_iter().map(|q| self.top(q, k)).collect())
            }
        }
    };
}

mod continuity;
mod cooccurrence;
mod popularity;

pub use continuity::{ContinuityChannel, ContinuityParams};
pub use cooccurrence::{CoOccurrenceChannel, CoOccurrenceMode, CoOccurrenceParams};
pub use popularity::{PopularityPrior, PopularityPriorParams};

use music_crs_core::ScoredTrack;

use crate::CatalogIndex;

/// The top `k` of sparse scores over catalog positions, best first, ties broken by catalog
/// position; played positions and non-positive scores are left out.
pub(crate) fn top_k(
    index: &CatalogIndex,
    scores: impl IntoIterator<Item = (u32, f32)>,
    played: &[usize],
    k: usize,
) -> Vec<ScoredTrack> {
    let mut hits: Vec<(u32, f32)> = scores
        .into_iter()
        .filter(|&(position, score)| score > 0.0 && !played.contains(&(position as usize)))
        .collect();
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    hits.truncate(k);
    hits.into_iter()
        .map(|(position, score)| {
            ScoredTrack::new(index.track(position as usize).track_id.clone(), score)
        })
        .collect()
}

/// Weight of a played track by its age: 1 for the most recent, `decay` for the one before...
pub(crate) fn recency_weights(count: usize, decay: f32) -> impl Iterator<Item = f32> {
    (0..count).map(move |j| decay.powi((count - 1 - j) as i32))
}

/// Checks a weight-like parameter is finite and within `[low, high]`.
pub(crate) fn check_range(name: &str, value: f32, low: f32, high: f32) -> crate::Result<()> {
    if value.is_finite() && (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(crate::Error::param(
            name,
            format!("{value} is outside [{low}, {high}]"),
        ))
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Catalogs and sessions made in code for the channel tests.

    use std::sync::Arc;

    use music_crs_core::{Catalog, Message, Role, Session, Track};

    use crate::CatalogIndex;

    /// A track with artist and album ids and a popularity.
    pub fn track(id: &str, artist: &str, album: &str, popularity: f64) -> Track {
        let mut track = Track::new(id, format!("title {id}"), format!("artist {artist}"));
        track.artist_id = vec![artist.to_string()];
        track.album_id = vec![album.to_string()];
        track.album_name = vec![format!("album {album}")];
        track.popularity = Some(popularity);
        track
    }

    /// An index over the given tracks.
    pub fn index(tracks: Vec<Track>) -> Arc<CatalogIndex> {
        Arc::new(CatalogIndex::new(Arc::new(
            Catalog::new(tracks).expect("unique ids"),
        )))
    }

    /// A session that played `tracks` in order, one per turn.
    pub fn session(id: &str, tracks: &[&str]) -> Session {
        let messages = tracks
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                let turn = i as u32 + 1;
                [
                    Message::new(turn, Role::User, format!("ask {turn}")),
                    Message::new(turn, Role::Music, *t),
                    Message::new(turn, Role::Assistant, "here"),
                ]
            })
            .collect();
        Session {
            session_id: id.into(),
            user_id: "u".into(),
            messages,
            ..Session::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recency_weights_favour_the_last_track() {
        let weights: Vec<f32> = recency_weights(3, 0.5).collect();
        assert_eq!(weights, vec![0.25, 0.5, 1.0]);
    }
}
