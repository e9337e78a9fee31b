//! The Candle chat-model backend (feature `llama`): Llama-architecture safetensors
//! checkpoints (`candle_transformers::models::llama`) and GGUF files of the architectures
//! [`Architecture`] lists, chosen by their `general.architecture`: `llama`
//! (`quantized_llama`), `qwen2` (`quantized_qwen2`), `qwen3` (`quantized_qwen3`), `gemma3`
//! (`quantized_gemma3`) and `phi3` (`quantized_phi3`). The name `llama` (feature, module,
//! [`LlamaGenerator`], `kind = "llama"`) names the backend, as in llama.cpp, not the
//! architecture. On CPU, `llama` GGUF files run our own forward pass instead of
//! `quantized_llama` (`fast`: the same math on plain buffers, Q4_1 and Q8_0 weights as stored
//! on AVX-512 VNNI / AVX2 kernels); on a GPU, candle's.
//!
//! The prompt is rendered from the model's own Jinja chat template (see
//! [`chat_template`](crate::chat_template)); a model without one falls back to a built-in
//! template chosen from its special tokens (logged). Replies end at the file's end-of-sequence
//! token and at the template's end-of-turn token (the special token it writes after an
//! assistant message: `<|im_end|>`, `<end_of_turn>`, `<|end|>`, `<|eot_id|>`).
//!
//! The model is immutable once loaded; each call starts from its own KV state and its own
//! seeded sampler, so one [`LlamaGenerator`] serves many threads and a reply never depends on
//! what ran before.
//!
//! # Prefix reuse
//!
//! Prompts of one run share long beginnings: the system message, and within a session the
//! history up to the previous turn's user message. The prompt is therefore read in chunks
//! that end at message boundaries, and the KV state after the system message and after the
//! last user message is kept in a small least-recently-used cache
//! ([`LlamaParams::prefix_cache_entries`]). A later call whose prompt starts with a saved
//! chunk clones that state (candle tensors are shared, never written in place) and reads only
//! the rest. A saved state is reused only where the new prompt is split anyway, so a warm
//! call runs exactly the same tensor operations as a cold one and gives bit-identical logits;
//! with candle's networks chunks start at multiples of [`PREFILL_ALIGNMENT`] tokens, where
//! candle's chunked prefill also matches a single pass over the whole prompt (bit for bit with
//! quantized weights, as GGUF releases store them; with F32 matrices, to rounding: ~1e-8 on a
//! tiny model, since candle's F32 matmul sums in an order that depends on the rows of a pass).
//! Our own forward pass (`fast`) gives every row the same bits however a pass groups them, so
//! its chunks end exactly at the messages' ends.
//!
//! Prefix reuse needs a KV state that can be copied and a model that reads a prompt in
//! chunks. Where candle's model lacks either, reuse is off for it (logged once at load) and
//! each prompt is read in one pass:
//!
//! | architecture | KV state per call | prefix reuse |
//! | --- | --- | --- |
//! | Llama (safetensors and GGUF) | a clone (tensors, or our forward's key and value chunks, shared) | on |
//! | Gemma 3 | a clone | off: candle's Gemma 3 cannot read a chunk after a cached prefix (its mask joins an `f32` block to a `u32` one) |
//! | Phi-3 | a clone of the empty cache | off: its KV cache is written in place, so copies of a filled cache would share and overwrite one buffer |
//! | Qwen2 | one state, lent to one call at a time | off: candle's Qwen2 weights cannot be cloned |
//! | Qwen3 | one state, lent to one call at a time | off: on CPU its KV cache is a buffer of 4,096 positions per layer that each copy duplicates whole (~0.9 GB for Qwen3-0.6B) |
//!
//! A model with one lent state answers one call at a time (calls from other threads wait);
//! the others answer concurrent calls independently.

mod device;
mod fast;
mod fit;
mod gguf_tokenizer;
#[cfg(feature = "hub")]
mod hub;
mod phases;
mod weights;

pub use phases::PhaseTimes;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::llama as full;
use candle_transformers::models::{
    quantized_gemma3, quantized_llama, quantized_phi3, quantized_qwen2, quantized_qwen3,
};
use music_crs_core::GenerationRequest;
use tokenizers::Tokenizer;

use crate::chat_template::{ChatTemplate, JinjaTemplate, PromptTemplate};
use crate::config::{LlamaParams, ModelSource, ReplyFallback};
pub use crate::model_check::Architecture;
use crate::model_check::GgufHeader;
use crate::prompt::{ChatMessage, TRACKS_IN_PROMPT, build_chat};
use crate::reply_check::ReplyCheck;
use crate::template::{TemplateGenerator, mix_seed};
use crate::{CheckedReply, Error, Generator, Result};

/// What one completion produced and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The reply, special tokens removed and whitespace trimmed (may be empty).
    pub text: String,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Leading prompt tokens whose KV state came from the prefix cache (not read again).
    pub reused_prompt_tokens: usize,
    /// Tokens generated (the end token not counted).
    pub generated_tokens: usize,
    /// True when the model emitted an end token (false: `max_new_tokens` reached).
    pub stopped: bool,
    /// Seconds spent on the prompt (prefill of the tokens not reused).
    pub prompt_seconds: f64,
    /// Seconds spent generating tokens after the prompt.
    pub generation_seconds: f64,
}

impl Completion {
    /// Generated tokens per second over the whole call, prompt included (the figure the
    /// llama.cpp peer benchmark reports).
    pub fn tokens_per_second(&self) -> f64 {
        let seconds = self.prompt_seconds + self.generation_seconds;
        if seconds > 0.0 {
            self.generated_tokens as f64 / seconds
        } else {
            0.0
        }
    }
}

/// A quantized model whose KV state is copied per call: each call clones the weights
/// (tensors shared) with an empty cache. Llama and Gemma 3 append to their cache by making
/// new tensors; Phi-3 writes into a buffer it allocates when a call reads position 0, so
/// each call writes its own (and a filled Phi-3 state is never copied: no prefix reuse).
#[derive(Clone)]
enum Quantized {
    Llama(quantized_llama::ModelWeights),
    Gemma3(quantized_gemma3::ModelWeights),
    Phi3(quantized_phi3::ModelWeights),
}

impl Quantized {
    /// An empty KV state. The loaded weights never run themselves, so their clones start
    /// empty; Llama's is cleared anyway, and the others reset their cache whenever a call
    /// reads position 0, as every call does first.
    fn empty(&self) -> Self {
        let mut state = self.clone();
        if let Quantized::Llama(weights) = &mut state {
            weights.clear_kv_cache();
        }
        state
    }

    fn forward(&mut self, input: &Tensor, position: usize) -> candle_core::Result<Tensor> {
        match self {
            Quantized::Llama(weights) => weights.forward(input, position),
            Quantized::Gemma3(weights) => weights.forward(input, position),
            Quantized::Phi3(weights) => weights.forward(input, position),
        }
    }
}

/// A quantized model with one KV state, lent to one call at a time.
enum Locked {
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
}

impl Locked {
    fn clear(&mut self) {
        match self {
            Locked::Qwen2(weights) => weights.clear_kv_cache(),
            Locked::Qwen3(weights) => weights.clear_kv_cache(),
        }
    }

    fn forward(&mut self, input: &Tensor, position: usize) -> candle_core::Result<Tensor> {
        match self {
            Locked::Qwen2(weights) => weights.forward(input, position),
            Locked::Qwen3(weights) => weights.forward(input, position),
        }
    }
}

/// Which forward pass runs a GGUF `llama` file on CPU.
#[derive(Debug, Clone, Copy)]
enum LlamaForward {
    /// Ours ([`fast`]); `native_q4_1: false` widens Q4_1 weights to Q8_0 as candle's
    /// path does (its very weights).
    Own { native_q4_1: bool },
    /// candle's `quantized_llama` (on the widened file).
    #[cfg_attr(not(test), allow(dead_code))]
    Candle,
}

/// The loaded network.
enum Network {
    Full {
        model: full::Llama,
        /// An empty cache, cloned per call.
        cache: full::Cache,
    },
    Quantized(Quantized),
    /// Our own forward pass for GGUF `llama` files on CPU ([`fast`]).
    Fast(fast::FastLlama),
    Locked(Mutex<Locked>),
}

/// A KV state that can be saved and copied. Cloning is cheap: it shares the tensors, which
/// candle never changes in place (appending makes new ones).
#[derive(Clone)]
enum KvState {
    Full(full::Cache),
    /// candle keeps a quantized model's cache inside the weights struct; its clone shares
    /// the weights.
    Quantized(Quantized),
    /// Shared chunks of keys and values.
    Fast(fast::KvCache),
}

/// The KV state one call works on (one short-lived value per call: not worth boxing).
#[allow(clippy::large_enum_variant)]
enum CallState<'a> {
    Owned(KvState),
    Lent(MutexGuard<'a, Locked>),
}

impl CallState<'_> {
    /// The state, when it can be saved for prefix reuse.
    fn saveable(&self) -> Option<&KvState> {
        match self {
            CallState::Owned(state) => Some(state),
            CallState::Lent(_) => None,
        }
    }
}

impl Network {
    /// Where a prompt may be split into chunks with every logit unchanged: multiples of
    /// [`PREFILL_ALIGNMENT`] for candle's networks; anywhere for our own forward pass, whose
    /// rows never depend on how a pass groups them (so a saved prefix ends exactly at its
    /// message and a later prompt reads only what is new).
    fn split_alignment(&self) -> usize {
        match self {
            Network::Fast(_) => 1,
            _ => PREFILL_ALIGNMENT,
        }
    }

    /// Why prompt prefixes cannot be reused with this network (see the module docs), or
    /// `None` when they can.
    fn prefix_reuse_off(&self) -> Option<&'static str> {
        match self {
            Network::Full { .. } | Network::Quantized(Quantized::Llama(_)) | Network::Fast(_) => {
                None
            }
            Network::Quantized(Quantized::Gemma3(_)) => {
                Some("candle's Gemma 3 cannot read a prompt chunk after a cached prefix")
            }
            Network::Quantized(Quantized::Phi3(_)) => Some(
                "candle's Phi-3 writes its KV cache in place, so saved copies would share one buffer",
            ),
            Network::Locked(locked) => match *lock(locked) {
                Locked::Qwen2(_) => Some("candle's Qwen2 weights cannot be cloned"),
                Locked::Qwen3(_) => Some(
                    "candle's Qwen3 keeps a preallocated KV buffer per layer that every copy would duplicate",
                ),
            },
        }
    }

    /// A fresh KV state for one call (for a lent state: waits for the other calls).
    fn begin(&self) -> CallState<'_> {
        match self {
            Network::Full { cache, .. } => CallState::Owned(KvState::Full(cache.clone())),
            Network::Quantized(weights) => CallState::Owned(KvState::Quantized(weights.empty())),
            Network::Fast(model) => CallState::Owned(KvState::Fast(model.empty_cache())),
            Network::Locked(locked) => {
                let mut guard = lock(locked);
                guard.clear();
                CallState::Lent(guard)
            }
        }
    }

    /// Ends a call: a lent state is emptied (its memory freed) before the next call gets it.
    fn finish(&self, state: CallState<'_>) {
        if let CallState::Lent(mut guard) = state {
            guard.clear();
        }
    }

    /// Reads `tokens` at `position` into `state`; returns the logits of the last one as a
    /// 1-D f32 tensor.
    fn forward(
        &self,
        device: &Device,
        state: &mut CallState<'_>,
        tokens: &[u32],
        position: usize,
    ) -> candle_core::Result<Tensor> {
        let input = Tensor::new(tokens, device)?.unsqueeze(0)?;
        let logits = match (self, state) {
            (Network::Full { model, .. }, CallState::Owned(KvState::Full(cache))) => {
                model.forward(&input, position, cache)?
            }
            (Network::Quantized(_), CallState::Owned(KvState::Quantized(weights))) => {
                weights.forward(&input, position)?
            }
            (Network::Fast(model), CallState::Owned(KvState::Fast(cache))) => {
                let logits = model.forward(tokens, position, cache)?;
                return Tensor::new(logits, device);
            }
            (Network::Locked(_), CallState::Lent(weights)) => weights.forward(&input, position)?,
            _ => candle_core::bail!("the KV state does not belong to this network"),
        };
        logits.squeeze(0)?.to_dtype(DType::F32)
    }

    /// [`Network::forward`] where the logits are not needed (a prompt's chunks before its
    /// last): our forward pass skips the output layer; candle's networks compute it anyway.
    fn read(
        &self,
        device: &Device,
        state: &mut CallState<'_>,
        tokens: &[u32],
        position: usize,
    ) -> candle_core::Result<()> {
        match (self, state) {
            (Network::Fast(model), CallState::Owned(KvState::Fast(cache))) => {
                model.read(tokens, position, cache)
            }
            (_, state) => self.forward(device, state, tokens, position).map(drop),
        }
    }
}

/// The locked state, even after a panic in another call (each call clears it first).
fn lock(locked: &Mutex<Locked>) -> MutexGuard<'_, Locked> {
    locked
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Loads the quantized model of `architecture` from `content`. The trained context is capped
/// at `positions` where candle sizes rotary tables or KV buffers by it (only positions a
/// call can reach are needed), and Qwen3's rotary tables are built in f32 (candle's default
/// without `general.dtype` is f16, which cannot hold positions past 2,048 exactly).
fn load_quantized<R: std::io::Read + std::io::Seek>(
    architecture: Architecture,
    mut content: gguf_file::Content,
    reader: &mut R,
    device: &Device,
    positions: usize,
) -> candle_core::Result<Network> {
    let capped = u32::try_from(positions).unwrap_or(u32::MAX);
    if matches!(
        architecture,
        Architecture::Qwen2 | Architecture::Qwen3 | Architecture::Phi3
    ) {
        content.metadata.insert(
            format!("{}.context_length", architecture.name()),
            gguf_file::Value::U32(capped),
        );
    }
    Ok(match architecture {
        Architecture::Llama => Network::Quantized(Quantized::Llama(
            quantized_llama::ModelWeights::from_gguf(content, reader, device)?,
        )),
        Architecture::Gemma3 => Network::Quantized(Quantized::Gemma3(
            quantized_gemma3::ModelWeights::from_gguf(content, reader, device)?,
        )),
        Architecture::Phi3 => Network::Quantized(Quantized::Phi3(
            quantized_phi3::ModelWeights::from_gguf(false, content, reader, device)?,
        )),
        Architecture::Qwen2 => Network::Locked(Mutex::new(Locked::Qwen2(
            quantized_qwen2::ModelWeights::from_gguf(content, reader, device)?,
        ))),
        Architecture::Qwen3 => {
            content
                .metadata
                .insert("general.dtype".into(), gguf_file::Value::U32(0));
            Network::Locked(Mutex::new(Locked::Qwen3(
                quantized_qwen3::ModelWeights::from_gguf(content, reader, device)?,
            )))
        }
    })
}

/// The trained context of a checked GGUF model, as candle can use it: Llama and Gemma 3
/// precompute rotary tables of a fixed length (4,096 and 131,072 positions).
fn gguf_context(architecture: Architecture, declared: Option<usize>) -> usize {
    match architecture {
        Architecture::Llama => declared
            .unwrap_or(quantized_llama::MAX_SEQ_LEN)
            .min(quantized_llama::MAX_SEQ_LEN),
        Architecture::Gemma3 => declared
            .unwrap_or(quantized_gemma3::MAX_SEQ_LEN)
            .min(quantized_gemma3::MAX_SEQ_LEN),
        // Required by their loaders, so checked present.
        _ => declared.unwrap_or(quantized_llama::MAX_SEQ_LEN),
    }
}

/// A KV state saved after the first `tokens.len()` prompt tokens.
struct SavedPrefix {
    tokens: Vec<u32>,
    state: KvState,
}

/// The prefix cache: at most `capacity` saved states, least recently used first.
struct PrefixCache {
    capacity: usize,
    entries: Mutex<Vec<SavedPrefix>>,
}

impl PrefixCache {
    fn new(capacity: usize) -> Self {
        PrefixCache {
            capacity,
            entries: Mutex::new(Vec::new()),
        }
    }

    fn entries(&self) -> MutexGuard<'_, Vec<SavedPrefix>> {
        // A panic elsewhere cannot leave the list half-changed (pushes and removes only).
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The longest saved state whose tokens start `prompt` and end at one of `split_points`.
    fn longest(&self, prompt: &[u32], split_points: &[usize]) -> Option<(usize, KvState)> {
        let mut entries = self.entries();
        let (index, _) = entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| {
                split_points.contains(&entry.tokens.len()) && prompt.starts_with(&entry.tokens)
            })
            .max_by_key(|(_, entry)| entry.tokens.len())?;
        let entry = entries.remove(index);
        let found = (entry.tokens.len(), entry.state.clone());
        entries.push(entry);
        Some(found)
    }

    fn save(&self, tokens: &[u32], state: &KvState) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries();
        entries.retain(|entry| entry.tokens != tokens);
        if entries.len() >= self.capacity {
            entries.remove(0);
        }
        entries.push(SavedPrefix {
            tokens: tokens.to_vec(),
            state: state.clone(),
        });
    }

    fn clear(&self) {
        self.entries().clear();
    }

    fn len(&self) -> usize {
        self.entries().len()
    }
}

/// Prompt chunks of candle's networks start at multiples of this many tokens (our own forward
/// pass for GGUF `llama` files splits anywhere). candle's CPU prefill (0.11) gives
/// rows results that depend on how the rows of one forward pass are grouped: reading a prompt
/// in two passes split elsewhere moved SmolLM2's logits by up to ~0.9, enough to change a
/// greedy reply, while splits at multiples of 32 gave bit-identical logits (checked by the
/// test `chunked_prefill_matches_one_pass`). So a reply with prefix reuse is the reply
/// without it.
pub const PREFILL_ALIGNMENT: usize = 32;

/// Where a prompt is read in chunks, and which chunk ends are worth saving.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PromptSplit {
    /// Token counts, ascending, each strictly inside the prompt: the end of every message
    /// rounded down to the network's [`Network::split_alignment`].
    points: Vec<usize>,
    /// The points whose state is saved: the end of the first message (the system block) and
    /// of the second-to-last one (the user message the next turn's history repeats).
    save: Vec<usize>,
}

/// Sequences decoded together at most, over all threads (each thread decodes its part of
/// them, and starts the next turns of its share of a batch as earlier ones end), when their
/// KV caches fit in [`DECODE_KV_BUDGET`]. On the demo (SmolLM2-135M, 2 threads, 200 turns)
/// 48 decoded ~4.5% faster than 32 (15.0-15.6 s against 15.8-16.1 s, in turns), and 64 no
/// faster than 32 (with earlier kernels: 38 s decoding 16 at a time, 29 s 32, 38.7-39.2 s
/// 64).
pub const MAX_DECODE_BATCH: usize = 48;

/// Bytes of KV cache (f32 keys and values of every layer, up to the prompt's length plus
/// `max_new_tokens`) that the sequences decoded together may hold, besides the prefix
/// cache: larger models and longer prompts decode fewer sequences at once. SmolLM2's
/// ~250-position demo turns take ~12 MB each (48 fit); Llama-3.2-1B's 1,000-token prompts
/// ~67 MB (30 fit).
pub const DECODE_KV_BUDGET: usize = 2 << 30;

/// Sequences to decode together at most on `threads` threads when each holds
/// `bytes_per_sequence` of KV cache: as many as [`DECODE_KV_BUDGET`] holds, at most
/// [`MAX_DECODE_BATCH`] in all and at least one a thread. Returns the count a thread.
fn decode_slots_per_thread(bytes_per_sequence: usize, threads: usize) -> usize {
    let fit = DECODE_KV_BUDGET / bytes_per_sequence.max(1);
    (fit.min(MAX_DECODE_BATCH) / threads.max(1)).max(1)
}

/// A sequence our forward pass decodes in a batch ([`LlamaGenerator::run_batch`]).
struct Sequence {
    /// Its prompt's place in the batch.
    index: usize,
    prompt_tokens: usize,
    reused: usize,
    cache: fast::KvCache,
    sampler: LogitsProcessor,
    /// The logits after its last token.
    logits: Tensor,
    generated: Vec<u32>,
    prompt_seconds: f64,
    decoding_since: Instant,
}

/// A prompt ready to run: its tokens, chunks and sampler seed.
struct BatchPrompt {
    prompt: Vec<u32>,
    split: PromptSplit,
    seed: u64,
}

fn model_error(context: &str) -> impl Fn(candle_core::Error) -> Error + '_ {
    move |e| Error::Model {
        context: context.to_string(),
        message: e.to_string(),
    }
}

fn tokenizer_error(context: &str) -> impl Fn(tokenizers::Error) -> Error + '_ {
    move |e| Error::Tokenizer {
        context: context.to_string(),
        message: e.to_string(),
    }
}

/// A chat model (Llama safetensors, or a GGUF file of any [`Architecture`]) that writes
/// replies the way the official baseline does.
pub struct LlamaGenerator {
    network: Network,
    device: Device,
    prefix_cache: PrefixCache,
    tokenizer: Tokenizer,
    template: PromptTemplate,
    end_tokens: Vec<u32>,
    context_limit: usize,
    params: LlamaParams,
    name: String,
    fallback: TemplateGenerator,
}

impl std::fmt::Debug for LlamaGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaGenerator")
            .field("name", &self.name)
            .field("template", &self.template)
            .field("end_tokens", &self.end_tokens)
            .field("context_limit", &self.context_limit)
            .field("params", &self.params)
            .field("device", &self.params.device)
            .field("saved_prefixes", &self.prefix_cache.len())
            .finish_non_exhaustive()
    }
}

impl LlamaGenerator {
    /// Loads a model from any [`ModelSource`].
    pub fn load(source: &ModelSource, params: LlamaParams) -> Result<Self> {
        match source {
            ModelSource::Dir { path } => Self::from_dir(path, params),
            ModelSource::Gguf { path, tokenizer } => {
                Self::from_gguf(path, tokenizer.as_deref(), params)
            }
            ModelSource::Hub { repo, revision } => {
                #[cfg(feature = "hub")]
                {
                    Self::from_hub(repo, revision.as_deref(), params)
                }
                #[cfg(not(feature = "hub"))]
                {
                    let _ = revision;
                    Err(Error::FeatureDisabled {
                        feature: "hub",
                        what: format!("downloading {repo} from the Hugging Face hub"),
                    })
                }
            }
        }
    }

    /// Downloads (or finds in the local hub cache) a safetensors model and loads it, with the
    /// process's hub settings ([`HubParams::process`](music_crs_core::hub::HubParams::process)).
    #[cfg(feature = "hub")]
    #[cfg_attr(docsrs, doc(cfg(feature = "hub")))]
    pub fn from_hub(repo: &str, revision: Option<&str>, params: LlamaParams) -> Result<Self> {
        Self::from_hub_with(
            repo,
            revision,
            &music_crs_core::hub::HubParams::process(),
            params,
        )
    }

    /// [`LlamaGenerator::from_hub`] with explicit hub settings (endpoint, cache, offline,
    /// token, progress).
    #[cfg(feature = "hub")]
    #[cfg_attr(docsrs, doc(cfg(feature = "hub")))]
    pub fn from_hub_with(
        repo: &str,
        revision: Option<&str>,
        hub: &music_crs_core::hub::HubParams,
        params: LlamaParams,
    ) -> Result<Self> {
        let dir = hub::download(repo, revision, hub)?;
        let mut generator = Self::from_dir(&dir, params)?;
        generator.name = format!("llama:{repo}");
        Ok(generator)
    }

    /// Loads a safetensors Llama checkpoint from a directory holding `config.json`,
    /// `tokenizer.json` and `model.safetensors` (or `model.safetensors.index.json` with its
    /// shards); `tokenizer_config.json` (chat template, BOS and EOS texts) and
    /// `generation_config.json` are read when present.
    pub fn from_dir(dir: &Path, params: LlamaParams) -> Result<Self> {
        params.validate()?;
        let device = device::open(params.device)?;
        let files = weights::DirFiles::locate(dir)?;
        let config = weights::read_config(&files.config)?;
        let tokenizer = load_tokenizer_json(&files.tokenizer)?;
        let template = match &params.chat_template {
            Some(template) => PromptTemplate::BuiltIn(template.clone()),
            None => match (files.chat_template_source()?, &files.tokenizer_config) {
                (Some(source), Some(path)) => {
                    let (bos, eos) = files.special_token_texts()?;
                    PromptTemplate::Jinja(Box::new(JinjaTemplate::new(
                        &source,
                        path,
                        "chat_template",
                        bos,
                        eos,
                    )?))
                }
                _ => fallback_template(&tokenizer, &files.tokenizer)?,
            },
        };
        let mut end_tokens = files.generation_eos()?;
        end_tokens.extend(weights::eos_ids(&config));
        let dtype = match params.dtype {
            crate::WeightDtype::F32 => DType::F32,
            crate::WeightDtype::F16 => DType::F16,
            crate::WeightDtype::Bf16 => DType::BF16,
        };
        let mut config = config.into_config(false);
        // candle precomputes rotary tables for every trained position: only the positions a
        // call can reach are needed, and a large trained context would cost memory for none.
        let model_context = config.max_position_embeddings;
        config.max_position_embeddings = model_context.min(params.max_context_tokens);
        let model = weights::load_llama(&files.weights, &config, dtype, &device)?;
        let cache = full::Cache::new(true, dtype, &config, &device)
            .map_err(model_error("building the KV cache"))?;
        let name = format!("llama:{}", dir.display());
        Self::assemble(
            Network::Full { model, cache },
            device,
            tokenizer,
            template,
            end_tokens,
            model_context,
            params,
            name,
        )
    }

    /// Loads a GGUF file of any [`Architecture`] (`general.architecture`; any quantization
    /// candle reads), checked first ([`GgufHeader::model_shape`]). The tokenizer is
    /// `tokenizer` when given, otherwise rebuilt from the GGUF's own vocabulary; the chat
    /// template is the file's `tokenizer.chat_template`.
    pub fn from_gguf(path: &Path, tokenizer: Option<&Path>, params: LlamaParams) -> Result<Self> {
        Self::from_gguf_with(
            path,
            tokenizer,
            params,
            LlamaForward::Own { native_q4_1: true },
        )
    }

    /// [`LlamaGenerator::from_gguf`] with a `llama` file run by `forward` (the tests
    /// compare them).
    fn from_gguf_with(
        path: &Path,
        tokenizer: Option<&Path>,
        params: LlamaParams,
        forward: LlamaForward,
    ) -> Result<Self> {
        params.validate()?;
        let device = device::open(params.device)?;
        if !path.is_file() {
            return Err(Error::MissingFile {
                what: "GGUF model file".into(),
                path: path.to_path_buf(),
                looked_in: parent_of(path),
            });
        }
        // Every hyperparameter and tensor entry candle will trust, checked first.
        let shape = GgufHeader::open(path)?.model_shape()?;
        let architecture = shape.architecture;
        let mut file = fs_err::File::open(path)?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| Error::BadModelFile {
            path: path.to_path_buf(),
            reason: format!("not a readable GGUF file: {e}"),
        })?;
        let meta_u32 = |key: &str| content.metadata.get(key).and_then(|v| v.to_u32().ok());
        let tokenizer = match tokenizer {
            Some(json) => load_tokenizer_json(json)?,
            None => gguf_tokenizer::tokenizer_from_gguf(&content, path)?,
        };
        let token_text = |key: &str| meta_u32(key).and_then(|id| tokenizer.id_to_token(id));
        let template = match &params.chat_template {
            Some(template) => PromptTemplate::BuiltIn(template.clone()),
            None => match content
                .metadata
                .get("tokenizer.chat_template")
                .and_then(|v| v.to_string().ok())
            {
                Some(source) => PromptTemplate::Jinja(Box::new(JinjaTemplate::new(
                    source,
                    path,
                    "tokenizer.chat_template",
                    token_text("tokenizer.ggml.bos_token_id"),
                    token_text("tokenizer.ggml.eos_token_id"),
                )?)),
                None => fallback_template(&tokenizer, path)?,
            },
        };
        let end_tokens: Vec<u32> = meta_u32("tokenizer.ggml.eos_token_id")
            .into_iter()
            .collect();
        let model_context = gguf_context(architecture, shape.context);
        let positions = model_context.min(params.max_context_tokens);
        let load_error = |e: candle_core::Error| Error::BadModelFile {
            path: path.to_path_buf(),
            reason: format!("loading the {architecture} weights: {e}"),
        };
        // On CPU, `llama` files run our own forward pass, which widens blocks itself.
        let fast = match forward {
            LlamaForward::Own { native_q4_1 } => {
                (device.is_cpu() && architecture == Architecture::Llama).then_some(native_q4_1)
            }
            LlamaForward::Candle => None,
        };
        // The widening serves candle's CPU kernels only; a GPU reads the file's own blocks.
        let widened = if device.is_cpu() && fast.is_none() {
            requantized(&content, &mut file).map_err(load_error)?
        } else {
            None
        };
        let network = match (widened, fast) {
            (_, Some(native_q4_1)) => {
                fast::FastLlama::from_gguf(&content, &mut file, positions, native_q4_1)
                    .map(Network::Fast)
            }
            (Some(bytes), None) => {
                let mut reader = std::io::Cursor::new(bytes);
                let content = gguf_file::Content::read(&mut reader).map_err(load_error)?;
                load_quantized(architecture, content, &mut reader, &device, positions)
            }
            (None, None) => load_quantized(architecture, content, &mut file, &device, positions),
        }
        .map_err(load_error)?;
        let name = format!("{architecture}:{}", path.display());
        Self::assemble(
            network,
            device,
            tokenizer,
            template,
            end_tokens,
            model_context,
            params,
            name,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        network: Network,
        device: Device,
        tokenizer: Tokenizer,
        template: PromptTemplate,
        mut end_tokens: Vec<u32>,
        model_context: usize,
        params: LlamaParams,
        name: String,
    ) -> Result<Self> {
        match &template {
            // A model's own template: the special token it writes after an assistant turn.
            PromptTemplate::Jinja(_) => {
                end_tokens.extend(
                    template
                        .after_assistant_turn()
                        .and_then(|text| first_special_token(&tokenizer, &text)),
                );
            }
            // A built-in template: its family's end tokens in the vocabulary.
            PromptTemplate::BuiltIn(built_in) => end_tokens.extend(
                built_in
                    .end_tokens()
                    .iter()
                    .filter_map(|token| tokenizer.token_to_id(token)),
            ),
        }
        end_tokens.sort_unstable();
        end_tokens.dedup();
        if end_tokens.is_empty() {
            tracing::warn!("{name}: no end-of-turn token known; replies stop at max_new_tokens");
        }
        let context_limit = params.max_context_tokens.min(model_context);
        if context_limit <= params.max_new_tokens {
            return Err(Error::InvalidParameter {
                name: "max_new_tokens",
                reason: format!(
                    "{} leaves no room for a prompt in the model's context of {context_limit} tokens",
                    params.max_new_tokens
                ),
            });
        }
        let mut saved_prefixes = params.prefix_cache_entries;
        if let Some(reason) = network.prefix_reuse_off()
            && saved_prefixes > 0
        {
            tracing::info!(
                "{name}: prompt prefixes are not reused ({reason}); each prompt is read in one pass"
            );
            saved_prefixes = 0;
        }
        let template_name = match &template {
            PromptTemplate::Jinja(jinja) if jinja.joins_consecutive_roles() => {
                "the model's own (consecutive messages of one role joined)".to_string()
            }
            PromptTemplate::Jinja(_) => "the model's own".to_string(),
            PromptTemplate::BuiltIn(built_in) => format!("built-in {built_in:?}"),
        };
        tracing::info!("{name}: chat template {template_name}, end tokens {end_tokens:?}");
        let generator = LlamaGenerator {
            network,
            device,
            prefix_cache: PrefixCache::new(saved_prefixes),
            tokenizer,
            template,
            end_tokens,
            context_limit,
            params,
            name,
            fallback: TemplateGenerator::default(),
        };
        generator.check_system_prompt_fits(model_context)?;
        Ok(generator)
    }

    /// Refuses settings under which no turn could be answered: the system prompt with an
    /// empty user message (the smallest prompt fitting can reach) plus `max_new_tokens` must
    /// fit the context. Checked once here, so a run fails before loading data and naming the
    /// settings, not at its first turn (or, with a profile block, at some later turn).
    fn check_system_prompt_fits(&self, model_context: usize) -> Result<()> {
        let smallest = GenerationRequest {
            context: music_crs_core::TurnContext::from_message(""),
            recommended: Vec::new(),
            played: Vec::new(),
        };
        let prompt = self.prompt_ids(&build_chat(&smallest, &self.params.prompt))?;
        let needed = prompt.len() + self.params.max_new_tokens;
        if needed > self.context_limit {
            return Err(Error::InvalidParameter {
                name: "max_context_tokens",
                reason: format!(
                    "the system prompt alone takes {} tokens, plus max_new_tokens {} that is \
                     {needed}, more than the context of {} tokens (max_context_tokens {}, the \
                     model's own {model_context}); raise max_context_tokens (up to the model's) \
                     or lower max_new_tokens",
                    prompt.len(),
                    self.params.max_new_tokens,
                    self.context_limit,
                    self.params.max_context_tokens
                ),
            });
        }
        Ok(())
    }

    /// The settings.
    pub fn params(&self) -> &LlamaParams {
        &self.params
    }

    /// The chat template in use.
    pub fn chat_template(&self) -> &PromptTemplate {
        &self.template
    }

    /// True when KV states of prompt prefixes are saved and reused (see the module docs for
    /// the architectures where they cannot be).
    pub fn reuses_prompt_prefixes(&self) -> bool {
        self.prefix_cache.capacity > 0
    }

    /// The token ids that end a reply.
    pub fn end_tokens(&self) -> &[u32] {
        &self.end_tokens
    }

    /// Most prompt plus reply tokens per call.
    pub fn context_limit(&self) -> usize {
        self.context_limit
    }

    /// Forgets every saved prompt prefix (the next call reads its whole prompt).
    pub fn clear_prefix_cache(&self) {
        self.prefix_cache.clear();
    }

    /// The prompt token ids of a chat (rendered with the chat template, generation prompt
    /// added, encoded without adding special tokens: the template writes them).
    pub fn prompt_ids(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let text = self.template.render(messages, true)?;
        self.tokenize(&text)
    }

    /// Runs the model on a chat and returns its reply. `seed` drives sampling (ignored when
    /// greedy). Fails when the prompt plus `max_new_tokens` exceeds the context limit.
    pub fn complete(&self, messages: &[ChatMessage], seed: u64) -> Result<Completion> {
        let prompt = self.prompt_ids(messages)?;
        self.check_fits(prompt.len() + self.params.max_new_tokens)?;
        let split = self.split(messages, &prompt)?;
        self.run(&prompt, &split, seed)
    }

    /// The reply to a request with its token counts and timings. A prompt too long for the
    /// context limit is fitted first: earlier turns are dropped (oldest first), then the
    /// retrieved tracks of the track block (last-ranked first), then the user message is cut
    /// (its start kept, the cut marked with [`CUT_MARK`]); each step taken logs one warning
    /// naming the session and turn. Only a prompt too long without any of them fails, which
    /// [`LlamaGenerator::load`] already refuses for the system prompt without a profile.
    pub fn generate_with_stats(&self, request: &GenerationRequest) -> Result<Completion> {
        let BatchPrompt {
            prompt,
            split,
            seed,
        } = self.request_prompt(request)?;
        let completion = self.run(&prompt, &split, seed)?;
        log_completion(request, &completion);
        Ok(completion)
    }

    /// [`LlamaGenerator::generate_with_stats`] for several requests, decoded together (see
    /// [`LlamaGenerator::complete_batch`]): each completion is the one its request gets
    /// alone.
    pub fn generate_batch_with_stats(
        &self,
        requests: &[GenerationRequest],
    ) -> Result<Vec<Completion>> {
        let prompts = requests
            .iter()
            .map(|request| self.request_prompt(request))
            .collect::<Result<Vec<_>>>()?;
        let completions = self.run_batch(&prompts)?;
        for (request, completion) in requests.iter().zip(&completions) {
            log_completion(request, completion);
        }
        Ok(completions)
    }

    /// The fitted prompt of a request, its chunks and its sampler's seed (drawn from the
    /// session and turn, so a reply does not depend on what ran before).
    fn request_prompt(&self, request: &GenerationRequest) -> Result<BatchPrompt> {
        let context = &request.context;
        let (messages, prompt) = self.fitted_prompt(request)?;
        let seed = mix_seed(
            self.params.seed,
            &[
                context.session_id.as_bytes(),
                &context.turn_number.to_le_bytes(),
            ],
        );
        let split = self.split(&messages, &prompt)?;
        Ok(BatchPrompt {
            prompt,
            split,
            seed,
        })
    }

    /// The chat and prompt ids of `request`, fitted to the context limit (see
    /// [`LlamaGenerator::generate_with_stats`]).
    fn fitted_prompt(&self, request: &GenerationRequest) -> Result<(Vec<ChatMessage>, Vec<u32>)> {
        let messages = build_chat(request, &self.params.prompt);
        let prompt = self.prompt_ids(&messages)?;
        if prompt.len() + self.params.max_new_tokens <= self.context_limit {
            // The common case: the prompt as built, tokenized once.
            return Ok((messages, prompt));
        }
        let context = &request.context;
        let turns = history_turns(request);
        let user_offsets = self
            .tokenizer
            .encode(context.user_message.as_str(), false)
            .map_err(tokenizer_error("encoding the user message"))?
            .get_offsets()
            .to_vec();
        let full = fit::Kept {
            history_turns: turns.len(),
            tracks: request.recommended.len().min(TRACKS_IN_PROMPT),
            user_tokens: None,
        };
        let trimmed = |kept: fit::Kept| -> GenerationRequest {
            let mut trimmed = request.clone();
            let oldest_kept = turns.len() - kept.history_turns;
            trimmed
                .context
                .history
                .retain(|m| turns[oldest_kept..].contains(&m.turn_number));
            trimmed.recommended.truncate(kept.tracks);
            if let Some(n) = kept.user_tokens {
                trimmed.context.user_message = cut_message(&context.user_message, &user_offsets, n);
            }
            trimmed
        };
        let measured = fit::fit(full, user_offsets.len(), self.context_limit, |kept| {
            let messages = build_chat(&trimmed(kept), &self.params.prompt);
            Ok::<_, Error>(self.prompt_ids(&messages)?.len() + self.params.max_new_tokens)
        })?;
        let kept = measured.map_err(|tokens| Error::PromptTooLong {
            session_id: context.session_id.clone(),
            turn_number: context.turn_number,
            tokens,
            limit: self.context_limit,
        })?;
        let (session, turn, limit) = (&context.session_id, context.turn_number, self.context_limit);
        if kept.history_turns < full.history_turns {
            tracing::warn!(
                "session {session}, turn {turn}: prompt too long for the context of {limit} \
                 tokens: dropped the {} oldest of {} earlier turns",
                full.history_turns - kept.history_turns,
                full.history_turns
            );
        }
        if kept.tracks < full.tracks {
            tracing::warn!(
                "session {session}, turn {turn}: prompt too long for the context of {limit} \
                 tokens without any earlier turn: dropped {} of {} retrieved tracks from the \
                 prompt (last-ranked first)",
                full.tracks - kept.tracks,
                full.tracks
            );
        }
        if let Some(n) = kept.user_tokens {
            tracing::warn!(
                "session {session}, turn {turn}: prompt too long for the context of {limit} \
                 tokens without earlier turns or retrieved tracks: cut the user message from \
                 {} to its first {n} tokens",
                user_offsets.len()
            );
        }
        let messages = build_chat(&trimmed(kept), &self.params.prompt);
        let prompt = self.prompt_ids(&messages)?;
        Ok((messages, prompt))
    }

    /// The chunk ends of a prompt: the token count after each whole message, rounded down to
    /// the network's [`Network::split_alignment`], kept only where those tokens really start
    /// the prompt (tokenization need not split at a message boundary).
    fn split(&self, messages: &[ChatMessage], prompt: &[u32]) -> Result<PromptSplit> {
        let mut split = PromptSplit::default();
        if self.prefix_cache.capacity == 0 {
            // Nothing is saved, so nothing can be reused: read the prompt in one go.
            return Ok(split);
        }
        let messages = self.template.prepare(messages);
        let alignment = self.network.split_alignment();
        for count in 1..messages.len() {
            // A template may refuse a part of the chat (or write it otherwise than inside
            // the whole): such a point is simply not a split point.
            let Ok(text) = self.template.render(&messages[..count], false) else {
                continue;
            };
            let encoding = self
                .tokenizer
                .encode(text, false)
                .map_err(tokenizer_error("encoding a prompt prefix"))?;
            let ids = encoding.get_ids();
            let end = ids.len() / alignment * alignment;
            if end == 0 || end >= prompt.len() || !prompt.starts_with(&ids[..end]) {
                continue;
            }
            if split.points.last() != Some(&end) {
                split.points.push(end);
            }
            let worth_saving = count == 1 || count + 1 == messages.len();
            if worth_saving && split.save.last() != Some(&end) {
                split.save.push(end);
            }
        }
        Ok(split)
    }

    fn sampler(&self, seed: u64) -> LogitsProcessor {
        let temperature = self.params.temperature;
        let sampling = if temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            match self.params.top_p {
                Some(p) if p < 1.0 => Sampling::TopP { p, temperature },
                _ => Sampling::All { temperature },
            }
        };
        LogitsProcessor::from_sampling(seed, sampling)
    }

    fn run(&self, prompt: &[u32], split: &PromptSplit, seed: u64) -> Result<Completion> {
        let mut sampler = self.sampler(seed);
        let started = Instant::now();
        let (reused, mut state) = match self.prefix_cache.longest(prompt, &split.points) {
            Some((reused, saved)) => (reused, CallState::Owned(saved)),
            None => (0, self.network.begin()),
        };
        let result = self.decode(prompt, split, reused, &mut state, &mut sampler, started);
        self.network.finish(state);
        result
    }

    /// Reads the prompt from `reused` on, in the chunks of `split`, saving the states
    /// `split` names; returns the logits after its last token.
    fn prefill(
        &self,
        prompt: &[u32],
        split: &PromptSplit,
        reused: usize,
        state: &mut CallState<'_>,
    ) -> Result<Tensor> {
        let position = self.prefill_chunks(prompt, split, reused, state)?;
        self.network
            .forward(&self.device, state, &prompt[position..], position)
            .map_err(model_error("reading the prompt"))
    }

    /// Reads the prompt's chunks from `reused` to its last split point, saving the states
    /// `split` names; returns the position reached (the rest of the prompt is left unread).
    fn prefill_chunks(
        &self,
        prompt: &[u32],
        split: &PromptSplit,
        reused: usize,
        state: &mut CallState<'_>,
    ) -> Result<usize> {
        let mut position = reused;
        for &end in split.points.iter().filter(|&&end| end > reused) {
            self.network
                .read(&self.device, state, &prompt[position..end], position)
                .map_err(model_error("reading the prompt"))?;
            position = end;
            if split.save.contains(&end)
                && let Some(saveable) = state.saveable()
            {
                self.prefix_cache.save(&prompt[..end], saveable);
            }
        }
        Ok(position)
    }

    /// Completions of several chats (each with its sampler's seed), decoded together: with
    /// our `llama` forward pass, each step reads one new token of every unfinished chat of a
    /// thread's set in one pass (every weight read once for all of them; attention per chat),
    /// so replies per second grow with the set while decoding is bound by memory. Each reply
    /// is the one [`LlamaGenerator::complete`] gives (the same numbers row by row). Each
    /// thread takes a contiguous share of the chats and decodes at most its part of
    /// [`MAX_DECODE_BATCH`] of them at once (fewer when their KV caches would pass
    /// [`DECODE_KV_BUDGET`]), starting the next ones of its share as earlier
    /// ones end (so a step rarely runs for a few stragglers): it reads the prompts it starts
    /// as one at a time up to their last chunk point (so prefix reuse is unchanged), then
    /// their tails together in one pass. Every completion's times include the shared passes
    /// it took part in. Other networks complete the chats one after another.
    pub fn complete_batch(&self, chats: &[(Vec<ChatMessage>, u64)]) -> Result<Vec<Completion>> {
        let mut prompts = Vec::with_capacity(chats.len());
        for (messages, seed) in chats {
            let prompt = self.prompt_ids(messages)?;
            self.check_fits(prompt.len() + self.params.max_new_tokens)?;
            let split = self.split(messages, &prompt)?;
            prompts.push(BatchPrompt {
                prompt,
                split,
                seed: *seed,
            });
        }
        self.run_batch(&prompts)
    }

    /// [`LlamaGenerator::run`] for several prompts, decoded together with our forward pass
    /// (see [`LlamaGenerator::complete_batch`]); other networks run them one by one. Each
    /// prompt is read in turn, so a later one reuses the prefixes an earlier one saved, as
    /// when they come one at a time.
    fn run_batch(&self, prompts: &[BatchPrompt]) -> Result<Vec<Completion>> {
        if prompts.is_empty() {
            return Ok(Vec::new());
        }
        let Network::Fast(model) = &self.network else {
            return prompts
                .iter()
                .map(|p| self.run(&p.prompt, &p.split, p.seed))
                .collect();
        };
        // One contiguous share of the batch per thread, side by side: each thread reads its
        // own prompts and decodes its own sequences. A small model's products are too short
        // to share between two threads without some waiting (on 2 cores one prompt reads
        // ~1.3x faster than on 1 over rayon, ~1.6x over the spinning team), while two sets
        // do about twice the work of one. A set's products still split into pieces that an
        // idle thread takes, so an early finisher helps the other one.
        let threads = rayon::current_num_threads().min(prompts.len());
        let longest = prompts.iter().map(|p| p.prompt.len()).max().unwrap_or(0);
        let bytes_per_sequence =
            (longest + self.params.max_new_tokens) * model.kv_bytes_per_position();
        let decoding = decode_slots_per_thread(bytes_per_sequence, threads);
        if threads > 1 {
            use rayon::prelude::*;
            let shares: Vec<Result<Vec<Completion>>> = prompts
                .par_chunks(prompts.len().div_ceil(threads))
                .map(|share| self.run_together(model, share, decoding))
                .collect();
            let mut completions = Vec::with_capacity(prompts.len());
            for share in shares {
                completions.extend(share?);
            }
            return Ok(completions);
        }
        self.run_together(model, prompts, decoding)
    }

    /// Starts `prompts` on our forward pass: each read in turn up to its last chunk point
    /// (a later one reuses what an earlier one saved), then the rest of all of them in one
    /// pass (the tails, the turn's own message, share each weight read, as decoding's steps
    /// do). Returns the sequences, ready to sample their first token.
    fn start_sequences(
        &self,
        model: &fast::FastLlama,
        prompts: &[BatchPrompt],
        first_index: usize,
    ) -> Result<Vec<Sequence>> {
        let mut caches = Vec::with_capacity(prompts.len());
        let mut tails = Vec::new();
        let mut counts = Vec::with_capacity(prompts.len());
        let mut chunk_seconds = Vec::with_capacity(prompts.len());
        for BatchPrompt { prompt, split, .. } in prompts {
            let started = Instant::now();
            let (reused, mut state) = match self.prefix_cache.longest(prompt, &split.points) {
                Some((reused, saved)) => (reused, CallState::Owned(saved)),
                None => (0, self.network.begin()),
            };
            let position = self.prefill_chunks(prompt, split, reused, &mut state)?;
            let CallState::Owned(KvState::Fast(mut cache)) = state else {
                return Err(model_error("batching")(candle_core::Error::Msg(
                    "the KV state does not belong to this network".into(),
                )));
            };
            cache.plan(prompt.len() + self.params.max_new_tokens);
            caches.push((reused, cache));
            tails.extend_from_slice(&prompt[position..]);
            counts.push(prompt.len() - position);
            chunk_seconds.push(started.elapsed().as_secs_f64());
        }
        let started = Instant::now();
        let mut tail_caches: Vec<&mut fast::KvCache> =
            caches.iter_mut().map(|(_, cache)| cache).collect();
        let last_logits = model
            .forward_many(&tails, &counts, &mut tail_caches)
            .map_err(model_error("reading the prompt"))?;
        let tails_seconds = started.elapsed().as_secs_f64();
        let mut sequences = Vec::with_capacity(prompts.len());
        for (index, (((prompt, (reused, cache)), logits), seconds)) in prompts
            .iter()
            .zip(caches)
            .zip(last_logits)
            .zip(chunk_seconds)
            .enumerate()
        {
            sequences.push(Sequence {
                index: first_index + index,
                prompt_tokens: prompt.prompt.len(),
                reused,
                cache,
                sampler: self.sampler(prompt.seed),
                logits: Tensor::new(logits, &self.device).map_err(model_error("generating"))?,
                generated: Vec::with_capacity(self.params.max_new_tokens),
                prompt_seconds: seconds + tails_seconds,
                decoding_since: Instant::now(),
            });
        }
        Ok(sequences)
    }

    /// [`LlamaGenerator::run_batch`]'s work for one thread's share of the prompts on our
    /// forward pass: at most `decoding` sequences decoded together, the next prompts
    /// started ([`LlamaGenerator::start_sequences`]) whenever a quarter of those places
    /// (or all the prompts left) are free.
    fn run_together(
        &self,
        model: &fast::FastLlama,
        prompts: &[BatchPrompt],
        decoding: usize,
    ) -> Result<Vec<Completion>> {
        let mut completions: Vec<Option<Completion>> = vec![None; prompts.len()];
        let mut started = 0;
        let mut sequences: Vec<Sequence> = Vec::with_capacity(decoding);
        // Starting prompts costs a pass over the weights of its own: a few at a time.
        let refill = decoding.div_ceil(4);
        loop {
            let free = decoding - sequences.len();
            let left = prompts.len() - started;
            if left > 0 && free >= refill.min(left) {
                let count = free.min(left);
                sequences.extend(self.start_sequences(
                    model,
                    &prompts[started..started + count],
                    started,
                )?);
                started += count;
            }
            if sequences.is_empty() {
                break;
            }
            // The same steps as `decode`, for every sequence: sample its next token, or end.
            let mut tokens = Vec::with_capacity(sequences.len());
            let mut index = 0;
            while index < sequences.len() {
                let sequence = &mut sequences[index];
                let next = self.next_token(
                    sequence.logits.clone(),
                    &sequence.generated,
                    &mut sequence.sampler,
                )?;
                let stopped = self.end_tokens.contains(&next);
                if !stopped {
                    sequence.generated.push(next);
                }
                if stopped || sequence.generated.len() >= self.params.max_new_tokens {
                    let done = sequences.remove(index);
                    let at = done.index;
                    completions[at] = Some(self.finished(done, stopped)?);
                    continue;
                }
                tokens.push(next);
                index += 1;
            }
            if tokens.is_empty() {
                continue;
            }
            let mut caches: Vec<&mut fast::KvCache> =
                sequences.iter_mut().map(|s| &mut s.cache).collect();
            let logits = model
                .forward_many(&tokens, &vec![1; tokens.len()], &mut caches)
                .map_err(model_error("generating"))?;
            for (sequence, logits) in sequences.iter_mut().zip(logits) {
                sequence.logits =
                    Tensor::new(logits, &self.device).map_err(model_error("generating"))?;
            }
        }
        Ok(completions
            .into_iter()
            .map(|completion| completion.expect("every prompt was started and ended"))
            .collect())
    }

    /// The completion of a sequence that has ended (`stopped`: at an end token).
    fn finished(&self, sequence: Sequence, stopped: bool) -> Result<Completion> {
        let text = self
            .tokenizer
            .decode(&sequence.generated, true)
            .map_err(tokenizer_error("decoding the reply"))?;
        Ok(Completion {
            text: text.trim().to_string(),
            prompt_tokens: sequence.prompt_tokens,
            reused_prompt_tokens: sequence.reused,
            generated_tokens: sequence.generated.len(),
            stopped,
            prompt_seconds: sequence.prompt_seconds,
            generation_seconds: sequence.decoding_since.elapsed().as_secs_f64(),
        })
    }

    /// The token that follows `logits` (after `generated`): the repeat penalty applied, then
    /// `sampler`'s pick. One sequence's step, alone or in a batch.
    fn next_token(
        &self,
        logits: Tensor,
        generated: &[u32],
        sampler: &mut LogitsProcessor,
    ) -> Result<u32> {
        let logits = penalize_repeats(
            logits,
            generated,
            self.params.repeat_penalty,
            self.params.repeat_last_n,
        )
        .map_err(model_error("applying the repeat penalty"))?;
        sampler
            .sample(&logits)
            .map_err(model_error("sampling a token"))
    }

    /// Reads the prompt from `reused` on, then generates (see [`LlamaGenerator::run`]).
    fn decode(
        &self,
        prompt: &[u32],
        split: &PromptSplit,
        reused: usize,
        state: &mut CallState<'_>,
        sampler: &mut LogitsProcessor,
        started: Instant,
    ) -> Result<Completion> {
        let mut logits = self.prefill(prompt, split, reused, state)?;
        let prompt_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut generated: Vec<u32> = Vec::with_capacity(self.params.max_new_tokens);
        let mut stopped = false;
        loop {
            let next = self.next_token(logits, &generated, sampler)?;
            if self.end_tokens.contains(&next) {
                stopped = true;
                break;
            }
            generated.push(next);
            if generated.len() >= self.params.max_new_tokens {
                break;
            }
            logits = self
                .network
                .forward(
                    &self.device,
                    state,
                    &[next],
                    prompt.len() + generated.len() - 1,
                )
                .map_err(model_error("generating"))?;
        }
        let generation_seconds = started.elapsed().as_secs_f64();
        let text = self
            .tokenizer
            .decode(&generated, true)
            .map_err(tokenizer_error("decoding the reply"))?;
        Ok(Completion {
            text: text.trim().to_string(),
            prompt_tokens: prompt.len(),
            reused_prompt_tokens: reused,
            generated_tokens: generated.len(),
            stopped,
            prompt_seconds,
            generation_seconds,
        })
    }
}

/// One debug line per reply: where its time went (`-v` shows them).
fn log_completion(request: &GenerationRequest, completion: &Completion) {
    let (session, turn) = (&request.context.session_id, request.context.turn_number);
    tracing::debug!(
        "session {session}, turn {turn}: prompt {} tokens ({} reused) in {:.3}s, {} tokens \
         generated in {:.3}s",
        completion.prompt_tokens,
        completion.reused_prompt_tokens,
        completion.prompt_seconds,
        completion.generated_tokens,
        completion.generation_seconds
    );
}

/// Ends a user message cut to fit the context (after a space), so the model sees the cut.
pub const CUT_MARK: &str = "[...]";

/// The distinct turn numbers of the request's history, oldest first.
fn history_turns(request: &GenerationRequest) -> Vec<u32> {
    let mut turns: Vec<u32> = Vec::new();
    for message in &request.context.history {
        if !turns.contains(&message.turn_number) {
            turns.push(message.turn_number);
        }
    }
    turns
}

/// The first `tokens` tokens of `message` (by their byte `offsets`), then [`CUT_MARK`].
fn cut_message(message: &str, offsets: &[(usize, usize)], tokens: usize) -> String {
    let mut end = offsets[..tokens.min(offsets.len())]
        .iter()
        .map(|&(_, end)| end)
        .max()
        .unwrap_or(0)
        .min(message.len());
    // Byte-level tokens may end inside a character: cut before it.
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let start = message[..end].trim_end();
    if start.is_empty() {
        CUT_MARK.to_string()
    } else {
        format!("{start} {CUT_MARK}")
    }
}

impl Generator for LlamaGenerator {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(&self, request: &GenerationRequest) -> Result<String> {
        Ok(self.generate_checked(request)?.text)
    }

    /// The model's reply, checked; an empty or degenerate one is replaced by the template
    /// reply when `on_empty` / `on_degenerate` say `template`. The check always describes the
    /// model's own text, so a run counts flawed replies whichever setting is chosen.
    fn generate_checked(&self, request: &GenerationRequest) -> Result<CheckedReply> {
        let completion = self.generate_with_stats(request)?;
        Ok(self.settle(request, completion.text))
    }

    /// Whole batches for our forward pass, which decodes their sequences together; one
    /// request per call for candle's networks (calls then run side by side on threads).
    fn batch_size_hint(&self) -> usize {
        match self.network {
            Network::Fast(_) => usize::MAX,
            _ => 1,
        }
    }

    fn generate_batch(&self, requests: &[GenerationRequest]) -> Result<Vec<String>> {
        let replies = self.generate_checked_batch(requests)?;
        Ok(replies.into_iter().map(|reply| reply.text).collect())
    }

    fn generate_checked_batch(&self, requests: &[GenerationRequest]) -> Result<Vec<CheckedReply>> {
        let completions = self.generate_batch_with_stats(requests)?;
        Ok(requests
            .iter()
            .zip(completions)
            .map(|(request, completion)| self.settle(request, completion.text))
            .collect())
    }
}

impl LlamaGenerator {
    /// The model's reply `text` checked, and replaced by the template reply when the
    /// settings say so for its flaw.
    fn settle(&self, request: &GenerationRequest, text: String) -> CheckedReply {
        let mut reply = CheckedReply::kept(text);
        let fallback = match &reply.check {
            ReplyCheck::Ok => return reply,
            ReplyCheck::Empty => self.params.on_empty,
            ReplyCheck::Degenerate(_) => self.params.on_degenerate,
        };
        let (session, turn) = (&request.context.session_id, request.context.turn_number);
        match fallback {
            ReplyFallback::Template => {
                tracing::warn!(
                    "session {session}, turn {turn}: the model's reply is {}; sending the \
                     template reply in its place",
                    reply.check
                );
                reply.text = self.fallback.reply(request);
                reply.replaced = true;
            }
            ReplyFallback::Keep => tracing::debug!(
                "session {session}, turn {turn}: the model's reply is {}; kept",
                reply.check
            ),
        }
        reply
    }
}

/// Logits with the last `last_n` generated tokens penalized (positive logits divided by
/// `penalty`, negative ones multiplied, each token once); unchanged when `penalty` is 1.
fn penalize_repeats(
    logits: Tensor,
    generated: &[u32],
    penalty: f32,
    last_n: usize,
) -> candle_core::Result<Tensor> {
    if penalty == 1.0 || generated.is_empty() || last_n == 0 {
        return Ok(logits);
    }
    let recent = &generated[generated.len().saturating_sub(last_n)..];
    candle_transformers::utils::apply_repeat_penalty(&logits, penalty, recent)
}

/// Block types candle multiplies without SIMD kernels (it has AVX/NEON ones for Q4_0, Q8_0
/// and the k-quants only): such weights run several times slower than Q8_0.
fn lacks_simd_kernel(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// An in-memory GGUF with Q4_1/Q5_0/Q5_1 tensors requantized to Q8_0 (a lossless-enough
/// widening that takes candle's SIMD path), or `None` when no tensor needs it.
fn requantized(
    content: &candle_core::quantized::gguf_file::Content,
    file: &mut fs_err::File,
) -> candle_core::Result<Option<Vec<u8>>> {
    if !content
        .tensor_infos
        .values()
        .any(|info| lacks_simd_kernel(info.ggml_dtype))
    {
        return Ok(None);
    }
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(content.tensor_infos.len());
    for name in content.tensor_infos.keys() {
        let tensor = content.tensor(file, name, &Device::Cpu)?;
        let tensor = if lacks_simd_kernel(tensor.dtype()) {
            QTensor::quantize(&tensor.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?
        } else {
            tensor
        };
        tensors.push((name.clone(), tensor));
    }
    let metadata: Vec<(&str, &candle_core::quantized::gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(key, value)| (key.as_str(), value))
        .collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors
        .iter()
        .map(|(name, tensor)| (name.as_str(), tensor))
        .collect();
    let mut buffer = std::io::Cursor::new(Vec::new());
    candle_core::quantized::gguf_file::write(&mut buffer, &metadata, &tensor_refs)?;
    tracing::info!("requantized Q4_1/Q5_x weights to Q8_0 for candle's SIMD kernels");
    Ok(Some(buffer.into_inner()))
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The built-in template a model without its own is prompted with, chosen from its special
/// tokens (logged); none fitting is an error naming `path`.
fn fallback_template(tokenizer: &Tokenizer, path: &Path) -> Result<PromptTemplate> {
    let template = ChatTemplate::from_special_tokens(|t| tokenizer.token_to_id(t).is_some())
        .ok_or_else(|| Error::BadModelFile {
            path: path.to_path_buf(),
            reason: "no chat template, and no special tokens of a built-in one (Llama 3 or \
                     ChatML); set params.chat_template"
                .into(),
        })?;
    tracing::info!(
        "{}: the model carries no chat template; using the built-in {template:?}",
        path.display()
    );
    Ok(PromptTemplate::BuiltIn(template))
}

/// The first token of `text` when it is a special token of `tokenizer` (the end-of-turn
/// token a template writes after an assistant message).
fn first_special_token(tokenizer: &Tokenizer, text: &str) -> Option<u32> {
    let encoding = tokenizer.encode(text, false).ok()?;
    let first = *encoding.get_ids().first()?;
    tokenizer
        .get_added_tokens_decoder()
        .get(&first)
        .is_some_and(|token| token.special)
        .then_some(first)
}

fn load_tokenizer_json(path: &Path) -> Result<Tokenizer> {
    if !path.is_file() {
        return Err(Error::MissingFile {
            what: "tokenizer.json".into(),
            path: path.to_path_buf(),
            looked_in: parent_of(path),
        });
    }
    Tokenizer::from_file(path).map_err(|e| Error::BadModelFile {
        path: path.to_path_buf(),
        reason: format!("not a usable tokenizer.json: {e}"),
    })
}

#[cfg(test)]
mod tests;
