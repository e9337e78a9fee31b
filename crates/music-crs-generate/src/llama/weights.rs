//! Locating and checking the files of a safetensors Llama checkpoint.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::llama::{
    Config, Llama, Llama3RopeConfig, Llama3RopeType, LlamaConfig, LlamaEosToks,
};

use crate::model_check::{CONFIG_JSON_FIELDS, LlamaShape, MAX_CONTEXT};
use crate::{Error, Result};

/// The files of a model directory.
pub(super) struct DirFiles {
    pub config: PathBuf,
    pub tokenizer: PathBuf,
    pub tokenizer_config: Option<PathBuf>,
    pub generation_config: Option<PathBuf>,
    pub weights: Vec<PathBuf>,
}

fn missing(what: &str, path: PathBuf, dir: &Path) -> Error {
    Error::MissingFile {
        what: what.to_string(),
        path,
        looked_in: dir.to_path_buf(),
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadModelFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = fs_err::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| bad(path, format!("not valid JSON: {e}")))
}

impl DirFiles {
    /// Finds the files, failing with the first required one that is missing.
    pub fn locate(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            let parent = dir.parent().unwrap_or(Path::new(".")).to_path_buf();
            return Err(missing("model directory", dir.to_path_buf(), &parent));
        }
        let required = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(missing(name, path, dir))
            }
        };
        let optional = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
        let config = required("config.json")?;
        let tokenizer = required("tokenizer.json")?;
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let weights = if single.is_file() {
            vec![single]
        } else if index.is_file() {
            shards(&index, dir)?
        } else {
            return Err(missing(
                "model.safetensors (or model.safetensors.index.json)",
                single,
                dir,
            ));
        };
        Ok(DirFiles {
            config,
            tokenizer,
            tokenizer_config: optional("tokenizer_config.json"),
            generation_config: optional("generation_config.json"),
            weights,
        })
    }

    /// The Jinja chat template of `tokenizer_config.json` (a string, or the `default` entry
    /// of a list of named templates).
    pub fn chat_template_source(&self) -> Result<Option<String>> {
        let Some(path) = &self.tokenizer_config else {
            return Ok(None);
        };
        let json = read_json(path)?;
        Ok(match json.get("chat_template") {
            Some(serde_json::Value::String(source)) => Some(source.clone()),
            Some(serde_json::Value::Array(named)) => named
                .iter()
                .find(|entry| entry.get("name").and_then(|n| n.as_str()) == Some("default"))
                .and_then(|entry| entry.get("template"))
                .and_then(|t| t.as_str())
                .map(str::to_string),
            _ => None,
        })
    }

    /// The `bos_token` and `eos_token` texts of `tokenizer_config.json` (a string, or an
    /// object with a `content` string), which chat templates write.
    pub fn special_token_texts(&self) -> Result<(Option<String>, Option<String>)> {
        let Some(path) = &self.tokenizer_config else {
            return Ok((None, None));
        };
        let json = read_json(path)?;
        let text = |key: &str| match json.get(key) {
            Some(serde_json::Value::String(text)) => Some(text.clone()),
            Some(serde_json::Value::Object(token)) => token
                .get("content")
                .and_then(|c| c.as_str())
                .map(str::to_string),
            _ => None,
        };
        Ok((text("bos_token"), text("eos_token")))
    }

    /// `eos_token_id` of `generation_config.json` (a number or a list).
    pub fn generation_eos(&self) -> Result<Vec<u32>> {
        let Some(path) = &self.generation_config else {
            return Ok(Vec::new());
        };
        let json = read_json(path)?;
        Ok(match json.get("eos_token_id") {
            Some(serde_json::Value::Number(n)) => {
                n.as_u64().map(|n| n as u32).into_iter().collect()
            }
            Some(serde_json::Value::Array(ids)) => ids
                .iter()
                .filter_map(|id| id.as_u64().map(|n| n as u32))
                .collect(),
            _ => Vec::new(),
        })
    }
}

/// The shard files named by a `model.safetensors.index.json`, each checked to exist.
fn shards(index: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let json = read_json(index)?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| bad(index, "no weight_map object"))?;
    let names: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(missing("weight shard", path, dir))
            }
        })
        .collect()
}

/// Reads `config.json` into candle's raw Llama config, every size and rate checked (candle
/// allocates from them before looking at the weights).
pub(super) fn read_config(path: &Path) -> Result<LlamaConfig> {
    let text = fs_err::read_to_string(path)?;
    let config: LlamaConfig = serde_json::from_str(&text)
        .map_err(|e| bad(path, format!("not a Llama config.json: {e}")))?;
    LlamaShape {
        layers: config.num_hidden_layers,
        hidden: config.hidden_size,
        intermediate: config.intermediate_size,
        heads: config.num_attention_heads,
        kv_heads: config.num_key_value_heads(),
        vocab: config.vocab_size,
        context: Some(config.max_position_embeddings),
        rope_theta: f64::from(config.rope_theta),
        norm_eps: config.rms_norm_eps,
    }
    .check(path, &CONFIG_JSON_FIELDS)?;
    if let Some(scaling) = &config.rope_scaling {
        check_rope_scaling(path, scaling)?;
    }
    Ok(config)
}

/// Llama 3 rope scaling: positive factors, the high-frequency one above the low one (candle
/// divides by their difference), an original context within bounds.
fn check_rope_scaling(path: &Path, scaling: &Llama3RopeConfig) -> Result<()> {
    if !matches!(scaling.rope_type, Llama3RopeType::Llama3) {
        // candle ignores the factors of the default rope type.
        return Ok(());
    }
    let field = |name: &str, reason: String| Error::ModelField {
        path: path.to_path_buf(),
        field: format!("rope_scaling.{name}"),
        reason,
    };
    for (name, value) in [
        ("factor", scaling.factor),
        ("low_freq_factor", scaling.low_freq_factor),
        ("high_freq_factor", scaling.high_freq_factor),
    ] {
        if !(value.is_finite() && value > 0.0) {
            return Err(field(name, format!("{value} is not a positive number")));
        }
    }
    if scaling.high_freq_factor <= scaling.low_freq_factor {
        return Err(field(
            "high_freq_factor",
            format!(
                "{} is not above low_freq_factor {}",
                scaling.high_freq_factor, scaling.low_freq_factor
            ),
        ));
    }
    let original = scaling.original_max_position_embeddings;
    if !(1..=MAX_CONTEXT).contains(&original) {
        return Err(field(
            "original_max_position_embeddings",
            format!("{original} is outside 1..={MAX_CONTEXT}"),
        ));
    }
    Ok(())
}

/// The end-of-sequence ids of `config.json`.
pub(super) fn eos_ids(config: &LlamaConfig) -> Vec<u32> {
    match &config.eos_token_id {
        Some(LlamaEosToks::Single(id)) => vec![*id],
        Some(LlamaEosToks::Multiple(ids)) => ids.clone(),
        None => Vec::new(),
    }
}

/// Every tensor `Llama::load` reads, with its shape. Checked up front because candle's
/// loader unwraps per-layer errors (a missing or misshapen tensor would panic).
fn expected_tensors(config: &Config) -> Vec<(String, Vec<usize>)> {
    let hidden = config.hidden_size;
    let head_dim = hidden / config.num_attention_heads;
    let kv = config.num_key_value_heads * head_dim;
    let inter = config.intermediate_size;
    let mut expected = vec![
        (
            "model.embed_tokens.weight".to_string(),
            vec![config.vocab_size, hidden],
        ),
        ("model.norm.weight".to_string(), vec![hidden]),
    ];
    if !config.tie_word_embeddings {
        expected.push((
            "lm_head.weight".to_string(),
            vec![config.vocab_size, hidden],
        ));
    }
    for layer in 0..config.num_hidden_layers {
        let p = format!("model.layers.{layer}");
        expected.extend([
            (format!("{p}.self_attn.q_proj.weight"), vec![hidden, hidden]),
            (format!("{p}.self_attn.k_proj.weight"), vec![kv, hidden]),
            (format!("{p}.self_attn.v_proj.weight"), vec![kv, hidden]),
            (format!("{p}.self_attn.o_proj.weight"), vec![hidden, hidden]),
            (format!("{p}.mlp.gate_proj.weight"), vec![inter, hidden]),
            (format!("{p}.mlp.up_proj.weight"), vec![inter, hidden]),
            (format!("{p}.mlp.down_proj.weight"), vec![hidden, inter]),
            (format!("{p}.input_layernorm.weight"), vec![hidden]),
            (format!("{p}.post_attention_layernorm.weight"), vec![hidden]),
        ]);
    }
    expected
}

/// Loads and checks the weights, then builds the model.
pub(super) fn load_llama(
    files: &[PathBuf],
    config: &Config,
    dtype: DType,
    device: &Device,
) -> Result<Llama> {
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let mut origin: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        let loaded = candle_core::safetensors::load(file, &Device::Cpu)
            .map_err(|e| bad(file, format!("not a readable safetensors file: {e}")))?;
        for name in loaded.keys() {
            origin.insert(name.clone(), file.clone());
        }
        tensors.extend(loaded);
    }
    let first = files.first().cloned().unwrap_or_default();
    for (name, shape) in expected_tensors(config) {
        match tensors.get(&name) {
            None => return Err(bad(&first, format!("tensor {name} is missing"))),
            Some(tensor) if tensor.dims() != shape.as_slice() => {
                let file = origin.get(&name).unwrap_or(&first);
                return Err(bad(
                    file,
                    format!(
                        "tensor {name} has shape {:?}, config.json implies {shape:?}",
                        tensor.dims()
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    // Read on the CPU and checked there; the builder moves each tensor to `device`.
    let builder = VarBuilder::from_tensors(tensors, dtype, device);
    Llama::load(builder, config).map_err(|e| bad(&first, format!("loading the weights: {e}")))
}
