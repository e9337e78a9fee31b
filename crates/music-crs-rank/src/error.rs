//! The error type of the rank crate.

use std::path::PathBuf;

/// Errors raised while building channels, training, saving, loading or applying a ranker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter is out of range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter at fault.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A channel configuration cannot be built (unknown embedding kind, missing resource...).
    #[error("channel {channel:?}: {reason}")]
    Channel {
        /// The channel at fault.
        channel: String,
        /// What is wrong.
        reason: String,
    },
    /// A model file cannot be read as a ranker model.
    #[error("ranker model {path}: {reason}")]
    CorruptModel {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A model does not fit the channels and features it is applied with (the message names
    /// each channel at fault and what changed).
    #[error("ranker model does not match its channels or features: {0}")]
    ModelMismatch(String),
    /// Training found nothing to learn from.
    #[error("cannot train the ranker: {0}")]
    NoTrainingData(String),
    /// Reading or writing a file failed (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A domain value is invalid (names the session and turn).
    #[error(transparent)]
    Core(#[from] music_crs_core::Error),
    /// A retrieval channel failed.
    #[error(transparent)]
    Retrieval(#[from] music_crs_retrieval::Error),
}

/// `Result` with the rank [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::InvalidParameter`].
    pub(crate) fn param(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

/// Turns a rank error of the retriever named `retriever` into the retrieval error the
/// [`music_crs_retrieval::Retriever`] trait returns: retrieval and I/O errors pass through
/// unchanged, any other is kept whole as the source of [`music_crs_retrieval::Error::Other`].
pub(crate) fn into_retrieval(error: Error, retriever: &str) -> music_crs_retrieval::Error {
    match error {
        Error::Retrieval(inner) => inner,
        Error::Io(inner) => music_crs_retrieval::Error::Io(inner),
        other => music_crs_retrieval::Error::Other {
            context: format!("retriever {retriever:?}"),
            source: Box::new(other),
        },
    }
}
