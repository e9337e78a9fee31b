//! The error type of the metrics crate.

use std::path::PathBuf;

use crate::ValidationReport;

/// Errors raised while reading ground truth or predictions, or scoring them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying error (in the message, not repeated as a `source()`).
        error: std::io::Error,
    },
    /// A JSON file is empty.
    #[error("{source_name}: the file is empty (expected a JSON array)")]
    EmptyJson {
        /// The file (or in-memory source) at fault.
        source_name: String,
    },
    /// A JSON file is not valid JSON (truncated, or a syntax error).
    #[error("{source_name}: {kind} JSON at line {line}, column {column}: {message}")]
    Json {
        /// The file (or in-memory source) at fault.
        source_name: String,
        /// "truncated" when the text ends early, else "invalid".
        kind: &'static str,
        /// The 1-based line serde_json stopped at.
        line: usize,
        /// The 1-based column serde_json stopped at.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// A JSON file holds something other than an array of rows.
    #[error("{source_name}: expected a JSON array of rows, found {found}")]
    NotAnArray {
        /// The file (or in-memory source) at fault.
        source_name: String,
        /// The JSON type found instead.
        found: &'static str,
    },
    /// Ground-truth rows are malformed; every problem is listed.
    #[error("{source_name}: {} ground-truth problem(s):\n  {}", problems.len(), problems.join("\n  "))]
    InvalidGroundTruth {
        /// The file (or in-memory source) at fault.
        source_name: String,
        /// One line per problem, each naming its row, session and turn.
        problems: Vec<String>,
    },
    /// A judge-score file is malformed or misses turns; every problem is listed.
    #[error("{source_name}: {} judge-score problem(s):\n  {}", problems.len(), problems.join("\n  "))]
    InvalidJudgeScores {
        /// The file (or in-memory source) at fault.
        source_name: String,
        /// One line per problem, each naming its row, or session and turn.
        problems: Vec<String>,
    },
    /// The predictions cannot be scored (missing turns, or duplicate ids in a list).
    #[error("predictions cannot be scored:\n{0}")]
    InvalidPredictions(Box<ValidationReport>),
    /// A parameter is outside what the metrics allow.
    #[error("invalid {field}: {reason}")]
    InvalidParams {
        /// The parameter at fault.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// `Result` with the metrics [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error naming `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }

    /// A JSON parse error of `source_name`, with the line and column serde_json reports.
    pub(crate) fn json(source_name: &str, err: &serde_json::Error) -> Self {
        let line = err.line();
        let column = err.column();
        let full = err.to_string();
        // serde_json appends the location; it is already in our own fields.
        let message = full
            .strip_suffix(&format!(" at line {line} column {column}"))
            .unwrap_or(&full)
            .to_owned();
        let kind = if err.is_eof() { "truncated" } else { "invalid" };
        Error::Json {
            source_name: source_name.to_owned(),
            kind,
            line,
            column,
            message,
        }
    }
}

/// Parses `text` as a JSON array, with errors naming `source_name`.
pub(crate) fn parse_json_array(text: &str, source_name: &str) -> Result<Vec<serde_json::Value>> {
    if text.trim().is_empty() {
        return Err(Error::EmptyJson {
            source_name: source_name.to_owned(),
        });
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|err| Error::json(source_name, &err))?;
    match value {
        serde_json::Value::Array(rows) => Ok(rows),
        other => Err(Error::NotAnArray {
            source_name: source_name.to_owned(),
            found: json_type_name(&other),
        }),
    }
}

/// Reads a whole file, with errors naming the path.
pub(crate) fn read_text(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|err| Error::io(path, err))
}

/// The JSON type of a value, as a user would name it.
pub(crate) fn json_type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
