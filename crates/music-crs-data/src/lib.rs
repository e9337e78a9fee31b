//! # music-crs-data
//!
//! Loads the TalkPlayData datasets from a local directory or the Hugging Face hub.
#![warn(missing_docs)]
