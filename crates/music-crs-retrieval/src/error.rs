//! The error type of the retrieval crate.

/// Errors raised by retrievers, indexes and query renderers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter is out of range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter at fault.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing a file failed (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    // --- variants of the dense work (issue 5) go below this line ---
}

/// `Result` with the retrieval [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
