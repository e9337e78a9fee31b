//! From a [`CrsConfig`] to a running [`Crs`]: the retriever and generator it names, built over
//! the loaded data.

use std::sync::Arc;

use music_crs_core::Catalog;
use music_crs_data::{Loader, PartSpec, Source};
use music_crs_generate::Generator;
use music_crs_retrieval::{
    Bm25Index, Bm25Params, Bm25Retriever, ExcludePlayed, PopularityParams, PopularityRetriever,
    QueryRenderParams, QueryRenderer, RandomParams, RandomRetriever, Retriever,
};
use tracing::info;

use crate::config::{QueryConfig, QueryMode, RetrieverConfig, RetrieverKind};
use crate::rank::RankData;
use crate::{Crs, CrsConfig, Error, Result, RunData};

/// Builds the recommender a config describes over loaded data: its retriever (wrapped to
/// exclude played tracks when asked), its generator, the catalog and the users.
pub fn build_crs(config: &CrsConfig, data: &RunData) -> Result<Crs> {
    let retriever = build_retriever(config, data)?;
    let generator = build_generator(&config.generator)?;
    let crs = Crs::new(retriever, generator, data.catalog.clone())
        .with_users(data.users.values().cloned())
        .with_top_k(config.retriever.k)?
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

/// Builds the retriever of `config.retriever` over the data's catalog.
pub fn build_retriever(config: &CrsConfig, data: &RunData) -> Result<Box<dyn Retriever>> {
    let settings = &config.retriever;
    let start = std::time::Instant::now();
    let catalog = &data.catalog;
    let retriever: Box<dyn Retriever> = match settings.kind {
        RetrieverKind::Random => {
            let mut params = RandomParams::default();
            if let Some(seed) = settings.seed {
                params.seed = seed;
            }
            Box::new(RandomRetriever::from_catalog(catalog, params)?)
        }
        RetrieverKind::Popularity => {
            let params = PopularityParams::default();
            match &settings.popularity_split {
                Some(split) => {
                    let sessions =
                        load_split_sessions(config, split, "retriever.popularity_split")?;
                    Box::new(PopularityRetriever::from_sessions(&sessions, params)?)
                }
                None => Box::new(PopularityRetriever::from_catalog_popularity(
                    catalog, params,
                )?),
            }
        }
        RetrieverKind::Bm25 => Box::new(build_bm25(settings, catalog)?),
        RetrieverKind::Bert => build_bert(settings, catalog)?,
        RetrieverKind::Channels => {
            let rank_data = RankData::load(config, catalog.clone())?;
            crate::rank::build_channels(settings, &rank_data)?
        }
        RetrieverKind::Ranked => {
            // Before loading anything: a missing model is the likely mistake.
            if let Some(path) = settings.ranker_model_path() {
                crate::rank::require_model(&path)?;
            }
            let rank_data = RankData::load(config, catalog.clone())?;
            Box::new(crate::rank::build_ranked(settings, &rank_data)?)
        }
    };
    info!(
        retriever = retriever.name(),
        "retriever ready in {:.2}s",
        start.elapsed().as_secs_f64()
    );
    Ok(if settings.exclude_played {
        Box::new(ExcludePlayed::new(retriever))
    } else {
        retriever
    })
}

/// The official BM25 baseline's retriever (with this config's fields, query and k1/b).
pub fn build_bm25(settings: &RetrieverConfig, catalog: &Arc<Catalog>) -> Result<Bm25Retriever> {
    let mut params = Bm25Params::default();
    if let Some(k1) = settings.k1 {
        params.k1 = f64::from(k1);
    }
    if let Some(b) = settings.b {
        params.b = f64::from(b);
    }
    let index = Bm25Index::from_catalog(catalog, &settings.fields, params)?;
    let renderer = query_renderer(&settings.query, catalog)?;
    Ok(Bm25Retriever::new(index, renderer))
}

/// The query renderer of a `[retriever.query]` table.
pub fn query_renderer(query: &QueryConfig, catalog: &Arc<Catalog>) -> Result<QueryRenderer> {
    Ok(QueryRenderer::new(catalog.clone(), query_params(query))?)
}

/// The retrieval crate's renderer settings for a `[retriever.query]` table.
pub fn query_params(query: &QueryConfig) -> QueryRenderParams {
    let mut params = if query.baseline_exact {
        QueryRenderParams::baseline_exact()
    } else {
        QueryRenderParams::default()
    };
    params.mode = match query.mode {
        QueryMode::Conversation => music_crs_retrieval::QueryMode::Conversation,
        QueryMode::CurrentMessage => music_crs_retrieval::QueryMode::CurrentMessage,
    };
    params.max_history_turns = query.max_history_turns;
    if let Some(repeats) = query.current_message_repeats {
        params.current_message_repeats = repeats;
    }
    params.played_tags = query.played_tags;
    params.thoughts = query.thoughts;
    params.conversation_goal = query.conversation_goal;
    params
}

/// The sessions of another split of the conversations source (e.g. `train`): the music
/// messages the popularity retriever counts, the channels' counts and the ranker's training
/// turns. `key` names the setting in errors.
pub(crate) fn load_split_sessions(
    config: &CrsConfig,
    split: &str,
    key: &str,
) -> Result<Vec<music_crs_core::Session>> {
    let spec = config.dataset.to_spec()?;
    let part = PartSpec::new(spec.conversations.source.clone(), split);
    if let Source::Local(path) = Source::parse(&part.source)?
        && path.is_file()
    {
        return Err(Error::InvalidSetting {
            key: key.into(),
            reason: format!(
                "the conversations source {} is a single file: it has no {split:?} split",
                path.display()
            ),
        });
    }
    Ok(Loader::from_env().load_sessions(&part)?)
}

#[cfg(not(feature = "bert"))]
fn build_bert(settings: &RetrieverConfig, _catalog: &Arc<Catalog>) -> Result<Box<dyn Retriever>> {
    Err(Error::FeatureDisabled {
        feature: "bert",
        what: format!(
            "retriever kind \"bert\" (model {})",
            settings.model.as_deref().unwrap_or_default()
        ),
    })
}

#[cfg(feature = "bert")]
fn build_bert(settings: &RetrieverConfig, catalog: &Arc<Catalog>) -> Result<Box<dyn Retriever>> {
    crate::bert::build_bert(settings, catalog)
}
