//! From a [`CrsConfig`] and its loaded [`RunData`] to a running [`Crs`]: the retriever and
//! generator it names. Building does no dataset I/O: [`RunData::load_for`] read everything
//! the config needs first.

use music_crs_core::Catalog;
use music_crs_generate::Generator;
use music_crs_retrieval::{ExcludePlayed, PopularityParams, PopularityRetriever, Retriever};
use tracing::info;

use crate::config::RetrieverConfig;
use crate::rank::channel_resources;
use crate::{Crs, CrsConfig, Error, Result, RunData};

/// Builds the recommender a config describes over loaded data: its retriever (wrapped to
/// exclude played tracks when asked), its generator, the catalog and the users.
pub fn build_crs(config: &CrsConfig, data: &RunData) -> Result<Crs> {
    let retriever = build_retriever(config, data)?;
    let generator = build_generator(&config.generator)?;
    let crs = Crs::new(retriever, generator, data.catalog.clone())
        .with_users(data.users.values().cloned())
        .with_top_k(config.retriever.k())?
        .with_fallback(fallback_tracks(&data.catalog));
    Ok(crs)
}

/// Tracks that fill short lists: the most popular by the catalog's `popularity` column, else
/// the first catalog tracks. Enough for a full list after leaving out played tracks.
pub fn fallback_tracks(catalog: &Catalog) -> Vec<String> {
    const FALLBACK_LEN: usize = 64;
    let params = PopularityParams {
        max_tracks: FALLBACK_LEN,
    };
    match PopularityRetriever::from_catalog_popularity(catalog, params) {
        Ok(popular) if !popular.ranked().is_empty() => popular
            .ranked()
            .iter()
            .map(|t| t.track_id.clone())
            .collect(),
        _ => catalog
            .tracks()
            .iter()
            .take(FALLBACK_LEN)
            .map(|t| t.track_id.clone())
            .collect(),
    }
}

/// Builds the generator a config describes (loads the model for `llama`).
pub fn build_generator(config: &music_crs_generate::GeneratorConfig) -> Result<Box<dyn Generator>> {
    let start = std::time::Instant::now();
    let generator = music_crs_generate::build_generator(config)?;
    info!(
        generator = generator.name(),
        "generator ready in {:.2}s",
        start.elapsed().as_secs_f64()
    );
    Ok(generator)
}

/// Builds the retriever of `config.retriever` over the loaded data (its catalog and the
/// inputs [`RunData::load_for`] read for it).
pub fn build_retriever(config: &CrsConfig, data: &RunData) -> Result<Box<dyn Retriever>> {
    let start = std::time::Instant::now();
    let catalog = &data.catalog;
    let inputs = &data.retriever_inputs;
    let needs = config.retriever.needs();
    if !inputs.needs.covers(&needs) {
        return Err(Error::InvalidSetting {
            key: "retriever".into(),
            reason: format!(
                "kind {:?} reads {needs:?}, but the data was loaded for {:?}: load it with \
                 `RunData::load_for` (or `load_for_chat`) and this config",
                config.retriever.kind().as_str(),
                inputs.needs
            ),
        });
    }
    let retriever: Box<dyn Retriever> = match &config.retriever {
        RetrieverConfig::Random(random) => Box::new(random.build(catalog)?),
        RetrieverConfig::Popularity(popularity) => {
            let sessions = popularity
                .popularity_split
                .is_some()
                .then_some(inputs.split_sessions.as_slice());
            Box::new(popularity.build(catalog, sessions)?)
        }
        RetrieverConfig::Bm25(bm25) => Box::new(bm25.build(catalog)?),
        RetrieverConfig::Bert(bert) => build_bert(bert, catalog)?,
        RetrieverConfig::Channels(channels) => channels.build(&channel_resources(data))?,
        RetrieverConfig::Ranked(ranked) => Box::new(
            ranked
                .build(&channel_resources(data))
                .map_err(|err| match err {
                    music_crs_rank::Error::ModelMismatch(reason) => Error::RankerModelStale {
                        path: ranked.model.clone(),
                        reason,
                    },
                    other => other.into(),
                })?,
        ),
    };
    info!(
        retriever = retriever.name(),
        "retriever ready in {:.2}s",
        start.elapsed().as_secs_f64()
    );
    Ok(if config.retriever.exclude_played() {
        Box::new(ExcludePlayed::new(retriever))
    } else {
        retriever
    })
}

#[cfg(not(feature = "bert"))]
fn build_bert(
    settings: &music_crs_retrieval::BertRetrieverConfig,
    _catalog: &std::sync::Arc<Catalog>,
) -> Result<Box<dyn Retriever>> {
    Err(Error::FeatureDisabled {
        feature: "bert",
        what: format!("retriever kind \"bert\" (model {})", settings.model),
    })
}

#[cfg(feature = "bert")]
fn build_bert(
    settings: &music_crs_retrieval::BertRetrieverConfig,
    catalog: &std::sync::Arc<Catalog>,
) -> Result<Box<dyn Retriever>> {
    crate::bert::build_bert(settings, catalog)
}
