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
}

/// `Result` with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
