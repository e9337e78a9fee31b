//! Method configuration: one TOML file per method under `config/`, in the spirit of the
//! official baseline's YAML files (dataset sources and splits, retriever, generator, method
//! name).
//!
//! Every table rejects unknown keys, so a typo is an error naming the key, its line and the
//! file rather than a silently ignored setting. The `[retriever]` table is one
//! [`RetrieverConfig`] per `kind`, each defined beside its builder in the crate that builds it
//! (`music-crs-retrieval`: `bm25`, `bert`, `random`, `popularity`; `music-crs-rank`:
//! `channels`, `ranked`), as `[generator]` is `music-crs-generate`'s [`GeneratorConfig`]. Relative paths in a config are resolved
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
//! assert_eq!(config.retriever.kind(), RetrieverKind::Bm25);
//! assert_eq!(config.retriever.k(), 20);
//! assert_eq!(config.dataset.to_spec()?.conversations.split, "blind");
//! # Ok::<(), music_crs::Error>(())
//! ```

use std::path::{Path, PathBuf};

use music_crs_core::TrackField;
pub use music_crs_data::{DatasetConfig, PartOverride, Preset, SplitKind};
pub use music_crs_generate::{
    GeneratorConfig, LlamaConfig, LlamaParams, ModelSource, TemplateParams,
};
pub use music_crs_rank::{
    ChannelConfig, ChannelEntry, ChannelsRetrieverConfig, DEFAULT_CHANNEL_DEPTH,
    DEFAULT_CHANNEL_WEIGHT, DEFAULT_TRAIN_SPLIT, FeatureSpec, FusionParams, RankedRetrieverConfig,
    RankerParams,
};
pub use music_crs_retrieval::{
    BertRetrieverConfig, Bm25RetrieverConfig, DEFAULT_TOP_K, PopularityRetrieverConfig, QueryMode,
    QueryRenderParams, RandomRetrieverConfig,
};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The encoder of the official BERT baseline.
pub const DEFAULT_BERT_MODEL: &str = BertRetrieverConfig::BASELINE_MODEL;
/// The config `music-crs run` uses when given none.
pub const DEFAULT_CONFIG_PATH: &str = "config/bm25_template.toml";
/// The method name of the default config.
pub const DEFAULT_TID: &str = "bm25_template";
/// Where the demo dataset lives.
pub const DEFAULT_DEMO_DIR: &str = music_crs_data::DEMO_DIR;

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
    /// The retriever: `kind = "bm25"` (default), `"bert"`, `"random"`, `"popularity"`,
    /// `"channels"` or `"ranked"`, with that kind's keys.
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

/// Which retriever ranks the tracks: the `kind` of `[retriever]`.
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
    /// Every kind, in the order of the docs.
    pub const ALL: [RetrieverKind; 6] = [
        RetrieverKind::Random,
        RetrieverKind::Popularity,
        RetrieverKind::Bm25,
        RetrieverKind::Bert,
        RetrieverKind::Channels,
        RetrieverKind::Ranked,
    ];

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

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// The `[retriever]` table: `kind` and that kind's keys, each kind's table defined beside its
/// builder in the crate that builds it. Keys of another kind are errors naming the key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RetrieverConfig {
    /// `kind = "random"` (`music-crs-retrieval`).
    Random(RandomRetrieverConfig),
    /// `kind = "popularity"` (`music-crs-retrieval`).
    Popularity(PopularityRetrieverConfig),
    /// `kind = "bm25"` (`music-crs-retrieval`), the default.
    Bm25(Bm25RetrieverConfig),
    /// `kind = "bert"` (`music-crs-retrieval`, built with the `bert` feature).
    Bert(BertRetrieverConfig),
    /// `kind = "channels"` (`music-crs-rank`).
    Channels(ChannelsRetrieverConfig),
    /// `kind = "ranked"` (`music-crs-rank`).
    Ranked(RankedRetrieverConfig),
}

impl Default for RetrieverConfig {
    /// BM25 with the baseline's fields and query.
    fn default() -> Self {
        RetrieverConfig::Bm25(Bm25RetrieverConfig::default())
    }
}

impl<'de> Deserialize<'de> for RetrieverConfig {
    /// Reads `kind` (default `bm25`), then the rest of the table as that kind's config, so a
    /// key that does not belong to the kind is reported with its path
    /// (`retriever.channels[3].depht`) rather than as a bare field name.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut table = toml::Table::deserialize(deserializer)?;
        let kind = match table.remove("kind") {
            None => RetrieverKind::default(),
            Some(toml::Value::String(name)) => RetrieverKind::parse(&name).ok_or_else(|| {
                let names: Vec<&str> = RetrieverKind::ALL.iter().map(|k| k.as_str()).collect();
                D::Error::custom(format!(
                    "`retriever.kind`: unknown kind {name:?}, expected one of {}",
                    names.join(", ")
                ))
            })?,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "`retriever.kind`: expected a string, found {}",
                    other.type_str()
                )));
            }
        };
        fn read<T: serde::de::DeserializeOwned>(
            table: toml::Table,
            kind: RetrieverKind,
        ) -> Result<T, String> {
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|err| {
                let path = err.path().to_string();
                let key = if path == "." {
                    "retriever".to_string()
                } else {
                    format!("retriever.{path}")
                };
                format!("`{key}` (kind {:?}): {}", kind.as_str(), err.inner())
            })
        }
        let config = match kind {
            RetrieverKind::Random => read(table, kind).map(RetrieverConfig::Random),
            RetrieverKind::Popularity => read(table, kind).map(RetrieverConfig::Popularity),
            RetrieverKind::Bm25 => read(table, kind).map(RetrieverConfig::Bm25),
            RetrieverKind::Bert => read(table, kind).map(RetrieverConfig::Bert),
            RetrieverKind::Channels => read(table, kind).map(RetrieverConfig::Channels),
            RetrieverKind::Ranked => read(table, kind).map(RetrieverConfig::Ranked),
        };
        config.map_err(D::Error::custom)
    }
}

impl RetrieverConfig {
    /// The default table of `kind`, with `k` and `exclude_played` kept from `self` (what
    /// `run --retriever` switches to). A `bert` retriever gets the baseline's encoder.
    pub fn switched_to(&self, kind: RetrieverKind) -> RetrieverConfig {
        let (k, exclude_played) = (self.k(), self.exclude_played());
        match kind {
            RetrieverKind::Random => RetrieverConfig::Random(RandomRetrieverConfig {
                k,
                exclude_played,
                ..Default::default()
            }),
            RetrieverKind::Popularity => RetrieverConfig::Popularity(PopularityRetrieverConfig {
                k,
                exclude_played,
                ..Default::default()
            }),
            RetrieverKind::Bm25 => RetrieverConfig::Bm25(Bm25RetrieverConfig {
                k,
                exclude_played,
                ..Default::default()
            }),
            RetrieverKind::Bert => RetrieverConfig::Bert(BertRetrieverConfig {
                k,
                exclude_played,
                model: DEFAULT_BERT_MODEL.into(),
                query: Default::default(),
                fields: TrackField::BASELINE.to_vec(),
                batch_size: None,
                device: Default::default(),
            }),
            RetrieverKind::Channels => RetrieverConfig::Channels(ChannelsRetrieverConfig {
                k,
                exclude_played,
                train_split: None,
                fusion: None,
                channels: Vec::new(),
            }),
            RetrieverKind::Ranked => RetrieverConfig::Ranked(RankedRetrieverConfig {
                k,
                exclude_played,
                model: PathBuf::new(),
                train_split: None,
                features: None,
                training: None,
                channels: Vec::new(),
            }),
        }
    }

    /// Which retriever.
    pub fn kind(&self) -> RetrieverKind {
        match self {
            RetrieverConfig::Random(_) => RetrieverKind::Random,
            RetrieverConfig::Popularity(_) => RetrieverKind::Popularity,
            RetrieverConfig::Bm25(_) => RetrieverKind::Bm25,
            RetrieverConfig::Bert(_) => RetrieverKind::Bert,
            RetrieverConfig::Channels(_) => RetrieverKind::Channels,
            RetrieverConfig::Ranked(_) => RetrieverKind::Ranked,
        }
    }

    /// Tracks predicted per turn.
    pub fn k(&self) -> usize {
        match self {
            RetrieverConfig::Random(c) => c.k,
            RetrieverConfig::Popularity(c) => c.k,
            RetrieverConfig::Bm25(c) => c.k,
            RetrieverConfig::Bert(c) => c.k,
            RetrieverConfig::Channels(c) => c.k,
            RetrieverConfig::Ranked(c) => c.k,
        }
    }

    /// Sets the tracks predicted per turn (checked by [`RetrieverConfig::validate`]).
    pub fn set_k(&mut self, k: usize) {
        match self {
            RetrieverConfig::Random(c) => c.k = k,
            RetrieverConfig::Popularity(c) => c.k = k,
            RetrieverConfig::Bm25(c) => c.k = k,
            RetrieverConfig::Bert(c) => c.k = k,
            RetrieverConfig::Channels(c) => c.k = k,
            RetrieverConfig::Ranked(c) => c.k = k,
        }
    }

    /// Whether tracks played earlier in the conversation are left out.
    pub fn exclude_played(&self) -> bool {
        match self {
            RetrieverConfig::Random(c) => c.exclude_played,
            RetrieverConfig::Popularity(c) => c.exclude_played,
            RetrieverConfig::Bm25(c) => c.exclude_played,
            RetrieverConfig::Bert(c) => c.exclude_played,
            RetrieverConfig::Channels(c) => c.exclude_played,
            RetrieverConfig::Ranked(c) => c.exclude_played,
        }
    }

    /// Leaves out (or keeps) tracks played earlier in the conversation.
    pub fn set_exclude_played(&mut self, exclude: bool) {
        match self {
            RetrieverConfig::Random(c) => c.exclude_played = exclude,
            RetrieverConfig::Popularity(c) => c.exclude_played = exclude,
            RetrieverConfig::Bm25(c) => c.exclude_played = exclude,
            RetrieverConfig::Bert(c) => c.exclude_played = exclude,
            RetrieverConfig::Channels(c) => c.exclude_played = exclude,
            RetrieverConfig::Ranked(c) => c.exclude_played = exclude,
        }
    }

    /// Checks every value without data, naming the key at fault (`retriever.<key>`).
    pub fn validate(&self) -> Result<()> {
        let retrieval = |err: music_crs_retrieval::Error| match err {
            music_crs_retrieval::Error::InvalidConfig { key, reason } => {
                invalid(&format!("retriever.{key}"), reason)
            }
            other => other.into(),
        };
        let rank = |err: music_crs_rank::Error| match err {
            music_crs_rank::Error::InvalidParameter { name, reason } => {
                invalid(&format!("retriever.{name}"), reason)
            }
            music_crs_rank::Error::Retrieval(inner) => retrieval(inner),
            other => other.into(),
        };
        match self {
            RetrieverConfig::Random(c) => c.validate().map_err(retrieval),
            RetrieverConfig::Popularity(c) => c.validate().map_err(retrieval),
            RetrieverConfig::Bm25(c) => c.validate().map_err(retrieval),
            RetrieverConfig::Bert(c) => c.validate().map_err(retrieval),
            RetrieverConfig::Channels(c) => c.validate().map_err(rank),
            RetrieverConfig::Ranked(c) => c.validate().map_err(rank),
        }
    }

    /// The ranker model file of a `ranked` retriever.
    pub fn ranker_model_path(&self) -> Option<&Path> {
        match self {
            RetrieverConfig::Ranked(c) => Some(&c.model),
            _ => None,
        }
    }

    /// What the retriever reads besides the conversations, catalog and users: the sessions of
    /// another split, embedding tables and model files. Loaded once, before building.
    pub fn needs(&self) -> DataNeeds {
        let mut needs = DataNeeds::default();
        match self {
            RetrieverConfig::Popularity(c) => {
                if let Some(split) = &c.popularity_split {
                    needs.split = Some(SplitNeed {
                        split: split.clone(),
                        key: "retriever.popularity_split",
                    });
                }
            }
            RetrieverConfig::Channels(c) => {
                needs.split = Some(SplitNeed {
                    split: c.train_split().to_string(),
                    key: "retriever.train_split",
                });
                (needs.track_embeddings, needs.user_embeddings) = c.embedding_kinds();
            }
            RetrieverConfig::Ranked(c) => {
                needs.split = Some(SplitNeed {
                    split: c.train_split().to_string(),
                    key: "retriever.train_split",
                });
                (needs.track_embeddings, needs.user_embeddings) = c.embedding_kinds();
                needs.model_files.push(c.model.clone());
            }
            RetrieverConfig::Random(_) | RetrieverConfig::Bm25(_) | RetrieverConfig::Bert(_) => {}
        }
        needs
    }
}

/// The sessions of another split of the conversations source that a retriever reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitNeed {
    /// The split, e.g. `train`.
    pub split: String,
    /// The config key that names it, for errors.
    pub key: &'static str,
}

/// What a method reads beside the conversations, catalog and users ([`RetrieverConfig::needs`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataNeeds {
    /// The sessions of another split (popularity counts, channel counts, ranker training).
    pub split: Option<SplitNeed>,
    /// Track-Embeddings kinds.
    pub track_embeddings: Vec<String>,
    /// User-Embeddings kinds.
    pub user_embeddings: Vec<String>,
    /// Files that must exist before anything is loaded (the ranker model).
    pub model_files: Vec<PathBuf>,
}

impl DataNeeds {
    /// Whether data loaded for `self` holds everything `other` reads: the same split (when
    /// `other` reads one) and every embedding kind. Model files are the builder's to read.
    pub fn covers(&self, other: &DataNeeds) -> bool {
        let split = other.split.as_ref().is_none_or(|need| {
            self.split
                .as_ref()
                .is_some_and(|loaded| loaded.split == need.split)
        });
        let all = |loaded: &[String], needed: &[String]| needed.iter().all(|k| loaded.contains(k));
        split
            && all(&self.track_embeddings, &other.track_embeddings)
            && all(&self.user_embeddings, &other.user_embeddings)
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
        assert_eq!(fusion.retriever.kind(), RetrieverKind::Channels);
        assert_eq!(fusion.retriever.ranker_model_path(), None);
        let RetrieverConfig::Channels(settings) = &fusion.retriever else {
            panic!("{:?}", fusion.retriever);
        };
        assert_eq!(settings.channels.len(), 2);
        assert_eq!(settings.channels[1].weight, Some(0.5));
        assert_eq!(settings.fusion.as_ref().unwrap().rrf_k, 30.0);
        assert_eq!(settings.train_split(), DEFAULT_TRAIN_SPLIT);

        let ranked = with_retriever(
            "kind = \"ranked\"\nmodel = \"exp/models/r.json\"\ntrain_split = \"train+extra\"\n\
             features = { similarity_kinds = [\"image-siglip2\"] }\ntraining = { trees = 7 }",
            &CHANNELS.replace("name = \"next\"", "name = \"next\"\ndepth = 30"),
        )
        .unwrap();
        assert_eq!(
            ranked.retriever.ranker_model_path().unwrap(),
            Path::new("exp/models/r.json")
        );
        let RetrieverConfig::Ranked(settings) = &ranked.retriever else {
            panic!("{:?}", ranked.retriever);
        };
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
