//! The config tables of the retrievers this crate builds, each beside its builder: what a
//! method file writes under `[retriever]` for `kind = "bm25"`, `"bert"`, `"random"` and
//! `"popularity"`.
//!
//! Every table rejects unknown keys. `validate` checks ranges without data and names the key
//! at fault relative to the table (`query.current_message_repeats`), so a caller can prefix
//! where the table sits in its file. The builders are pure: they take loaded data (the
//! catalog, the sessions of another split) and do no I/O, except the BERT encoder's model
//! and embedding cache.
//!
//! ```
//! use std::sync::Arc;
//!
//! use music_crs_core::{Catalog, Track};
//! use music_crs_retrieval::Bm25RetrieverConfig;
//!
//! let config: Bm25RetrieverConfig = serde_json::from_str(r#"{"k": 5, "b": 0.5}"#)?;
//! config.validate()?;
//! let catalog = Arc::new(Catalog::new(vec![Track::new("t1", "Blue in Green", "Miles Davis")])?);
//! let retriever = config.build(&catalog)?;
//! # let _ = retriever;
//! assert!(serde_json::from_str::<Bm25RetrieverConfig>(r#"{"bb": 0.5}"#).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

use music_crs_core::{Catalog, ComputeDevice, MAX_PREDICTED_TRACKS, Session, TrackField};
use serde::{Deserialize, Serialize};

use crate::{
    Bm25Index, Bm25Params, Bm25Retriever, Error, PopularityParams, PopularityRetriever,
    QueryRenderParams, QueryRenderer, RandomParams, RandomRetriever, Result,
};

/// Tracks predicted per turn when a config gives no `k`: a full challenge prediction.
pub const DEFAULT_TOP_K: usize = MAX_PREDICTED_TRACKS;

/// Checks a `k` key: 1..=20, the most the challenge scores.
pub fn validate_top_k(k: usize) -> Result<()> {
    if k == 0 || k > MAX_PREDICTED_TRACKS {
        return Err(Error::config(
            "k",
            format!(
                "{k} is outside 1..={MAX_PREDICTED_TRACKS} (the challenge scores at most \
                 {MAX_PREDICTED_TRACKS} tracks)"
            ),
        ));
    }
    Ok(())
}

/// Checks the catalog columns of a text retriever.
fn validate_fields(fields: &[TrackField]) -> Result<()> {
    if fields.is_empty() {
        return Err(Error::config("fields", "must name at least one column"));
    }
    Ok(())
}

/// Checks a query table, naming its key under `query.`.
fn validate_query(query: &QueryRenderParams) -> Result<()> {
    query.validate().map_err(|err| match err {
        Error::InvalidParameter { name, reason } => Error::config(name, reason),
        other => other,
    })
}

pub(crate) fn default_top_k() -> usize {
    DEFAULT_TOP_K
}

fn baseline_fields() -> Vec<TrackField> {
    TrackField::BASELINE.to_vec()
}

fn default_k1() -> f64 {
    Bm25Params::DEFAULT_K1
}

fn default_b() -> f64 {
    Bm25Params::DEFAULT_B
}

/// `kind = "bm25"`: the official baseline's retriever, BM25 over `field: value` documents of
/// the catalog, queried with the rendered conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bm25RetrieverConfig {
    /// Tracks predicted per turn (1..=20).
    #[serde(default = "default_top_k")]
    pub k: usize,
    /// Leave out tracks already played earlier in the conversation.
    #[serde(default)]
    pub exclude_played: bool,
    /// How a turn becomes query text (`baseline_exact = true` reproduces the baseline's
    /// character-joined release dates).
    #[serde(default)]
    pub query: QueryRenderParams,
    /// Catalog columns indexed as `field: value` lines.
    #[serde(default = "baseline_fields")]
    pub fields: Vec<TrackField>,
    /// Term-frequency saturation (bm25s's 1.5).
    #[serde(default = "default_k1")]
    pub k1: f64,
    /// Document-length normalisation in 0..=1 (bm25s's 0.75).
    #[serde(default = "default_b")]
    pub b: f64,
}

impl Default for Bm25RetrieverConfig {
    /// The official baseline: its fields, its query, bm25s's k1 and b.
    fn default() -> Self {
        Bm25RetrieverConfig {
            k: DEFAULT_TOP_K,
            exclude_played: false,
            query: QueryRenderParams::default(),
            fields: baseline_fields(),
            k1: Bm25Params::DEFAULT_K1,
            b: Bm25Params::DEFAULT_B,
        }
    }
}

impl Bm25RetrieverConfig {
    /// Checks every value without data.
    pub fn validate(&self) -> Result<()> {
        validate_top_k(self.k)?;
        validate_fields(&self.fields)?;
        validate_query(&self.query)?;
        self.bm25_params().validate().map_err(|err| match err {
            Error::InvalidParameter { name, reason } => {
                Error::config(name.trim_start_matches("bm25."), reason)
            }
            other => other,
        })
    }

    /// The index settings: this table's k1 and b, bm25s's tokenizer.
    pub fn bm25_params(&self) -> Bm25Params {
        Bm25Params {
            k1: self.k1,
            b: self.b,
            ..Bm25Params::default()
        }
    }

    /// Indexes the catalog.
    pub fn build(&self, catalog: &Arc<Catalog>) -> Result<Bm25Retriever> {
        self.validate()?;
        let index = Bm25Index::from_catalog(catalog, &self.fields, self.bm25_params())?;
        let renderer = QueryRenderer::new(catalog.clone(), self.query.clone())?;
        Ok(Bm25Retriever::new(index, renderer))
    }
}

/// `kind = "random"`: uniformly random tracks, seeded per (session, turn): the floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomRetrieverConfig {
    /// Tracks predicted per turn (1..=20).
    #[serde(default = "default_top_k")]
    pub k: usize,
    /// Leave out tracks already played earlier in the conversation.
    #[serde(default)]
    pub exclude_played: bool,
    /// The base seed.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_seed() -> u64 {
    RandomParams::DEFAULT_SEED
}

impl Default for RandomRetrieverConfig {
    fn default() -> Self {
        RandomRetrieverConfig {
            k: DEFAULT_TOP_K,
            exclude_played: false,
            seed: RandomParams::DEFAULT_SEED,
        }
    }
}

impl RandomRetrieverConfig {
    /// Checks every value without data.
    pub fn validate(&self) -> Result<()> {
        validate_top_k(self.k)
    }

    /// Draws from the catalog.
    pub fn build(&self, catalog: &Catalog) -> Result<RandomRetriever> {
        self.validate()?;
        RandomRetriever::from_catalog(catalog, RandomParams { seed: self.seed })
    }
}

/// `kind = "popularity"`: the most popular tracks, whatever the conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopularityRetrieverConfig {
    /// Tracks predicted per turn (1..=20).
    #[serde(default = "default_top_k")]
    pub k: usize,
    /// Leave out tracks already played earlier in the conversation.
    #[serde(default)]
    pub exclude_played: bool,
    /// Count the music messages of this split of the conversations source (e.g. `train`)
    /// instead of reading the catalog's `popularity` column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popularity_split: Option<String>,
}

impl PopularityRetrieverConfig {
    /// Checks every value without data.
    pub fn validate(&self) -> Result<()> {
        validate_top_k(self.k)?;
        if self.popularity_split.as_deref().is_some_and(str::is_empty) {
            return Err(Error::config("popularity_split", "must not be empty"));
        }
        Ok(())
    }

    /// Ranks by the play counts of `split_sessions` (the sessions of `popularity_split`,
    /// which the caller loaded) or, without a split, by the catalog's `popularity` column.
    pub fn build(
        &self,
        catalog: &Catalog,
        split_sessions: Option<&[Session]>,
    ) -> Result<PopularityRetriever> {
        self.validate()?;
        let params = PopularityParams::default();
        match (&self.popularity_split, split_sessions) {
            (Some(_), Some(sessions)) => PopularityRetriever::from_sessions(sessions, params),
            (Some(split), None) => Err(Error::config(
                "popularity_split",
                format!("the sessions of split {split:?} were not loaded"),
            )),
            (None, _) => PopularityRetriever::from_catalog_popularity(catalog, params),
        }
    }
}

/// `kind = "bert"`: a BERT sentence encoder embeds the catalog documents and each turn's
/// query; tracks are ranked by cosine similarity (the official BERT baseline). Building it
/// needs the `bert` feature; the table parses without it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BertRetrieverConfig {
    /// Tracks predicted per turn (1..=20).
    #[serde(default = "default_top_k")]
    pub k: usize,
    /// Leave out tracks already played earlier in the conversation.
    #[serde(default)]
    pub exclude_played: bool,
    /// The encoder: a local directory (config.json, tokenizer.json, model.safetensors) or a
    /// hub id such as `bert-base-uncased` (required).
    #[serde(default)]
    pub model: String,
    /// How a turn becomes query text.
    #[serde(default)]
    pub query: QueryRenderParams,
    /// Catalog columns embedded as `field: value` lines.
    #[serde(default = "baseline_fields")]
    pub fields: Vec<TrackField>,
    /// Texts encoded per batch (default: the encoder's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Where the encoder runs: `"cpu"` (default), `"cuda"` / `"cuda:N"` (feature `cuda`) or
    /// `"metal"` / `"metal:N"` (feature `metal`).
    #[serde(default, skip_serializing_if = "ComputeDevice::is_cpu")]
    pub device: ComputeDevice,
}

impl BertRetrieverConfig {
    /// The encoder of the official BERT baseline.
    pub const BASELINE_MODEL: &str = "bert-base-uncased";

    /// Checks every value without data.
    pub fn validate(&self) -> Result<()> {
        validate_top_k(self.k)?;
        if self.model.trim().is_empty() {
            return Err(Error::config(
                "model",
                "kind \"bert\" needs an encoder (a local directory or hub id)",
            ));
        }
        validate_fields(&self.fields)?;
        validate_query(&self.query)?;
        if self.batch_size == Some(0) {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        Ok(())
    }

    /// Loads the encoder, embeds the catalog (read from `cache` when it holds these
    /// documents already; `progress` hears `(done, total)` while encoding) and builds an
    /// exact cosine index over it.
    #[cfg(feature = "bert")]
    #[cfg_attr(docsrs, doc(cfg(feature = "bert")))]
    pub fn build(
        &self,
        catalog: &Arc<Catalog>,
        cache: &crate::dense::EmbeddingCache,
        progress: Option<&(dyn Fn(usize, usize) + Sync)>,
    ) -> Result<crate::dense::VectorRetriever> {
        use crate::dense::{BertEncoder, BertParams, EncodeParams, IndexParams, VectorRetriever};
        self.validate()?;
        let params = BertParams {
            device: self.device,
            ..BertParams::default()
        };
        let encoder = Arc::new(BertEncoder::load(&self.model, params)?);
        let mut encode = EncodeParams::default();
        if let Some(batch_size) = self.batch_size {
            encode.batch_size = batch_size;
        }
        let vectors =
            cache.load_or_encode(encoder.as_ref(), catalog, &self.fields, &encode, progress)?;
        let index = IndexParams::Exact.build(vectors.ids, vectors.data, vectors.dim)?;
        let renderer = QueryRenderer::new(catalog.clone(), self.query.clone())?;
        VectorRetriever::text(index, encoder, renderer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use music_crs_core::Track;

    #[test]
    fn the_bert_device_is_the_cpu_unless_named() {
        let config: BertRetrieverConfig =
            serde_json::from_str(r#"{"model": "m", "device": "metal"}"#).unwrap();
        assert_eq!(config.device, ComputeDevice::Metal(0));
        let config: BertRetrieverConfig = serde_json::from_str(r#"{"model": "m"}"#).unwrap();
        assert_eq!(config.device, ComputeDevice::Cpu);
        let json = serde_json::to_string(&config).unwrap();
        assert!(!json.contains("device"), "{json}");
    }

    fn catalog() -> Arc<Catalog> {
        let mut popular = Track::new("t2", "Take Five", "The Dave Brubeck Quartet");
        popular.popularity = Some(90.0);
        Arc::new(
            Catalog::new(vec![
                Track::new("t1", "Blue in Green", "Miles Davis"),
                popular,
            ])
            .unwrap(),
        )
    }

    #[test]
    fn defaults_are_the_baselines() {
        let bm25: Bm25RetrieverConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(bm25, Bm25RetrieverConfig::default());
        assert_eq!(bm25.bm25_params(), Bm25Params::default());
        assert_eq!(bm25.query, QueryRenderParams::default());
        let random: RandomRetrieverConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(random.seed, RandomParams::DEFAULT_SEED);
        let bert: BertRetrieverConfig = serde_json::from_str(r#"{"model": "m"}"#).unwrap();
        assert_eq!(bert.k, DEFAULT_TOP_K);
    }

    #[test]
    fn baseline_exact_query_is_the_baselines_release_date_bug() {
        let bm25: Bm25RetrieverConfig =
            serde_json::from_str(r#"{"query": {"baseline_exact": true}}"#).unwrap();
        assert_eq!(bm25.query, QueryRenderParams::baseline_exact());
    }

    #[test]
    fn unknown_keys_are_errors_in_every_table() {
        for text in [
            r#"{"bb": 0.1}"#,
            r#"{"query": {"playd_tags": false}}"#,
            r#"{"seed": 3}"#,
        ] {
            let err = serde_json::from_str::<Bm25RetrieverConfig>(text).unwrap_err();
            assert!(err.to_string().contains("unknown field"), "{text}: {err}");
        }
        assert!(serde_json::from_str::<RandomRetrieverConfig>(r#"{"k1": 1.0}"#).is_err());
        assert!(
            serde_json::from_str::<PopularityRetrieverConfig>(r#"{"popularity_splt": "x"}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<BertRetrieverConfig>(r#"{"model": "m", "batch": 3}"#).is_err()
        );
    }

    #[test]
    fn ranges_name_the_key() {
        let key_of = |err: Error| match err {
            Error::InvalidConfig { key, .. } => key,
            other => panic!("{other}"),
        };
        let bm25 = |text: &str| {
            let config: Bm25RetrieverConfig = serde_json::from_str(text).unwrap();
            key_of(config.validate().unwrap_err())
        };
        assert_eq!(bm25(r#"{"k": 0}"#), "k");
        assert_eq!(bm25(r#"{"k": 21}"#), "k");
        assert_eq!(bm25(r#"{"b": 1.5}"#), "b");
        assert_eq!(bm25(r#"{"k1": -1}"#), "k1");
        assert_eq!(bm25(r#"{"fields": []}"#), "fields");
        assert_eq!(
            bm25(r#"{"query": {"current_message_repeats": 0}}"#),
            "query.current_message_repeats"
        );
        let bert: BertRetrieverConfig = serde_json::from_str(r#"{"model": " "}"#).unwrap();
        assert_eq!(key_of(bert.validate().unwrap_err()), "model");
        let bert: BertRetrieverConfig =
            serde_json::from_str(r#"{"model": "m", "batch_size": 0}"#).unwrap();
        assert_eq!(key_of(bert.validate().unwrap_err()), "batch_size");
    }

    #[test]
    fn builders_use_their_tables() {
        let catalog = catalog();
        let bm25 = Bm25RetrieverConfig::default().build(&catalog).unwrap();
        assert_eq!(bm25.index().params(), &Bm25Params::default());
        let popularity = PopularityRetrieverConfig {
            k: 5,
            ..Default::default()
        }
        .build(&catalog, None)
        .unwrap();
        assert_eq!(popularity.ranked()[0].track_id, "t2");
        let split = PopularityRetrieverConfig {
            k: 5,
            popularity_split: Some("train".into()),
            ..Default::default()
        };
        let err = split.build(&catalog, None).unwrap_err();
        assert!(err.to_string().contains("popularity_split"), "{err}");
        // Builders check their table first.
        let zero = RandomRetrieverConfig {
            k: 0,
            ..Default::default()
        };
        assert!(zero.build(&catalog).is_err());
    }
}
