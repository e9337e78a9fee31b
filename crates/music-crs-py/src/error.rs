//! The error type of the bindings and its mapping to Python exceptions.

use pyo3::PyErr;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};

/// Errors of the bindings; each becomes a Python exception carrying the same message the
/// CLI prints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or scoring metrics inputs failed.
    #[error(transparent)]
    Metrics(#[from] music_crs_metrics::Error),
    /// Indexing, searching, saving or loading BM25 failed.
    #[error(transparent)]
    Retrieval(#[from] music_crs_retrieval::Error),
    /// A catalog could not be built (e.g. a repeated track id).
    #[error(transparent)]
    Core(#[from] music_crs_core::Error),
    /// A Python argument has the wrong shape; `place` names the argument, row and field.
    #[error("{place}: {reason}")]
    Input {
        /// Where: argument, row, field.
        place: String,
        /// What is wrong.
        reason: String,
    },
    /// Retrieval on a model that has no index yet.
    #[error("the BM25 model has no index: call index(corpus) or BM25.load(dir) first")]
    NotIndexed,
    /// A Rust panic, caught at the boundary.
    #[error("internal error (Rust panic): {0}")]
    Panic(String),
}

/// Results of the bindings.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::Input`].
    pub(crate) fn input(place: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Input {
            place: place.into(),
            reason: reason.into(),
        }
    }

    /// The I/O error behind this one, if it is a failed read or write.
    fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            Error::Metrics(music_crs_metrics::Error::Io { error, .. }) => Some(error.kind()),
            Error::Retrieval(music_crs_retrieval::Error::Io(source)) => Some(source.kind()),
            _ => None,
        }
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        let message = err.to_string();
        match (&err, err.io_kind()) {
            (_, Some(std::io::ErrorKind::NotFound)) => PyFileNotFoundError::new_err(message),
            (_, Some(_)) => PyOSError::new_err(message),
            (Error::Panic(_), None) => PyRuntimeError::new_err(message),
            _ => PyValueError::new_err(message),
        }
    }
}
