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
    /// A key of a config table is out of range (checked before any data is read).
    #[error("`{key}`: {reason}")]
    InvalidConfig {
        /// The key at fault, relative to its table (e.g. `query.current_message_repeats`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing a file failed (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Downloading from the Hugging Face hub failed, or a hub id or revision is invalid.
    #[error(transparent)]
    Hub(#[from] music_crs_core::Error),
    /// Two documents given to an index share an id.
    #[error("document id {0:?} appears more than once")]
    DuplicateDocument(String),
    /// A music message names a track the catalog lacks (with [`crate::MissingTrack::Error`]).
    #[error("session {session_id}, turn {turn_number}: track {track_id:?} is not in the catalog")]
    UnknownTrack {
        /// The session at fault.
        session_id: String,
        /// The turn of the music message.
        turn_number: u32,
        /// The unknown track id.
        track_id: String,
    },
    /// A vector or matrix has the wrong number of dimensions.
    #[error("{what}: expected {expected} dimensions, found {found}")]
    DimensionMismatch {
        /// The vector at fault (e.g. a track id or "query 3").
        what: String,
        /// The dimensions the index or encoder works with.
        expected: usize,
        /// The dimensions given.
        found: usize,
    },
    /// A vector holds NaN or infinite values.
    #[error("{what}: the vector holds non-finite values")]
    NonFiniteVector {
        /// The vector at fault.
        what: String,
    },
    /// A saved index or embedding cache file is truncated, corrupt or of another format.
    #[error("{}: {reason}", path.display())]
    CorruptFile {
        /// The file at fault.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A sentence-encoder model could not be loaded or run.
    #[error("encoder model {model}: {reason}")]
    Model {
        /// The model directory or hub id.
        model: String,
        /// What went wrong (the backend's message).
        reason: String,
    },
    /// The device the settings name cannot be opened (no such GPU, no driver).
    #[error("cannot open device {device}: {reason}")]
    Device {
        /// The device, as written in the settings (`cuda:0`).
        device: String,
        /// Candle's reason.
        reason: String,
    },
    /// The settings ask for something this build was compiled without.
    #[error("{what} needs the `{feature}` feature of music-crs-retrieval")]
    FeatureDisabled {
        /// The cargo feature to enable.
        feature: &'static str,
        /// What needed it.
        what: String,
    },
    /// A retriever built on this crate (a ranker, a fusion of channels...) failed with its own
    /// error, kept whole as the source.
    #[error("{context}: {source}")]
    Other {
        /// Where it failed (e.g. the retriever's name).
        context: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// An [`Error::InvalidConfig`].
    pub(crate) fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// `Result` with the retrieval [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
