//! Method configuration: one TOML file per method under `config/`, in the spirit of the
//! official baseline's YAML files (dataset sources and splits, retriever, generator, method
//! name).
//!
//! Every table rejects unknown keys, so a typo is an error naming the key, its line and the
//! file rather than a silently ignored setting. Relative paths in a config are resolved
//! against the working directory (the repository root), as in the baseline.
//!
//! ```
//! use music_crs::config::{CrsConfig, RetrieverKind};
//!
//! let config = CrsConfig::from_toml_str(
//!     r#"
//!     tid = "my_bm25"
//!     [dataset]
//!     preset = "demo-test"
//!     [dataset.conversations]
//!     split = "blind"
//!     [retriever]
//!     kind = "bm25"
//!     "#,
//!     "inline.toml",
//! )?;
//! assert_eq!(config.retriever.kind, RetrieverKind::Bm25);
//! assert_eq!(config.retriever.k, 20);
//! assert_eq!(config.dataset.to_spec()?.conversations.split, "blind");
//! # Ok::<(), music_crs::Error>(())
//! ```

use std::path::{Path, PathBuf};

use music_crs_core::{MAX_PREDICTED_TRACKS, TrackField};
pub use music_crs_data::{DatasetConfig, PartOverride, Preset, SplitKind};
pub use music_crs_generate::{
    GeneratorConfig, LlamaConfig, LlamaParams, ModelSource, TemplateParams,
};
pub use music_crs_rank::{
    ChannelConfig, DEFAULT_CHANNEL_DEPTH, FeatureSpec, FusionParams, RankerParams,
};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The encoder of the official BERT baseline.
pub const DEFAULT_BERT_MODEL: &str = "bert-base-uncased";
/// The config `music-crs run` uses when given none.
pub const DEFAULT_CONFIG_PATH: &str = "config/bm25_template.toml";
/// The method name of the default config.
pub const DEFAULT_TID: &str = "bm25_template";
/// Where the demo dataset lives.
pub const DEFAULT_DEMO_DIR: &str = music_crs_data::DEMO_DIR;
/// Tracks predicted per turn.
pub const DEFAULT_TOP_K: usize = MAX_PREDICTED_TRACKS;
/// The split of the conversations source that channels count and the ranker learns from.
pub const DEFAULT_TRAIN_SPLIT: &str = "train";
/// The weight of a channel in a `channels` fusion when the config gives none.
pub const DEFAULT_CHANNEL_WEIGHT: f32 = 1.0;

/// A whole method: what to predict, how to retrieve and how to reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrsConfig {
    /// The method name: predictions go to `exp/inference/<tid>.json`, scores to
    /// `exp/scores/<tid>.json`.
    pub tid: String,
    /// A one-line description, shown in logs.
    #[serde(default)]
    pub description: Option<String>,
    /// The datasets to read: a preset of `music-crs-data` (`demo-test`, `challenge-dev`,
    /// `challenge-blind-b`...) with any of its five parts overridden (`[dataset.tracks]
    /// source = ..., split = ...`).
    pub dataset: DatasetConfig,
    /// The retriever.
    #[serde(default)]
    pub retriever: RetrieverConfig,
    /// The reply generator, as `music-crs-generate` describes it: `kind = "template"` (with
    /// optional `seed`, `alternative_rate`, `opener_rate`) or `kind = "llama"` with
    /// `model = { source = "gguf", path = "..." }` (or `"dir"`, `"hub"`) and `params = {...}`.
    #[serde(default)]
    pub generator: GeneratorConfig,
}

impl Default for CrsConfig {
    /// The default method: BM25 over the baseline's fields and template replies on the demo
    /// dataset's `test` split (the same as `config/bm25_template.toml`).
    fn default() -> Self {
        CrsConfig {
            tid: DEFAULT_TID.to_string(),
            description: Some(
                "BM25 (track, artist, album, release date) + template replies on the demo test split"
                    .to_string(),
            ),
            dataset: DatasetConfig::preset(Preset::DemoTest),
            retriever: RetrieverConfig::default(),
            generator: GeneratorConfig::default(),
        }
    }
}

impl CrsConfig {
    /// Reads and validates a config file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = fs_err::read_to_string(path)?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: impl AsRef<Path>) -> Result<Self> {
        let origin = origin.as_ref();
        let config: CrsConfig = toml::from_str(text).map_err(|err| Error::ConfigParse {
            path: origin.to_path_buf(),
            message: err.to_string().trim_end().to_string(),
        })?;
        config.validate().map_err(|err| Error::ConfigParse {
            path: origin.to_path_buf(),
            message: err.to_string(),
        })?;
        Ok(config)
    }

    /// Checks every value, naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        if self.tid.trim().is_empty() {
            return Err(invalid("tid", "must not be empty"));
        }
        if self.tid.contains(['/', '\\']) || self.tid.starts_with('.') {
            return Err(invalid(
                "tid",
                format!(
                    "{:?} must be a plain file name (it names the output file)",
                    self.tid
                ),
            ));
        }
        self.dataset.to_spec().map_err(|err| match err {
            music_crs_data::Error::InvalidParam { field, reason } => {
                Error::InvalidSetting { key: field, reason }
            }
            other => other.into(),
        })?;
        self.retriever.validate()?;
        validate_generator(&self.generator).map_err(|err| Error::InvalidSetting {
            key: "generator".into(),
            reason: err.to_string(),
        })
    }

    /// Where `run` writes predictions by default: `exp/inference/<tid>.json`.
    pub fn predictions_path(&self) -> PathBuf {
        Path::new("exp/inference").join(format!("{}.json", self.tid))
    }

    /// Where `run` writes scores by default: `exp/scores/<tid>.json`.
    pub fn scores_path(&self) -> PathBuf {
        Path::new("exp/scores").join(format!("{}.json", self.tid))
    }
}

/// Which retriever ranks the tracks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrieverKind {
    /// Uniformly random tracks (seeded): the floor.
    Random,
    /// The most popular tracks, whatever the conversation.
    Popularity,
    /// BM25 over catalog text (the official baseline's retriever).
    #[default]
    Bm25,
    /// A BERT sentence encoder over catalog text (needs the `bert` feature).
    Bert,
    /// Weighted reciprocal-rank fusion of the `[[retriever.channels]]` (`music-crs-rank`).
    Channels,
    /// The channels' candidates ordered by a trained LambdaMART model (`retriever.model`,
    /// written by `music-crs train-ranker`).
    Ranked,
}

impl RetrieverKind {
    /// The name written in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            RetrieverKind::Random => "random",
            RetrieverKind::Popularity => "popularity",
            RetrieverKind::Bm25 => "bm25",
            RetrieverKind::Bert => "bert",
            RetrieverKind::Channels => "channels",
            RetrieverKind::Ranked => "ranked",
        }
    }

    /// Whether the kind reads `[[retriever.channels]]` (and the train split).
    pub fn uses_channels(self) -> bool {
        matches!(self, RetrieverKind::Channels | RetrieverKind::Ranked)
    }
}

/// One candidate channel of a `channels` or `ranked` retriever (`[[retriever.channels]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelEntry {
    /// Unique name; the ranker's features are named after it.
    pub name: String,
    /// Weight of its reciprocal ranks in the fusion (`channels`; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f32>,
    /// Tracks it proposes per turn (`ranked`; default 100). A `channels` fusion asks every
    /// channel for `[retriever.fusion] depth` tracks instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
    /// The channel, as `music-crs-rank` describes it: `{ kind = "continuity" }`,
    /// `"co_occurrence"`, `"popularity_prior"`, `"bm25"`, `"item_neighbours"`,
    /// `"user_similarity"` or `"fusion"`, with that kind's parameters.
    pub channel: ChannelConfig,
}

/// Which part of the conversation a text query holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryMode {
    /// The official baseline's query: every earlier message as a `role: content` line (played
    /// tracks as their catalog metadata), then `user: <current message>`.
    #[default]
    Conversation,
    /// The current user message only.
    CurrentMessage,
}

/// How a turn becomes query text (`[retriever.query]`, for `bm25` and `bert`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// Which part of the conversation to render.
    #[serde(default)]
    pub mode: QueryMode,
    /// Reproduce the official baseline exactly, including its joining of a played track's
    /// release-date string character by character (`2, 0, 1, 2, -, ...`).
    #[serde(default)]
    pub baseline_exact: bool,
    /// Keep only the last this-many earlier turns (absent: all of them).
    #[serde(default)]
    pub max_history_turns: Option<u32>,
    /// How many times the current message is written (weighs it over the history).
    #[serde(default)]
    pub current_message_repeats: Option<u32>,
    /// Add a line with the tags of the tracks played so far.
    #[serde(default)]
    pub played_tags: bool,
    /// Add the hidden `thought` of each earlier message that has one.
    #[serde(default)]
    pub thoughts: bool,
    /// Add the conversation goal, when known.
    #[serde(default)]
    pub conversation_goal: bool,
}

/// The retriever and its parameters. Parameters that do not apply to `kind` are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrieverConfig {
    /// Which retriever.
    #[serde(default)]
    pub kind: RetrieverKind,
    /// Tracks predicted per turn (1..=20).
    #[serde(default = "default_top_k")]
    pub k: usize,
    /// Leave out tracks already played earlier in the conversation.
    #[serde(default)]
    pub exclude_played: bool,
    /// How a turn becomes query text (`bm25`, `bert`).
    #[serde(default)]
    pub query: QueryConfig,
    /// Catalog columns indexed as `field: value` lines (`bm25`, `bert`).
    #[serde(default = "default_fields")]
    pub fields: Vec<TrackField>,
    /// BM25 term-frequency saturation (`bm25`; default 1.5 as in bm25s).
    #[serde(default)]
    pub k1: Option<f32>,
    /// BM25 length normalisation (`bm25`; default 0.75 as in bm25s).
    #[serde(default)]
    pub b: Option<f32>,
    /// Seed (`random`).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Encoder model: a local directory or a hub id (`bert`); the ranker model file, e.g.
    /// `exp/models/<tid>.json` (`ranked`).
    #[serde(default)]
    pub model: Option<String>,
    /// Texts encoded per batch (`bert`).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Count the music messages of this split of the conversations source (e.g. `train`)
    /// instead of using the catalog's `popularity` column (`popularity`).
    #[serde(default)]
    pub popularity_split: Option<String>,
    /// The split of the conversations source whose sessions the channels count (co-occurrence,
    /// play counts) and the ranker learns from (`channels`, `ranked`; default `train`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_split: Option<String>,
    /// The candidate channels (`channels`, `ranked`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelEntry>,
    /// RRF constant and the tracks asked of each channel (`channels`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<FusionParams>,
    /// Embedding similarities among the ranker's features (`ranked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<FeatureSpec>,
    /// LambdaMART training parameters, read by `music-crs train-ranker` (`ranked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<RankerParams>,
}

impl Default for RetrieverConfig {
    /// BM25 with the baseline's fields and query.
    fn default() -> Self {
        RetrieverConfig {
            kind: RetrieverKind::Bm25,
            k: DEFAULT_TOP_K,
            exclude_played: false,
            query: QueryConfig::default(),
            fields: default_fields(),
            k1: None,
            b: None,
            seed: None,
            model: None,
            batch_size: None,
            popularity_split: None,
            train_split: None,
            channels: Vec::new(),
            fusion: None,
            features: None,
            training: None,
        }
    }
}

impl RetrieverConfig {
    /// Checks every value, naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 || self.k > MAX_PREDICTED_TRACKS {
            return Err(invalid(
                "retriever.k",
                format!(
                    "{} is outside 1..={MAX_PREDICTED_TRACKS} (the challenge scores at most {MAX_PREDICTED_TRACKS} tracks)",
                    self.k
                ),
            ));
        }
        let kind = self.kind;
        let text_based = matches!(kind, RetrieverKind::Bm25 | RetrieverKind::Bert);
        let only_for = |key: &str, set: bool, applies: bool, kinds: &str| {
            if set && !applies {
                Err(invalid(
                    &format!("retriever.{key}"),
                    format!("applies to kind {kinds} only, not {:?}", kind.as_str()),
                ))
            } else {
                Ok(())
            }
        };
        only_for(
            "query",
            self.query != QueryConfig::default(),
            text_based,
            "\"bm25\" or \"bert\"",
        )?;
        only_for(
            "fields",
            self.fields != default_fields(),
            text_based,
            "\"bm25\" or \"bert\"",
        )?;
        only_for(
            "k1",
            self.k1.is_some(),
            kind == RetrieverKind::Bm25,
            "\"bm25\"",
        )?;
        only_for(
            "b",
            self.b.is_some(),
            kind == RetrieverKind::Bm25,
            "\"bm25\"",
        )?;
        only_for(
            "seed",
            self.seed.is_some(),
            kind == RetrieverKind::Random,
            "\"random\"",
        )?;
        only_for(
            "model",
            self.model.is_some(),
            matches!(kind, RetrieverKind::Bert | RetrieverKind::Ranked),
            "\"bert\" or \"ranked\"",
        )?;
        let channel_kinds = "\"channels\" or \"ranked\"";
        only_for(
            "channels",
            !self.channels.is_empty(),
            kind.uses_channels(),
            channel_kinds,
        )?;
        only_for(
            "train_split",
            self.train_split.is_some(),
            kind.uses_channels(),
            channel_kinds,
        )?;
        only_for(
            "fusion",
            self.fusion.is_some(),
            kind == RetrieverKind::Channels,
            "\"channels\"",
        )?;
        only_for(
            "features",
            self.features.is_some(),
            kind == RetrieverKind::Ranked,
            "\"ranked\"",
        )?;
        only_for(
            "training",
            self.training.is_some(),
            kind == RetrieverKind::Ranked,
            "\"ranked\"",
        )?;
        if kind.uses_channels() {
            self.validate_channels()?;
        }
        only_for(
            "popularity_split",
            self.popularity_split.is_some(),
            kind == RetrieverKind::Popularity,
            "\"popularity\"",
        )?;
        only_for(
            "batch_size",
            self.batch_size.is_some(),
            kind == RetrieverKind::Bert,
            "\"bert\"",
        )?;
        if text_based && self.fields.is_empty() {
            return Err(invalid("retriever.fields", "must name at least one column"));
        }
        if kind == RetrieverKind::Bert && self.model.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(
                "retriever.model",
                "kind \"bert\" needs an encoder (a local directory or hub id)",
            ));
        }
        if kind == RetrieverKind::Ranked && self.model.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(
                "retriever.model",
                "kind \"ranked\" needs the model file `music-crs train-ranker` writes \
                 (e.g. \"exp/models/<tid>.json\")",
            ));
        }
        if self
            .query
            .current_message_repeats
            .is_some_and(|r| !(1..=100).contains(&r))
        {
            return Err(invalid(
                "retriever.query.current_message_repeats",
                "must be in 1..=100",
            ));
        }
        if self.batch_size == Some(0) {
            return Err(invalid("retriever.batch_size", "must be at least 1"));
        }
        for (key, value) in [("k1", self.k1), ("b", self.b)] {
            if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(invalid(
                    &format!("retriever.{key}"),
                    "must be a finite non-negative number",
                ));
            }
        }
        if self.b.is_some_and(|b| b > 1.0) {
            return Err(invalid("retriever.b", "must be in 0..=1"));
        }
        Ok(())
    }

    /// The ranker model file of a `ranked` retriever.
    pub fn ranker_model_path(&self) -> Option<PathBuf> {
        (self.kind == RetrieverKind::Ranked)
            .then(|| self.model.as_ref().map(PathBuf::from))
            .flatten()
    }

    /// The train split the channels read (`train_split`, default `train`).
    pub fn train_split(&self) -> &str {
        self.train_split.as_deref().unwrap_or(DEFAULT_TRAIN_SPLIT)
    }

    /// Checks the channel list and the rank crate's parameter tables.
    fn validate_channels(&self) -> Result<()> {
        let kind = self.kind;
        if self.channels.is_empty() {
            return Err(invalid(
                "retriever.channels",
                format!(
                    "kind {:?} needs at least one [[retriever.channels]] entry",
                    kind.as_str()
                ),
            ));
        }
        if self.train_split.as_deref().is_some_and(str::is_empty) {
            return Err(invalid("retriever.train_split", "must not be empty"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, entry) in self.channels.iter().enumerate() {
            let key = |field: &str| format!("retriever.channels[{i}].{field}");
            if entry.name.trim().is_empty() {
                return Err(invalid(&key("name"), "must not be empty"));
            }
            if !names.insert(entry.name.as_str()) {
                return Err(invalid(
                    &key("name"),
                    format!("{:?} names two channels", entry.name),
                ));
            }
            match (kind, entry.weight, entry.depth) {
                (RetrieverKind::Ranked, Some(_), _) => {
                    return Err(invalid(
                        &key("weight"),
                        "applies to kind \"channels\" only: the ranker learns the weights",
                    ));
                }
                (RetrieverKind::Channels, _, Some(_)) => {
                    return Err(invalid(
                        &key("depth"),
                        "applies to kind \"ranked\" only: a fusion asks every channel for \
                         `[retriever.fusion] depth` tracks",
                    ));
                }
                _ => {}
            }
            if entry.weight.is_some_and(|w| !(w.is_finite() && w >= 0.0)) {
                return Err(invalid(
                    &key("weight"),
                    "must be a finite non-negative number",
                ));
            }
            if entry.depth == Some(0) {
                return Err(invalid(&key("depth"), "must be at least 1"));
            }
        }
        if let Some(fusion) = &self.fusion {
            fusion
                .validate()
                .map_err(|e| invalid("retriever.fusion", e.to_string()))?;
        }
        if let Some(training) = &self.training {
            training
                .validate()
                .map_err(|e| invalid("retriever.training", e.to_string()))?;
        }
        Ok(())
    }
}

/// The dataset section for a local root laid out like `data/demo`
/// (`<root>/{conversations,tracks,users,track_embeddings,user_embeddings}/data/<split>-*.parquet`),
/// predicting `split`. Embedding parts are read only by retrievers that need them.
pub fn local_dataset(root: &Path, split: &str, split_kind: SplitKind) -> DatasetConfig {
    let spec = music_crs_data::DatasetSpec::local_layout(root, split, split_kind);
    let part = |part: &music_crs_data::PartSpec| PartOverride {
        source: Some(part.source.clone()),
        split: Some(part.split.clone()),
    };
    DatasetConfig {
        preset: None,
        split_kind: Some(split_kind),
        conversations: part(&spec.conversations),
        tracks: part(&spec.tracks),
        users: spec.users.as_ref().map(part).unwrap_or_default(),
        track_embeddings: spec.track_embeddings.as_ref().map(part).unwrap_or_default(),
        user_embeddings: spec.user_embeddings.as_ref().map(part).unwrap_or_default(),
    }
}

/// Checks a generator config without loading a model.
fn validate_generator(config: &GeneratorConfig) -> Result<()> {
    match config {
        GeneratorConfig::Template(params) => params.validate()?,
        GeneratorConfig::Llama(llama) => llama.params.validate()?,
    }
    Ok(())
}

fn invalid(key: &str, reason: impl Into<String>) -> Error {
    Error::InvalidSetting {
        key: key.to_string(),
        reason: reason.into(),
    }
}

fn default_top_k() -> usize {
    DEFAULT_TOP_K
}

fn default_fields() -> Vec<TrackField> {
    TrackField::BASELINE.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
tid = "t"
[dataset]
preset = "demo-test"
"#;

    #[test]
    fn minimal_config_takes_defaults() {
        let config = CrsConfig::from_toml_str(MINIMAL, "m.toml").unwrap();
        assert_eq!(config.retriever, RetrieverConfig::default());
        assert_eq!(config.generator, GeneratorConfig::default());
        let spec = config.dataset.to_spec().unwrap();
        assert_eq!(spec.conversations.split, "test");
        assert_eq!(spec.split_kind, SplitKind::Full);
        assert_eq!(config.predictions_path(), Path::new("exp/inference/t.json"));
    }

    #[test]
    fn unknown_key_is_an_error_naming_key_and_file() {
        let text = format!("{MINIMAL}\n[retriever]\nkind = \"bm25\"\nexclude_playd = true\n");
        let err = CrsConfig::from_toml_str(&text, "config/typo.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("exclude_playd"), "{err}");
        assert!(err.contains("config/typo.toml"), "{err}");

        let top = format!("modle = \"x\"\n{MINIMAL}");
        let err = CrsConfig::from_toml_str(&top, "a.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("modle"), "{err}");
        let dataset = format!("{MINIMAL}\n[dataset.tracks]\nsplt = \"x\"\n");
        let err = CrsConfig::from_toml_str(&dataset, "b.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("splt"), "{err}");
    }

    #[test]
    fn parameter_of_another_kind_is_rejected() {
        let text = format!("{MINIMAL}\n[retriever]\nkind = \"popularity\"\nk1 = 1.2\n");
        let err = CrsConfig::from_toml_str(&text, "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("retriever.k1"), "{err}");
        assert!(err.contains("p.toml"), "{err}");

        let text = format!("{MINIMAL}\n[generator]\nkind = \"template\"\nmodel = \"m\"\n");
        let err = CrsConfig::from_toml_str(&text, "g.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("model"), "{err}");
        let text = format!(
            "{MINIMAL}\n[generator]\nkind = \"llama\"\nmodel = {{ source = \"gguf\", path = \"m.gguf\" }}\nparams = {{ max_new_tokenz = 3 }}\n"
        );
        let err = CrsConfig::from_toml_str(&text, "g.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_new_tokenz"), "{err}");
    }

    #[test]
    fn out_of_range_values_name_the_key() {
        for (table, line, key) in [
            ("retriever", "k = 21", "retriever.k"),
            ("retriever", "k = 0", "retriever.k"),
            ("retriever", "b = 1.5", "retriever.b"),
            ("retriever", "kind = \"bert\"", "retriever.model"),
            (
                "generator",
                "kind = \"llama\"\nparams = { max_new_tokens = 0 }",
                "max_new_tokens",
            ),
        ] {
            let text = format!("{MINIMAL}\n[{table}]\n{line}\n");
            let err = CrsConfig::from_toml_str(&text, "x.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{line}: {err}");
        }
        let bad_tid = MINIMAL.replace("tid = \"t\"", "tid = \"../t\"");
        assert!(CrsConfig::from_toml_str(&bad_tid, "x.toml").is_err());
        let no_catalog = "tid = \"t\"\n[dataset.conversations]\nsource = \"c\"\nsplit = \"test\"\n";
        let err = CrsConfig::from_toml_str(no_catalog, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("dataset.tracks"), "{err}");
    }

    #[test]
    fn unknown_enum_value_is_an_error() {
        let text = format!("{MINIMAL}\n[retriever]\nkind = \"bm26\"\n");
        let err = CrsConfig::from_toml_str(&text, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bm26"), "{err}");
        let text = format!("{MINIMAL}\n[retriever]\nfields = [\"track_nam\"]\n");
        let err = CrsConfig::from_toml_str(&text, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("track_nam"), "{err}");
    }

    const CHANNELS: &str = r#"
[[retriever.channels]]
name = "continuity"
channel = { kind = "continuity" }
[[retriever.channels]]
name = "next"
channel = { kind = "co_occurrence", mode = "next" }
"#;

    fn with_retriever(lines: &str, channels: &str) -> Result<CrsConfig> {
        let text = format!("{MINIMAL}\n[retriever]\n{lines}\n{channels}");
        CrsConfig::from_toml_str(&text, "rank.toml")
    }

    fn error_of(lines: &str, channels: &str) -> String {
        with_retriever(lines, channels).unwrap_err().to_string()
    }

    #[test]
    fn channels_and_ranked_kinds_parse() {
        let fusion = with_retriever(
            "kind = \"channels\"\nfusion = { rrf_k = 30.0 }",
            &CHANNELS.replace("name = \"next\"", "name = \"next\"\nweight = 0.5"),
        )
        .unwrap();
        let settings = &fusion.retriever;
        assert_eq!(settings.kind, RetrieverKind::Channels);
        assert_eq!(settings.channels.len(), 2);
        assert_eq!(settings.channels[1].weight, Some(0.5));
        assert_eq!(settings.fusion.as_ref().unwrap().rrf_k, 30.0);
        assert_eq!(settings.train_split(), DEFAULT_TRAIN_SPLIT);
        assert_eq!(settings.ranker_model_path(), None);

        let ranked = with_retriever(
            "kind = \"ranked\"\nmodel = \"exp/models/r.json\"\ntrain_split = \"train+extra\"\n\
             features = { similarity_kinds = [\"image-siglip2\"] }\ntraining = { trees = 7 }",
            &CHANNELS.replace("name = \"next\"", "name = \"next\"\ndepth = 30"),
        )
        .unwrap();
        let settings = &ranked.retriever;
        assert_eq!(
            settings.ranker_model_path().unwrap(),
            Path::new("exp/models/r.json")
        );
        assert_eq!(settings.train_split(), "train+extra");
        assert_eq!(settings.training.as_ref().unwrap().trees, 7);
        assert_eq!(settings.channels[1].depth, Some(30));
        let text = toml::to_string(&ranked).unwrap();
        assert_eq!(CrsConfig::from_toml_str(&text, "r.toml").unwrap(), ranked);
    }

    #[test]
    fn channel_settings_of_another_kind_are_rejected() {
        let ranked = "kind = \"ranked\"\nmodel = \"m.json\"";
        for (lines, channels, key) in [
            ("kind = \"bm25\"", CHANNELS, "retriever.channels"),
            (
                "kind = \"bm25\"\ntrain_split = \"train\"",
                "",
                "retriever.train_split",
            ),
            (ranked, "", "retriever.channels"),
            ("kind = \"channels\"", "", "retriever.channels"),
            ("kind = \"ranked\"", CHANNELS, "retriever.model"),
            (
                "kind = \"channels\"\nmodel = \"m.json\"",
                CHANNELS,
                "retriever.model",
            ),
            (
                "kind = \"channels\"\ntraining = { trees = 3 }",
                CHANNELS,
                "retriever.training",
            ),
            (
                "kind = \"channels\"\nfeatures = { user_kind = \"cf-bpr\" }",
                CHANNELS,
                "retriever.features",
            ),
            (
                &format!("{ranked}\nfusion = {{ rrf_k = 1.0 }}"),
                CHANNELS,
                "retriever.fusion",
            ),
            (
                ranked,
                &CHANNELS.replace("name = \"next\"", "name = \"next\"\nweight = 2.0"),
                "retriever.channels[1].weight",
            ),
            (
                "kind = \"channels\"",
                &CHANNELS.replace("name = \"next\"", "name = \"next\"\ndepth = 5"),
                "retriever.channels[1].depth",
            ),
            (
                ranked,
                &CHANNELS.replace("name = \"next\"", "name = \"continuity\""),
                "retriever.channels[1].name",
            ),
            (
                &format!("{ranked}\ntraining = {{ max_bins = 1000 }}"),
                CHANNELS,
                "retriever.training",
            ),
            (
                "kind = \"channels\"\nfusion = { depth = 0 }",
                CHANNELS,
                "retriever.fusion",
            ),
        ] {
            let err = error_of(lines, channels);
            assert!(err.contains(key), "{lines} / {channels}: {err}");
        }
    }

    #[test]
    fn unknown_keys_in_channel_tables_are_errors() {
        let ranked = "kind = \"ranked\"\nmodel = \"m.json\"";
        for (lines, channels, needle) in [
            (
                ranked,
                CHANNELS.replace("name = \"next\"", "name = \"next\"\ndepht = 3"),
                "depht",
            ),
            (
                ranked,
                CHANNELS.replace("mode = \"next\"", "mood = \"next\""),
                "mood",
            ),
            (
                ranked,
                CHANNELS.replace("kind = \"continuity\"", "kind = \"telepathy\""),
                "telepathy",
            ),
            (
                "kind = \"ranked\"\nmodel = \"m.json\"\ntraining = { treez = 3 }",
                CHANNELS.to_string(),
                "treez",
            ),
        ] {
            let err = error_of(lines, &channels);
            assert!(
                err.contains(needle) && err.contains("rank.toml"),
                "{needle}: {err}"
            );
        }
    }

    #[test]
    fn default_round_trips_through_toml() {
        let config = CrsConfig::default();
        let text = toml::to_string(&config).unwrap();
        assert_eq!(CrsConfig::from_toml_str(&text, "d.toml").unwrap(), config);
    }
}
