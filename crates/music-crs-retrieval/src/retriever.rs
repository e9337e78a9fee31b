//! The [`Retriever`] trait and its blanket implementations.

use std::sync::Arc;

use music_crs_core::{ScoredTrack, TurnContext};

use crate::Result;

/// Ranks catalog tracks for one turn of a conversation.
///
/// The query is the whole [`TurnContext`] (history, current message, profile, goal, played
/// tracks); text retrievers turn it into text with a [`crate::QueryRenderer`].
///
/// Object-safe and `Send + Sync`, so pipelines hold a `Box<dyn Retriever>` and share it across
/// threads. Results are `(track id, score)` pairs ranked best first, hold at most `k` unique
/// track ids (fewer when fewer tracks match), and break score ties deterministically (by
/// catalog or index position unless an implementation documents otherwise). `&T`, `Box<T>`
/// and `Arc<T>` of a retriever are retrievers too.
pub trait Retriever: Send + Sync {
    /// A short name for logs and reports (e.g. `"bm25"`).
    fn name(&self) -> &str;

    /// The top `k` tracks for one turn.
    fn retrieve(&self, query: &TurnContext, k: usize) -> Result<Vec<ScoredTrack>>;

    /// The top `k` tracks for each turn, in input order. The default loops over
    /// [`Retriever::retrieve`]; fast implementations override it (e.g. to run in parallel).
    fn retrieve_batch(&self, queries: &[TurnContext], k: usize) -> Result<Vec<Vec<ScoredTrack>>> {
        queries
            .iter()
            .map(|query| self.retrieve(query, k))
            .collect()
    }
}

macro_rules! forward_retriever {
    ($($ty:ty),*) => {$(
        impl<R: Retriever + ?Sized> Retriever for $ty {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn retrieve(&self, query: &TurnContext, k: usize) -> Result<Vec<ScoredTrack>> {
                (**self).retrieve(query, k)
            }
            fn retrieve_batch(
                &self,
                queries: &[TurnContext],
                k: usize,
            ) -> Result<Vec<Vec<ScoredTrack>>> {
                (**self).retrieve_batch(queries, k)
            }
        }
    )*};
}

forward_retriever!(&R, Box<R>, Arc<R>);

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl Retriever for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn retrieve(&self, _query: &TurnContext, k: usize) -> Result<Vec<ScoredTrack>> {
            Ok(["a", "b", "c"]
                .iter()
                .take(k)
                .map(|id| ScoredTrack::new(*id, 1.0))
                .collect())
        }
    }

    fn assert_send_sync<T: Send + Sync + ?Sized>() {}

    #[test]
    fn trait_objects_are_send_sync_and_forwarded() {
        assert_send_sync::<dyn Retriever>();
        assert_send_sync::<Box<dyn Retriever>>();
        assert_send_sync::<Arc<dyn Retriever>>();
        let boxed: Box<dyn Retriever> = Box::new(Fixed);
        let shared: Arc<dyn Retriever> = Arc::new(Fixed);
        let by_ref: &dyn Retriever = &Fixed;
        let query = TurnContext::from_message("hi");
        for retriever in [&boxed as &dyn Retriever, &shared, &by_ref, &&Fixed] {
            assert_eq!(retriever.name(), "fixed");
            assert_eq!(retriever.retrieve(&query, 2).unwrap().len(), 2);
            let batch = retriever
                .retrieve_batch(&[query.clone(), query.clone()], 1)
                .unwrap();
            assert_eq!(batch.len(), 2);
            assert_eq!(batch[0][0].track_id, "a");
        }
        // A trait object can be moved to another thread.
        let handle = std::thread::spawn(move || boxed.retrieve(&TurnContext::default(), 3));
        assert_eq!(handle.join().unwrap().unwrap().len(), 3);
    }
}
