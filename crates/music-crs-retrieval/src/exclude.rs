//! A wrapper that never recommends a track already played in the conversation.

use std::collections::HashSet;

use music_crs_core::{ScoredTrack, TurnContext};

use crate::{Result, Retriever};

/// Drops the tracks of [`TurnContext::played_track_ids`] from another retriever's results,
/// asking it for as many extra tracks as were played so that `k` still come back (when the
/// inner retriever has that many).
#[derive(Debug, Clone)]
pub struct ExcludePlayed<R> {
    inner: R,
    name: String,
}

impl<R: Retriever> ExcludePlayed<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        let name = format!("{}+exclude_played", inner.name());
        ExcludePlayed { inner, name }
    }

    /// The wrapped retriever.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Unwraps.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

fn without_played(query: &TurnContext, hits: Vec<ScoredTrack>, k: usize) -> Vec<ScoredTrack> {
    let played: HashSet<&str> = query.played_track_ids.iter().map(String::as_str).collect();
    hits.into_iter()
        .filter(|hit| !played.contains(hit.track_id.as_str()))
        .take(k)
        .collect()
}

impl<R: Retriever> Retriever for ExcludePlayed<R> {
    fn name(&self) -> &str {
        &self.name
    }

    fn retrieve(&self, query: &TurnContext, k: usize) -> Result<Vec<ScoredTrack>> {
        let hits = self
            .inner
            .retrieve(query, k + query.played_track_ids.len())?;
        Ok(without_played(query, hits, k))
    }

    fn retrieve_batch(&self, queries: &[TurnContext], k: usize) -> Result<Vec<Vec<ScoredTrack>>> {
        // One inner batch call (keeps the inner retriever's parallelism), over-fetching by the
        // longest played list of the batch.
        let extra = queries
            .iter()
            .map(|q| q.played_track_ids.len())
            .max()
            .unwrap_or(0);
        let batches = self.inner.retrieve_batch(queries, k + extra)?;
        Ok(queries
            .iter()
            .zip(batches)
            .map(|(query, hits)| without_played(query, hits, k))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baselines::{PopularityParams, PopularityRetriever};
    use music_crs_core::{Message, Role, Session};

    fn popular() -> PopularityRetriever {
        let session = Session {
            session_id: "train".into(),
            messages: (1..=6u32)
                .flat_map(|i| {
                    // t1 played 6 times, t2 5 times, ... so the ranking is t1..t6.
                    (i..=6).map(move |_| Message::new(1, Role::Music, format!("t{i}")))
                })
                .collect(),
            ..Session::default()
        };
        PopularityRetriever::from_sessions(&[session], PopularityParams::default()).unwrap()
    }

    #[test]
    fn played_tracks_are_dropped_and_k_kept() {
        let retriever = ExcludePlayed::new(popular());
        assert_eq!(retriever.name(), "popularity+exclude_played");
        let query = TurnContext {
            played_track_ids: vec!["t1".into(), "t3".into()],
            ..TurnContext::from_message("more")
        };
        let ids: Vec<String> = retriever
            .retrieve(&query, 3)
            .unwrap()
            .into_iter()
            .map(|h| h.track_id)
            .collect();
        assert_eq!(ids, ["t2", "t4", "t5"]);
        let batch = retriever
            .retrieve_batch(&[query.clone(), TurnContext::from_message("x")], 3)
            .unwrap();
        assert_eq!(batch[0], retriever.retrieve(&query, 3).unwrap());
        assert_eq!(batch[1].len(), 3);
        assert_eq!(batch[1][0].track_id, "t1");
    }
}
