//! # music-crs-generate
//!
//! Reply generation behind one object-safe [`Generator`] trait.
#![warn(missing_docs)]

mod error;
mod generator;

pub use error::{Error, Result};
pub use generator::Generator;
