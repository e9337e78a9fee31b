//! Tests only: a small GGUF (version 3) writer with full control over every header field, so
//! tests can write well-formed files that declare hostile values.

/// A metadata value, written with its GGUF type code.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Meta {
    U32(u32),
    I32(i32),
    U64(u64),
    F32(f32),
    Str(String),
    Strs(Vec<String>),
    I32s(Vec<i32>),
}

/// One tensor: candle-order dimensions (outermost first), ggml type code and raw data.
#[derive(Debug, Clone)]
pub(crate) struct TensorSpec {
    pub name: String,
    pub dims: Vec<u64>,
    pub dtype: u32,
    pub offset: Option<u64>,
    pub data: Vec<u8>,
}

/// A GGUF file under construction.
#[derive(Debug, Clone, Default)]
pub(crate) struct GgufFile {
    pub metadata: Vec<(String, Meta)>,
    pub tensors: Vec<TensorSpec>,
}

const ALIGNMENT: usize = 32;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl GgufFile {
    /// Sets (or replaces) a metadata entry.
    pub fn set(&mut self, key: &str, value: Meta) -> &mut Self {
        self.metadata.retain(|(k, _)| k != key);
        self.metadata.push((key.to_string(), value));
        self
    }

    /// Removes a metadata entry.
    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.metadata.retain(|(k, _)| k != key);
        self
    }

    /// The tensor called `name`.
    pub fn tensor_mut(&mut self, name: &str) -> &mut TensorSpec {
        self.tensors
            .iter_mut()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
    }

    /// Adds an F32 tensor filled with small deterministic values.
    pub fn add_f32(&mut self, name: &str, dims: &[u64], seed: u32) -> &mut Self {
        let count: u64 = dims.iter().product();
        let data = (0..count)
            .flat_map(|i| {
                let x = ((i as f32 + 1.0) * 0.618 + seed as f32 * 1.37).sin() * 0.2;
                x.to_le_bytes()
            })
            .collect();
        self.tensors.push(TensorSpec {
            name: name.to_string(),
            dims: dims.to_vec(),
            dtype: 0,
            offset: None,
            data,
        });
        self
    }

    /// The file's bytes: header, metadata, tensor infos, padding, tensor data.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_str(&mut out, key);
            let (code, payload) = match value {
                Meta::U32(v) => (4u32, v.to_le_bytes().to_vec()),
                Meta::I32(v) => (5, v.to_le_bytes().to_vec()),
                Meta::U64(v) => (10, v.to_le_bytes().to_vec()),
                Meta::F32(v) => (6, v.to_le_bytes().to_vec()),
                Meta::Str(s) => {
                    let mut p = Vec::new();
                    put_str(&mut p, s);
                    (8, p)
                }
                Meta::Strs(items) => {
                    let mut p = 8u32.to_le_bytes().to_vec();
                    p.extend_from_slice(&(items.len() as u64).to_le_bytes());
                    for s in items {
                        put_str(&mut p, s);
                    }
                    (9, p)
                }
                Meta::I32s(items) => {
                    let mut p = 5u32.to_le_bytes().to_vec();
                    p.extend_from_slice(&(items.len() as u64).to_le_bytes());
                    for v in items {
                        p.extend_from_slice(&v.to_le_bytes());
                    }
                    (9, p)
                }
            };
            out.extend_from_slice(&code.to_le_bytes());
            out.extend_from_slice(&payload);
        }
        let mut offset = 0usize;
        let mut placed = Vec::new();
        for tensor in &self.tensors {
            put_str(&mut out, &tensor.name);
            out.extend_from_slice(&(tensor.dims.len() as u32).to_le_bytes());
            for dim in tensor.dims.iter().rev() {
                out.extend_from_slice(&dim.to_le_bytes());
            }
            out.extend_from_slice(&tensor.dtype.to_le_bytes());
            out.extend_from_slice(&tensor.offset.unwrap_or(offset as u64).to_le_bytes());
            placed.push(offset);
            offset += tensor.data.len().div_ceil(ALIGNMENT) * ALIGNMENT;
        }
        out.resize(out.len().div_ceil(ALIGNMENT) * ALIGNMENT, 0);
        let start = out.len();
        for (tensor, at) in self.tensors.iter().zip(placed) {
            out.resize(start + at, 0);
            out.extend_from_slice(&tensor.data);
        }
        out.resize(start + offset, 0);
        out
    }
}

/// The byte-level BPE vocabulary of the tiny models: the 256 byte symbols (sorted) and two
/// ChatML tokens.
pub(crate) fn tiny_vocabulary() -> Vec<String> {
    let mut alphabet: Vec<char> = (0u8..=255)
        .map(|b| {
            // GPT-2's byte-to-unicode map.
            let printable = (b'!'..=b'~').contains(&b)
                || (0xA1..=0xAC).contains(&b)
                || (0xAE..=0xFF).contains(&b);
            if printable {
                char::from(b)
            } else {
                let shifted = (0u8..b)
                    .filter(|c| {
                        !((b'!'..=b'~').contains(c)
                            || (0xA1..=0xAC).contains(c)
                            || (0xAE..=0xFF).contains(c))
                    })
                    .count();
                char::from_u32(256 + shifted as u32).unwrap_or('?')
            }
        })
        .collect();
    alphabet.sort_unstable();
    let mut vocab: Vec<String> = alphabet.into_iter().map(String::from).collect();
    vocab.push("<|im_start|>".into());
    vocab.push("<|im_end|>".into());
    vocab
}

/// A 2-layer Llama GGUF (hidden 32, 4 heads, 2 KV heads, feed-forward 64, vocabulary 258)
/// with F32 weights and a byte-level BPE tokenizer in its metadata.
pub(crate) fn tiny_llama_gguf() -> GgufFile {
    let (hidden, ff, vocab, kv) = (32u64, 64u64, 258u64, 16u64);
    let tokens = tiny_vocabulary();
    let mut types = vec![1i32; 256];
    types.extend([3, 3]);
    let mut file = GgufFile::default();
    file.set("general.architecture", Meta::Str("llama".into()))
        .set("llama.block_count", Meta::U32(2))
        .set("llama.context_length", Meta::U32(2048))
        .set("llama.embedding_length", Meta::U32(hidden as u32))
        .set("llama.feed_forward_length", Meta::U32(ff as u32))
        .set("llama.attention.head_count", Meta::U32(4))
        .set("llama.attention.head_count_kv", Meta::U32(2))
        .set("llama.rope.dimension_count", Meta::U32(8))
        .set("llama.rope.freq_base", Meta::F32(10000.0))
        .set("llama.attention.layer_norm_rms_epsilon", Meta::F32(1e-5))
        .set("tokenizer.ggml.model", Meta::Str("gpt2".into()))
        .set("tokenizer.ggml.pre", Meta::Str("gpt2".into()))
        .set("tokenizer.ggml.tokens", Meta::Strs(tokens))
        .set("tokenizer.ggml.token_type", Meta::I32s(types))
        .set("tokenizer.ggml.merges", Meta::Strs(Vec::new()))
        .set("tokenizer.ggml.eos_token_id", Meta::U32(257));
    file.add_f32("token_embd.weight", &[vocab, hidden], 1)
        .add_f32("output_norm.weight", &[hidden], 2)
        .add_f32("output.weight", &[vocab, hidden], 3);
    for layer in 0..2u32 {
        let p = format!("blk.{layer}");
        let seed = 10 * (layer + 1);
        file.add_f32(&format!("{p}.attn_q.weight"), &[hidden, hidden], seed)
            .add_f32(&format!("{p}.attn_k.weight"), &[kv, hidden], seed + 1)
            .add_f32(&format!("{p}.attn_v.weight"), &[kv, hidden], seed + 2)
            .add_f32(
                &format!("{p}.attn_output.weight"),
                &[hidden, hidden],
                seed + 3,
            )
            .add_f32(&format!("{p}.ffn_gate.weight"), &[ff, hidden], seed + 4)
            .add_f32(&format!("{p}.ffn_down.weight"), &[hidden, ff], seed + 5)
            .add_f32(&format!("{p}.ffn_up.weight"), &[ff, hidden], seed + 6)
            .add_f32(&format!("{p}.attn_norm.weight"), &[hidden], seed + 7)
            .add_f32(&format!("{p}.ffn_norm.weight"), &[hidden], seed + 8);
    }
    file
}
