//! A Candle BERT sentence encoder (the `bert` feature): sentence-transformers' recipe of
//! mean pooling over the attention mask and L2 normalisation, with `[CLS]` pooling as an
//! option.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, HiddenAct, PositionEmbeddingType};
use music_crs_core::ComputeDevice;
use serde::Deserialize;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::Pooling;
use super::encoder::Encoder;
use crate::{Error, Result};

/// Longest input when neither the parameters nor `sentence_bert_config.json` say (BERT's
/// position table is usually 512 long; the smaller of the two is used).
pub const DEFAULT_MAX_LENGTH: usize = 512;

/// Parameters of a [`BertEncoder`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct BertParams {
    /// Token pooling.
    pub pooling: Pooling,
    /// Longest input in tokens; `None` reads `max_seq_length` of `sentence_bert_config.json`,
    /// else the model's position table size (capped at 512 tokens, `DEFAULT_MAX_LENGTH`).
    pub max_length: Option<usize>,
    /// Scale every vector to unit length.
    pub normalize: bool,
    /// Where the encoder runs: the CPU (default), `cuda[:N]` (feature `cuda`) or
    /// `metal[:N]` (feature `metal`).
    #[serde(skip_serializing_if = "ComputeDevice::is_cpu")]
    pub device: ComputeDevice,
}

impl Default for BertParams {
    fn default() -> Self {
        BertParams {
            pooling: Pooling::Mean,
            max_length: None,
            normalize: true,
            device: ComputeDevice::Cpu,
        }
    }
}

impl BertParams {
    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if self.max_length == Some(0) {
            return Err(Error::InvalidParameter {
                name: "max_length",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// The Candle device of `device`: refused with the missing feature's name when this build
/// cannot drive it, and with Candle's reason when it cannot be opened.
fn open_device(device: ComputeDevice) -> Result<Device> {
    if let Some(feature) = device.missing_feature(cfg!(feature = "cuda"), cfg!(feature = "metal")) {
        return Err(Error::FeatureDisabled {
            feature,
            what: format!("device {device}"),
        });
    }
    open_built_device(device)
}

/// Opens a device this build can drive (Candle's own check comes after ours, so it only
/// fires when the feature is on and the hardware or driver is missing).
fn open_built_device(device: ComputeDevice) -> Result<Device> {
    let opened = match device {
        ComputeDevice::Cpu => return Ok(Device::Cpu),
        ComputeDevice::Cuda(ordinal) => Device::new_cuda(ordinal),
        ComputeDevice::Metal(ordinal) => Device::new_metal(ordinal),
    };
    opened.map_err(|e| Error::Device {
        device: device.to_string(),
        reason: e.to_string(),
    })
}

/// The `config.json` fields a BERT encoder needs, with Hugging Face's defaults; converted
/// to candle's config after checks.
#[derive(Debug, Deserialize)]
struct RawBertConfig {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "default_hidden_act")]
    hidden_act: String,
    #[serde(default = "default_max_position")]
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    pad_token_id: usize,
    #[serde(default)]
    position_embedding_type: Option<String>,
    #[serde(default)]
    model_type: Option<String>,
}

fn default_hidden_act() -> String {
    "gelu".into()
}
fn default_max_position() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}

/// Bounds on the sizes a BERT `config.json` may declare (well above any released encoder),
/// so a hostile file is refused before candle allocates from it.
const MAX_LAYERS: usize = 256;
const MAX_HEADS: usize = 1024;
const MAX_HIDDEN: usize = 65_536;
const MAX_INTERMEDIATE: usize = 1 << 20;
const MAX_VOCAB: usize = 1 << 22;
const MAX_POSITIONS: usize = 1 << 20;
const MAX_TYPE_VOCAB: usize = 1 << 10;

impl RawBertConfig {
    /// Every size within its bounds and consistent with the others; the error names the
    /// field.
    fn check_sizes(&self) -> std::result::Result<(), String> {
        for (field, value, max) in [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, MAX_HIDDEN),
            ("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS),
            ("num_attention_heads", self.num_attention_heads, MAX_HEADS),
            (
                "intermediate_size",
                self.intermediate_size,
                MAX_INTERMEDIATE,
            ),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                MAX_POSITIONS,
            ),
            ("type_vocab_size", self.type_vocab_size, MAX_TYPE_VOCAB),
        ] {
            if !(1..=max).contains(&value) {
                return Err(format!("{field} = {value} is outside 1..={max}"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.pad_token_id >= self.vocab_size {
            return Err(format!(
                "pad_token_id = {} is outside the vocabulary of {} (vocab_size)",
                self.pad_token_id, self.vocab_size
            ));
        }
        if !(self.layer_norm_eps.is_finite()
            && self.layer_norm_eps > 0.0
            && self.layer_norm_eps < 1.0)
        {
            return Err(format!(
                "layer_norm_eps = {} is outside (0, 1)",
                self.layer_norm_eps
            ));
        }
        Ok(())
    }

    fn into_config(self) -> std::result::Result<Config, String> {
        let hidden_act = match self.hidden_act.as_str() {
            "gelu" => HiddenAct::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_approximate" => HiddenAct::GeluApproximate,
            "relu" => HiddenAct::Relu,
            other => return Err(format!("unsupported hidden_act {other:?}")),
        };
        match self.position_embedding_type.as_deref() {
            None | Some("absolute") => {}
            Some(other) => return Err(format!("unsupported position_embedding_type {other:?}")),
        }
        self.check_sizes()?;
        Ok(Config {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            hidden_act,
            hidden_dropout_prob: 0.0,
            max_position_embeddings: self.max_position_embeddings,
            type_vocab_size: self.type_vocab_size,
            initializer_range: 0.02,
            layer_norm_eps: self.layer_norm_eps,
            pad_token_id: self.pad_token_id,
            position_embedding_type: PositionEmbeddingType::Absolute,
            use_cache: false,
            classifier_dropout: None,
            model_type: self.model_type,
        })
    }
}

#[derive(Debug, Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

/// The files of a local BERT model.
#[derive(Debug, Clone)]
struct ModelFiles {
    config: PathBuf,
    tokenizer: PathBuf,
    weights: PathBuf,
    sentence_config: Option<PathBuf>,
}

/// Downloads (or finds in the hub cache) the files of a BERT model: `owner/name[@revision]`.
#[cfg(feature = "hub")]
fn hub_files(spec: &str, hub: &music_crs_core::hub::HubParams) -> Result<ModelFiles> {
    use music_crs_core::hub::{HubClient, HubFailure, HubRepo, RepoKind};

    let (id, revision) = match spec.split_once('@') {
        Some((id, revision)) => (id, Some(revision)),
        None => (spec, None),
    };
    let repo = HubRepo::new(RepoKind::Model, id, revision)?;
    let client = HubClient::new(hub)?;
    let weights = match client.get_optional(&repo, "model.safetensors")? {
        Some(path) => path,
        None => client
            .get(&repo, "pytorch_model.bin")
            .map_err(|e| match e {
                // Neither weights file is there: name both.
                music_crs_core::Error::Hub {
                    repo,
                    file: Some(_),
                    failure: failure @ (HubFailure::NotFound | HubFailure::NotCached { .. }),
                } => music_crs_core::Error::Hub {
                    repo,
                    file: Some("model.safetensors (or pytorch_model.bin)".into()),
                    failure,
                },
                other => other,
            })?,
    };
    Ok(ModelFiles {
        config: client.get(&repo, "config.json")?,
        tokenizer: client.get(&repo, "tokenizer.json")?,
        weights,
        sentence_config: client.get_optional(&repo, "sentence_bert_config.json")?,
    })
}

/// A BERT sentence encoder on the CPU.
///
/// Loads `config.json`, `tokenizer.json` and `model.safetensors` (or `pytorch_model.bin`)
/// from a directory, or from the Hugging Face hub with the `hub` feature. Whatever padding
/// the tokenizer file asks for is replaced by padding to the longest text of each batch, and
/// truncation is set to the maximum length; pooling follows the attention mask, so padding
/// never changes a vector.
pub struct BertEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
    model_id: String,
    dim: usize,
    max_length: usize,
    params: BertParams,
}

impl std::fmt::Debug for BertEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEncoder")
            .field("model_id", &self.model_id)
            .field("dim", &self.dim)
            .field("max_length", &self.max_length)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl BertEncoder {
    /// Loads `model` as a local directory when one exists at that path, otherwise (with the
    /// `hub` feature) as a Hugging Face hub id such as
    /// [`DEFAULT_TEXT_MODEL`](super::DEFAULT_TEXT_MODEL).
    pub fn load(model: &str, params: BertParams) -> Result<Self> {
        let path = Path::new(model);
        if path.is_dir() {
            return BertEncoder::from_dir(path, params);
        }
        #[cfg(feature = "hub")]
        {
            BertEncoder::from_hub(model, params)
        }
        #[cfg(not(feature = "hub"))]
        {
            Err(Error::Model {
                model: model.into(),
                reason: "no such directory (hub ids need the `hub` feature)".into(),
            })
        }
    }

    /// Loads a model directory.
    pub fn from_dir(dir: &Path, params: BertParams) -> Result<Self> {
        let weights = ["model.safetensors", "pytorch_model.bin"]
            .iter()
            .map(|name| dir.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| Error::Model {
                model: dir.display().to_string(),
                reason: "holds neither model.safetensors nor pytorch_model.bin".into(),
            })?;
        let sentence_config = Some(dir.join("sentence_bert_config.json")).filter(|p| p.is_file());
        let files = ModelFiles {
            config: dir.join("config.json"),
            tokenizer: dir.join("tokenizer.json"),
            weights,
            sentence_config,
        };
        BertEncoder::from_files(&dir.display().to_string(), &files, params)
    }

    /// Downloads (or reuses the hub cache of) `repo_id` (`owner/name`, optionally
    /// `@revision`) and loads it, with the process's hub settings
    /// ([`HubParams::process`](music_crs_core::hub::HubParams::process)).
    #[cfg(feature = "hub")]
    #[cfg_attr(docsrs, doc(cfg(feature = "hub")))]
    pub fn from_hub(repo_id: &str, params: BertParams) -> Result<Self> {
        Self::from_hub_with(repo_id, &music_crs_core::hub::HubParams::process(), params)
    }

    /// [`BertEncoder::from_hub`] with explicit hub settings (endpoint, cache, offline, token,
    /// progress).
    #[cfg(feature = "hub")]
    #[cfg_attr(docsrs, doc(cfg(feature = "hub")))]
    pub fn from_hub_with(
        repo_id: &str,
        hub: &music_crs_core::hub::HubParams,
        params: BertParams,
    ) -> Result<Self> {
        let files = hub_files(repo_id, hub)?;
        BertEncoder::from_files(repo_id, &files, params)
    }

    fn from_files(model: &str, files: &ModelFiles, params: BertParams) -> Result<Self> {
        params.validate()?;
        let model_error = |reason: String| Error::Model {
            model: model.into(),
            reason,
        };
        let raw: RawBertConfig = serde_json::from_slice(&fs_err::read(&files.config)?)
            .map_err(|e| model_error(format!("{}: {e}", files.config.display())))?;
        let config = raw
            .into_config()
            .map_err(|e| model_error(format!("{}: {e}", files.config.display())))?;
        let sentence_max = match &files.sentence_config {
            Some(path) => {
                serde_json::from_slice::<SentenceBertConfig>(&fs_err::read(path)?)
                    .map_err(|e| model_error(format!("{}: {e}", path.display())))?
                    .max_seq_length
            }
            None => None,
        };
        let max_length = params
            .max_length
            .or(sentence_max)
            .unwrap_or(DEFAULT_MAX_LENGTH)
            .min(config.max_position_embeddings);

        let mut tokenizer = Tokenizer::from_file(&files.tokenizer)
            .map_err(|e| model_error(format!("{}: {e}", files.tokenizer.display())))?;
        let pad_id = tokenizer
            .get_padding()
            .map_or(config.pad_token_id as u32, |p| p.pad_id);
        let pad_token = tokenizer
            .get_padding()
            .map_or_else(|| "[PAD]".to_string(), |p| p.pad_token.clone());
        // Pad to the batch's longest text, not to a fixed length the tokenizer file may ask
        // for (the shared MiniLM file pads to 128): less work, same vectors.
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id,
            pad_token,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| model_error(format!("truncation: {e}")))?;

        let device = open_device(params.device)?;
        let is_safetensors = files
            .weights
            .extension()
            .is_some_and(|ext| ext == "safetensors");
        let vb = if is_safetensors {
            VarBuilder::from_buffered_safetensors(
                fs_err::read(&files.weights)?,
                DType::F32,
                &device,
            )
        } else {
            VarBuilder::from_pth(&files.weights, DType::F32, &device)
        }
        .map_err(|e| model_error(format!("{}: {e}", files.weights.display())))?;
        let bert = BertModel::load(vb, &config)
            .map_err(|e| model_error(format!("{}: {e}", files.weights.display())))?;
        let pooling = match params.pooling {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
        };
        Ok(BertEncoder {
            model: bert,
            tokenizer,
            model_id: format!("{model}#{pooling},max{max_length},norm{}", params.normalize),
            dim: config.hidden_size,
            max_length,
            params,
        })
    }

    /// The longest input in tokens (longer texts are truncated).
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    fn forward(&self, texts: &[&str]) -> std::result::Result<Vec<f32>, String> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| format!("tokenize: {e}"))?;
        let batch = encodings.len();
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(batch * len);
        let mut types = Vec::with_capacity(batch * len);
        let mut mask = Vec::with_capacity(batch * len);
        for encoding in &encodings {
            if encoding.get_ids().len() != len {
                return Err("the tokenizer returned unequal lengths in one batch".into());
            }
            ids.extend_from_slice(encoding.get_ids());
            types.extend_from_slice(encoding.get_type_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        let device = &self.model.device;
        let run = || -> candle_core::Result<Vec<f32>> {
            let ids = Tensor::from_vec(ids, (batch, len), device)?;
            let types = Tensor::from_vec(types, (batch, len), device)?;
            let mask = Tensor::from_vec(mask, (batch, len), device)?;
            let hidden = self.model.forward(&ids, &types, Some(&mask))?;
            let pooled = match self.params.pooling {
                Pooling::Cls => hidden.i((.., 0, ..))?,
                Pooling::Mean => {
                    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
                    let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
                    summed.broadcast_div(&counts)?
                }
            };
            let pooled = if self.params.normalize {
                let norms = pooled
                    .sqr()?
                    .sum_keepdim(1)?
                    .sqrt()?
                    .clamp(1e-12f32, f32::MAX)?;
                pooled.broadcast_div(&norms)?
            } else {
                pooled
            };
            pooled.flatten_all()?.to_vec1::<f32>()
        };
        run().map_err(|e| format!("forward pass: {e}"))
    }
}

impl Encoder for BertEncoder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        self.dim
    }

    /// On a CPU whose candle element-wise pool is one thread (`CANDLE_NUM_THREADS=1`), one
    /// batch per rayon thread: the matrix products then run side by side without meeting at
    /// candle's shared pool, whose lock serializes concurrent callers (measured on 2 cores:
    /// 226 documents/s against 171 for one batch at a time over both threads). Otherwise
    /// one batch at a time.
    fn concurrent_batches(&self) -> usize {
        let single_pool = std::env::var("CANDLE_NUM_THREADS").is_ok_and(|n| n.trim() == "1");
        if self.model.device.is_cpu() && single_pool {
            rayon::current_num_threads()
        } else {
            1
        }
    }

    fn encode_batch(&self, texts: &[&str]) -> Result<Vec<f32>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.forward(texts).map_err(|reason| Error::Model {
            model: self.model_id.clone(),
            reason,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use candle_nn::VarMap;
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;
    use tokenizers::processors::template::TemplateProcessing;

    use super::*;
    use crate::dense::vectors::dot;

    const WORDS: [&str; 12] = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "jazz", "rock", "calm", "loud", "piano", "guitar",
        "night", "song",
    ];

    /// Writes a 2-layer, 16-wide BERT with random weights and a word-level tokenizer that pads
    /// to 32 (like the shared MiniLM file pads to 128) into `dir`.
    pub(crate) fn write_tiny_bert(dir: &Path) {
        let config = serde_json::json!({
            "vocab_size": WORDS.len(), "hidden_size": 16, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 32, "hidden_act": "gelu",
            "max_position_embeddings": 64, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
            "pad_token_id": 0, "model_type": "bert"
        });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let raw: RawBertConfig = serde_json::from_value(config).unwrap();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        BertModel::load(vb, &raw.into_config().unwrap()).unwrap();
        varmap.save(dir.join("model.safetensors")).unwrap();

        let vocab: HashMap<String, u32> = WORDS
            .iter()
            .enumerate()
            .map(|(i, w)| (w.to_string(), i as u32))
            .collect();
        let model = WordLevel::builder()
            .vocab(vocab.into_iter().collect())
            .unk_token("[UNK]".into())
            .build()
            .unwrap();
        let mut tokenizer = Tokenizer::new(model);
        tokenizer.with_pre_tokenizer(Some(Whitespace {}));
        tokenizer.with_post_processor(Some(
            TemplateProcessing::builder()
                .try_single("[CLS] $A [SEP]")
                .unwrap()
                .special_tokens(vec![("[CLS]", 2), ("[SEP]", 3)])
                .build()
                .unwrap(),
        ));
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(32),
            ..PaddingParams::default()
        }));
        tokenizer.save(dir.join("tokenizer.json"), false).unwrap();
    }

    #[test]
    fn tiny_bert_loads_and_pads_without_changing_vectors() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_bert(dir.path());
        let encoder = BertEncoder::from_dir(dir.path(), BertParams::default()).unwrap();
        assert_eq!(encoder.dim(), 16);
        assert_eq!(encoder.max_length(), 64);
        let texts = ["calm piano", "loud rock guitar song at night with jazz"];
        let batch = encoder.encode_batch(&texts).unwrap();
        assert_eq!(batch.len(), 32);
        for row in batch.chunks(16) {
            assert!((dot(row, row) - 1.0).abs() < 1e-5);
        }
        let alone = encoder.encode("calm piano").unwrap();
        for (a, b) in alone.iter().zip(&batch[..16]) {
            assert!((a - b).abs() < 1e-5, "padding changed the vector");
        }
        assert!(dot(&batch[..16], &batch[16..]) < 0.9999);

        let cls = BertEncoder::from_dir(
            dir.path(),
            BertParams {
                pooling: Pooling::Cls,
                max_length: Some(4),
                ..BertParams::default()
            },
        )
        .unwrap();
        assert_ne!(cls.model_id(), encoder.model_id());
        assert_eq!(cls.max_length(), 4);
        let v = cls.encode_batch(&texts).unwrap();
        assert_eq!(v.len(), 32);
        assert!(v.iter().all(|x| x.is_finite()));
        assert!(encoder.encode_batch(&[]).unwrap().is_empty());
    }

    #[test]
    fn absurd_config_values_are_named_before_loading_weights() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_bert(dir.path());
        let config_path = dir.path().join("config.json");
        let good: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        for (key, value) in [
            ("num_hidden_layers", serde_json::json!(1_000_000_000u64)),
            ("num_hidden_layers", serde_json::json!(0)),
            (
                "max_position_embeddings",
                serde_json::json!(4_000_000_000u64),
            ),
            ("hidden_size", serde_json::json!(1u64 << 40)),
            ("num_attention_heads", serde_json::json!(0)),
            ("vocab_size", serde_json::json!(0)),
            ("intermediate_size", serde_json::json!(1u64 << 40)),
            ("type_vocab_size", serde_json::json!(0)),
            ("pad_token_id", serde_json::json!(12)),
            ("layer_norm_eps", serde_json::json!(-1.0)),
        ] {
            let mut config = good.clone();
            config[key] = value.clone();
            std::fs::write(&config_path, config.to_string()).unwrap();
            let err = BertEncoder::from_dir(dir.path(), BertParams::default())
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("config.json") && err.contains(key),
                "{key} = {value}: {err}"
            );
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_gpu_this_build_lacks_is_refused_naming_the_feature() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_bert(dir.path());
        let params = BertParams {
            device: ComputeDevice::Cuda(0),
            ..BertParams::default()
        };
        let err = BertEncoder::from_dir(dir.path(), params).unwrap_err();
        assert_eq!(
            err.to_string(),
            "device cuda:0 needs the `cuda` feature of music-crs-retrieval"
        );
        // Past that check, a device Candle cannot open is named with Candle's reason.
        let err = open_built_device(ComputeDevice::Cuda(1))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot open device cuda:1: "), "{err}");
        assert!(open_device(ComputeDevice::Cpu).unwrap().is_cpu());
    }

    #[test]
    fn bad_model_directories_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = BertEncoder::from_dir(dir.path(), BertParams::default()).unwrap_err();
        assert!(err.to_string().contains("model.safetensors"), "{err}");
        write_tiny_bert(dir.path());
        std::fs::write(dir.path().join("config.json"), "{\"vocab_size\": 3}").unwrap();
        let err = BertEncoder::from_dir(dir.path(), BertParams::default()).unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
        let err = BertEncoder::load("/no/such/model-dir", BertParams::default());
        assert!(err.is_err());
    }

    #[cfg(feature = "hub")]
    #[test]
    fn hub_models_download_once_then_load_offline() {
        use music_crs_core::hub::stand_in::{StandIn, StandInRepo};
        use music_crs_core::hub::{HubParams, RepoKind};

        let dir = tempfile::tempdir().unwrap();
        write_tiny_bert(dir.path());
        let names = ["config.json", "tokenizer.json", "model.safetensors"];
        let contents: Vec<Vec<u8>> = names
            .iter()
            .map(|n| std::fs::read(dir.path().join(n)).unwrap())
            .collect();
        let files: Vec<(&str, &[u8])> = names
            .iter()
            .zip(&contents)
            .map(|(n, c)| (*n, c.as_slice()))
            .collect();
        let mut gated = StandInRepo::new(RepoKind::Model, "o/gated", &files);
        gated.token = Some("hf_t".into());
        let hub = StandIn::start(vec![
            StandInRepo::new(RepoKind::Model, "o/bert", &files),
            gated,
        ])
        .unwrap();
        let cache = tempfile::tempdir().unwrap();
        let params = hub.hub_params(cache.path());
        let local = BertEncoder::from_dir(dir.path(), BertParams::default()).unwrap();
        let online = BertEncoder::from_hub_with("o/bert", &params, BertParams::default()).unwrap();
        assert_eq!(hub.downloads(), 3, "{:#?}", hub.requests());
        assert_eq!(
            online.encode("calm piano").unwrap(),
            local.encode("calm piano").unwrap()
        );
        let requests = hub.requests().len();
        let offline = HubParams {
            offline: true,
            ..params.clone()
        };
        BertEncoder::from_hub_with("o/bert@main", &offline, BertParams::default()).unwrap();
        assert_eq!(hub.requests().len(), requests, "offline never asks the hub");
        let err = BertEncoder::from_hub_with("o/other", &offline, BertParams::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("o/other")
                && err.contains("model.safetensors (or pytorch_model.bin)")
                && err.contains("HF_HUB_OFFLINE"),
            "{err}"
        );
        let err = BertEncoder::from_hub_with("o/gated", &params, BertParams::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HTTP 401") && err.contains("HF_TOKEN"),
            "{err}"
        );
        let err = BertEncoder::from_hub_with("o/bert@../../x", &params, BertParams::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid hub revision"), "{err}");
    }
}
