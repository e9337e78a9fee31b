//! The [`Generator`] trait and its blanket implementations.

use std::sync::Arc;

use music_crs_core::GenerationRequest;

use crate::Result;
use crate::reply_check::{ReplyCheck, check_reply};

/// A reply with what [`check_reply`] found in the text the generator first wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedReply {
    /// The reply that goes out: the generator's own text, or a template reply in its place
    /// when `replaced`.
    pub text: String,
    /// What the check found in the generator's own text (before any replacement).
    pub check: ReplyCheck,
    /// True when a template reply stands in for an empty or degenerate one (the Llama
    /// generator's `on_empty` / `on_degenerate` settings).
    pub replaced: bool,
}

impl CheckedReply {
    /// `text` as it is, checked.
    pub fn kept(text: String) -> Self {
        CheckedReply {
            check: check_reply(&text),
            text,
            replaced: false,
        }
    }
}

/// Writes the natural-language reply of one turn.
///
/// Object-safe and `Send + Sync`. Generation is stateless per call: the same request and
/// generator settings give the same reply, whatever ran before, so one generator can serve
/// many threads without a lock.
pub trait Generator: Send + Sync {
    /// A short name for logs and reports (e.g. `"template"`).
    fn name(&self) -> &str;

    /// The reply for one request. The template generator's is never empty; a model's may
    /// be empty or degenerate (see [`Generator::generate_checked`]).
    fn generate(&self, request: &GenerationRequest) -> Result<String>;

    /// The reply for one request with what [`check_reply`] found in it. The default checks
    /// [`Generator::generate`]'s text; a generator that may put another reply in place of a
    /// flawed one (the Llama generator) overrides it to report the check of its own text and
    /// the replacement.
    fn generate_checked(&self, request: &GenerationRequest) -> Result<CheckedReply> {
        Ok(CheckedReply::kept(self.generate(request)?))
    }

    /// How many requests one [`Generator::generate_checked_batch`] call should take. The
    /// default, 1, means requests are best answered one by one, spread over threads; a
    /// backend that decodes several sequences together (the Llama generator's own forward
    /// pass) answers `usize::MAX`: hand it whole batches.
    fn batch_size_hint(&self) -> usize {
        1
    }

    /// Checked replies for many requests, in input order, each the reply
    /// [`Generator::generate_checked`] gives for its request alone. The default loops over
    /// it; the Llama generator decodes the batch's sequences together.
    fn generate_checked_batch(&self, requests: &[GenerationRequest]) -> Result<Vec<CheckedReply>> {
        requests
            .iter()
            .map(|request| self.generate_checked(request))
            .collect()
    }

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
            fn generate_checked(&self, request: &GenerationRequest) -> Result<CheckedReply> {
                (**self).generate_checked(request)
            }
            fn generate_batch(&self, requests: &[GenerationRequest]) -> Result<Vec<String>> {
                (**self).generate_batch(requests)
            }
            fn batch_size_hint(&self) -> usize {
                (**self).batch_size_hint()
            }
            fn generate_checked_batch(
                &self,
                requests: &[GenerationRequest],
            ) -> Result<Vec<CheckedReply>> {
                (**self).generate_checked_batch(requests)
            }
        }
    )*};
}

forward_generator!(&G, Box<G>, Arc<G>);
