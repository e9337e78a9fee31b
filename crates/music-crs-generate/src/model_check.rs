//! Checks of what a model file declares, made before candle sees it.
//!
//! candle trusts the hyperparameters of a model file: a GGUF head count of 0 divides by zero,
//! a block count of 2^32 - 1 reserves terabytes, a `config.json` with a billion layers or
//! four billion positions runs out of memory before anything is checked. So every field the
//! chat-model backend hands to candle is read here first, bounded, cross-checked (heads
//! against dimensions, tensor shapes against the hyperparameters, tensor bytes against the
//! file length) and a bad one is an [`Error::ModelField`] naming the file and the field.
//!
//! [`GgufHeader`] reads a GGUF file's metadata and tensor table with every length checked
//! against the bytes that remain (nothing is allocated from an unchecked count), and
//! [`GgufHeader::model_shape`] checks it as candle's quantized model of its architecture
//! ([`Architecture`]: `general.architecture`, any other being refused with the supported
//! list) will read it; [`GgufHeader::llama_shape`] accepts Llama files only.
//! [`LlamaShape::check`] is shared with the safetensors path, whose `config.json` names the
//! same quantities differently. Plain Rust without candle, so it builds (and is fuzzed)
//! without the `llama` feature.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Most transformer blocks a model may declare (the largest open models have ~130).
pub const MAX_LAYERS: usize = 1024;
/// Most attention heads.
pub const MAX_HEADS: usize = 1024;
/// Widest hidden state (the largest open models use 16,384).
pub const MAX_HIDDEN: usize = 65_536;
/// Widest feed-forward layer.
pub const MAX_INTERMEDIATE: usize = 1 << 20;
/// Largest vocabulary (the largest in use have ~256,000 tokens).
pub const MAX_VOCAB: usize = 1 << 22;
/// Longest trained context a model may declare (16M positions; only what a call can use is
/// ever precomputed).
pub const MAX_CONTEXT: usize = 1 << 24;
/// Most experts of a mixture-of-experts model.
pub const MAX_EXPERTS: usize = 256;

/// candle's caps on GGUF strings and arrays (it refuses longer ones).
const MAX_GGUF_STRING: u64 = 1 << 30;
const MAX_GGUF_ARRAY: u64 = 1 << 30;
/// candle's cap on nested metadata arrays.
const MAX_GGUF_DEPTH: usize = 64;
/// candle's (and ggml's) most tensor dimensions.
const MAX_TENSOR_DIMS: u32 = 4;
/// Alignment of the tensor data when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;
/// Metadata strings longer than this are skipped (only their length is kept): the checks
/// read short strings such as `general.architecture`, never a vocabulary or a template.
const KEPT_STRING: u64 = 4096;

fn field_error(path: &Path, field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::ModelField {
        path: path.to_path_buf(),
        field: field.into(),
        reason: reason.into(),
    }
}

fn file_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadModelFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// How a model format names the hyperparameters (for error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldNames {
    /// Transformer blocks.
    pub layers: &'static str,
    /// Hidden size.
    pub hidden: &'static str,
    /// Feed-forward size.
    pub intermediate: &'static str,
    /// Attention heads.
    pub heads: &'static str,
    /// Key-value heads.
    pub kv_heads: &'static str,
    /// Vocabulary size.
    pub vocab: &'static str,
    /// Trained context length.
    pub context: &'static str,
    /// RoPE base frequency.
    pub rope_theta: &'static str,
    /// RMS norm epsilon.
    pub norm_eps: &'static str,
}

/// The metadata names of one GGUF architecture (`<arch>.block_count`, ...).
macro_rules! gguf_fields {
    ($arch:literal) => {
        FieldNames {
            layers: concat!($arch, ".block_count"),
            hidden: concat!($arch, ".embedding_length"),
            intermediate: concat!($arch, ".feed_forward_length"),
            heads: concat!($arch, ".attention.head_count"),
            kv_heads: concat!($arch, ".attention.head_count_kv"),
            vocab: "token_embd.weight",
            context: concat!($arch, ".context_length"),
            rope_theta: concat!($arch, ".rope.freq_base"),
            norm_eps: concat!($arch, ".attention.layer_norm_rms_epsilon"),
        }
    };
}

/// The names of a GGUF file's `llama.*` metadata.
pub const GGUF_FIELDS: FieldNames = gguf_fields!("llama");
const QWEN2_FIELDS: FieldNames = gguf_fields!("qwen2");
const QWEN3_FIELDS: FieldNames = gguf_fields!("qwen3");
const GEMMA3_FIELDS: FieldNames = gguf_fields!("gemma3");
const PHI3_FIELDS: FieldNames = gguf_fields!("phi3");

/// A model architecture the GGUF loader runs, by its `general.architecture` name, each
/// through candle-transformers' quantized model of that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Architecture {
    /// `llama`: Llama 2 / 3, SmolLM2, TinyLlama and other Llama-shaped files
    /// (`quantized_llama`).
    Llama,
    /// `qwen2`: Qwen2 and Qwen2.5 (`quantized_qwen2`).
    Qwen2,
    /// `qwen3`: dense Qwen3 models (`quantized_qwen3`).
    Qwen3,
    /// `gemma3`: Gemma 3 text models (`quantized_gemma3`).
    Gemma3,
    /// `phi3`: Phi-3 and Phi-3.5 mini (`quantized_phi3`).
    Phi3,
}

impl Architecture {
    /// Every supported architecture.
    pub const ALL: [Architecture; 5] = [
        Architecture::Llama,
        Architecture::Qwen2,
        Architecture::Qwen3,
        Architecture::Gemma3,
        Architecture::Phi3,
    ];

    /// The `general.architecture` name.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Qwen3 => "qwen3",
            Architecture::Gemma3 => "gemma3",
            Architecture::Phi3 => "phi3",
        }
    }

    /// The architecture of a `general.architecture` name, if supported.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The supported names, comma-separated (for messages).
    pub fn supported_list() -> String {
        Self::ALL.map(Architecture::name).join(", ")
    }

    /// The names of this architecture's GGUF metadata.
    pub fn gguf_fields(self) -> &'static FieldNames {
        match self {
            Architecture::Llama => &GGUF_FIELDS,
            Architecture::Qwen2 => &QWEN2_FIELDS,
            Architecture::Qwen3 => &QWEN3_FIELDS,
            Architecture::Gemma3 => &GEMMA3_FIELDS,
            Architecture::Phi3 => &PHI3_FIELDS,
        }
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The names of a Hugging Face Llama `config.json`.
pub const CONFIG_JSON_FIELDS: FieldNames = FieldNames {
    layers: "num_hidden_layers",
    hidden: "hidden_size",
    intermediate: "intermediate_size",
    heads: "num_attention_heads",
    kv_heads: "num_key_value_heads",
    vocab: "vocab_size",
    context: "max_position_embeddings",
    rope_theta: "rope_theta",
    norm_eps: "rms_norm_eps",
};

/// The hyperparameters of a Llama model, as its file declares them.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaShape {
    /// Transformer blocks.
    pub layers: usize,
    /// Hidden size.
    pub hidden: usize,
    /// Feed-forward size.
    pub intermediate: usize,
    /// Attention heads.
    pub heads: usize,
    /// Key-value heads (grouped-query attention).
    pub kv_heads: usize,
    /// Vocabulary size (embedding rows).
    pub vocab: usize,
    /// Trained context length, when the file gives one.
    pub context: Option<usize>,
    /// RoPE base frequency.
    pub rope_theta: f64,
    /// RMS norm epsilon.
    pub norm_eps: f64,
}

/// The hyperparameters of a GGUF model of any supported architecture, as checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelShape {
    /// The architecture.
    pub architecture: Architecture,
    /// Transformer blocks.
    pub layers: usize,
    /// Hidden size (embedding width).
    pub hidden: usize,
    /// Feed-forward size.
    pub intermediate: usize,
    /// Attention heads.
    pub heads: usize,
    /// Key-value heads (grouped-query attention).
    pub kv_heads: usize,
    /// The size of one attention head (declared by Qwen3 and Gemma 3, the hidden size over
    /// the heads otherwise).
    pub head_dim: usize,
    /// Vocabulary size (embedding rows).
    pub vocab: usize,
    /// Trained context length, when the file gives one.
    pub context: Option<usize>,
    /// RoPE base frequency, as candle will use it.
    pub rope_theta: f64,
    /// RMS norm epsilon.
    pub norm_eps: f64,
}

/// `value` of `field` within `1..=max`.
fn check_count(path: &Path, field: &str, value: usize, max: usize) -> Result<()> {
    if value == 0 {
        return Err(field_error(path, field, "is 0, must be at least 1"));
    }
    if value > max {
        return Err(field_error(
            path,
            field,
            format!("{value} is larger than the supported {max}"),
        ));
    }
    Ok(())
}

impl LlamaShape {
    /// The size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads.max(1)
    }

    /// Checks every value and their relations; the error names `path` and the field as
    /// `names` spells it.
    pub fn check(&self, path: &Path, names: &FieldNames) -> Result<()> {
        self.check_heads(path, names, None)
    }

    /// [`LlamaShape::check`], with the head size either the hidden size over the heads
    /// (`None`) or declared by the file (`Some((field, size))`, Qwen3 and Gemma 3).
    pub(crate) fn check_heads(
        &self,
        path: &Path,
        names: &FieldNames,
        declared_head_dim: Option<(&str, usize)>,
    ) -> Result<()> {
        check_count(path, names.layers, self.layers, MAX_LAYERS)?;
        check_count(path, names.heads, self.heads, MAX_HEADS)?;
        check_count(path, names.kv_heads, self.kv_heads, MAX_HEADS)?;
        check_count(path, names.hidden, self.hidden, MAX_HIDDEN)?;
        check_count(
            path,
            names.intermediate,
            self.intermediate,
            MAX_INTERMEDIATE,
        )?;
        check_count(path, names.vocab, self.vocab, MAX_VOCAB)?;
        if let Some(context) = self.context {
            check_count(path, names.context, context, MAX_CONTEXT)?;
        }
        match declared_head_dim {
            Some((field, head_dim)) => {
                check_count(path, field, head_dim, MAX_HIDDEN)?;
                if !head_dim.is_multiple_of(2) {
                    return Err(field_error(
                        path,
                        field,
                        format!("{head_dim} is odd (rotary embeddings need pairs)"),
                    ));
                }
            }
            None => {
                if !self.hidden.is_multiple_of(self.heads) {
                    return Err(field_error(
                        path,
                        names.heads,
                        format!(
                            "{} does not divide {} = {}",
                            self.heads, names.hidden, self.hidden
                        ),
                    ));
                }
                if !self.head_dim().is_multiple_of(2) {
                    return Err(field_error(
                        path,
                        names.hidden,
                        format!(
                            "{} over {} heads gives heads of odd size {} (rotary embeddings need pairs)",
                            self.hidden,
                            self.heads,
                            self.head_dim()
                        ),
                    ));
                }
            }
        }
        if self.kv_heads > self.heads || !self.heads.is_multiple_of(self.kv_heads) {
            return Err(field_error(
                path,
                names.kv_heads,
                format!(
                    "{} does not divide {} = {}",
                    self.kv_heads, names.heads, self.heads
                ),
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(field_error(
                path,
                names.rope_theta,
                format!("{} is not a positive number", self.rope_theta),
            ));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0 && self.norm_eps < 1.0) {
            return Err(field_error(
                path,
                names.norm_eps,
                format!("{} is outside (0, 1)", self.norm_eps),
            ));
        }
        Ok(())
    }
}

/// A GGUF metadata value as the checks need it: numbers and short strings kept, arrays and
/// long strings reduced to their type and length.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// `u8`, `u16`, `u32` or `u64`, with its GGUF type code.
    Unsigned {
        /// The value.
        value: u64,
        /// GGUF type code (0 `u8`, 2 `u16`, 4 `u32`, 10 `u64`).
        code: u32,
    },
    /// `i8`, `i16`, `i32` or `i64`, with its GGUF type code.
    Signed {
        /// The value.
        value: i64,
        /// GGUF type code (1 `i8`, 3 `i16`, 5 `i32`, 11 `i64`).
        code: u32,
    },
    /// `f32`.
    F32(f32),
    /// `f64`.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// A string (`None` when longer than the checks keep).
    Str(Option<String>),
    /// An array: element type code and length.
    Array {
        /// GGUF type code of the elements.
        element: u32,
        /// Number of elements.
        len: u64,
    },
}

impl GgufValue {
    /// The value when it is a `u32` (the only type candle reads the Llama counts as).
    pub fn as_u32(&self) -> Option<u32> {
        match *self {
            GgufValue::Unsigned { value, code: 4 } => u32::try_from(value).ok(),
            _ => None,
        }
    }

    fn type_name(&self) -> String {
        match self {
            GgufValue::Unsigned { code, .. } | GgufValue::Signed { code, .. } => {
                type_name(*code).to_string()
            }
            GgufValue::F32(_) => "f32".into(),
            GgufValue::F64(_) => "f64".into(),
            GgufValue::Bool(_) => "bool".into(),
            GgufValue::Str(_) => "string".into(),
            GgufValue::Array { element, len } => format!("array of {len} {}", type_name(*element)),
        }
    }
}

fn type_name(code: u32) -> &'static str {
    match code {
        0 => "u8",
        1 => "i8",
        2 => "u16",
        3 => "i16",
        4 => "u32",
        5 => "i32",
        6 => "f32",
        7 => "bool",
        8 => "string",
        9 => "array",
        10 => "u64",
        11 => "i64",
        12 => "f64",
        _ => "unknown type",
    }
}

/// A ggml tensor type candle reads: (name, elements per block, bytes per block).
fn ggml_type(code: u32) -> Option<(&'static str, u64, u64)> {
    Some(match code {
        0 => ("F32", 1, 4),
        1 => ("F16", 1, 2),
        2 => ("Q4_0", 32, 18),
        3 => ("Q4_1", 32, 20),
        6 => ("Q5_0", 32, 22),
        7 => ("Q5_1", 32, 24),
        8 => ("Q8_0", 32, 34),
        9 => ("Q8_1", 32, 36),
        10 => ("Q2_K", 256, 84),
        11 => ("Q3_K", 256, 110),
        12 => ("Q4_K", 256, 144),
        13 => ("Q5_K", 256, 176),
        14 => ("Q6_K", 256, 210),
        15 => ("Q8_K", 256, 292),
        30 => ("BF16", 1, 2),
        _ => return None,
    })
}

/// One entry of a GGUF tensor table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensor {
    /// Dimensions in candle's order (outermost first; GGUF stores them innermost first).
    pub dims: Vec<u64>,
    /// ggml type code.
    pub dtype: u32,
    /// Offset of its data from the start of the data section.
    pub offset: u64,
}

/// What a GGUF file declares: its metadata and tensor table, read with every length checked
/// against the file, plus where its data section starts.
#[derive(Debug, Clone)]
pub struct GgufHeader {
    path: PathBuf,
    version: u32,
    file_len: u64,
    data_offset: u64,
    metadata: HashMap<String, GgufValue>,
    tensors: HashMap<String, GgufTensor>,
}

/// A reader that counts its position and knows the length of what it reads.
struct Bounded<R> {
    inner: R,
    pos: u64,
    len: u64,
    version: u32,
}

impl<R: Read> Bounded<R> {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn fill(&mut self, buf: &mut [u8]) -> std::result::Result<(), String> {
        self.inner
            .read_exact(buf)
            .map_err(|e| format!("truncated at byte {} ({e})", self.pos))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        let mut b = [0u8; 4];
        self.fill(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> std::result::Result<u64, String> {
        let mut b = [0u8; 8];
        self.fill(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A length prefix: `u32` in version 1, `u64` after.
    fn length(&mut self) -> std::result::Result<u64, String> {
        if self.version == 1 {
            self.u32().map(u64::from)
        } else {
            self.u64()
        }
    }

    fn skip(&mut self, n: u64) -> std::result::Result<(), String> {
        let copied = std::io::copy(&mut (&mut self.inner).take(n), &mut std::io::sink())
            .map_err(|e| format!("reading at byte {}: {e}", self.pos))?;
        self.pos += copied;
        if copied != n {
            return Err(format!("truncated at byte {}", self.pos));
        }
        Ok(())
    }

    /// A string of at most `keep` bytes, or `None` (skipped) when longer.
    fn string(&mut self, keep: u64) -> std::result::Result<Option<String>, String> {
        let len = self.length()?;
        if len > MAX_GGUF_STRING || len > self.remaining() {
            return Err(format!(
                "a string of {len} bytes at byte {} runs past the end of the file",
                self.pos
            ));
        }
        if len > keep {
            self.skip(len)?;
            return Ok(None);
        }
        let mut bytes = vec![0u8; len as usize];
        self.fill(&mut bytes)?;
        // As candle reads them: trailing NULs dropped, invalid UTF-8 replaced.
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// The smallest encoding of one value of type `code` (to bound array lengths).
    fn min_size(&self, code: u32) -> u64 {
        let prefix = if self.version == 1 { 4 } else { 8 };
        match code {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 => prefix,
            _ => 4 + prefix,
        }
    }

    fn value(&mut self, code: u32, depth: usize) -> std::result::Result<GgufValue, String> {
        let mut b1 = [0u8; 1];
        let mut b2 = [0u8; 2];
        Ok(match code {
            0 | 1 | 7 => {
                self.fill(&mut b1)?;
                match code {
                    0 => GgufValue::Unsigned {
                        value: u64::from(b1[0]),
                        code,
                    },
                    1 => GgufValue::Signed {
                        value: i64::from(b1[0] as i8),
                        code,
                    },
                    _ => match b1[0] {
                        0 => GgufValue::Bool(false),
                        1 => GgufValue::Bool(true),
                        other => return Err(format!("a boolean holds {other}")),
                    },
                }
            }
            2 | 3 => {
                self.fill(&mut b2)?;
                if code == 2 {
                    GgufValue::Unsigned {
                        value: u64::from(u16::from_le_bytes(b2)),
                        code,
                    }
                } else {
                    GgufValue::Signed {
                        value: i64::from(i16::from_le_bytes(b2)),
                        code,
                    }
                }
            }
            4 => GgufValue::Unsigned {
                value: u64::from(self.u32()?),
                code,
            },
            5 => GgufValue::Signed {
                value: i64::from(self.u32()? as i32),
                code,
            },
            6 => GgufValue::F32(f32::from_bits(self.u32()?)),
            10 => GgufValue::Unsigned {
                value: self.u64()?,
                code,
            },
            11 => GgufValue::Signed {
                value: self.u64()? as i64,
                code,
            },
            12 => GgufValue::F64(f64::from_bits(self.u64()?)),
            8 => GgufValue::Str(self.string(KEPT_STRING)?),
            9 => {
                if depth >= MAX_GGUF_DEPTH {
                    return Err(format!("arrays nested deeper than {MAX_GGUF_DEPTH}"));
                }
                let element = self.u32()?;
                if element > 12 {
                    return Err(format!("unknown value type {element}"));
                }
                let len = self.length()?;
                let needed = len.saturating_mul(self.min_size(element));
                if len > MAX_GGUF_ARRAY || needed > self.remaining() {
                    return Err(format!(
                        "an array of {len} elements at byte {} needs more bytes than the file has",
                        self.pos
                    ));
                }
                match element {
                    // Fixed-size elements: skip them in one go.
                    0..=7 | 10..=12 => self.skip(needed)?,
                    _ => {
                        for _ in 0..len {
                            self.value(element, depth + 1)?;
                        }
                    }
                }
                GgufValue::Array { element, len }
            }
            other => return Err(format!("unknown value type {other}")),
        })
    }
}

impl GgufHeader {
    /// Reads the header of the GGUF file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = fs_err::File::open(path)?;
        let len = file.metadata()?.len();
        Self::read(std::io::BufReader::new(file), len, path)
    }

    /// Reads a GGUF header from bytes; `path` names them in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        Self::read(bytes, bytes.len() as u64, path)
    }

    /// Reads a GGUF header from `reader`, whose whole length is `len` bytes.
    pub fn read(reader: impl Read, len: u64, path: &Path) -> Result<Self> {
        let mut r = Bounded {
            inner: reader,
            pos: 0,
            len,
            version: 0,
        };
        let bad = |reason: String| file_error(path, format!("not a readable GGUF file: {reason}"));
        let mut magic = [0u8; 4];
        r.fill(&mut magic).map_err(bad)?;
        if &magic != b"GGUF" && &magic != b"FUGG" {
            return Err(bad(format!("bad magic {magic:?}")));
        }
        let version = r.u32().map_err(bad)?;
        if !(1..=3).contains(&version) {
            return Err(bad(format!("unsupported version {version}")));
        }
        r.version = version;
        let tensor_count = r.length().map_err(bad)?;
        let metadata_count = r.length().map_err(bad)?;
        // Each metadata entry takes at least a key length, a type and one byte; each tensor
        // entry a name length, a dimension count, a type and an offset.
        let prefix = if version == 1 { 4 } else { 8 };
        let needed = metadata_count
            .saturating_mul(prefix + 5)
            .saturating_add(tensor_count.saturating_mul(prefix + 16));
        if needed > r.remaining() {
            return Err(bad(format!(
                "{tensor_count} tensors and {metadata_count} metadata entries do not fit in {len} bytes"
            )));
        }
        let mut metadata = HashMap::new();
        for entry in 0..metadata_count {
            let key = r
                .string(MAX_GGUF_STRING)
                .map_err(|e| bad(format!("metadata entry {entry}: {e}")))?
                .unwrap_or_default();
            let value = r
                .u32()
                .and_then(|code| r.value(code, 0))
                .map_err(|e| bad(format!("metadata {key:?}: {e}")))?;
            metadata.insert(key, value);
        }
        let mut tensors = HashMap::new();
        for entry in 0..tensor_count {
            let name = r
                .string(MAX_GGUF_STRING)
                .map_err(|e| bad(format!("tensor entry {entry}: {e}")))?
                .unwrap_or_default();
            let tensor = read_tensor_info(&mut r)
                .map_err(|e| field_error(path, format!("tensor {name}"), e))?;
            tensors.insert(name, tensor);
        }
        let alignment = match metadata.get("general.alignment") {
            Some(GgufValue::Unsigned {
                value,
                code: 0 | 2 | 4,
            }) => Some(*value),
            Some(GgufValue::Signed {
                value,
                code: 1 | 3 | 5,
            }) if *value >= 0 => Some(*value as u64),
            _ => None,
        };
        let alignment = match alignment {
            None => DEFAULT_ALIGNMENT,
            Some(a) if a.is_power_of_two() => a,
            Some(a) => {
                return Err(field_error(
                    path,
                    "general.alignment",
                    format!("{a} is not a power of two"),
                ));
            }
        };
        let data_offset = r
            .pos
            .div_ceil(alignment)
            .checked_mul(alignment)
            .ok_or_else(|| bad("the data section starts past any file".into()))?;
        Ok(GgufHeader {
            path: path.to_path_buf(),
            version,
            file_len: len,
            data_offset,
            metadata,
            tensors,
        })
    }

    /// The GGUF format version (1 to 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// A metadata value.
    pub fn metadata(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    /// A tensor table entry.
    pub fn tensor(&self, name: &str) -> Option<&GgufTensor> {
        self.tensors.get(name)
    }

    fn field(&self, key: &str, reason: impl Into<String>) -> Error {
        field_error(&self.path, key, reason)
    }

    /// A required `u32` (candle reads the Llama counts with `to_u32`, which takes no other
    /// integer type).
    fn required_u32(&self, key: &str) -> Result<usize> {
        match self.metadata.get(key) {
            None => Err(self.field(key, "is missing")),
            Some(value) => value.as_u32().map(|v| v as usize).ok_or_else(|| {
                self.field(key, format!("is a {}, expected u32", value.type_name()))
            }),
        }
    }

    /// An optional `u32`; another type is an error when candle would fail on it too.
    fn optional_u32(&self, key: &str) -> Result<Option<usize>> {
        match self.metadata.get(key) {
            None => Ok(None),
            Some(value) => value.as_u32().map(|v| Some(v as usize)).ok_or_else(|| {
                self.field(key, format!("is a {}, expected u32", value.type_name()))
            }),
        }
    }

    /// Checks every tensor's type, size and place in the file (candle may read any of them).
    fn check_tensor_extents(&self) -> Result<()> {
        let mut names: Vec<&String> = self.tensors.keys().collect();
        names.sort_unstable();
        for name in names {
            let tensor = &self.tensors[name];
            let field = format!("tensor {name}");
            let Some((type_label, block, block_bytes)) = ggml_type(tensor.dtype) else {
                return Err(self.field(&field, format!("has unknown ggml type {}", tensor.dtype)));
            };
            let elements = tensor
                .dims
                .iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d))
                .filter(|&n| n <= self.file_len.saturating_mul(block))
                .ok_or_else(|| {
                    self.field(
                        &field,
                        format!("shape {:?} is larger than the file", tensor.dims),
                    )
                })?;
            let row = tensor.dims.last().copied().unwrap_or(1);
            if !row.is_multiple_of(block) {
                return Err(self.field(
                    &field,
                    format!(
                        "rows of {row} values do not fill whole {type_label} blocks of {block}"
                    ),
                ));
            }
            let bytes = elements / block * block_bytes;
            let end = self
                .data_offset
                .checked_add(tensor.offset)
                .and_then(|start| start.checked_add(bytes));
            if end.is_none_or(|end| end > self.file_len) {
                return Err(self.field(
                    &field,
                    format!(
                        "its {bytes} bytes at offset {} run past the end of the {}-byte file",
                        tensor.offset, self.file_len
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks that tensor `name` exists with candle-order shape `dims`.
    fn expect_tensor(&self, name: &str, dims: &[usize]) -> Result<()> {
        let field = format!("tensor {name}");
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| self.field(&field, "is missing"))?;
        let same = tensor.dims.len() == dims.len()
            && tensor.dims.iter().zip(dims).all(|(&a, &b)| a == b as u64);
        if !same {
            return Err(self.field(
                &field,
                format!(
                    "has shape {:?}, the hyperparameters imply {dims:?}",
                    tensor.dims
                ),
            ));
        }
        Ok(())
    }

    /// The architecture `general.architecture` names, if it is one the loader supports;
    /// otherwise an error naming the file, the architecture and the supported list.
    pub fn architecture(&self) -> Result<Architecture> {
        let key = "general.architecture";
        let supported = Architecture::supported_list();
        match self.metadata.get(key) {
            None => Err(self.field(key, format!("is missing (supported: {supported})"))),
            Some(GgufValue::Str(Some(name))) => Architecture::from_name(name).ok_or_else(|| {
                self.field(
                    key,
                    format!("{name:?} is not supported (supported: {supported})"),
                )
            }),
            Some(other) => Err(self.field(
                key,
                format!(
                    "is a {}, expected the name of one of: {supported}",
                    other.type_name()
                ),
            )),
        }
    }

    /// Checks the file as candle's quantized Llama reads it (any other architecture is an
    /// error): see [`GgufHeader::model_shape`].
    pub fn llama_shape(&self) -> Result<LlamaShape> {
        let shape = self.model_shape()?;
        if shape.architecture != Architecture::Llama {
            return Err(self.field(
                "general.architecture",
                format!("{:?} is not llama", shape.architecture.name()),
            ));
        }
        Ok(LlamaShape {
            layers: shape.layers,
            hidden: shape.hidden,
            intermediate: shape.intermediate,
            heads: shape.heads,
            kv_heads: shape.kv_heads,
            vocab: shape.vocab,
            context: shape.context,
            rope_theta: shape.rope_theta,
            norm_eps: shape.norm_eps,
        })
    }

    /// Checks the file as candle's quantized model for its architecture reads it: the
    /// architecture (one of [`Architecture::ALL`]), every hyperparameter that model reads,
    /// the presence and shape of every tensor it loads, and every tensor's bytes against the
    /// file length. Returns the checked hyperparameters.
    pub fn model_shape(&self) -> Result<ModelShape> {
        use Architecture::*;
        let architecture = self.architecture()?;
        let names = architecture.gguf_fields();
        let key = |name: &str| format!("{}.{name}", architecture.name());
        self.check_tensor_extents()?;
        let layers = self.required_u32(names.layers)?;
        let heads = self.required_u32(names.heads)?;
        let kv_heads = self.required_u32(names.kv_heads)?;
        let hidden = self.required_u32(names.hidden)?;
        let norm_eps = self.required_f32(names.norm_eps)?;
        // What each candle model does with the RoPE base: Qwen3 requires it, Phi-3 ignores
        // it (10,000), the others fall back to their default when it is absent or not f32.
        let rope_theta = match architecture {
            Qwen3 => self.required_f32(names.rope_theta)?,
            Phi3 => 10_000.0,
            Gemma3 => self.optional_f32(names.rope_theta).unwrap_or(1_000_000.0),
            Llama | Qwen2 => self.optional_f32(names.rope_theta).unwrap_or(10_000.0),
        };
        // Llama and Gemma 3 do not read the trained context; the others size tables by it.
        let context = match architecture {
            Llama | Gemma3 => self.optional_u32(names.context)?,
            Qwen2 | Qwen3 | Phi3 => Some(self.required_u32(names.context)?),
        };
        let embedding = self
            .tensors
            .get("token_embd.weight")
            .ok_or_else(|| self.field("tensor token_embd.weight", "is missing"))?;
        let vocab = match embedding.dims[..] {
            [rows, _] => usize::try_from(rows).unwrap_or(usize::MAX),
            _ => 0,
        };
        let rows_of = |name: &str| {
            self.tensors.get(name).and_then(|t| match t.dims[..] {
                [rows, _] => usize::try_from(rows).ok(),
                _ => None,
            })
        };
        // The feed-forward width: Phi-3 reads it from the metadata (its up projection holds
        // gate and up, twice as many rows); the others from the first block's up projection,
        // with which a declared width must agree.
        let declared_ff = match architecture {
            Phi3 => Some(self.required_u32(names.intermediate)?),
            _ => self.optional_u32(names.intermediate)?,
        };
        let intermediate = match architecture {
            Phi3 => declared_ff.unwrap_or(0),
            _ => rows_of("blk.0.ffn_up.weight").unwrap_or(0),
        };
        // Qwen3 and Gemma 3 declare the head size; the others divide the hidden size.
        let head_dim = match architecture {
            Qwen3 | Gemma3 => {
                let field = key("attention.key_length");
                Some((field.clone(), self.required_u32(&field)?))
            }
            Llama | Qwen2 | Phi3 => None,
        };
        let base = LlamaShape {
            layers,
            hidden,
            intermediate: intermediate.max(1),
            heads,
            kv_heads,
            vocab,
            context,
            rope_theta,
            norm_eps,
        };
        base.check_heads(
            &self.path,
            names,
            head_dim.as_ref().map(|(f, d)| (f.as_str(), *d)),
        )?;
        let shape = ModelShape {
            architecture,
            layers,
            hidden,
            intermediate: base.intermediate,
            heads,
            kv_heads,
            head_dim: head_dim.map_or_else(|| base.head_dim(), |(_, d)| d),
            vocab,
            context,
            rope_theta,
            norm_eps,
        };
        // Phi-3's up projection holds the gate and the up rows.
        if architecture == Phi3
            && let Some(rows) = rows_of("blk.0.ffn_up.weight")
            && rows != 2 * intermediate
        {
            return Err(self.field(
                names.intermediate,
                format!(
                    "is {intermediate}, but blk.0.ffn_up.weight has {rows} rows (gate and up: \
                     twice the width)"
                ),
            ));
        }
        if architecture != Phi3
            && let Some(declared) = declared_ff
            && intermediate > 0
            && declared != intermediate
        {
            return Err(self.field(
                names.intermediate,
                format!("is {declared}, but blk.0.ffn_up.weight has {intermediate} rows"),
            ));
        }
        // Llama and Phi-3 rotate with a table of `rope.dimension_count` values per head.
        if matches!(architecture, Llama | Phi3) {
            let field = key("rope.dimension_count");
            let rope_dim = self.required_u32(&field)?;
            if rope_dim != shape.head_dim {
                return Err(self.field(
                    &field,
                    format!(
                        "is {rope_dim}; candle rotates whole heads of {} values",
                        shape.head_dim
                    ),
                ));
            }
        }
        let mut experts = 0;
        if architecture == Llama {
            experts = self.optional_u32("llama.expert_count")?.unwrap_or(0);
            let experts_used = self.optional_u32("llama.expert_used_count")?.unwrap_or(0);
            if experts > 1 {
                check_count(&self.path, "llama.expert_count", experts, MAX_EXPERTS)?;
                if experts_used == 0 || experts_used > experts {
                    return Err(self.field(
                        "llama.expert_used_count",
                        format!("is {experts_used}, must be within 1..={experts}"),
                    ));
                }
            }
        }
        if architecture == Gemma3 {
            self.check_gemma3(&shape)?;
        }
        self.check_vocabulary(vocab)?;
        self.check_tensors(&shape, experts)?;
        Ok(shape)
    }

    /// Gemma 3's attention keys: values as wide as keys (candle shapes them alike), a
    /// sliding window, and a window pattern candle divides by.
    fn check_gemma3(&self, shape: &ModelShape) -> Result<()> {
        let field = "gemma3.attention.value_length";
        let value_length = self.required_u32(field)?;
        if value_length != shape.head_dim {
            return Err(self.field(
                field,
                format!(
                    "is {value_length}; candle reads values as wide as keys ({})",
                    shape.head_dim
                ),
            ));
        }
        let window = self.required_u32("gemma3.attention.sliding_window")?;
        check_count(
            &self.path,
            "gemma3.attention.sliding_window",
            window,
            MAX_CONTEXT,
        )?;
        // candle falls back to 6 when the pattern is absent or not a u32.
        let field = "gemma3.attention.sliding_window_type";
        if let Some(0) = self.metadata.get(field).and_then(GgufValue::as_u32) {
            return Err(self.field(field, "is 0, must be at least 1"));
        }
        let base = self
            .optional_f32("gemma3.rope.local_freq_base")
            .unwrap_or(10_000.0);
        if !(base.is_finite() && base > 0.0) {
            return Err(self.field(
                "gemma3.rope.local_freq_base",
                format!("{base} is not a positive number"),
            ));
        }
        Ok(())
    }

    /// Every tensor the architecture's candle model loads, with the shape the
    /// hyperparameters imply.
    fn check_tensors(&self, shape: &ModelShape, experts: usize) -> Result<()> {
        use Architecture::*;
        let architecture = shape.architecture;
        let (hidden, vocab, ff) = (shape.hidden, shape.vocab, shape.intermediate);
        let q = shape.heads * shape.head_dim;
        let kv = shape.kv_heads * shape.head_dim;
        self.expect_tensor("token_embd.weight", &[vocab, hidden])?;
        self.expect_tensor("output_norm.weight", &[hidden])?;
        // Phi-3 needs its own output projection; the others fall back to the embedding.
        if architecture == Phi3 || self.tensors.contains_key("output.weight") {
            self.expect_tensor("output.weight", &[vocab, hidden])?;
        }
        for layer in 0..shape.layers {
            let p = format!("blk.{layer}");
            let expect =
                |name: &str, dims: &[usize]| self.expect_tensor(&format!("{p}.{name}"), dims);
            expect("attn_norm.weight", &[hidden])?;
            expect("ffn_norm.weight", &[hidden])?;
            if architecture == Phi3 {
                expect("attn_qkv.weight", &[q + 2 * kv, hidden])?;
                expect("attn_output.weight", &[hidden, q])?;
                expect("ffn_up.weight", &[2 * ff, hidden])?;
                expect("ffn_down.weight", &[hidden, ff])?;
                continue;
            }
            expect("attn_q.weight", &[q, hidden])?;
            expect("attn_k.weight", &[kv, hidden])?;
            expect("attn_v.weight", &[kv, hidden])?;
            expect("attn_output.weight", &[hidden, q])?;
            match architecture {
                Qwen2 => {
                    expect("attn_q.bias", &[q])?;
                    expect("attn_k.bias", &[kv])?;
                    expect("attn_v.bias", &[kv])?;
                }
                Qwen3 | Gemma3 => {
                    expect("attn_q_norm.weight", &[shape.head_dim])?;
                    expect("attn_k_norm.weight", &[shape.head_dim])?;
                }
                Llama | Phi3 => {}
            }
            if architecture == Gemma3 {
                expect("post_attention_norm.weight", &[hidden])?;
                expect("post_ffw_norm.weight", &[hidden])?;
            }
            if experts > 1 {
                expect("ffn_gate_inp.weight", &[experts, hidden])?;
                for e in 0..experts {
                    expect(&format!("ffn_gate.{e}.weight"), &[ff, hidden])?;
                    expect(&format!("ffn_down.{e}.weight"), &[hidden, ff])?;
                    expect(&format!("ffn_up.{e}.weight"), &[ff, hidden])?;
                }
            } else {
                expect("ffn_gate.weight", &[ff, hidden])?;
                expect("ffn_down.weight", &[hidden, ff])?;
                expect("ffn_up.weight", &[ff, hidden])?;
            }
        }
        Ok(())
    }

    /// A required `f32` (candle reads these with `to_f32`, which takes no other type).
    fn required_f32(&self, key: &str) -> Result<f64> {
        match self.metadata.get(key) {
            Some(GgufValue::F32(v)) => Ok(f64::from(*v)),
            Some(other) => {
                Err(self.field(key, format!("is a {}, expected f32", other.type_name())))
            }
            None => Err(self.field(key, "is missing")),
        }
    }

    /// An `f32` that candle replaces by its default when absent or of another type.
    fn optional_f32(&self, key: &str) -> Option<f64> {
        match self.metadata.get(key) {
            Some(GgufValue::F32(v)) => Some(f64::from(*v)),
            _ => None,
        }
    }

    /// The tokenizer's tokens must have embedding rows (a larger id would index past them).
    fn check_vocabulary(&self, vocab: usize) -> Result<()> {
        let key = "tokenizer.ggml.tokens";
        match self.metadata.get(key) {
            Some(GgufValue::Array { element: 8, len }) if *len > vocab as u64 => Err(self.field(
                key,
                format!("lists {len} tokens, more than the {vocab} rows of token_embd.weight"),
            )),
            _ => Ok(()),
        }
    }
}

fn read_tensor_info<R: Read>(r: &mut Bounded<R>) -> std::result::Result<GgufTensor, String> {
    let n_dims = r.u32()?;
    if n_dims > MAX_TENSOR_DIMS {
        return Err(format!(
            "has {n_dims} dimensions, at most {MAX_TENSOR_DIMS} are supported"
        ));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(if r.version == 1 {
            u64::from(r.u32()?)
        } else {
            r.u64()?
        });
    }
    dims.reverse();
    let dtype = r.u32()?;
    let offset = r.u64()?;
    Ok(GgufTensor {
        dims,
        dtype,
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_gguf::{Meta, tiny_gguf, tiny_llama_gguf};

    fn shape_of(bytes: &[u8]) -> Result<LlamaShape> {
        GgufHeader::from_bytes(bytes, Path::new("/m/x.gguf"))?.llama_shape()
    }

    #[test]
    fn the_tiny_model_passes_with_its_hyperparameters() {
        let shape = shape_of(&tiny_llama_gguf().bytes()).unwrap();
        assert_eq!(
            shape,
            LlamaShape {
                layers: 2,
                hidden: 32,
                intermediate: 64,
                heads: 4,
                kv_heads: 2,
                vocab: 258,
                context: Some(2048),
                rope_theta: 10_000.0,
                norm_eps: f64::from(1e-5f32),
            }
        );
    }

    #[test]
    fn every_architecture_passes_with_its_hyperparameters() {
        for architecture in Architecture::ALL {
            let bytes = tiny_gguf(architecture).bytes();
            let shape = GgufHeader::from_bytes(&bytes, Path::new("/m/x.gguf"))
                .unwrap()
                .model_shape()
                .unwrap();
            let declared_heads = matches!(architecture, Architecture::Qwen3 | Architecture::Gemma3);
            assert_eq!(shape.architecture, architecture);
            assert_eq!(
                (
                    shape.layers,
                    shape.hidden,
                    shape.intermediate,
                    shape.heads,
                    shape.kv_heads
                ),
                (2, 32, 64, 4, 2),
                "{architecture}"
            );
            assert_eq!(shape.head_dim, if declared_heads { 16 } else { 8 });
            assert_eq!(shape.context, Some(2048));
            // Only a Llama file passes as one.
            let as_llama = GgufHeader::from_bytes(&bytes, Path::new("/m/x.gguf"))
                .unwrap()
                .llama_shape();
            assert_eq!(as_llama.is_ok(), architecture == Architecture::Llama);
        }
    }

    #[test]
    fn unknown_architectures_name_the_supported_ones() {
        let mut file = tiny_llama_gguf();
        file.set("general.architecture", Meta::Str("gemma2".into()));
        let err = shape_of(&file.bytes()).unwrap_err().to_string();
        assert_eq!(
            err,
            "/m/x.gguf: general.architecture: \"gemma2\" is not supported (supported: llama, \
             qwen2, qwen3, gemma3, phi3)"
        );
        file.remove("general.architecture");
        let err = shape_of(&file.bytes()).unwrap_err().to_string();
        assert!(err.contains("general.architecture: is missing"), "{err}");
        file.set("general.architecture", Meta::U32(1));
        let err = shape_of(&file.bytes()).unwrap_err().to_string();
        assert!(err.contains("is a u32"), "{err}");
    }

    #[test]
    fn every_prefix_of_a_file_is_an_error_not_a_panic() {
        let bytes = tiny_llama_gguf().bytes();
        for cut in (0..bytes.len()).step_by(97) {
            let err = shape_of(&bytes[..cut]).unwrap_err().to_string();
            assert!(err.contains("/m/x.gguf"), "{cut}: {err}");
        }
    }

    #[test]
    fn counts_larger_than_the_file_are_refused_before_allocating() {
        let mut bytes = tiny_llama_gguf().bytes();
        // Tensor count, then metadata count.
        bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        let err = shape_of(&bytes).unwrap_err().to_string();
        assert!(err.contains("do not fit"), "{err}");
        // A string length of 2^62 in the first key.
        let mut bytes = tiny_llama_gguf().bytes();
        bytes[24..32].copy_from_slice(&(1u64 << 62).to_le_bytes());
        let err = shape_of(&bytes).unwrap_err().to_string();
        assert!(err.contains("past the end"), "{err}");
    }

    #[test]
    fn unknown_tensor_types_and_partial_blocks_are_named() {
        let mut file = tiny_llama_gguf();
        file.tensor_mut("output_norm.weight").dtype = 99;
        let err = shape_of(&file.bytes()).unwrap_err().to_string();
        assert!(
            err.contains("output_norm.weight") && err.contains("99"),
            "{err}"
        );
        let mut file = tiny_llama_gguf();
        // Q4_0 blocks hold 32 values; rows of 16 cannot be stored.
        let tensor = file.tensor_mut("blk.0.attn_k.weight");
        tensor.dtype = 2;
        tensor.dims = vec![32, 16];
        let err = shape_of(&file.bytes()).unwrap_err().to_string();
        assert!(
            err.contains("blk.0.attn_k.weight") && err.contains("Q4_0"),
            "{err}"
        );
    }

    #[test]
    fn other_architectures_and_negative_alignment_follow_candle() {
        let mut file = tiny_llama_gguf();
        file.set("general.architecture", Meta::Str("gpt2".into()));
        let err = shape_of(&file.bytes()).unwrap_err().to_string();
        assert!(err.contains("general.architecture"), "{err}");
        // candle ignores a negative alignment (and uses 32), so the file stays readable.
        let mut file = tiny_llama_gguf();
        file.set("general.alignment", Meta::I32(-8));
        shape_of(&file.bytes()).unwrap();
        let mut file = tiny_llama_gguf();
        file.set("general.alignment", Meta::U32(24));
        let err = shape_of(&file.bytes()).unwrap_err().to_string();
        assert!(err.contains("general.alignment"), "{err}");
    }

    #[test]
    fn missing_or_mistyped_hyperparameters_are_named() {
        let mut file = tiny_llama_gguf();
        file.remove("llama.attention.layer_norm_rms_epsilon");
        let err = shape_of(&file.bytes()).unwrap_err().to_string();
        assert!(
            err.contains("llama.attention.layer_norm_rms_epsilon") && err.contains("missing"),
            "{err}"
        );
        let mut file = tiny_llama_gguf();
        file.set("llama.block_count", Meta::U64(2));
        let err = shape_of(&file.bytes()).unwrap_err().to_string();
        assert!(
            err.contains("llama.block_count") && err.contains("u64"),
            "{err}"
        );
    }

    #[test]
    fn config_json_names_are_used_for_config_json() {
        let shape = LlamaShape {
            layers: 2,
            hidden: 32,
            intermediate: 64,
            heads: 4,
            kv_heads: 3,
            vocab: 10,
            context: Some(128),
            rope_theta: 1e4,
            norm_eps: 1e-5,
        };
        let err = shape
            .check(Path::new("/m/config.json"), &CONFIG_JSON_FIELDS)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/m/config.json") && err.contains("num_key_value_heads"),
            "{err}"
        );
    }
}
