//! The [`Generator`] trait and its blanket implementations.

use std::sync::Arc;

use music_crs_core::GenerationRequest;

use crate::Result;

/// Writes the natural-language reply of one turn.
///
/// Object-safe and `Send + Sync`. Generation is stateless per call: the same request and
/// generator settings give the same reply, whatever ran before, so one generator can serve
/// many threads without a lock.
pub trait Generator: Send + Sync {
    /// A short name for logs and reports (e.g. `"template"`).
    fn name(&self) -> &str;

    /// The reply for one request. Never empty.
    fn generate(&self, request: &GenerationRequest) -> Result<String>;

    /// Replies for many requests, in input order. The default loops over
    /// [`Generator::generate`]; backends override it where batching pays.
    fn generate_batch(&self, requests: &[GenerationRequest]) -> Result<Vec<String>> {
        requests
            .iter()
            .map(|request| self.generate(request))
            .collect()
    }
}

macro_rules! forward_generator {
    ($($ty:ty),*) => {$(
        impl<G: Generator + ?Sized> Generator for $ty {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn generate(&self, request: &GenerationRequest) -> Result<String> {
                (**self).generate(request)
            }
            fn generate_batch(&self, requests: &[GenerationRequest]) -> Result<Vec<String>> {
                (**self).generate_batch(requests)
            }
        }
    )*};
}

forward_generator!(&G, Box<G>, Arc<G>);
