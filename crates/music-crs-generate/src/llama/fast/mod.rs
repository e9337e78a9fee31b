//! Our own CPU forward pass for GGUF files of the `llama` architecture (Llama 2/3, SmolLM2,
//! TinyLlama): the math of candle-transformers' `quantized_llama` (RMS norm with the file's
//! epsilon, interleaved rotary embedding, grouped-query attention with a causal mask, SiLU
//! gated MLP, logits of the last position only) on plain `f32` buffers, with the linear
//! layers on our Q8_0 kernels ([`q8`]).
//!
//! Weights: Q8_0 and Q4_1 tensors are used as stored (Q4_1 by a kernel of its own: decoding
//! reads every weight once per token, and Q4_1 is 5 bits a weight to Q8_0's 8.5); other block
//! types whose rows are whole Q8_0 blocks (Q4_0/Q5_x and the k-quants) are widened to Q8_0 at
//! load, as candle's own widening of Q4_1/Q5_x did; F32/F16/BF16 tensors stay f32. q/k/v and gate/up are stacked into one matrix each, so a layer runs four products.
//! Widening a k-quant file costs memory: Q8_0 takes 8.5 bits per weight (Q4_K_M ~4.8).
//!
//! The KV cache ([`KvCache`]) is a value per call: a list of shared chunks per layer, so
//! cloning it (the prefix cache does) copies no keys or values; a call appends to its own
//! last chunk in place. Each kv head's keys are kept in blocks of 16 positions,
//! dimension-major, its values position-major, each head's in a run of its own: attention
//! ([`vector`]) runs in tiles of up to [`ATTENTION_ROWS`] rows of a sequence by the query
//! heads of one kv head, so each key and value is loaded once per tile and 16 scores add
//! up in one register without a horizontal sum; softmax uses a vectorised exp. Each score
//! and output value is one chain of multiply-adds in a fixed order, so a row's numbers do
//! not depend on the other rows, sequences or chunk boundaries of the pass.

// The only unsafe code of the workspace (which denies it elsewhere): SIMD intrinsics behind
// run-time CPU feature checks, disjoint writes to one output buffer from several threads,
// and the team's jobs, which lend a borrowed closure to its threads until they are done.
#[allow(unsafe_code)]
mod q8;
#[allow(unsafe_code)]
mod silu;
#[allow(unsafe_code)]
mod team;
#[allow(unsafe_code)]
mod vector;

use std::ops::Range;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Result, bail};

use q8::{BLOCK, Q4Matrix, Q8Matrix, Q8Rows, Weights};
use vector::{KEY_BLOCK, Simd};

/// Multiply-adds of attention below which it runs on the calling thread.
const PARALLEL_ATTENTION: usize = 1 << 20;

/// The same when its tiles go to the spinning team ([`team`]).
const TEAM_ATTENTION: usize = 1 << 16;

/// Query rows of one sequence per attention tile.
const ATTENTION_ROWS: usize = 8;

/// A thread's [`Scratch`] is kept for its next pass up to this size (a pass over many
/// rows of a large model needs more, and gives it back).
const KEPT_SCRATCH_BYTES: usize = 256 << 20;

/// The buffers of a forward pass, reused by its layers and (per thread) by later passes:
/// a pass over many rows needs tens of MB, which the allocator would otherwise hand back to
/// the system and take again, page by zeroed page, every time.
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    normed: Vec<f32>,
    qkv: Vec<f32>,
    queries: Vec<f32>,
    keys: Vec<f32>,
    values: Vec<f32>,
    attended: Vec<f32>,
    projected: Vec<f32>,
    gate_up: Vec<f32>,
    gated: Vec<f32>,
    down: Vec<f32>,
    quantized: Q8Rows,
}

impl Scratch {
    /// The bytes its float buffers hold (the quantized input is a quarter of the largest).
    fn bytes(&self) -> usize {
        let floats = [
            &self.x,
            &self.normed,
            &self.qkv,
            &self.queries,
            &self.keys,
            &self.values,
            &self.attended,
            &self.projected,
            &self.gate_up,
            &self.gated,
            &self.down,
        ];
        4 * floats.iter().map(|v| v.capacity()).sum::<usize>()
    }
}

/// A linear layer's weights, `rows` outputs by `cols` inputs.
enum Linear {
    Q8(Q8Matrix),
    /// Q4_1 as stored.
    Q4(Q4Matrix),
    F32 {
        rows: usize,
        cols: usize,
        weights: Vec<f32>,
    },
}

impl Linear {
    fn load<R: std::io::Read + std::io::Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        name: &str,
        native_q4_1: bool,
    ) -> Result<Self> {
        let tensor = content.tensor(reader, name, &Device::Cpu)?;
        Self::from_qtensor(&tensor, name, native_q4_1)
    }

    fn from_qtensor(tensor: &QTensor, name: &str, native_q4_1: bool) -> Result<Self> {
        let (rows, cols) = tensor.shape().dims2()?;
        let dtype = tensor.dtype();
        let f32_weights = || -> Result<Linear> {
            Ok(Linear::F32 {
                rows,
                cols,
                weights: tensor
                    .dequantize(&Device::Cpu)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            })
        };
        if matches!(dtype, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16)
            || !cols.is_multiple_of(BLOCK)
        {
            return f32_weights();
        }
        if dtype == GgmlDType::Q4_1 && native_q4_1 {
            return match Q4Matrix::from_ggml_blocks(rows, cols, &tensor.data()?) {
                Some(matrix) => Ok(Linear::Q4(matrix)),
                None => bail!("{name}: unexpected Q4_1 data size"),
            };
        }
        let widened;
        let q8 = if dtype == GgmlDType::Q8_0 {
            tensor
        } else {
            widened = QTensor::quantize(&tensor.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?;
            &widened
        };
        match Q8Matrix::from_ggml_blocks(rows, cols, &q8.data()?) {
            Some(matrix) => Ok(Linear::Q8(matrix)),
            None => bail!("{name}: unexpected Q8_0 data size"),
        }
    }

    fn rows(&self) -> usize {
        match self {
            Linear::Q8(m) => m.rows(),
            Linear::Q4(m) => m.rows(),
            Linear::F32 { rows, .. } => *rows,
        }
    }

    fn cols(&self) -> usize {
        match self {
            Linear::Q8(m) => m.cols(),
            Linear::Q4(m) => m.cols(),
            Linear::F32 { cols, .. } => *cols,
        }
    }

    /// Row `row` as f32.
    fn row(&self, row: usize, out: &mut [f32]) {
        match self {
            Linear::Q8(m) => m.dequantize_row(row, out),
            Linear::Q4(m) => m.dequantize_row(row, out),
            Linear::F32 { cols, weights, .. } => {
                out.copy_from_slice(&weights[row * cols..(row + 1) * cols])
            }
        }
    }

    /// Layers of the same input size stacked: their outputs side by side. Parts of one
    /// block type stay in it; Q4_1 beside Q8_0 is widened to Q8_0; beside f32, all is f32.
    fn stacked(parts: Vec<Linear>) -> Linear {
        let cols = parts[0].cols();
        let dequantized = |part: &Linear| {
            let mut values = vec![0f32; part.rows() * cols];
            for (r, row) in values.chunks_exact_mut(cols).enumerate() {
                part.row(r, row);
            }
            values
        };
        if parts.iter().all(|part| matches!(part, Linear::Q4(_))) {
            let matrices: Vec<Q4Matrix> = parts
                .into_iter()
                .filter_map(|part| match part {
                    Linear::Q4(m) => Some(m),
                    _ => None,
                })
                .collect();
            return Linear::Q4(Q4Matrix::stacked(&matrices));
        }
        if parts.iter().all(|part| !matches!(part, Linear::F32 { .. })) {
            let matrices: Vec<Q8Matrix> = parts
                .into_iter()
                .map(|part| match part {
                    Linear::Q8(m) => m,
                    other => Q8Matrix::quantize(other.rows(), cols, &dequantized(&other)),
                })
                .collect();
            return Linear::Q8(Q8Matrix::stacked(&matrices));
        }
        let weights: Vec<f32> = parts.iter().flat_map(dequantized).collect();
        Linear::F32 {
            rows: weights.len() / cols,
            cols,
            weights,
        }
    }

    /// `m` rows of input (`m * cols`) to `m` rows of output (`m * rows`) in `out`, whose
    /// memory is reused, as `quantized`'s is for the quantized input.
    fn forward_into(&self, x: &[f32], m: usize, quantized: &mut Q8Rows, out: &mut Vec<f32>) {
        // Every output value is written below (each kernel covers all rows and columns):
        // only new length needs filling, so a buffer of the same size is not cleared.
        out.resize(m * self.rows(), 0.0);
        match self {
            Linear::Q8(w) => {
                quantized.quantize_from(x, m, w.cols());
                q8::matmul(quantized, w, out)
            }
            Linear::Q4(w) => {
                quantized.quantize_from(x, m, w.cols());
                q8::matmul(quantized, w, out)
            }
            Linear::F32 {
                rows,
                cols,
                weights,
            } => {
                for (xi, oi) in x.chunks_exact(*cols).zip(out.chunks_exact_mut(*rows)) {
                    for (o, w) in oi.iter_mut().zip(weights.chunks_exact(*cols)) {
                        *o = vector::dot(xi, w);
                    }
                }
            }
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Linear::Q8(m) => m.bytes(),
            Linear::Q4(m) => m.bytes(),
            Linear::F32 { weights, .. } => 4 * weights.len(),
        }
    }
}

struct Layer {
    attention_norm: Vec<f32>,
    /// q, k and v stacked.
    qkv: Linear,
    output: Linear,
    ffn_norm: Vec<f32>,
    /// gate and up stacked.
    gate_up: Linear,
    down: Linear,
}

/// Hyperparameters, as candle's `quantized_llama` reads them.
#[derive(Debug, Clone, Copy)]
struct Shape {
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    ffn: usize,
    eps: f32,
}

/// The model: immutable once loaded.
pub(crate) struct FastLlama {
    shape: Shape,
    embedding: Linear,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    /// `None`: the embedding matrix (tied weights).
    output: Option<Linear>,
    /// Rotary tables, `positions` x `head_dim / 2`.
    cos: Vec<f32>,
    sin: Vec<f32>,
    positions: usize,
}

/// Keys and values of the positions read so far, per layer: shared chunks, so a clone is
/// cheap and never copies them.
#[derive(Clone, Default)]
pub(crate) struct KvCache {
    layers: Vec<Vec<Arc<Chunk>>>,
    len: usize,
    /// Positions the cache is expected to reach ([`KvCache::plan`]): its own chunks take
    /// room for them at once instead of growing (and copying) as positions come.
    planned: usize,
}

/// Keys and values of consecutive positions from `start`, a multiple of [`KEY_BLOCK`].
#[derive(Clone)]
struct Chunk {
    start: usize,
    /// Positions held.
    len: usize,
    /// Per kv head, `[block of KEY_BLOCK positions][head_dim][position in the block]`, the
    /// last block padded with zeros: the layout of [`vector::block_scores`]. A head's keys
    /// lie in one run, which attention (a kv head at a time) reads straight through.
    keys: Vec<Vec<f32>>,
    /// Per kv head, `[position][head_dim]`.
    values: Vec<Vec<f32>>,
}

impl Chunk {
    /// An empty chunk of `kv_heads` heads from position `start`.
    fn new(start: usize, kv_heads: usize) -> Self {
        Chunk {
            start,
            len: 0,
            keys: vec![Vec::new(); kv_heads],
            values: vec![Vec::new(); kv_heads],
        }
    }

    /// Appends the keys and values (`head_dim` values of each of the chunk's kv heads a
    /// position, heads side by side) of the positions after this chunk's.
    fn extend(&mut self, keys: &[f32], values: &[f32], head_dim: usize) {
        let kv = self.keys.len() * head_dim;
        for (key, value) in keys.chunks_exact(kv).zip(values.chunks_exact(kv)) {
            let lane = self.len % KEY_BLOCK;
            for (head, (key, value)) in key
                .chunks_exact(head_dim)
                .zip(value.chunks_exact(head_dim))
                .enumerate()
            {
                let head_keys = &mut self.keys[head];
                if lane == 0 {
                    head_keys.resize(head_keys.len() + head_dim * KEY_BLOCK, 0.0);
                }
                let block = head_keys.len() - head_dim * KEY_BLOCK;
                for (d, &k) in key.iter().enumerate() {
                    head_keys[block + d * KEY_BLOCK + lane] = k;
                }
                self.values[head].extend_from_slice(value);
            }
            self.len += 1;
        }
    }

    /// The key and the value (heads side by side) of the chunk's `offset`-th position.
    fn position(&self, offset: usize, head_dim: usize) -> (Vec<f32>, Vec<f32>) {
        let block = offset / KEY_BLOCK * head_dim * KEY_BLOCK + offset % KEY_BLOCK;
        let key = (self.keys.iter())
            .flat_map(|head| (0..head_dim).map(move |d| head[block + d * KEY_BLOCK]))
            .collect();
        let value = (self.values.iter())
            .flat_map(|head| &head[offset * head_dim..(offset + 1) * head_dim])
            .copied()
            .collect();
        (key, value)
    }

    /// Makes room for the chunk to hold `positions` in all, at once.
    fn reserve(&mut self, positions: usize, head_dim: usize) {
        let key_room = positions.div_ceil(KEY_BLOCK) * KEY_BLOCK * head_dim;
        for keys in &mut self.keys {
            keys.reserve_exact(key_room.saturating_sub(keys.len()));
        }
        for values in &mut self.values {
            values.reserve_exact((positions * head_dim).saturating_sub(values.len()));
        }
    }
}

impl KvCache {
    /// Expects the cache to reach `positions` (a prompt and its reply's tokens): the chunks
    /// it writes from now on take room for them at once.
    pub(crate) fn plan(&mut self, positions: usize) {
        self.planned = positions;
    }

    /// Appends keys and values (`kv_heads * head_dim` a position) to `layer` after the
    /// cache's positions: in place when this cache owns its last chunk. A new chunk starts
    /// at a block boundary, with a copy of the shared chunk's last, partly filled block (at
    /// most 15 positions), so every key block lies whole in one chunk.
    fn append(
        &mut self,
        layer: usize,
        keys: &[f32],
        values: &[f32],
        kv_heads: usize,
        head_dim: usize,
    ) {
        let position = self.len;
        let chunks = &mut self.layers[layer];
        if chunks.last_mut().and_then(Arc::get_mut).is_none() {
            let start = position / KEY_BLOCK * KEY_BLOCK;
            let mut chunk = Chunk::new(start, kv_heads);
            if let Some(shared) = chunks.last()
                && start < position
            {
                for offset in start - shared.start..position - shared.start {
                    let (key, value) = shared.position(offset, head_dim);
                    chunk.extend(&key, &value, head_dim);
                }
            }
            chunks.push(Arc::new(chunk));
        }
        let last = chunks.last_mut().and_then(Arc::get_mut).expect("owned");
        debug_assert_eq!(last.start + last.len, position);
        let count = values.len() / (kv_heads * head_dim);
        if self.planned > position + count {
            // Room up to the planned length at once; an unplanned cache grows as a `Vec`
            // does (exact reservations there would copy it at every append).
            last.reserve(self.planned - last.start, head_dim);
        }
        last.extend(keys, values, head_dim);
    }

    /// The chunks that hold `layer`'s keys and values of positions `0..end`, each with the
    /// positions it gives (a later chunk's copy of a block replaces the earlier one's).
    fn spans(&self, layer: usize, end: usize) -> Vec<(&Chunk, Range<usize>)> {
        let chunks = &self.layers[layer];
        let mut spans = Vec::with_capacity(chunks.len());
        for (i, chunk) in chunks.iter().enumerate() {
            let until = chunks
                .get(i + 1)
                .map_or(chunk.start + chunk.len, |next| next.start)
                .min(end);
            if chunk.start < until {
                spans.push((&**chunk, chunk.start..until));
            }
        }
        spans
    }
}

fn metadata_u32(content: &gguf_file::Content, key: &str) -> Result<usize> {
    match content.metadata.get(key) {
        Some(value) => Ok(value.to_u32()? as usize),
        None => bail!("cannot find {key} in metadata"),
    }
}

impl FastLlama {
    /// Bytes a sequence's KV cache holds per position: f32 keys and values of every layer.
    pub(crate) fn kv_bytes_per_position(&self) -> usize {
        let Shape {
            kv_heads, head_dim, ..
        } = self.shape;
        self.layers.len() * 2 * kv_heads * head_dim * std::mem::size_of::<f32>()
    }

    /// Loads a checked GGUF file of the `llama` architecture; rotary tables for `positions`.
    ///
    /// `native_q4_1: false` widens Q4_1 to Q8_0 as well, as candle's path did (the same
    /// weights as candle's model: the tests compare replies so).
    pub(crate) fn from_gguf<R: std::io::Read + std::io::Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        positions: usize,
        native_q4_1: bool,
    ) -> Result<Self> {
        let heads = metadata_u32(content, "llama.attention.head_count")?;
        let kv_heads = metadata_u32(content, "llama.attention.head_count_kv")?;
        let blocks = metadata_u32(content, "llama.block_count")?;
        let hidden = metadata_u32(content, "llama.embedding_length")?;
        let rope_dim = metadata_u32(content, "llama.rope.dimension_count")?;
        let eps = match content
            .metadata
            .get("llama.attention.layer_norm_rms_epsilon")
        {
            Some(value) => value.to_f32()?,
            None => bail!("cannot find llama.attention.layer_norm_rms_epsilon in metadata"),
        };
        let freq_base = content
            .metadata
            .get("llama.rope.freq_base")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(10000.0);
        if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) || hidden % heads != 0 {
            bail!("inconsistent head counts {heads} / {kv_heads} for {hidden}");
        }
        let head_dim = hidden / heads;
        if rope_dim != head_dim || !head_dim.is_multiple_of(2) {
            bail!("rope dimension {rope_dim} differs from the head size {head_dim}");
        }
        let vector = |reader: &mut R, name: &str| -> Result<Vec<f32>> {
            content
                .tensor(reader, name, &Device::Cpu)?
                .dequantize(&Device::Cpu)?
                .flatten_all()?
                .to_vec1::<f32>()
        };
        let load = |reader: &mut R, name: &str| Linear::load(content, reader, name, native_q4_1);
        let embedding = load(reader, "token_embd.weight")?;
        let norm = vector(reader, "output_norm.weight")?;
        let output = if content.tensor_infos.contains_key("output.weight") {
            Some(load(reader, "output.weight")?)
        } else {
            None
        };
        let mut layers = Vec::with_capacity(blocks);
        let mut ffn = 0;
        for layer in 0..blocks {
            let name = |part: &str| format!("blk.{layer}.{part}.weight");
            let mut part = |part: &str| load(reader, &name(part));
            let (q, k, v) = (part("attn_q")?, part("attn_k")?, part("attn_v")?);
            let output = part("attn_output")?;
            let (gate, up, down) = (part("ffn_gate")?, part("ffn_up")?, part("ffn_down")?);
            let kv = kv_heads * head_dim;
            if q.rows() != hidden || k.rows() != kv || v.rows() != kv || q.cols() != hidden {
                bail!("blk.{layer}: attention weights do not match the head counts");
            }
            ffn = gate.rows();
            if up.rows() != ffn || down.cols() != ffn || down.rows() != hidden {
                bail!("blk.{layer}: feed-forward weights of mismatched sizes");
            }
            layers.push(Layer {
                attention_norm: vector(reader, &name("attn_norm"))?,
                qkv: Linear::stacked(vec![q, k, v]),
                output,
                ffn_norm: vector(reader, &name("ffn_norm"))?,
                gate_up: Linear::stacked(vec![gate, up]),
                down,
            });
        }
        // candle's tables: theta_i = 1 / base^(2i / d) and angle = position * theta_i, in f32.
        let half = head_dim / 2;
        let theta: Vec<f32> = (0..head_dim)
            .step_by(2)
            .map(|i| 1f32 / freq_base.powf(i as f32 / head_dim as f32))
            .collect();
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for position in 0..positions {
            for &t in &theta {
                let angle = position as f32 * t;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let model = FastLlama {
            shape: Shape {
                hidden,
                heads,
                kv_heads,
                head_dim,
                ffn,
                eps,
            },
            embedding,
            layers,
            norm,
            output,
            cos,
            sin,
            positions,
        };
        let allowed = Simd::allowed();
        let capped = if allowed < Simd::Avx512 {
            format!(", capped at {allowed:?} by {}", vector::SIMD_VARIABLE)
        } else {
            String::new()
        };
        tracing::info!(
            "llama forward: {} MB of weights ({:?} kernels{capped}; the same bits at every level)",
            model.weight_bytes() / 1_000_000,
            q8::Kernel::detect()
        );
        Ok(model)
    }

    fn weight_bytes(&self) -> usize {
        let layers: usize = self
            .layers
            .iter()
            .map(|l| l.qkv.bytes() + l.output.bytes() + l.gate_up.bytes() + l.down.bytes())
            .sum();
        layers + self.embedding.bytes() + self.output.as_ref().map_or(0, Linear::bytes)
    }

    /// An empty KV cache for this model.
    pub(crate) fn empty_cache(&self) -> KvCache {
        KvCache {
            layers: vec![Vec::new(); self.layers.len()],
            len: 0,
            planned: 0,
        }
    }

    /// Reads `tokens` at `position` (which must be the cache's length) into `cache`; returns
    /// the logits of the last token.
    pub(crate) fn forward(
        &self,
        tokens: &[u32],
        position: usize,
        cache: &mut KvCache,
    ) -> Result<Vec<f32>> {
        let mut logits = self.pass_at(tokens, position, cache, true)?;
        Ok(logits.pop().unwrap_or_default())
    }

    /// [`FastLlama::forward`] without the logits (a prompt's chunk before its last one):
    /// the output layer, a product as large as several layers' for one row, is skipped.
    pub(crate) fn read(&self, tokens: &[u32], position: usize, cache: &mut KvCache) -> Result<()> {
        self.pass_at(tokens, position, cache, false).map(drop)
    }

    /// One sequence's [`FastLlama::pass`], which must start at the cache's end.
    fn pass_at(
        &self,
        tokens: &[u32],
        position: usize,
        cache: &mut KvCache,
        logits: bool,
    ) -> Result<Vec<Vec<f32>>> {
        if position != cache.len {
            bail!(
                "reading at position {position}, but the cache holds {} positions",
                cache.len
            );
        }
        self.pass(tokens, &[tokens.len()], &mut [cache], logits)
    }

    /// Several sequences at once: `counts[s]` tokens of `tokens` (in order) read into
    /// `caches[s]` after the positions it holds; returns the logits of each sequence's last
    /// token. The rows of all sequences share every product (each weight is read once per
    /// step, not once per sequence); attention is per sequence. Each row's numbers are those
    /// of reading its sequence alone (the kernels treat rows independently).
    pub(crate) fn forward_many(
        &self,
        tokens: &[u32],
        counts: &[usize],
        caches: &mut [&mut KvCache],
    ) -> Result<Vec<Vec<f32>>> {
        self.pass(tokens, counts, caches, true)
    }

    /// [`FastLlama::forward_many`], with the logits only when `logits` (else none), on
    /// this thread's [`Scratch`].
    fn pass(
        &self,
        tokens: &[u32],
        counts: &[usize],
        caches: &mut [&mut KvCache],
        logits: bool,
    ) -> Result<Vec<Vec<f32>>> {
        std::thread_local! {
            static SCRATCH: std::cell::Cell<Option<Box<Scratch>>> = const { std::cell::Cell::new(None) };
        }
        // Taken, not borrowed: a pass that waits for its threads may run another thread's
        // pass meanwhile (rayon steals work), which then takes a new scratch of its own.
        let mut scratch = SCRATCH.take().unwrap_or_default();
        let result = self.pass_with(&mut scratch, tokens, counts, caches, logits);
        if scratch.bytes() <= KEPT_SCRATCH_BYTES {
            SCRATCH.set(Some(scratch));
        }
        result
    }

    fn pass_with(
        &self,
        scratch: &mut Scratch,
        tokens: &[u32],
        counts: &[usize],
        caches: &mut [&mut KvCache],
        logits: bool,
    ) -> Result<Vec<Vec<f32>>> {
        let Shape {
            hidden,
            heads: _,
            kv_heads,
            head_dim,
            ffn,
            eps,
        } = self.shape;
        let m = tokens.len();
        if counts.len() != caches.len() || counts.contains(&0) || counts.iter().sum::<usize>() != m
        {
            bail!(
                "{m} tokens do not split into {counts:?} for {} caches",
                caches.len()
            );
        }
        // (sequence, position) of every row.
        let mut rows = Vec::with_capacity(m);
        for (sequence, (&count, cache)) in counts.iter().zip(caches.iter()).enumerate() {
            if cache.layers.len() != self.layers.len() {
                bail!("the KV cache belongs to another model");
            }
            if cache.len + count > self.positions {
                bail!(
                    "positions up to {} exceed the rotary table of {}",
                    cache.len + count,
                    self.positions
                );
            }
            rows.extend((cache.len..cache.len + count).map(|position| (sequence, position)));
        }
        let vocab = self.embedding.rows();
        let Scratch {
            x,
            normed,
            qkv,
            queries,
            keys,
            values,
            attended,
            projected,
            gate_up,
            gated,
            down,
            quantized,
        } = scratch;
        // Each buffer's values are all written before they are read (the embedding rows,
        // the norms, products and copies below cover every row and column), so a buffer
        // only grows, never clears.
        x.resize(m * hidden, 0.0);
        for (&token, row) in tokens.iter().zip(x.chunks_exact_mut(hidden)) {
            if token as usize >= vocab {
                bail!("token {token} outside the vocabulary of {vocab}");
            }
            self.embedding.row(token as usize, row);
        }
        let kv = kv_heads * head_dim;
        normed.resize(m * hidden, 0.0);
        queries.resize(m * hidden, 0.0);
        keys.resize(m * kv, 0.0);
        values.resize(m * kv, 0.0);
        let simd = Simd::detect();
        for (index, layer) in self.layers.iter().enumerate() {
            rms_norm(x, &layer.attention_norm, eps, normed);
            layer.qkv.forward_into(normed, m, quantized, qkv);
            let width = hidden + 2 * kv;
            for (i, &(_, position)) in rows.iter().enumerate() {
                let row = &qkv[i * width..(i + 1) * width];
                queries[i * hidden..(i + 1) * hidden].copy_from_slice(&row[..hidden]);
                keys[i * kv..(i + 1) * kv].copy_from_slice(&row[hidden..hidden + kv]);
                values[i * kv..(i + 1) * kv].copy_from_slice(&row[hidden + kv..]);
                self.rope(&mut queries[i * hidden..(i + 1) * hidden], position);
                self.rope(&mut keys[i * kv..(i + 1) * kv], position);
            }
            let mut start = 0;
            for (&count, cache) in counts.iter().zip(caches.iter_mut()) {
                let range = start * kv..(start + count) * kv;
                cache.append(
                    index,
                    &keys[range.clone()],
                    &values[range],
                    kv_heads,
                    head_dim,
                );
                start += count;
            }
            let spans: Vec<_> = caches
                .iter()
                .map(|cache| cache.spans(index, usize::MAX))
                .collect();
            self.attention(queries, &rows, &spans, attended);
            layer.output.forward_into(attended, m, quantized, projected);
            for (x, p) in x.iter_mut().zip(projected.iter()) {
                *x += p;
            }
            rms_norm(x, &layer.ffn_norm, eps, normed);
            layer.gate_up.forward_into(normed, m, quantized, gate_up);
            gated.resize(m * ffn, 0.0);
            for (row, out) in gate_up
                .chunks_exact(2 * ffn)
                .zip(gated.chunks_exact_mut(ffn))
            {
                let (gate, up) = row.split_at(ffn);
                silu::gated(simd, gate, up, out);
            }
            layer.down.forward_into(gated, m, quantized, down);
            for (x, d) in x.iter_mut().zip(down.iter()) {
                *x += d;
            }
        }
        for (&count, cache) in counts.iter().zip(caches.iter_mut()) {
            cache.len += count;
        }
        if !logits {
            return Ok(Vec::new());
        }
        let mut last_rows = Vec::with_capacity(counts.len() * hidden);
        let mut end = 0;
        for &count in counts {
            end += count;
            last_rows.extend_from_slice(&x[(end - 1) * hidden..end * hidden]);
        }
        let mut normed_last = vec![0f32; last_rows.len()];
        rms_norm(&last_rows, &self.norm, eps, &mut normed_last);
        let mut logits = Vec::new();
        self.output
            .as_ref()
            .unwrap_or(&self.embedding)
            .forward_into(&normed_last, counts.len(), quantized, &mut logits);
        Ok(logits.chunks_exact(vocab).map(<[f32]>::to_vec).collect())
    }

    /// Rotates every head of `row` in place for `position` (interleaved pairs, as
    /// candle's `rope_i` and llama.cpp's NORM mode).
    fn rope(&self, row: &mut [f32], position: usize) {
        let half = self.shape.head_dim / 2;
        let cos = &self.cos[position * half..(position + 1) * half];
        let sin = &self.sin[position * half..(position + 1) * half];
        for head in row.chunks_exact_mut(self.shape.head_dim) {
            for (pair, (&c, &s)) in head.chunks_exact_mut(2).zip(cos.iter().zip(sin)) {
                let (a, b) = (pair[0], pair[1]);
                pair[0] = a * c - b * s;
                pair[1] = a * s + b * c;
            }
        }
    }

    /// Causal grouped-query attention of the queries of `rows` (sequence, position) over
    /// the cached keys and values of their sequence (the new ones included; `spans` per
    /// sequence, as [`KvCache::spans`] gives them); returns `rows x hidden`.
    ///
    /// Tiles of up to [`ATTENTION_ROWS`] consecutive rows of one sequence by one kv head
    /// (with all its query heads): each key and value is read once per tile. A row's numbers
    /// never depend on its tile: each score and output value is one chain of multiply-adds
    /// in a fixed order, and the positions a row does not see get weight 0, which adds
    /// exactly nothing.
    fn attention(
        &self,
        queries: &[f32],
        rows: &[(usize, usize)],
        spans: &[Vec<(&Chunk, Range<usize>)>],
        attended: &mut Vec<f32>,
    ) {
        let Shape {
            hidden,
            heads,
            kv_heads,
            head_dim,
            ..
        } = self.shape;
        let group = heads / kv_heads;
        let scale = 1.0 / (head_dim as f32).sqrt();
        let simd = Simd::detect();
        // (rows, kv head) of each tile.
        let mut tiles = Vec::new();
        let mut first = 0;
        while first < rows.len() {
            let sequence = rows[first].0;
            let mut end = first + 1;
            while end < rows.len() && rows[end].0 == sequence && end - first < ATTENTION_ROWS {
                end += 1;
            }
            tiles.extend((0..kv_heads).map(|kv_head| (first..end, kv_head)));
            first = end;
        }
        // A tile's outputs, `[row][query head of the group][head_dim]`.
        let tile = |(gathered, scores): &mut (Vec<f32>, Vec<f32>),
                    (range, kv_head): &(Range<usize>, usize)|
         -> Vec<f32> {
            let tile_rows = &rows[range.clone()];
            let n = tile_rows.len() * group;
            let heads_of_group = *kv_head * group * head_dim..(*kv_head + 1) * group * head_dim;
            gathered.clear();
            for i in range.clone() {
                gathered.extend_from_slice(&queries[i * hidden..][heads_of_group.clone()]);
            }
            let end = tile_rows.iter().map(|&(_, p)| p + 1).max().unwrap_or(0);
            let stride = end.div_ceil(KEY_BLOCK) * KEY_BLOCK;
            scores.clear();
            scores.resize(n * stride, 0.0);
            let spans = &spans[tile_rows[0].0];
            let seen = || {
                spans
                    .iter()
                    .filter(|(_, positions)| positions.start < end)
                    .map(|(chunk, positions)| (chunk, positions.start..positions.end.min(end)))
            };
            for (chunk, positions) in seen() {
                let first_block = positions.start / KEY_BLOCK;
                let blocks = positions.end.div_ceil(KEY_BLOCK) - first_block;
                let offset = (first_block - chunk.start / KEY_BLOCK) * head_dim * KEY_BLOCK;
                vector::block_scores(
                    simd,
                    gathered,
                    head_dim,
                    &chunk.keys[*kv_head][offset..],
                    head_dim * KEY_BLOCK,
                    blocks,
                    scale,
                    &mut scores[positions.start..],
                    stride,
                );
            }
            let sums: Vec<f32> = scores
                .chunks_exact_mut(stride)
                .enumerate()
                .map(|(q, row)| {
                    let visible = tile_rows[q / group].1 + 1;
                    vector::softmax_numerators(simd, row, visible)
                })
                .collect();
            let mut out = vec![0f32; n * head_dim];
            for (chunk, positions) in seen() {
                let offset = (positions.start - chunk.start) * head_dim;
                vector::weighted_sums(
                    simd,
                    &scores[positions.start..],
                    stride,
                    positions.len(),
                    &chunk.values[*kv_head][offset..],
                    head_dim,
                    &mut out,
                    head_dim,
                );
            }
            for (row, sum) in out.chunks_exact_mut(head_dim).zip(sums) {
                let inverse = 1.0 / sum;
                for o in row {
                    *o *= inverse;
                }
            }
            out
        };
        // Decoding's attention is small next to its products: rayon's threads would mostly
        // wait (the spinning team's start at once).
        let work = rows.iter().map(|&(_, p)| p + 1).sum::<usize>() * heads * head_dim;
        let here = team::here();
        let smallest = if here.spinning() {
            TEAM_ATTENTION
        } else {
            PARALLEL_ATTENTION
        };
        let outputs: Vec<Vec<f32>> = if here.threads() > 1 && tiles.len() > 1 && work >= smallest {
            std::thread_local! {
                static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = Default::default();
            }
            let slots: Vec<std::sync::OnceLock<Vec<f32>>> =
                tiles.iter().map(|_| Default::default()).collect();
            here.for_each_piece(tiles.len(), &|index| {
                let out = SCRATCH.with_borrow_mut(|scratch| tile(scratch, &tiles[index]));
                let _ = slots[index].set(out);
            });
            slots
                .into_iter()
                .map(|slot| slot.into_inner().expect("every tile ran once"))
                .collect()
        } else {
            let mut scratch = Default::default();
            tiles.iter().map(|t| tile(&mut scratch, t)).collect()
        };
        // The tiles cover every row and every head: all of `attended` is written.
        attended.resize(rows.len() * hidden, 0.0);
        let width = group * head_dim;
        for ((range, kv_head), out) in tiles.iter().zip(outputs) {
            for (i, out) in range.clone().zip(out.chunks_exact(width)) {
                attended[i * hidden + kv_head * width..][..width].copy_from_slice(out);
            }
        }
    }
}

/// candle's `rms_norm`: `x / sqrt(mean(x^2) + eps) * weight`, per row.
fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let dim = weight.len();
    for (row, out) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let sum2: f32 = row.iter().map(|v| v * v).sum();
        let m = (sum2 / dim as f32 + eps).sqrt();
        for ((o, &v), &w) in out.iter_mut().zip(row).zip(weight) {
            *o = v / m * w;
        }
    }
}

#[cfg(test)]
mod tests;
