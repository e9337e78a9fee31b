//! The config tables of the two retrievers this crate builds, as a method file writes them
//! under `[retriever]`: `kind = "channels"` (weighted reciprocal-rank fusion of candidate
//! channels) and `kind = "ranked"` (the channels' candidates ordered by a trained LambdaMART
//! model). Both list their channels as `[[retriever.channels]]` entries.
//!
//! `validate` checks every value before any data is read and names the key relative to the
//! table (`channels[3].channel.artist_weight`). [`ChannelsRetrieverConfig::embedding_kinds`]
//! and [`RankedRetrieverConfig::embedding_kinds`] say which embedding tables to load; the
//! builders take the loaded [`ChannelResources`] and do no I/O except reading the model file.
//!
//! ```
//! use music_crs_rank::ChannelsRetrieverConfig;
//!
//! let config: ChannelsRetrieverConfig = toml::from_str(
//!     r#"
//!     fusion = { rrf_k = 30.0 }
//!     [[channels]]
//!     name = "continuity"
//!     channel = { kind = "continuity" }
//!     [[channels]]
//!     name = "image"
//!     weight = 0.5
//!     channel = { kind = "item_neighbours", embedding = "image-siglip2" }
//!     "#,
//! )?;
//! config.validate()?;
//! assert_eq!(config.embedding_kinds().0, ["image-siglip2"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::PathBuf;

use music_crs_retrieval::{DEFAULT_TOP_K, validate_top_k};
use serde::{Deserialize, Serialize};

use crate::config::build_channel;
use crate::{
    ChannelConfig, ChannelResources, DEFAULT_CHANNEL_DEPTH, Error, FeatureSpec, FusionChildConfig,
    FusionConfig, FusionParams, NamedChannelConfig, RankedRetriever, RankerConfig, RankerModel,
    RankerParams, Result, TrainingProgress,
};

/// The split of the conversations source whose sessions the channels count and the ranker
/// learns from, when a config names none.
pub const DEFAULT_TRAIN_SPLIT: &str = "train";
/// The weight of a channel in a `channels` fusion when the config gives none.
pub const DEFAULT_CHANNEL_WEIGHT: f32 = 1.0;

fn default_top_k() -> usize {
    DEFAULT_TOP_K
}

/// One `[[retriever.channels]]` entry of a `channels` or `ranked` retriever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelEntry {
    /// Unique name; the ranker's features are named after it.
    pub name: String,
    /// Weight of its reciprocal ranks in the fusion (`channels`; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f32>,
    /// Tracks it proposes per turn (`ranked`; default 100). A `channels` fusion asks every
    /// channel for `fusion.depth` tracks instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
    /// The channel: `{ kind = "continuity" }`, `"co_occurrence"`, `"popularity_prior"`,
    /// `"bm25"`, `"item_neighbours"`, `"user_similarity"` or `"fusion"`, with that kind's
    /// parameters.
    pub channel: ChannelConfig,
}

/// Which of the two retrievers a channel list belongs to (what its entries may set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListOf {
    Fusion,
    Ranker,
}

/// Checks a channel list: names unique and present, each entry's keys for its retriever,
/// each channel's parameters.
fn validate_channels(entries: &[ChannelEntry], list: ListOf) -> Result<()> {
    if entries.is_empty() {
        return Err(Error::param(
            "channels",
            "at least one [[retriever.channels]] entry is needed",
        ));
    }
    let mut names = std::collections::HashSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let key = |field: &str| format!("channels[{i}].{field}");
        if entry.name.trim().is_empty() {
            return Err(Error::param(key("name"), "must not be empty"));
        }
        if !names.insert(entry.name.as_str()) {
            return Err(Error::param(
                key("name"),
                format!("{:?} names two channels", entry.name),
            ));
        }
        match (list, entry.weight, entry.depth) {
            (ListOf::Ranker, Some(_), _) => {
                return Err(Error::param(
                    key("weight"),
                    "applies to kind \"channels\" only: the ranker learns the weights",
                ));
            }
            (ListOf::Fusion, _, Some(_)) => {
                return Err(Error::param(
                    key("depth"),
                    "applies to kind \"ranked\" only: a fusion asks every channel for \
                     `fusion.depth` tracks",
                ));
            }
            _ => {}
        }
        if entry.weight.is_some_and(|w| !(w.is_finite() && w >= 0.0)) {
            return Err(Error::param(
                key("weight"),
                "must be a finite non-negative number",
            ));
        }
        if entry.depth == Some(0) {
            return Err(Error::param(key("depth"), "must be at least 1"));
        }
        validate_channel(&entry.channel, &key("channel"))?;
    }
    Ok(())
}

/// Checks one channel's parameters, naming the key under `prefix`.
fn validate_channel(channel: &ChannelConfig, prefix: &str) -> Result<()> {
    let under = |err: Error| match err {
        Error::InvalidParameter { name, reason } => {
            Error::param(format!("{prefix}.{name}"), reason)
        }
        Error::Retrieval(music_crs_retrieval::Error::InvalidParameter { name, reason }) => {
            Error::param(format!("{prefix}.{name}"), reason)
        }
        Error::Retrieval(music_crs_retrieval::Error::InvalidConfig { key, reason }) => {
            Error::param(format!("{prefix}.{key}"), reason)
        }
        other => other,
    };
    match channel {
        ChannelConfig::Continuity(params) => params.validate().map_err(under),
        ChannelConfig::CoOccurrence(params) => params.validate().map_err(under),
        ChannelConfig::PopularityPrior(params) => params.validate().map_err(under),
        ChannelConfig::Bm25(options) => {
            if options.fields.is_empty() {
                return Err(Error::param(
                    format!("{prefix}.fields"),
                    "must name at least one column",
                ));
            }
            options
                .query
                .validate()
                .map_err(|e| under(Error::Retrieval(e)))?;
            options
                .bm25
                .validate()
                .map_err(|e| under(Error::Retrieval(e)))
        }
        ChannelConfig::ItemNeighbours(options) => options
            .params
            .validate()
            .map_err(|e| under(Error::Retrieval(e))),
        ChannelConfig::UserSimilarity(options) => options
            .index
            .validate()
            .map_err(|e| under(Error::Retrieval(e))),
        ChannelConfig::Fusion(fusion) => {
            fusion.params.validate().map_err(under)?;
            if fusion.children.is_empty() {
                return Err(Error::param(
                    format!("{prefix}.children"),
                    "a fusion needs at least one child",
                ));
            }
            for (i, child) in fusion.children.iter().enumerate() {
                validate_channel(&child.channel, &format!("{prefix}.children[{i}].channel"))?;
            }
            Ok(())
        }
    }
}

/// Adds the embedding kinds a channel reads to `tracks` and `users` (each once, in order).
fn channel_embedding_kinds(
    channel: &ChannelConfig,
    tracks: &mut Vec<String>,
    users: &mut Vec<String>,
) {
    match channel {
        ChannelConfig::ItemNeighbours(options) => add_kind(tracks, &options.embedding),
        ChannelConfig::UserSimilarity(options) => {
            add_kind(tracks, &options.embedding);
            add_kind(users, &options.embedding);
        }
        ChannelConfig::Fusion(fusion) => {
            for child in &fusion.children {
                channel_embedding_kinds(&child.channel, tracks, users);
            }
        }
        _ => {}
    }
}

fn add_kind(kinds: &mut Vec<String>, kind: &str) {
    if !kinds.iter().any(|k| k == kind) {
        kinds.push(kind.to_string());
    }
}

fn list_embedding_kinds(entries: &[ChannelEntry]) -> (Vec<String>, Vec<String>) {
    let (mut tracks, mut users) = (Vec::new(), Vec::new());
    for entry in entries {
        channel_embedding_kinds(&entry.channel, &mut tracks, &mut users);
    }
    (tracks, users)
}

fn validate_train_split(split: Option<&str>) -> Result<()> {
    if split.is_some_and(str::is_empty) {
        return Err(Error::param("train_split", "must not be empty"));
    }
    Ok(())
}

/// `kind = "channels"`: the weighted reciprocal-rank fusion of the listed channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsRetrieverConfig {
    /// Tracks predicted per turn (1..=20).
    #[serde(default = "default_top_k")]
    pub k: usize,
    /// Leave out tracks already played earlier in the conversation (channels always do).
    #[serde(default)]
    pub exclude_played: bool,
    /// The split of the conversations source whose sessions the channels count (default
    /// `train`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_split: Option<String>,
    /// RRF constant and the tracks asked of each channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<FusionParams>,
    /// The channels, in order.
    #[serde(default)]
    pub channels: Vec<ChannelEntry>,
}

impl ChannelsRetrieverConfig {
    /// Checks every value without data.
    pub fn validate(&self) -> Result<()> {
        validate_top_k(self.k)?;
        validate_train_split(self.train_split.as_deref())?;
        if let Some(fusion) = &self.fusion {
            fusion.validate().map_err(|err| match err {
                Error::InvalidParameter { name, reason } => {
                    Error::param(format!("fusion.{name}"), reason)
                }
                other => other,
            })?;
        }
        validate_channels(&self.channels, ListOf::Fusion)
    }

    /// The split the channels count (`train_split`, default `train`).
    pub fn train_split(&self) -> &str {
        self.train_split.as_deref().unwrap_or(DEFAULT_TRAIN_SPLIT)
    }

    /// The Track- and User-Embeddings kinds its channels read.
    pub fn embedding_kinds(&self) -> (Vec<String>, Vec<String>) {
        list_embedding_kinds(&self.channels)
    }

    /// The fusion as one channel of the rank crate.
    pub fn fusion_channel(&self) -> ChannelConfig {
        ChannelConfig::Fusion(FusionConfig {
            params: self.fusion.clone().unwrap_or_default(),
            children: self
                .channels
                .iter()
                .map(|entry| FusionChildConfig {
                    name: entry.name.clone(),
                    weight: entry.weight.unwrap_or(DEFAULT_CHANNEL_WEIGHT),
                    channel: entry.channel.clone(),
                })
                .collect(),
        })
    }

    /// Builds the fusion over the loaded resources.
    pub fn build(
        &self,
        resources: &ChannelResources<'_>,
    ) -> Result<Box<dyn music_crs_retrieval::Retriever>> {
        self.validate()?;
        build_channel("channels", &self.fusion_channel(), resources)
    }
}

/// `kind = "ranked"`: the listed channels' candidates, ordered by the LambdaMART model that
/// `music-crs train-ranker` writes to `model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankedRetrieverConfig {
    /// Tracks predicted per turn (1..=20).
    #[serde(default = "default_top_k")]
    pub k: usize,
    /// Leave out tracks already played earlier in the conversation (channels always do).
    #[serde(default)]
    pub exclude_played: bool,
    /// The model file, e.g. `exp/models/<tid>.json` (required).
    #[serde(default)]
    pub model: PathBuf,
    /// The split of the conversations source whose sessions the channels count and the
    /// ranker learns from (default `train`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_split: Option<String>,
    /// Embedding similarities among the ranker's features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<FeatureSpec>,
    /// LambdaMART training parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<RankerParams>,
    /// The candidate channels, in order.
    #[serde(default)]
    pub channels: Vec<ChannelEntry>,
}

impl RankedRetrieverConfig {
    /// Checks every value without data (not whether the model file exists).
    pub fn validate(&self) -> Result<()> {
        validate_top_k(self.k)?;
        if self.model.as_os_str().is_empty() {
            return Err(Error::param(
                "model",
                "kind \"ranked\" needs the model file `music-crs train-ranker` writes \
                 (e.g. \"exp/models/<tid>.json\")",
            ));
        }
        validate_train_split(self.train_split.as_deref())?;
        if let Some(training) = &self.training {
            training.validate().map_err(|err| match err {
                Error::InvalidParameter { name, reason } => {
                    Error::param(format!("training.{name}"), reason)
                }
                other => other,
            })?;
        }
        validate_channels(&self.channels, ListOf::Ranker)
    }

    /// The split the channels count and the ranker learns from (default `train`).
    pub fn train_split(&self) -> &str {
        self.train_split.as_deref().unwrap_or(DEFAULT_TRAIN_SPLIT)
    }

    /// The Track- and User-Embeddings kinds its channels and features read.
    pub fn embedding_kinds(&self) -> (Vec<String>, Vec<String>) {
        let (mut tracks, mut users) = list_embedding_kinds(&self.channels);
        if let Some(features) = &self.features {
            for kind in &features.similarity_kinds {
                add_kind(&mut tracks, kind);
            }
            if let Some(kind) = &features.user_kind {
                add_kind(&mut tracks, kind);
                add_kind(&mut users, kind);
            }
        }
        (tracks, users)
    }

    /// The ranker: model file, channels with their depths, features and training parameters.
    pub fn ranker(&self) -> RankerConfig {
        RankerConfig {
            model: self.model.clone(),
            channels: self
                .channels
                .iter()
                .map(|entry| NamedChannelConfig {
                    name: entry.name.clone(),
                    depth: entry.depth.unwrap_or(DEFAULT_CHANNEL_DEPTH),
                    channel: entry.channel.clone(),
                })
                .collect(),
            features: self.features.clone().unwrap_or_default(),
            params: self.training.clone().unwrap_or_default(),
        }
    }

    /// Loads the model file and builds the ranked retriever over the loaded resources.
    pub fn build(&self, resources: &ChannelResources<'_>) -> Result<RankedRetriever> {
        self.validate()?;
        self.ranker().load("ranked", resources)
    }

    /// Trains on `resources.train_sessions` and writes the model file.
    pub fn train(
        &self,
        resources: &ChannelResources<'_>,
        progress: &(dyn Fn(TrainingProgress) + Sync),
    ) -> Result<RankerModel> {
        self.validate()?;
        self.ranker().train_with_progress(resources, progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANNELS: &str = r#"
[[channels]]
name = "continuity"
channel = { kind = "continuity" }
[[channels]]
name = "next"
channel = { kind = "co_occurrence", mode = "next" }
"#;

    fn ranked(extra: &str, channels: &str) -> Result<RankedRetrieverConfig, String> {
        let config: RankedRetrieverConfig =
            toml::from_str(&format!("model = \"m.json\"\n{extra}\n{channels}"))
                .map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    #[test]
    fn ranked_reads_its_entries_into_a_ranker() {
        let config = ranked(
            "features = { similarity_kinds = [\"image-siglip2\"], user_kind = \"cf-bpr\" }",
            &CHANNELS.replace("name = \"next\"", "name = \"next\"\ndepth = 30"),
        )
        .unwrap();
        let ranker = config.ranker();
        assert_eq!(ranker.channels[0].depth, DEFAULT_CHANNEL_DEPTH);
        assert_eq!(ranker.channels[1].depth, 30);
        assert_eq!(config.train_split(), DEFAULT_TRAIN_SPLIT);
        assert_eq!(
            config.embedding_kinds(),
            (
                vec!["image-siglip2".to_string(), "cf-bpr".to_string()],
                vec!["cf-bpr".to_string()]
            )
        );
    }

    #[test]
    fn range_errors_name_the_key_path() {
        for (extra, channels, key) in [
            ("", "", "channels"),
            ("k = 0", CHANNELS, "k"),
            ("train_split = \"\"", CHANNELS, "train_split"),
            (
                "",
                &CHANNELS.replace(
                    "kind = \"continuity\"",
                    "kind = \"continuity\", artist_weight = -1.0",
                ),
                "channels[0].channel.artist_weight",
            ),
            (
                "",
                &CHANNELS.replace("name = \"next\"", "name = \"next\"\nweight = 2.0"),
                "channels[1].weight",
            ),
            (
                "",
                &CHANNELS.replace("name = \"next\"", "name = \"continuity\""),
                "channels[1].name",
            ),
            (
                "training = { max_bins = 1000 }",
                CHANNELS,
                "training.max_bins",
            ),
        ] {
            let err = ranked(extra, channels).unwrap_err();
            assert!(err.contains(key), "{extra} / {channels}: {err}");
        }
    }

    #[test]
    fn unknown_keys_in_nested_tables_are_errors() {
        for (channels, needle) in [
            (
                CHANNELS.replace("name = \"next\"", "name = \"next\"\ndepht = 3"),
                "depht",
            ),
            (
                "[[channels]]\nname = \"i\"\nchannel = { kind = \"item_neighbours\", embedding = \"e\", params = { recency_decai = 0.5 } }\n".to_string(),
                "recency_decai",
            ),
            (
                "[[channels]]\nname = \"b\"\nchannel = { kind = \"bm25\", bm25 = { bb = 0.1 } }\n"
                    .to_string(),
                "bb",
            ),
            (
                "[[channels]]\nname = \"b\"\nchannel = { kind = \"bm25\", query = { playd_tags = false } }\n"
                    .to_string(),
                "playd_tags",
            ),
            (
                "[[channels]]\nname = \"b\"\nchannel = { kind = \"bm25\", bm25 = { tokenizer = { stemer = \"x\" } } }\n"
                    .to_string(),
                "stemer",
            ),
            (
                "[[channels]]\nname = \"u\"\nchannel = { kind = \"user_similarity\", index = { kind = \"hnsw\", ef_serch = 5 } }\n"
                    .to_string(),
                "ef_serch",
            ),
            (
                "[[channels]]\nname = \"u\"\nchannel = { kind = \"user_similarity\", index = { kind = \"exact\", foo = 1 } }\n"
                    .to_string(),
                "foo",
            ),
        ] {
            let err = ranked("", &channels).unwrap_err();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn channels_fusion_weights_and_depth() {
        let config: ChannelsRetrieverConfig = toml::from_str(&format!(
            "fusion = {{ rrf_k = 30.0 }}\n{}",
            CHANNELS.replace("name = \"next\"", "name = \"next\"\nweight = 0.5")
        ))
        .unwrap();
        config.validate().unwrap();
        let ChannelConfig::Fusion(fusion) = config.fusion_channel() else {
            panic!("not a fusion");
        };
        assert_eq!(fusion.params.rrf_k, 30.0);
        assert_eq!(fusion.children[0].weight, DEFAULT_CHANNEL_WEIGHT);
        assert_eq!(fusion.children[1].weight, 0.5);
        let depth: ChannelsRetrieverConfig =
            toml::from_str(&CHANNELS.replace("name = \"next\"", "name = \"next\"\ndepth = 5"))
                .unwrap();
        assert!(
            depth
                .validate()
                .unwrap_err()
                .to_string()
                .contains("channels[1].depth")
        );
        let fusion: ChannelsRetrieverConfig =
            toml::from_str(&format!("fusion = {{ depth = 0 }}\n{CHANNELS}")).unwrap();
        assert!(
            fusion
                .validate()
                .unwrap_err()
                .to_string()
                .contains("fusion.depth")
        );
    }
}
