//! # music-crs-retrieval
//!
//! Retrievers for conversational music recommendation behind one object-safe
//! [`Retriever`] trait.
#![warn(missing_docs)]

mod error;
mod retriever;

pub use error::{Error, Result};
pub use retriever::Retriever;
