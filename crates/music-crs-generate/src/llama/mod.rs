//! The Candle Llama backend (feature `llama`): Llama-architecture chat models on CPU, from
//! safetensors checkpoints (`candle_transformers::models::llama`) or GGUF files
//! (`candle_transformers::models::quantized_llama`).
//!
//! The model is immutable once loaded; each call starts from an empty KV cache (a clone of
//! the loaded state) and its own seeded sampler, so one [`LlamaGenerator`] serves many
//! threads without a lock and a reply never depends on what ran before.

mod gguf_tokenizer;
#[cfg(feature = "hub")]
mod hub;
mod weights;

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::llama as full;
use candle_transformers::models::quantized_llama as quantized;
use music_crs_core::GenerationRequest;
use tokenizers::Tokenizer;

use crate::chat_template::ChatTemplate;
use crate::config::{LlamaParams, ModelSource};
use crate::prompt::{ChatMessage, build_chat};
use crate::template::{TemplateGenerator, mix_seed};
use crate::{Error, Generator, Result};

/// What one completion produced and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The reply, special tokens removed and whitespace trimmed (may be empty).
    pub text: String,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated (the end token not counted).
    pub generated_tokens: usize,
    /// True when the model emitted an end token (false: `max_new_tokens` reached).
    pub stopped: bool,
    /// Seconds spent on the prompt (prefill).
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

/// The loaded network.
enum Network {
    Full {
        model: full::Llama,
        /// An empty cache, cloned per call.
        cache: full::Cache,
    },
    Quantized(quantized::ModelWeights),
}

/// The per-call state: a fresh KV cache.
enum Session<'a> {
    Full {
        model: &'a full::Llama,
        cache: full::Cache,
    },
    Quantized(quantized::ModelWeights),
}

impl Network {
    fn session(&self) -> Session<'_> {
        match self {
            Network::Full { model, cache } => Session::Full {
                model,
                cache: cache.clone(),
            },
            Network::Quantized(weights) => {
                let mut weights = weights.clone();
                weights.clear_kv_cache();
                Session::Quantized(weights)
            }
        }
    }
}

impl Session<'_> {
    /// Logits of the last position, as a 1-D f32 tensor.
    fn forward(&mut self, tokens: &[u32], position: usize) -> candle_core::Result<Tensor> {
        let input = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        let logits = match self {
            Session::Full { model, cache } => model.forward(&input, position, cache)?,
            Session::Quantized(weights) => weights.forward(&input, position)?,
        };
        logits.squeeze(0)?.to_dtype(DType::F32)
    }
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

/// A Llama-architecture chat model that writes replies the way the official baseline does.
pub struct LlamaGenerator {
    network: Network,
    tokenizer: Tokenizer,
    template: ChatTemplate,
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

    /// Downloads (or finds in the local hub cache) a safetensors model and loads it.
    #[cfg(feature = "hub")]
    pub fn from_hub(repo: &str, revision: Option<&str>, params: LlamaParams) -> Result<Self> {
        let dir = hub::download(repo, revision)?;
        let mut generator = Self::from_dir(&dir, params)?;
        generator.name = format!("llama:{repo}");
        Ok(generator)
    }

    /// Loads a safetensors checkpoint from a directory holding `config.json`,
    /// `tokenizer.json` and `model.safetensors` (or `model.safetensors.index.json` with its
    /// shards); `tokenizer_config.json` and `generation_config.json` are read when present.
    pub fn from_dir(dir: &Path, params: LlamaParams) -> Result<Self> {
        params.validate()?;
        let files = weights::DirFiles::locate(dir)?;
        let config = weights::read_config(&files.config)?;
        let tokenizer = load_tokenizer_json(&files.tokenizer)?;
        let template = match &params.chat_template {
            Some(template) => template.clone(),
            None => files
                .chat_template_source()?
                .and_then(|source| ChatTemplate::from_jinja(&source))
                .or_else(|| {
                    ChatTemplate::from_special_tokens(|t| tokenizer.token_to_id(t).is_some())
                })
                .ok_or_else(|| Error::BadModelFile {
                    path: files.tokenizer.clone(),
                    reason: "no known chat template (Llama 3 or ChatML); set params.chat_template"
                        .into(),
                })?,
        };
        let mut end_tokens = files.generation_eos()?;
        end_tokens.extend(weights::eos_ids(&config));
        let dtype = match params.dtype {
            crate::WeightDtype::F32 => DType::F32,
            crate::WeightDtype::F16 => DType::F16,
            crate::WeightDtype::Bf16 => DType::BF16,
        };
        let config = config.into_config(false);
        let model = weights::load_llama(&files.weights, &config, dtype)?;
        let cache = full::Cache::new(true, dtype, &config, &Device::Cpu)
            .map_err(model_error("building the KV cache"))?;
        let name = format!("llama:{}", dir.display());
        Self::assemble(
            Network::Full { model, cache },
            tokenizer,
            template,
            end_tokens,
            config.max_position_embeddings,
            params,
            name,
        )
    }

    /// Loads a GGUF file (Llama architecture, any quantization candle reads). The tokenizer
    /// is `tokenizer` when given, otherwise rebuilt from the GGUF's own vocabulary.
    pub fn from_gguf(path: &Path, tokenizer: Option<&Path>, params: LlamaParams) -> Result<Self> {
        params.validate()?;
        if !path.is_file() {
            return Err(Error::MissingFile {
                what: "GGUF model file".into(),
                path: path.to_path_buf(),
                looked_in: parent_of(path),
            });
        }
        let mut file = fs_err::File::open(path)?;
        let content = candle_core::quantized::gguf_file::Content::read(&mut file).map_err(|e| {
            Error::BadModelFile {
                path: path.to_path_buf(),
                reason: format!("not a readable GGUF file: {e}"),
            }
        })?;
        let meta_string = |key: &str| {
            content
                .metadata
                .get(key)
                .and_then(|v| v.to_string().ok())
                .cloned()
        };
        let architecture = meta_string("general.architecture").unwrap_or_default();
        if architecture != "llama" {
            return Err(Error::BadModelFile {
                path: path.to_path_buf(),
                reason: format!("architecture {architecture:?} is not supported (llama only)"),
            });
        }
        let tokenizer = match tokenizer {
            Some(json) => load_tokenizer_json(json)?,
            None => gguf_tokenizer::tokenizer_from_gguf(&content, path)?,
        };
        let template = match &params.chat_template {
            Some(template) => template.clone(),
            None => meta_string("tokenizer.chat_template")
                .and_then(|source| ChatTemplate::from_jinja(&source))
                .or_else(|| {
                    ChatTemplate::from_special_tokens(|t| tokenizer.token_to_id(t).is_some())
                })
                .ok_or_else(|| Error::BadModelFile {
                    path: path.to_path_buf(),
                    reason: "no known chat template (Llama 3 or ChatML); set params.chat_template"
                        .into(),
                })?,
        };
        let end_tokens: Vec<u32> = content
            .metadata
            .get("tokenizer.ggml.eos_token_id")
            .and_then(|v| v.to_u32().ok())
            .into_iter()
            .collect();
        let trained_context = content
            .metadata
            .get("llama.context_length")
            .and_then(|v| v.to_u32().ok())
            .map_or(quantized::MAX_SEQ_LEN, |n| n as usize);
        let load_error = |e: candle_core::Error| Error::BadModelFile {
            path: path.to_path_buf(),
            reason: format!("loading the weights: {e}"),
        };
        let weights = match requantized(&content, &mut file).map_err(load_error)? {
            Some(bytes) => {
                let mut reader = std::io::Cursor::new(bytes);
                let content = candle_core::quantized::gguf_file::Content::read(&mut reader)
                    .map_err(load_error)?;
                quantized::ModelWeights::from_gguf(content, &mut reader, &Device::Cpu)
            }
            None => quantized::ModelWeights::from_gguf(content, &mut file, &Device::Cpu),
        }
        .map_err(load_error)?;
        let name = format!("llama:{}", path.display());
        Self::assemble(
            Network::Quantized(weights),
            tokenizer,
            template,
            end_tokens,
            trained_context.min(quantized::MAX_SEQ_LEN),
            params,
            name,
        )
    }

    fn assemble(
        network: Network,
        tokenizer: Tokenizer,
        template: ChatTemplate,
        mut end_tokens: Vec<u32>,
        model_context: usize,
        params: LlamaParams,
        name: String,
    ) -> Result<Self> {
        end_tokens.extend(
            template
                .end_tokens()
                .iter()
                .filter_map(|token| tokenizer.token_to_id(token)),
        );
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
        tracing::info!("{name}: chat template {template:?}, end tokens {end_tokens:?}");
        Ok(LlamaGenerator {
            network,
            tokenizer,
            template,
            end_tokens,
            context_limit,
            params,
            name,
            fallback: TemplateGenerator::default(),
        })
    }

    /// The settings.
    pub fn params(&self) -> &LlamaParams {
        &self.params
    }

    /// The chat template in use.
    pub fn chat_template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The token ids that end a reply.
    pub fn end_tokens(&self) -> &[u32] {
        &self.end_tokens
    }

    /// Most prompt plus reply tokens per call.
    pub fn context_limit(&self) -> usize {
        self.context_limit
    }

    /// The prompt token ids of a chat (rendered with the chat template, generation prompt
    /// added, encoded without adding special tokens: the template writes them).
    pub fn prompt_ids(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let text = self.template.render(messages, true);
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(tokenizer_error("encoding the prompt"))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Runs the model on a chat and returns its reply. `seed` drives sampling (ignored when
    /// greedy). Fails when the prompt plus `max_new_tokens` exceeds the context limit.
    pub fn complete(&self, messages: &[ChatMessage], seed: u64) -> Result<Completion> {
        let prompt = self.prompt_ids(messages)?;
        let needed = prompt.len() + self.params.max_new_tokens;
        if needed > self.context_limit {
            return Err(Error::PromptTooLong {
                session_id: String::new(),
                turn_number: 0,
                tokens: needed,
                limit: self.context_limit,
            });
        }
        self.run(&prompt, seed)
    }

    /// The reply to a request with its token counts and timings. Older history is dropped
    /// (oldest messages first) until the prompt fits the context limit.
    pub fn generate_with_stats(&self, request: &GenerationRequest) -> Result<Completion> {
        let context = &request.context;
        let mut trimmed = request.clone();
        let prompt = loop {
            let messages = build_chat(&trimmed, &self.params.prompt);
            let prompt = self.prompt_ids(&messages)?;
            let needed = prompt.len() + self.params.max_new_tokens;
            if needed <= self.context_limit {
                break prompt;
            }
            if trimmed.context.history.is_empty() {
                return Err(Error::PromptTooLong {
                    session_id: context.session_id.clone(),
                    turn_number: context.turn_number,
                    tokens: needed,
                    limit: self.context_limit,
                });
            }
            // Drop the oldest turn (all its messages) to keep roles alternating sensibly.
            let oldest = trimmed.context.history[0].turn_number;
            trimmed.context.history.retain(|m| m.turn_number != oldest);
            tracing::debug!(
                "session {}, turn {}: dropped turn {oldest} of the history to fit {} tokens",
                context.session_id,
                context.turn_number,
                self.context_limit
            );
        };
        let seed = mix_seed(
            self.params.seed,
            &[
                context.session_id.as_bytes(),
                &context.turn_number.to_le_bytes(),
            ],
        );
        self.run(&prompt, seed)
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

    fn run(&self, prompt: &[u32], seed: u64) -> Result<Completion> {
        let mut session = self.network.session();
        let mut sampler = self.sampler(seed);
        let started = Instant::now();
        let mut logits = session
            .forward(prompt, 0)
            .map_err(model_error("reading the prompt"))?;
        let prompt_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut generated: Vec<u32> = Vec::with_capacity(self.params.max_new_tokens);
        let mut stopped = false;
        loop {
            if self.params.repeat_penalty != 1.0 && !generated.is_empty() {
                let start = generated.len().saturating_sub(self.params.repeat_last_n);
                logits = candle_transformers::utils::apply_repeat_penalty(
                    &logits,
                    self.params.repeat_penalty,
                    &generated[start..],
                )
                .map_err(model_error("applying the repeat penalty"))?;
            }
            let next = sampler
                .sample(&logits)
                .map_err(model_error("sampling a token"))?;
            if self.end_tokens.contains(&next) {
                stopped = true;
                break;
            }
            generated.push(next);
            if generated.len() >= self.params.max_new_tokens {
                break;
            }
            logits = session
                .forward(&[next], prompt.len() + generated.len() - 1)
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
            generated_tokens: generated.len(),
            stopped,
            prompt_seconds,
            generation_seconds,
        })
    }
}

impl Generator for LlamaGenerator {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(&self, request: &GenerationRequest) -> Result<String> {
        let completion = self.generate_with_stats(request)?;
        if completion.text.is_empty() {
            // A model may end its turn at once; the trait promises a non-empty reply.
            tracing::warn!(
                "session {}, turn {}: the model replied with nothing; using the template reply",
                request.context.session_id,
                request.context.turn_number
            );
            return Ok(self.fallback.reply(request));
        }
        Ok(completion.text)
    }
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
