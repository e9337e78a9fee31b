//! Candidate channels: retrievers that each propose tracks for one reason (continuity with the
//! played tracks, co-occurrence in training sessions, a popularity prior). None of them ever
//! returns a track already played in the conversation.

use std::sync::Arc;

use music_crs_core::{ScoredTrack, TurnContext};
use music_crs_retrieval::Retriever;
use rayon::prelude::*;

use crate::{CatalogIndex, Result};

/// One track a [`Channel`] proposes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelHit {
    /// The track's catalog position.
    pub position: u32,
    /// The channel's 1-based rank of it. Usually its place in the list; a
    /// [`RetrieverChannel`] keeps the rank its retriever gave, even when it left out an id
    /// the catalog lacks above it.
    pub rank: u32,
    /// The channel's score.
    pub score: f32,
}

impl ChannelHit {
    /// A hit.
    pub fn new(position: u32, rank: u32, score: f32) -> Self {
        ChannelHit {
            position,
            rank,
            score,
        }
    }
}

/// A candidate source over catalog positions: proposes the best tracks for a turn, best first,
/// never a track already played. Positions stay positions through fusion, the candidate union,
/// the features and the ranker; they become track ids once, at the `Retriever` boundary
/// ([`ChannelRetriever`], or the `Retriever` impl of each channel of this crate).
pub trait Channel: Send + Sync {
    /// The channel's name (for logs).
    fn name(&self) -> &str;

    /// The top `k` tracks for one turn.
    fn propose(&self, query: &TurnContext, k: usize) -> Result<Vec<ChannelHit>>;

    /// The top `k` tracks for each turn (in parallel over the turns unless overridden).
    fn propose_batch(&self, queries: &[TurnContext], k: usize) -> Result<Vec<Vec<ChannelHit>>> {
        queries.par_iter().map(|q| self.propose(q, k)).collect()
    }
}

/// Implements [`Retriever`] for a [`Channel`] with an `index: Arc<CatalogIndex>` field: the one
/// place where catalog positions become track ids.
macro_rules! retriever_from_channel {
    ($channel:ty) => {
        impl music_crs_retrieval::Retriever for $channel {
            fn name(&self) -> &str {
                $crate::Channel::name(self)
            }

            fn retrieve(
                &self,
                query: &music_crs_core::TurnContext,
                k: usize,
            ) -> music_crs_retrieval::Result<Vec<music_crs_core::ScoredTrack>> {
                let hits = $crate::Channel::propose(self, query, k)
                    .map_err(|e| $crate::error::into_retrieval(e, $crate::Channel::name(self)))?;
                Ok($crate::channels::scored_tracks(&self.index, hits))
            }

            fn retrieve_batch(
                &self,
                queries: &[music_crs_core::TurnContext],
                k: usize,
            ) -> music_crs_retrieval::Result<Vec<Vec<music_crs_core::ScoredTrack>>> {
                let lists = $crate::Channel::propose_batch(self, queries, k)
                    .map_err(|e| $crate::error::into_retrieval(e, $crate::Channel::name(self)))?;
                Ok(lists
                    .into_iter()
                    .map(|hits| $crate::channels::scored_tracks(&self.index, hits))
                    .collect())
            }
        }
    };
}
pub(crate) use retriever_from_channel;

mod continuity;
mod cooccurrence;
mod popularity;

pub use continuity::{ContinuityChannel, ContinuityParams};
pub use cooccurrence::{CoOccurrenceChannel, CoOccurrenceMode, CoOccurrenceParams};
pub use popularity::{PopularityPrior, PopularityPriorParams};

/// Track ids of hits, with their scores.
pub(crate) fn scored_tracks(index: &CatalogIndex, hits: Vec<ChannelHit>) -> Vec<ScoredTrack> {
    hits.into_iter()
        .map(|hit| ScoredTrack::new(index.track(hit.position).track_id.clone(), hit.score))
        .collect()
}

/// A retriever of `music-crs-retrieval` (BM25, embedding neighbours, ...) as a [`Channel`]: its
/// track ids become catalog positions here, ids the catalog lacks are left out (the others keep
/// the rank the retriever gave them). It must leave played tracks out itself (wrap it in
/// [`ExcludePlayed`](music_crs_retrieval::ExcludePlayed) when it does not).
pub struct RetrieverChannel {
    index: Arc<CatalogIndex>,
    retriever: Box<dyn Retriever>,
}

impl std::fmt::Debug for RetrieverChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetrieverChannel")
            .field("retriever", &self.retriever.name())
            .finish_non_exhaustive()
    }
}

impl RetrieverChannel {
    /// Wraps `retriever`, whose ids are looked up in `index`'s catalog.
    pub fn new(index: Arc<CatalogIndex>, retriever: Box<dyn Retriever>) -> Self {
        RetrieverChannel { index, retriever }
    }

    fn hits(&self, tracks: Vec<ScoredTrack>) -> Vec<ChannelHit> {
        tracks
            .iter()
            .enumerate()
            .filter_map(|(i, hit)| {
                let position = self.index.position(&hit.track_id)?;
                Some(ChannelHit::new(position, i as u32 + 1, hit.score))
            })
            .collect()
    }
}

impl Channel for RetrieverChannel {
    fn name(&self) -> &str {
        self.retriever.name()
    }

    fn propose(&self, query: &TurnContext, k: usize) -> Result<Vec<ChannelHit>> {
        Ok(self.hits(self.retriever.retrieve(query, k)?))
    }

    fn propose_batch(&self, queries: &[TurnContext], k: usize) -> Result<Vec<Vec<ChannelHit>>> {
        let lists = self.retriever.retrieve_batch(queries, k)?;
        Ok(lists.into_iter().map(|tracks| self.hits(tracks)).collect())
    }
}

/// Any [`Channel`] behind the [`Retriever`] trait (what [`build_channel`](crate::build_channel)
/// returns): positions become track ids here.
pub struct ChannelRetriever {
    index: Arc<CatalogIndex>,
    channel: Box<dyn Channel>,
}

impl std::fmt::Debug for ChannelRetriever {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRetriever")
            .field("channel", &self.channel.name())
            .finish_non_exhaustive()
    }
}

impl ChannelRetriever {
    /// Wraps `channel`, whose positions are looked up in `index`'s catalog.
    pub fn new(index: Arc<CatalogIndex>, channel: Box<dyn Channel>) -> Self {
        ChannelRetriever { index, channel }
    }

    /// The channel.
    pub fn channel(&self) -> &dyn Channel {
        self.channel.as_ref()
    }
}

impl Channel for ChannelRetriever {
    fn name(&self) -> &str {
        self.channel.name()
    }

    fn propose(&self, query: &TurnContext, k: usize) -> Result<Vec<ChannelHit>> {
        self.channel.propose(query, k)
    }

    fn propose_batch(&self, queries: &[TurnContext], k: usize) -> Result<Vec<Vec<ChannelHit>>> {
        self.channel.propose_batch(queries, k)
    }
}

retriever_from_channel!(ChannelRetriever);

/// The top `k` of sparse scores over catalog positions, best first, ties broken by catalog
/// position; played positions and non-positive scores are left out.
pub(crate) fn top_k(
    scores: impl IntoIterator<Item = (u32, f32)>,
    played: &[u32],
    k: usize,
) -> Vec<ChannelHit> {
    let mut hits: Vec<(u32, f32)> = scores
        .into_iter()
        .filter(|&(position, score)| score > 0.0 && !played.contains(&position))
        .collect();
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked(hits, k)
}

/// The first `k` of `(position, score)` pairs, already in order, ranked from 1.
pub(crate) fn ranked(hits: Vec<(u32, f32)>, k: usize) -> Vec<ChannelHit> {
    hits.into_iter()
        .take(k)
        .enumerate()
        .map(|(i, (position, score))| ChannelHit::new(position, i as u32 + 1, score))
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

    use super::test_support::{index, track};

    #[test]
    fn recency_weights_favour_the_last_track() {
        let weights: Vec<f32> = recency_weights(3, 0.5).collect();
        assert_eq!(weights, vec![0.25, 0.5, 1.0]);
    }

    /// A retriever that returns fixed ids, or fails.
    struct Fixed(Option<Vec<&'static str>>);

    impl Retriever for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn retrieve(
            &self,
            _query: &TurnContext,
            k: usize,
        ) -> music_crs_retrieval::Result<Vec<ScoredTrack>> {
            let ids = self
                .0
                .as_ref()
                .ok_or(music_crs_retrieval::Error::InvalidParameter {
                    name: "fixed",
                    reason: "asked to fail".into(),
                })?;
            Ok(ids
                .iter()
                .take(k)
                .enumerate()
                .map(|(i, id)| ScoredTrack::new(*id, 10.0 - i as f32))
                .collect())
        }
    }

    /// A channel whose every answer is an error of this crate.
    struct Broken;

    impl Channel for Broken {
        fn name(&self) -> &str {
            "broken"
        }
        fn propose(&self, _query: &TurnContext, _k: usize) -> Result<Vec<ChannelHit>> {
            Err(crate::Error::NoTrainingData("nothing here".into()))
        }
    }

    fn catalog() -> Arc<CatalogIndex> {
        index(["a", "b", "c"].map(|id| track(id, "x", "y", 0.0)).to_vec())
    }

    #[test]
    fn retriever_ids_become_positions_and_unknown_ids_keep_their_ranks() {
        let channel = RetrieverChannel::new(catalog(), Box::new(Fixed(Some(vec!["c", "zz", "a"]))));
        let query = TurnContext::from_message("q");
        let hits = channel.propose(&query, 10).unwrap();
        assert_eq!(
            hits,
            vec![ChannelHit::new(2, 1, 10.0), ChannelHit::new(0, 3, 8.0)]
        );
        assert_eq!(
            channel.propose_batch(&[query.clone(), query], 10).unwrap(),
            vec![hits.clone(), hits]
        );
        // Back behind the Retriever trait: the ids again, in order.
        let retriever = ChannelRetriever::new(catalog(), Box::new(channel));
        let ids: Vec<String> = retriever
            .retrieve(&TurnContext::from_message("q"), 10)
            .unwrap()
            .into_iter()
            .map(|h| h.track_id)
            .collect();
        assert_eq!(ids, vec!["c", "a"]);
    }

    #[test]
    fn errors_reach_the_retriever_caller_whole() {
        let query = TurnContext::from_message("q");
        // A rank error is the source of the retrieval error, not flattened into text.
        let err = ChannelRetriever::new(catalog(), Box::new(Broken))
            .retrieve(&query, 5)
            .unwrap_err();
        let music_crs_retrieval::Error::Other { context, source } = &err else {
            panic!("{err:?}");
        };
        assert!(context.contains("broken"), "{context}");
        assert!(matches!(
            source.downcast_ref::<crate::Error>(),
            Some(crate::Error::NoTrainingData(_))
        ));
        assert!(err.to_string().contains("nothing here"), "{err}");
        // A retrieval error passes through unchanged.
        let failing = RetrieverChannel::new(catalog(), Box::new(Fixed(None)));
        let err = ChannelRetriever::new(catalog(), Box::new(failing))
            .retrieve(&query, 5)
            .unwrap_err();
        assert!(
            matches!(
                err,
                music_crs_retrieval::Error::InvalidParameter { name: "fixed", .. }
            ),
            "{err:?}"
        );
    }
}
