//! The error type of the data crate.
//!
//! Every variant names what is at fault: the file, the column, the row, the session and turn,
//! or the hub repository. Polars and hf-hub errors are kept as text so neither library's types
//! appear in this crate's public API.

use std::path::PathBuf;

/// Errors raised while locating, reading or checking dataset files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory at fault.
        path: PathBuf,
        /// The underlying error (in the message, not repeated as a `source()`).
        error: std::io::Error,
    },
    /// A local path does not exist.
    #[error("{}: not found; expected {expected}", path.display())]
    NotFound {
        /// The missing path.
        path: PathBuf,
        /// The layout that was expected there.
        expected: String,
    },
    /// A source holds no parquet shard for the requested split.
    #[error("{source_name}: no parquet shard for split {split:?}; expected {expected}{found}")]
    NoShards {
        /// The local directory or hub dataset id.
        source_name: String,
        /// The split asked for.
        split: String,
        /// The layout that was expected.
        expected: String,
        /// What was found instead (already formatted, may be empty).
        found: String,
    },
    /// A source string or split name is malformed.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// What the string names (`source`, `split`).
        what: &'static str,
        /// The string at fault.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A parquet file cannot be read (corrupt, truncated, not parquet).
    #[error("{}: cannot read parquet: {message}", path.display())]
    Parquet {
        /// The file at fault.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// A required column is absent.
    #[error("{}: missing required column {column:?} (columns present: {present})", path.display())]
    MissingColumn {
        /// The file at fault.
        path: PathBuf,
        /// The column expected.
        column: String,
        /// The columns the file has, comma-separated.
        present: String,
    },
    /// A column has a type this crate cannot read as the field it holds.
    #[error("{}: column {column:?} has type {found}, expected {expected}", path.display())]
    ColumnType {
        /// The file at fault.
        path: PathBuf,
        /// The column at fault (`parent.child` inside structs).
        column: String,
        /// The type found.
        found: String,
        /// The type expected.
        expected: String,
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
    /// A conversation does not form valid turns.
    #[error("{}: row {row}, session {session_id}, turn {turn_number}: {reason}", path.display())]
    InvalidSession {
        /// The file at fault.
        path: PathBuf,
        /// The 0-based row within the file.
        row: usize,
        /// The session at fault.
        session_id: String,
        /// The turn at fault (0 when the whole conversation is at fault).
        turn_number: u32,
        /// What is wrong.
        reason: String,
    },
    /// The same id appears twice where ids must be unique.
    #[error("{what} id {id:?} appears more than once (again in {})", path.display())]
    DuplicateId {
        /// What the id names (`track`, `user`, `session`).
        what: &'static str,
        /// The repeated id.
        id: String,
        /// The file of the second occurrence.
        path: PathBuf,
    },
    /// A hub dataset id was given but the crate was built without the `hub` feature.
    #[error(
        "{repo_id:?} is a Hugging Face hub dataset id, but music-crs-data was built without its \
         `hub` feature: enable it, or pass a local directory (write `./{repo_id}` for a relative one)"
    )]
    HubDisabled {
        /// The hub dataset id.
        repo_id: String,
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
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }
}

/// `Result` with the data crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
