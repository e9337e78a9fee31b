//! # music-crs-retrieval
//!
//! Retrievers for conversational music recommendation behind one object-safe
//! [`Retriever`] trait.
#![warn(missing_docs)]

// Owned by the BM25 work (issue 4): trait, query rendering, BM25, baselines.
mod error;
mod retriever;

// Owned by the dense work (issue 5): behind the `dense` / `bert` features.
#[cfg(feature = "dense")]
pub mod dense;

pub use error::{Error, Result};
pub use retriever::Retriever;
