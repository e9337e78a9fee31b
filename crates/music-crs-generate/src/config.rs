//! Which generator to run, as plain data (TOML/JSON), and the constructor that builds it.

use std::path::{Path, PathBuf};

use music_crs_core::ComputeDevice;
use serde::{Deserialize, Serialize};

use crate::chat_template::ChatTemplate;
use crate::prompt::PromptParams;
use crate::template::{TemplateGenerator, TemplateParams};
use crate::{Error, Generator, Result};

/// The model the official baseline replies with.
pub const DEFAULT_HUB_MODEL: &str = "meta-llama/Llama-3.2-1B-Instruct";
/// Default reply length limit, as in the baseline's batch inference.
pub const DEFAULT_MAX_NEW_TOKENS: usize = 64;
/// Default sampling temperature (Llama-3.2-1B-Instruct's generation config).
pub const DEFAULT_TEMPERATURE: f64 = 0.6;
/// Default nucleus threshold (Llama-3.2-1B-Instruct's generation config).
pub const DEFAULT_TOP_P: f64 = 0.9;
/// Default sampling seed.
pub const DEFAULT_LLAMA_SEED: u64 = 299_792_458;
/// Default cap on prompt plus reply tokens (a longer prompt is fitted: see
/// `LlamaGenerator::generate_with_stats`).
pub const DEFAULT_MAX_CONTEXT_TOKENS: usize = 4096;
/// Default repeat penalty: 1.0, off, as in the baseline.
pub const DEFAULT_REPEAT_PENALTY: f32 = 1.0;
/// Default window of the repeat penalty, in generated tokens.
pub const DEFAULT_REPEAT_LAST_N: usize = 64;
/// Default number of saved prompt-prefix KV states (see [`LlamaParams::prefix_cache_entries`]).
pub const DEFAULT_PREFIX_CACHE_ENTRIES: usize = 16;

/// Where a chat model comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSource {
    /// A local directory with `config.json`, `tokenizer.json`, `model.safetensors` (or
    /// `model.safetensors.index.json` and its shards), and optionally
    /// `tokenizer_config.json` / `generation_config.json`.
    Dir {
        /// The directory.
        path: PathBuf,
    },
    /// A GGUF file of a supported architecture (`llama`, `qwen2`, `qwen3`, `gemma3`, `phi3`;
    /// see `model_check::Architecture`).
    Gguf {
        /// The `.gguf` file.
        path: PathBuf,
        /// A `tokenizer.json` to use; by default the tokenizer is built from the GGUF's own
        /// vocabulary and merges.
        #[serde(default)]
        tokenizer: Option<PathBuf>,
    },
    /// A safetensors model repository on the Hugging Face hub (needs the `hub` feature).
    Hub {
        /// e.g. `meta-llama/Llama-3.2-1B-Instruct`.
        repo: String,
        /// Branch, tag or commit; `main` when absent.
        #[serde(default)]
        revision: Option<String>,
    },
}

impl Default for ModelSource {
    fn default() -> Self {
        ModelSource::Hub {
            repo: DEFAULT_HUB_MODEL.to_string(),
            revision: None,
        }
    }
}

impl ModelSource {
    /// Reads a command-line spec: `hub:owner/name[@revision]`, a `.gguf` file, or a
    /// directory. A spec that is none of these is an error naming it.
    pub fn parse(spec: &str) -> Result<Self> {
        if let Some(repo) = spec.strip_prefix("hub:") {
            let (repo, revision) = match repo.split_once('@') {
                Some((repo, revision)) => (repo, Some(revision.to_string())),
                None => (repo, None),
            };
            // Checked here, before the id or revision can reach a cache path.
            music_crs_core::hub::HubRepo::new(
                music_crs_core::hub::RepoKind::Model,
                repo,
                revision.as_deref(),
            )?;
            return Ok(ModelSource::Hub {
                repo: repo.to_string(),
                revision,
            });
        }
        let path = Path::new(spec);
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
        {
            return Ok(ModelSource::Gguf {
                path: path.to_path_buf(),
                tokenizer: None,
            });
        }
        if path.is_dir() {
            return Ok(ModelSource::Dir {
                path: path.to_path_buf(),
            });
        }
        Err(Error::InvalidParameter {
            name: "model",
            reason: format!(
                "{spec:?} is neither a .gguf file, an existing model directory, nor hub:owner/name"
            ),
        })
    }
}

/// Weight precision for safetensors models (GGUF files keep their own quantization).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDtype {
    /// 32-bit floats: the fast and exact choice on CPU.
    #[default]
    F32,
    /// 16-bit floats.
    F16,
    /// bfloat16 (the checkpoint's own precision for Llama 3.2).
    Bf16,
}

/// What the Llama generator sends when the model's own reply is empty or degenerate (see
/// [`reply_check`](crate::reply_check)). Either way the run counts and reports such replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyFallback {
    /// The template generator's reply for the same turn, grounded on the same tracks.
    Template,
    /// The model's reply as it is.
    Keep,
}

/// Settings of the Llama generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlamaParams {
    /// Most tokens in a reply.
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 means greedy (argmax).
    pub temperature: f64,
    /// Nucleus sampling threshold in (0, 1]; `None` samples from the whole distribution.
    pub top_p: Option<f64>,
    /// Base seed, mixed with session id and turn per reply.
    pub seed: u64,
    /// Penalty on tokens already generated (1.0 = off, as in the baseline): positive logits
    /// of those tokens are divided by it, negative ones multiplied. Values above 1 (commonly
    /// 1.1 to 1.3; not tuned here) are the usual remedy for a small model looping on a phrase
    /// under greedy decoding. Unlike llama.cpp, prompt tokens are not penalized (the reply
    /// should name the track).
    pub repeat_penalty: f32,
    /// How many of the most recent generated tokens the penalty looks at.
    pub repeat_last_n: usize,
    /// Cap on prompt plus reply tokens. A longer prompt loses older history first, then the
    /// retrieved track block, then the end of the user message (each with a warning); it must
    /// hold at least the system prompt and `max_new_tokens` (checked when the model loads).
    pub max_context_tokens: usize,
    /// How many prompt-prefix KV states to keep for reuse by later calls (the system message
    /// and the history up to the last user message; least recently used dropped first).
    /// Each holds the KV cache of its tokens (SmolLM2-135M: ~46 KB per token, so ~46 MB for
    /// a 1,000-token prefix; our own forward pass shares the positions a saved prefix has in
    /// common with another). The default, 16, holds what a batch of several sessions decoded
    /// side by side reuses (the grounded prompt saves up to 5 prefixes a session: the system
    /// message, and it with each of the 4 examples); 8 lost a third of the reuse. 0 turns
    /// reuse off and reads each prompt in one forward pass.
    pub prefix_cache_entries: usize,
    /// Weight precision for safetensors checkpoints.
    pub dtype: WeightDtype,
    /// Where the model runs: `"cpu"` (default), `"cuda"` / `"cuda:N"` (feature `cuda`) or
    /// `"metal"` / `"metal:N"` (feature `metal`). A device the build lacks, or one that
    /// cannot be opened, is an error when the model loads.
    #[serde(skip_serializing_if = "ComputeDevice::is_cpu")]
    pub device: ComputeDevice,
    /// A built-in template used instead of the model's own Jinja chat template (by default
    /// the model's own is used, and a built-in one only when it has none).
    pub chat_template: Option<ChatTemplate>,
    /// Options of the baseline prompt.
    pub prompt: PromptParams,
    /// What to send when the model replies with nothing: `template` (default: an empty
    /// reply says nothing about the track, and the template's does) or `keep`.
    pub on_empty: ReplyFallback,
    /// What to send when the model's reply is degenerate (a loop or a dominant phrase):
    /// `keep` (default: the reply is the model's, flawed or not) or `template`.
    pub on_degenerate: ReplyFallback,
}

impl Default for LlamaParams {
    fn default() -> Self {
        LlamaParams {
            max_new_tokens: DEFAULT_MAX_NEW_TOKENS,
            temperature: DEFAULT_TEMPERATURE,
            top_p: Some(DEFAULT_TOP_P),
            seed: DEFAULT_LLAMA_SEED,
            repeat_penalty: DEFAULT_REPEAT_PENALTY,
            repeat_last_n: DEFAULT_REPEAT_LAST_N,
            max_context_tokens: DEFAULT_MAX_CONTEXT_TOKENS,
            prefix_cache_entries: DEFAULT_PREFIX_CACHE_ENTRIES,
            dtype: WeightDtype::F32,
            device: ComputeDevice::Cpu,
            chat_template: None,
            prompt: PromptParams::default(),
            on_empty: ReplyFallback::Template,
            on_degenerate: ReplyFallback::Keep,
        }
    }
}

impl LlamaParams {
    /// Greedy decoding (deterministic whatever the seed).
    pub fn greedy() -> Self {
        LlamaParams {
            temperature: 0.0,
            top_p: None,
            ..LlamaParams::default()
        }
    }

    /// Checks every value is in range.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |name: &'static str, reason: String| Err(Error::InvalidParameter { name, reason });
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens", "must be at least 1".into());
        }
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad(
                "temperature",
                format!("{} is not a finite value >= 0", self.temperature),
            );
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return bad("top_p", format!("{p} is not within (0, 1]"));
        }
        if !self.repeat_penalty.is_finite() || self.repeat_penalty <= 0.0 {
            return bad(
                "repeat_penalty",
                format!("{} is not a finite value > 0", self.repeat_penalty),
            );
        }
        if self.max_context_tokens <= self.max_new_tokens {
            return bad(
                "max_context_tokens",
                format!(
                    "{} leaves no room for a prompt with max_new_tokens {}",
                    self.max_context_tokens, self.max_new_tokens
                ),
            );
        }
        Ok(())
    }
}

/// A chat model (see `LlamaGenerator`) and how to run it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlamaConfig {
    /// Where the weights and tokenizer come from.
    pub model: ModelSource,
    /// How to generate.
    pub params: LlamaParams,
}

/// Which generator to build. Serialized with a `kind` tag:
///
/// ```toml
/// kind = "llama"
/// model = { source = "gguf", path = "models/SmolLM2-135M-Instruct.Q4_1.gguf" }
/// params = { max_new_tokens = 64, temperature = 0.0 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GeneratorConfig {
    /// The grounded template generator (no model, no feature).
    Template(TemplateParams),
    /// A Candle chat model: Llama safetensors or a GGUF file of a supported architecture
    /// (needs the `llama` feature; hub models also `hub`).
    Llama(LlamaConfig),
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig::Template(TemplateParams::default())
    }
}

/// Builds the generator a configuration describes (loading model files as needed).
pub fn build_generator(config: &GeneratorConfig) -> Result<Box<dyn Generator>> {
    match config {
        GeneratorConfig::Template(params) => Ok(Box::new(TemplateGenerator::new(params.clone())?)),
        GeneratorConfig::Llama(config) => build_llama(config),
    }
}

#[cfg(feature = "llama")]
fn build_llama(config: &LlamaConfig) -> Result<Box<dyn Generator>> {
    Ok(Box::new(crate::llama::LlamaGenerator::load(
        &config.model,
        config.params.clone(),
    )?))
}

#[cfg(not(feature = "llama"))]
fn build_llama(config: &LlamaConfig) -> Result<Box<dyn Generator>> {
    config.params.validate()?;
    Err(Error::FeatureDisabled {
        feature: "llama",
        what: "the Llama generator".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_json_with_a_kind_tag() {
        let config = GeneratorConfig::Llama(LlamaConfig {
            model: ModelSource::Gguf {
                path: "m.gguf".into(),
                tokenizer: None,
            },
            params: LlamaParams::greedy(),
        });
        let json = serde_json::to_string(&config).unwrap();
        assert!(
            json.contains(r#""kind":"llama""#) && json.contains(r#""source":"gguf""#),
            "{json}"
        );
        let back: GeneratorConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
        let template: GeneratorConfig =
            serde_json::from_str(r#"{"kind":"template","seed":3}"#).unwrap();
        assert_eq!(
            template,
            GeneratorConfig::Template(TemplateParams {
                seed: 3,
                ..TemplateParams::default()
            })
        );
        let unknown = serde_json::from_str::<GeneratorConfig>(r#"{"kind":"template","sed":3}"#);
        assert!(unknown.is_err());
    }

    #[test]
    fn build_template_generator() {
        let generator = build_generator(&GeneratorConfig::default()).unwrap();
        assert_eq!(generator.name(), "template");
    }

    #[test]
    fn model_specs_parse() {
        assert_eq!(
            ModelSource::parse("hub:meta-llama/Llama-3.2-1B-Instruct@main").unwrap(),
            ModelSource::Hub {
                repo: DEFAULT_HUB_MODEL.into(),
                revision: Some("main".into())
            }
        );
        assert!(matches!(
            ModelSource::parse("x/y.GGUF").unwrap(),
            ModelSource::Gguf { .. }
        ));
        let dir = std::env::temp_dir();
        assert!(matches!(
            ModelSource::parse(dir.to_str().unwrap()).unwrap(),
            ModelSource::Dir { .. }
        ));
        let err = ModelSource::parse("/no/such/model")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/no/such/model"), "{err}");
        for escaping in [
            "hub:o/n@../../../somewhere",
            "hub:../../etc@main",
            "hub:/abs",
        ] {
            let err = ModelSource::parse(escaping).unwrap_err().to_string();
            assert!(err.contains("invalid hub"), "{escaping}: {err}");
        }
    }

    #[test]
    fn device_and_fallbacks_are_plain_strings_with_defaults() {
        let params: LlamaParams = serde_json::from_str(
            r#"{"device": "cuda:1", "on_empty": "keep", "on_degenerate": "template"}"#,
        )
        .unwrap();
        assert_eq!(params.device, ComputeDevice::Cuda(1));
        assert_eq!(params.on_empty, ReplyFallback::Keep);
        assert_eq!(params.on_degenerate, ReplyFallback::Template);
        let defaults = LlamaParams::default();
        assert_eq!(defaults.device, ComputeDevice::Cpu);
        assert_eq!(defaults.on_empty, ReplyFallback::Template);
        assert_eq!(defaults.on_degenerate, ReplyFallback::Keep);
        // The CPU is not written out, so configs and their fingerprints stay as they were.
        let json = serde_json::to_string(&defaults).unwrap();
        assert!(!json.contains("device"), "{json}");
        for (bad, needle) in [
            (r#"{"device": "gpu"}"#, "\"gpu\" is not a device"),
            (r#"{"on_empty": "skip"}"#, "unknown variant `skip`"),
        ] {
            let err = serde_json::from_str::<LlamaParams>(bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn llama_params_are_validated() {
        assert!(LlamaParams::default().validate().is_ok());
        let bad = LlamaParams {
            top_p: Some(1.5),
            ..LlamaParams::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("top_p"));
        let bad = LlamaParams {
            max_new_tokens: 0,
            ..LlamaParams::default()
        };
        assert!(bad.validate().is_err());
    }

    #[cfg(not(feature = "llama"))]
    #[test]
    fn llama_without_the_feature_is_a_clear_error() {
        let err = build_generator(&GeneratorConfig::Llama(LlamaConfig::default()))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`llama` feature"), "{err}");
    }
}
