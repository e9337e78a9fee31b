//! The error type of the demo crate.

use std::path::PathBuf;

/// Errors raised while generating or writing a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory at fault.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A parquet file cannot be written (a column cannot be built or the encoder failed).
    #[error("{}: cannot write parquet: {message}", path.display())]
    ParquetWrite {
        /// The file being written.
        path: PathBuf,
        /// The writer's message.
        message: String,
    },
    /// A row holds a value its column does not allow (e.g. a null id).
    #[error("{}: row {row}, column {column:?}: {reason}", path.display())]
    InvalidRow {
        /// The file at fault.
        path: PathBuf,
        /// The 0-based row within the file.
        row: usize,
        /// The column at fault.
        column: String,
        /// What is wrong.
        reason: String,
    },
    /// A parameter is outside what this crate allows.
    #[error("invalid {field}: {reason}")]
    InvalidParam {
        /// The parameter at fault.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A domain check of the core crate failed.
    #[error(transparent)]
    Core(#[from] music_crs_core::Error),
}

impl Error {
    /// An I/O error naming its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with the demo crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
