//! The [`Retriever`] trait and its blanket implementations.

use std::sync::Arc;

use music_crs_core::{ScoredTrack, TurnContext};

use crate::Result;

/// Ranks catalog tracks for one turn of a conversation.
///
/// Object-safe and `Send + Sync`, so pipelines hold a `Box<dyn Retriever>` and share it across
/// threads. Results are ranked best first, hold at most `k` unique track ids, and break score
/// ties deterministically (by catalog position unless an implementation documents otherwise).
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
