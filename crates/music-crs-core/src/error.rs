//! The error type of the core crate.

/// Errors raised while building or checking domain values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A session's messages do not form valid turns.
    #[error("session {session_id}, turn {turn_number}: {reason}")]
    InvalidTurn {
        /// The session at fault.
        session_id: String,
        /// The turn at fault.
        turn_number: u32,
        /// What is wrong.
        reason: String,
    },
    /// A catalog holds the same track id twice.
    #[error("catalog: track id {0:?} appears more than once")]
    DuplicateTrack(String),
    /// A value is outside what the domain allows.
    #[error("invalid {field}: {reason}")]
    InvalidValue {
        /// The field or parameter at fault.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A hub repository id, revision or file name is not a hub name (it could name a folder
    /// outside the hub cache).
    #[error("invalid hub {what} {value:?}: {reason}")]
    InvalidHubName {
        /// `repository id`, `revision` or `file name`.
        what: &'static str,
        /// The value at fault.
        value: String,
        /// What a valid one looks like.
        reason: String,
    },
    /// Reading from the Hugging Face hub failed.
    #[error("{repo}{}: {failure}", file.as_deref().map(|f| format!(", file {f}")).unwrap_or_default())]
    Hub {
        /// The repository (kind, id and revision).
        repo: String,
        /// The file asked for, when one was.
        file: Option<String>,
        /// What went wrong.
        failure: crate::hub::HubFailure,
    },
}

/// `Result` with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
