//! The error type of the generation crate.

use std::path::PathBuf;

/// Errors raised by generators.
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
    /// Reading a file failed (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A model file is missing.
    #[error("{what} not found: {} (looked for it in {})", path.display(), looked_in.display())]
    MissingFile {
        /// What the file is (e.g. `"tokenizer.json"`, `"GGUF model file"`).
        what: String,
        /// The path tried.
        path: PathBuf,
        /// The directory or source searched.
        looked_in: PathBuf,
    },
    /// A model file exists but cannot be used (bad JSON, bad weights, unknown layout).
    #[error("{}: {reason}", path.display())]
    BadModelFile {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A model file declares a value that is missing, out of range or inconsistent with the
    /// rest of the file (checked before candle reads it).
    #[error("{}: {field}: {reason}", path.display())]
    ModelField {
        /// The file at fault.
        path: PathBuf,
        /// The field as the file names it (e.g. `llama.attention.head_count`,
        /// `num_hidden_layers`, `tensor blk.0.attn_q.weight`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A model's chat template cannot be compiled, or refuses to render a chat.
    #[error("{}: chat template ({key}){}: {reason}", path.display(), at_line(*line))]
    ChatTemplate {
        /// The model file the template came from (a GGUF file, `tokenizer_config.json`).
        path: PathBuf,
        /// Where in that file (`tokenizer.chat_template`, `chat_template`).
        key: String,
        /// The template's line, when known.
        line: Option<usize>,
        /// What went wrong (a syntax error, an exception the template raised).
        reason: String,
    },
    /// The model or its tensors failed while running (a wrapped candle error).
    #[error("model error while {context}: {message}")]
    Model {
        /// What was being done.
        context: String,
        /// The underlying message.
        message: String,
    },
    /// Encoding or decoding text failed (a wrapped tokenizers error).
    #[error("tokenizer error while {context}: {message}")]
    Tokenizer {
        /// What was being done.
        context: String,
        /// The underlying message.
        message: String,
    },
    /// Downloading from the Hugging Face hub failed, or a hub id or revision is invalid.
    #[error(transparent)]
    Hub(#[from] music_crs_core::Error),
    /// The prompt does not fit the model's context even without history.
    #[error(
        "session {session_id}, turn {turn_number}: the prompt needs {tokens} tokens, more than the {limit} the model allows"
    )]
    PromptTooLong {
        /// The session.
        session_id: String,
        /// The turn.
        turn_number: u32,
        /// Prompt tokens plus room for the reply.
        tokens: usize,
        /// The context limit.
        limit: usize,
    },
    /// The device the settings name cannot be opened (no such GPU, no driver).
    #[error("cannot open device {device}: {reason}")]
    Device {
        /// The device, as written in the settings (`cuda:0`).
        device: String,
        /// Candle's reason.
        reason: String,
    },
    /// The configuration asks for something this build was compiled without.
    #[error("{what} needs the `{feature}` feature of music-crs-generate")]
    FeatureDisabled {
        /// The cargo feature to enable.
        feature: &'static str,
        /// What needed it.
        what: String,
    },
}

fn at_line(line: Option<usize>) -> String {
    line.map(|n| format!(", line {n}")).unwrap_or_default()
}

/// `Result` with the generation [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
