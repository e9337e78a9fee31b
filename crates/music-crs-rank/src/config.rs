//! The serde form of channels, fusions and rankers, and the builders that turn it into
//! retrievers.

use std::path::PathBuf;
use std::sync::Arc;

use music_crs_core::{EmbeddingTable, Session, TrackField};
use music_crs_retrieval::dense::{
    IndexParams, ItemNeighbourRetriever, NeighbourParams, UserSimilarityRetriever,
};
use music_crs_retrieval::{
    Bm25Index, Bm25Params, Bm25Retriever, ExcludePlayed, QueryRenderParams, QueryRenderer,
    Retriever,
};
use serde::{Deserialize, Serialize};

use crate::channels::{Channel, ChannelRetriever, RetrieverChannel};
use crate::fingerprint::{ChannelFingerprint, fingerprint};
use crate::{
    CatalogIndex, ChannelSet, CoOccurrenceChannel, CoOccurrenceParams, ContinuityChannel,
    ContinuityParams, Error, FeatureExtractor, FeatureSpec, Fusion, FusionChild, FusionParams,
    NamedChannel, PopularityPrior, PopularityPriorParams, RankedRetriever, RankerModel,
    RankerParams, Result, TrainingProgress, train_ranker_with_progress,
};

/// One candidate channel, as written in a config file (`kind = "..."` plus its parameters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChannelConfig {
    /// [`ContinuityChannel`]: same artist / same album as the played tracks.
    Continuity(ContinuityParams),
    /// [`CoOccurrenceChannel`] counted over the training sessions.
    CoOccurrence(CoOccurrenceParams),
    /// [`PopularityPrior`]: catalog popularity and training play counts.
    PopularityPrior(PopularityPriorParams),
    /// BM25 of `music-crs-retrieval` with its own documents and query rendering.
    Bm25(Bm25ChannelConfig),
    /// Neighbours of the played tracks in one Track-Embeddings kind.
    ItemNeighbours(ItemNeighboursConfig),
    /// The listener's user embedding against the tracks' embedding of the same kind.
    UserSimilarity(UserSimilarityConfig),
    /// Weighted reciprocal-rank fusion of child channels.
    Fusion(FusionConfig),
}

/// Options of a BM25 channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bm25ChannelConfig {
    /// Catalog fields of each track's document (tags included by default: they help).
    pub fields: Vec<TrackField>,
    /// How a turn becomes query text.
    pub query: QueryRenderParams,
    /// BM25 settings.
    pub bm25: Bm25Params,
}

impl Default for Bm25ChannelConfig {
    fn default() -> Self {
        let mut fields = TrackField::BASELINE.to_vec();
        fields.push(TrackField::TagList);
        Bm25ChannelConfig {
            fields,
            query: QueryRenderParams {
                played_tags: true,
                thoughts: true,
                conversation_goal: true,
                ..QueryRenderParams::default()
            },
            bm25: Bm25Params::default(),
        }
    }
}

/// Options of an item-neighbours channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemNeighboursConfig {
    /// The Track-Embeddings kind (hub column name), e.g. `image-siglip2`.
    pub embedding: String,
    /// Aggregation, recency decay and index.
    #[serde(default)]
    pub params: NeighbourParams,
}

/// Options of a user-similarity channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserSimilarityConfig {
    /// The kind present in both User- and Track-Embeddings.
    pub embedding: String,
    /// The index over track vectors.
    pub index: IndexParams,
}

impl Default for UserSimilarityConfig {
    fn default() -> Self {
        UserSimilarityConfig {
            embedding: "cf-bpr".into(),
            index: IndexParams::default(),
        }
    }
}

/// A fusion of named children.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionConfig {
    /// RRF constant and depth.
    #[serde(default)]
    pub params: FusionParams,
    /// The children, in order.
    pub children: Vec<FusionChildConfig>,
}

/// One child of a [`FusionConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionChildConfig {
    /// Unique name within the fusion.
    pub name: String,
    /// Weight of its reciprocal ranks.
    #[serde(default = "one")]
    pub weight: f32,
    /// The child channel.
    pub channel: ChannelConfig,
}

fn one() -> f32 {
    1.0
}

/// A channel with the name and depth it has in a ranker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedChannelConfig {
    /// Unique name; the ranker's features are named after it.
    pub name: String,
    /// How many tracks it proposes per turn.
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// The channel.
    pub channel: ChannelConfig,
}

/// Default [`NamedChannelConfig::depth`].
pub const DEFAULT_CHANNEL_DEPTH: usize = 100;

fn default_depth() -> usize {
    DEFAULT_CHANNEL_DEPTH
}

/// What channel builders may need: the catalog, the training sessions (for counts) and the
/// loaded embedding tables.
#[derive(Debug, Clone)]
pub struct ChannelResources<'a> {
    /// The catalog, indexed.
    pub index: Arc<CatalogIndex>,
    /// The training split (co-occurrence and play counts are learned from it).
    pub train_sessions: &'a [Session],
    /// Track-Embeddings tables over the catalog's tracks, one per kind.
    pub track_embeddings: &'a [Arc<EmbeddingTable>],
    /// User-Embeddings tables, one per kind.
    pub user_embeddings: &'a [Arc<EmbeddingTable>],
}

impl ChannelResources<'_> {
    fn table(
        tables: &[Arc<EmbeddingTable>],
        kind: &str,
        channel: &str,
        what: &str,
    ) -> Result<Arc<EmbeddingTable>> {
        tables
            .iter()
            .find(|t| t.kind() == kind)
            .cloned()
            .ok_or_else(|| Error::Channel {
                channel: channel.into(),
                reason: format!("no {what} embedding table of kind {kind:?} was loaded"),
            })
    }
}

fn retrieval(channel: &str) -> impl Fn(music_crs_retrieval::Error) -> Error + '_ {
    move |e| Error::Channel {
        channel: channel.into(),
        reason: e.to_string(),
    }
}

impl ChannelConfig {
    /// The channel's kind and the fingerprint of this whole configuration (defaults filled
    /// in), as a trained model records them: a model refuses a channel whose fingerprint
    /// differs from the one it was trained with.
    pub fn fingerprint(&self) -> ChannelFingerprint {
        // The `kind` tag as serde writes it, so the name matches the config file's spelling.
        let kind = serde_json::to_value(self)
            .ok()
            .and_then(|value| value.get("kind")?.as_str().map(str::to_string))
            .unwrap_or_default();
        ChannelFingerprint {
            kind,
            config: fingerprint(self),
        }
    }

    /// Builds the channel named `name`. Every channel leaves played tracks out (retrieval-crate
    /// retrievers are wrapped in [`ExcludePlayed`] when they do not do so themselves).
    pub fn build(&self, name: &str, resources: &ChannelResources<'_>) -> Result<Box<dyn Channel>> {
        let index = resources.index.clone();
        let retriever = |retriever: Box<dyn Retriever>| -> Box<dyn Channel> {
            Box::new(RetrieverChannel::new(index.clone(), retriever))
        };
        Ok(match self {
            ChannelConfig::Continuity(params) => {
                Box::new(ContinuityChannel::new(name, index, params.clone())?)
            }
            ChannelConfig::CoOccurrence(params) => Box::new(CoOccurrenceChannel::build(
                name,
                index,
                resources.train_sessions,
                params.clone(),
            )?),
            ChannelConfig::PopularityPrior(params) => Box::new(PopularityPrior::build(
                name,
                index,
                resources.train_sessions,
                params.clone(),
            )?),
            ChannelConfig::Bm25(options) => {
                let catalog = index.catalog();
                let bm25 = Bm25Index::from_catalog(catalog, &options.fields, options.bm25.clone())
                    .map_err(retrieval(name))?;
                let renderer = QueryRenderer::new(catalog.clone(), options.query.clone())
                    .map_err(retrieval(name))?;
                retriever(Box::new(ExcludePlayed::new(Bm25Retriever::new(
                    bm25, renderer,
                ))))
            }
            ChannelConfig::ItemNeighbours(options) => {
                let table = ChannelResources::table(
                    resources.track_embeddings,
                    &options.embedding,
                    name,
                    "track",
                )?;
                // The neighbour retriever already leaves played tracks out.
                retriever(Box::new(
                    ItemNeighbourRetriever::new(table, options.params.clone())
                        .map_err(retrieval(name))?,
                ))
            }
            ChannelConfig::UserSimilarity(options) => {
                let users = ChannelResources::table(
                    resources.user_embeddings,
                    &options.embedding,
                    name,
                    "user",
                )?;
                let tracks = ChannelResources::table(
                    resources.track_embeddings,
                    &options.embedding,
                    name,
                    "track",
                )?;
                retriever(Box::new(ExcludePlayed::new(
                    UserSimilarityRetriever::new(users, &tracks, &options.index)
                        .map_err(retrieval(name))?,
                )))
            }
            ChannelConfig::Fusion(fusion) => {
                let children = fusion
                    .children
                    .iter()
                    .map(|child| {
                        Ok(FusionChild {
                            name: child.name.clone(),
                            weight: child.weight,
                            channel: child.channel.build(&child.name, resources)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Box::new(Fusion::new(name, index, children, fusion.params.clone())?)
            }
        })
    }
}

/// Builds one channel as a [`Retriever`]: [`ChannelConfig::build`] behind a
/// [`ChannelRetriever`], which turns its catalog positions into track ids.
pub fn build_channel(
    name: &str,
    config: &ChannelConfig,
    resources: &ChannelResources<'_>,
) -> Result<Box<dyn Retriever>> {
    Ok(Box::new(ChannelRetriever::new(
        resources.index.clone(),
        config.build(name, resources)?,
    )))
}

/// Builds named channels into a [`ChannelSet`] that knows each channel's
/// [`ChannelConfig::fingerprint`] (a model trained on it records them).
pub fn build_channel_set(
    configs: &[NamedChannelConfig],
    resources: &ChannelResources<'_>,
) -> Result<ChannelSet> {
    let channels = configs
        .iter()
        .map(|c| {
            tracing::info!(channel = %c.name, "building channel");
            Ok(NamedChannel {
                name: c.name.clone(),
                depth: c.depth,
                channel: c.channel.build(&c.name, resources)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let fingerprints = configs.iter().map(|c| c.channel.fingerprint()).collect();
    Ok(ChannelSet::new(channels)?.with_fingerprints(fingerprints))
}

/// A learned ranker as written in a config file: its channels, features, training parameters
/// and model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankerConfig {
    /// The model file [`RankerConfig::train`] writes and [`RankerConfig::load`] reads.
    pub model: PathBuf,
    /// The candidate channels.
    pub channels: Vec<NamedChannelConfig>,
    /// Embedding similarities among the features.
    #[serde(default)]
    pub features: FeatureSpec,
    /// Training parameters.
    #[serde(default)]
    pub params: RankerParams,
}

impl RankerConfig {
    /// Checks what can be checked without data.
    pub fn validate(&self) -> Result<()> {
        self.params.validate()?;
        if self.channels.is_empty() {
            return Err(Error::param("channels", "at least one channel is needed"));
        }
        Ok(())
    }

    /// Builds the channels and the feature extractor.
    pub fn build(
        &self,
        resources: &ChannelResources<'_>,
    ) -> Result<(ChannelSet, FeatureExtractor)> {
        self.validate()?;
        let channels = build_channel_set(&self.channels, resources)?;
        let features = FeatureExtractor::new(
            resources.index.clone(),
            self.features.clone(),
            resources.track_embeddings,
            resources.user_embeddings,
        )?;
        Ok((channels, features))
    }

    /// Trains on `resources.train_sessions` and saves the model to [`RankerConfig::model`].
    pub fn train(&self, resources: &ChannelResources<'_>) -> Result<RankerModel> {
        self.train_with_progress(resources, &|_| {})
    }

    /// [`RankerConfig::train`], reporting each step to `progress` (see
    /// [`train_ranker_with_progress`]).
    pub fn train_with_progress(
        &self,
        resources: &ChannelResources<'_>,
        progress: &(dyn Fn(TrainingProgress) + Sync),
    ) -> Result<RankerModel> {
        let (channels, features) = self.build(resources)?;
        let model = train_ranker_with_progress(
            resources.train_sessions,
            &channels,
            &features,
            &self.params,
            progress,
        )?;
        model.save(&self.model)?;
        tracing::debug!(path = %self.model.display(), "ranker model saved");
        Ok(model)
    }

    /// Loads the model and builds the [`RankedRetriever`] named `name`.
    pub fn load(&self, name: &str, resources: &ChannelResources<'_>) -> Result<RankedRetriever> {
        let model = RankerModel::load(&self.model)?;
        let (channels, features) = self.build(resources)?;
        RankedRetriever::new(name, channels, features, model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_configs_read_from_toml() {
        let text = r#"
            model = "exp/ranker.json"
            [features]
            similarity_kinds = ["image-siglip2"]

            [[channels]]
            name = "continuity"
            depth = 50
            channel = { kind = "continuity", album_weight = 2.0 }

            [[channels]]
            name = "next"
            channel = { kind = "co_occurrence", mode = "next" }

            [[channels]]
            name = "fused"
            [channels.channel]
            kind = "fusion"
            params = { rrf_k = 30.0 }
            [[channels.channel.children]]
            name = "bm25"
            weight = 0.5
            channel = { kind = "bm25", fields = ["track_name", "tag_list"] }
            [[channels.channel.children]]
            name = "image"
            channel = { kind = "item_neighbours", embedding = "image-siglip2" }
        "#;
        let config: RankerConfig = toml::from_str(text).unwrap();
        config.validate().unwrap();
        assert_eq!(config.channels.len(), 3);
        assert_eq!(config.channels[1].depth, DEFAULT_CHANNEL_DEPTH);
        let ChannelConfig::Continuity(params) = &config.channels[0].channel else {
            panic!("{:?}", config.channels[0]);
        };
        assert_eq!(params.album_weight, 2.0);
        assert_eq!(
            params.artist_weight,
            ContinuityParams::DEFAULT_ARTIST_WEIGHT
        );
        let ChannelConfig::Fusion(fusion) = &config.channels[2].channel else {
            panic!("{:?}", config.channels[2]);
        };
        assert_eq!(fusion.params.rrf_k, 30.0);
        assert_eq!(fusion.children[1].weight, 1.0);
        let round = toml::to_string(&config).unwrap();
        assert_eq!(toml::from_str::<RankerConfig>(&round).unwrap(), config);
    }

    #[test]
    fn unknown_fields_and_kinds_are_errors() {
        let typo = r#"name = "c"
channel = { kind = "continuity", albumweight = 2.0 }"#;
        let err = toml::from_str::<NamedChannelConfig>(typo).unwrap_err();
        assert!(err.to_string().contains("albumweight"), "{err}");
        let kind = r#"name = "c"
channel = { kind = "telepathy" }"#;
        assert!(toml::from_str::<NamedChannelConfig>(kind).is_err());
    }
}
