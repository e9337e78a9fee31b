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
    #[error("{what} needs the `{feature}` feature, which this build lacks")]
    FeatureDisabled {
        /// The missing feature.
        feature: &'static str,
        /// What asked for it.
        what: String,
    },
    /// Predicting one turn failed. The message names the session and turn once, even when
    /// the underlying error names them too.
    #[error("{}", turn_message(session_id, *turn_number, error))]
    Turn {
        /// The session at fault.
        session_id: String,
        /// The turn at fault.
        turn_number: u32,
        /// The underlying error (in the message, not repeated as a `source()`).
        error: Box<Error>,
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
    /// A `ranked` config's model file was trained with other channels (names, depths, a
    /// channel's kind or parameters) or another feature set than the config now gives.
    #[error(
        "ranker model {} (`retriever.model`) no longer fits this config: {reason}; retrain it \
         with `music-crs train-ranker --config <this config>`",
        path.display()
    )]
    RankerModelStale {
        /// The model file the config names (`retriever.model`).
        path: PathBuf,
        /// What differs, naming each channel at fault.
        reason: String,
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
    /// A run checkpoint has a line that is neither whole JSON of the expected kind nor the
    /// half-written last line of a killed run.
    #[error("checkpoint {}, line {line}: {reason}", path.display())]
    CheckpointCorrupt {
        /// The checkpoint file.
        path: PathBuf,
        /// The line at fault (1-based; the header is line 1).
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A run checkpoint was written by another run (another config, split, data or model).
    #[error(
        "checkpoint {} belongs to another run; differs: {}. Delete it, or run without \
         --resume to start over (which replaces it)",
        path.display(),
        differences.join("; ")
    )]
    CheckpointMismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// What differs, each naming the setting or input.
        differences: Vec<String>,
    },
    /// A JSON file could not be written or read.
    #[error("{}: {error}", path.display())]
    Json {
        /// The file at fault.
        path: PathBuf,
        /// The serializer's error (in the message, not repeated as a `source()`).
        error: serde_json::Error,
    },
}

impl Error {
    /// The Cargo feature of `music-crs` this build lacks, when that is why the error happened
    /// (a config asks for BERT retrieval without `bert`, Llama replies without `llama`, a hub id
    /// without `hub`), so a front end can name the feature and the command that rebuilds with it.
    pub fn missing_feature(&self) -> Option<&'static str> {
        match self {
            Error::FeatureDisabled { feature, .. } => Some(feature),
            Error::Generate(music_crs_generate::Error::FeatureDisabled { feature, .. }) => {
                Some(feature)
            }
            Error::Retrieval(music_crs_retrieval::Error::FeatureDisabled { feature, .. }) => {
                Some(feature)
            }
            Error::Data(music_crs_data::Error::HubDisabled { .. }) => Some("hub"),
            Error::Turn { error, .. } => error.missing_feature(),
            _ => None,
        }
    }
}

/// "session s, turn t: cause", without repeating the place when the cause starts with it.
fn turn_message(session_id: &str, turn_number: u32, error: &Error) -> String {
    let place = format!("session {session_id}, turn {turn_number}");
    let cause = error.to_string();
    if cause.starts_with(&place) {
        cause
    } else {
        format!("{place}: {cause}")
    }
}

/// `Result` with the library [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_feature_is_found_through_wrappers() {
        let bert = Error::FeatureDisabled {
            feature: "bert",
            what: "retriever kind \"bert\"".into(),
        };
        assert_eq!(bert.missing_feature(), Some("bert"));
        let llama = Error::Generate(music_crs_generate::Error::FeatureDisabled {
            feature: "llama",
            what: "the Llama generator".into(),
        });
        let in_turn = Error::Turn {
            session_id: "s".into(),
            turn_number: 1,
            error: Box::new(llama),
        };
        assert_eq!(in_turn.missing_feature(), Some("llama"));
        let hub = Error::Data(music_crs_data::Error::HubDisabled {
            repo_id: "talkpl-ai/x".into(),
        });
        assert_eq!(hub.missing_feature(), Some("hub"));
        let gpu = Error::Retrieval(music_crs_retrieval::Error::FeatureDisabled {
            feature: "cuda",
            what: "device cuda:0".into(),
        });
        assert_eq!(gpu.missing_feature(), Some("cuda"));
        let other = Error::InvalidSetting {
            key: "retriever.k".into(),
            reason: "zero".into(),
        };
        assert_eq!(other.missing_feature(), None);
    }
}
