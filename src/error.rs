//! The error type of the `music-crs` library.

use std::path::PathBuf;

/// Errors raised while configuring, building or running the pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration file could not be parsed (unknown key, wrong type, bad TOML).
    #[error("config {}: {message}", path.display())]
    ConfigParse {
        /// The file at fault.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("invalid setting `{key}`: {reason}")]
    InvalidSetting {
        /// The key at fault (dotted, e.g. `retriever.k`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration needs a Cargo feature this build lacks.
    #[error("{what} needs the `{feature}` feature: rebuild with `--features {feature}`")]
    FeatureDisabled {
        /// The missing feature.
        feature: &'static str,
        /// What asked for it.
        what: String,
    },
    /// Predicting one turn failed.
    #[error("session {session_id}, turn {turn_number}: {source}")]
    Turn {
        /// The session at fault.
        session_id: String,
        /// The turn at fault.
        turn_number: u32,
        /// The underlying error.
        #[source]
        source: Box<Error>,
    },
    /// A domain value is invalid.
    #[error(transparent)]
    Core(#[from] music_crs_core::Error),
    /// Loading a dataset failed.
    #[error(transparent)]
    Data(#[from] music_crs_data::Error),
    /// A retriever failed.
    #[error(transparent)]
    Retrieval(#[from] music_crs_retrieval::Error),
    /// A generator failed.
    #[error(transparent)]
    Generate(#[from] music_crs_generate::Error),
    /// A `ranked` config names a model file that does not exist yet.
    #[error(
        "ranker model {} does not exist: train it first with `music-crs train-ranker --config <this config>`",
        path.display()
    )]
    RankerModelMissing {
        /// The model file the config names (`retriever.model`).
        path: PathBuf,
    },
    /// Building channels, training or applying the ranker failed.
    #[error(transparent)]
    Rank(#[from] music_crs_rank::Error),
    /// Scoring or validating predictions failed.
    #[error(transparent)]
    Metrics(#[from] music_crs_metrics::Error),
    /// Reading or writing a file failed (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A JSON file could not be written or read.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file at fault.
        path: PathBuf,
        /// The serializer's error.
        source: serde_json::Error,
    },
}

/// `Result` with the library [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
