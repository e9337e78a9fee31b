//! # music-crs-metrics
//!
//! The official Music-CRS challenge metrics and prediction-file validation.
#![warn(missing_docs)]
