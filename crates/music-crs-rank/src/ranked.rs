//! [`RankedRetriever`]: channels, features and a trained model behind the `Retriever` trait.

use music_crs_core::{ScoredTrack, TurnContext};
use music_crs_retrieval::Retriever;
use rayon::prelude::*;

use crate::candidates::Candidates;
use crate::error::into_retrieval;
use crate::model::BATCH;
use crate::{ChannelSet, ChannelSpec, Error, FeatureExtractor, RankerModel, Result};

/// Gathers candidates from its channels, computes their features and orders them by a
/// [`RankerModel`]. Ties keep the candidate union's RRF order. Played tracks never appear.
#[derive(Debug)]
pub struct RankedRetriever {
    name: String,
    channels: ChannelSet,
    features: FeatureExtractor,
    model: RankerModel,
}

impl RankedRetriever {
    /// Combines channels, features and a model; fails with [`Error::ModelMismatch`] when the
    /// model was trained with other channels (names, depths, or — when both sides know it —
    /// a channel's kind or parameters under the same name) or another feature set.
    pub fn new(
        name: impl Into<String>,
        channels: ChannelSet,
        features: FeatureExtractor,
        model: RankerModel,
    ) -> Result<Self> {
        check_fit(&channels.specs(), &features, &model)?;
        Ok(RankedRetriever {
            name: name.into(),
            channels,
            features,
            model,
        })
    }

    /// The model.
    pub fn model(&self) -> &RankerModel {
        &self.model
    }

    fn rank(&self, query: &TurnContext, candidates: &Candidates, k: usize) -> Vec<ScoredTrack> {
        let specs = self.model.channels();
        let width = self.model.feature_names().len();
        let rows = self.features.extract(query, specs, candidates);
        let mut scored: Vec<(usize, f32)> = self
            .model
            .score_rows(&rows, width)
            .into_iter()
            .enumerate()
            .collect();
        // Stable: equal scores keep the union's RRF order.
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored
            .into_iter()
            .take(k)
            .map(|(slot, score)| {
                let track = self.features.index().track(candidates.keys[slot]);
                ScoredTrack::new(track.track_id.clone(), score)
            })
            .collect()
    }
}

/// Whether `model` was trained with these channels and features; the error names every
/// channel at fault and what changed.
fn check_fit(
    specs: &[ChannelSpec],
    features: &FeatureExtractor,
    model: &RankerModel,
) -> Result<()> {
    let trained = model.channels();
    let same_layout = specs.len() == trained.len()
        && specs
            .iter()
            .zip(trained)
            .all(|(now, then)| now.name == then.name && now.depth == then.depth);
    if !same_layout {
        let show = |s: &[ChannelSpec]| {
            s.iter()
                .map(ChannelSpec::label)
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::ModelMismatch(format!(
            "the model was trained with channels [{}], these are [{}]",
            show(trained),
            show(specs)
        )));
    }
    // Channels built in code carry no fingerprint, nor do models saved before fingerprints
    // were recorded (RankerModel::load warns about those): only both sides can be compared.
    let changed: Vec<String> = specs
        .iter()
        .zip(trained)
        .filter_map(|(now, then)| {
            let (now_print, then_print) = (now.fingerprint.as_ref()?, then.fingerprint.as_ref()?);
            if now_print == then_print {
                None
            } else if now_print.kind != then_print.kind {
                Some(format!(
                    "channel {:?} changed kind from {:?} (the model's) to {:?}",
                    now.name, then_print.kind, now_print.kind
                ))
            } else {
                Some(format!(
                    "channel {:?} ({}) changed parameters (fingerprint {} in the model, {} now)",
                    now.name, now_print.kind, then_print.config, now_print.config
                ))
            }
        })
        .collect();
    if !changed.is_empty() {
        return Err(Error::ModelMismatch(changed.join("; ")));
    }
    let names = features.feature_names(specs);
    if names != model.feature_names() {
        let missing: Vec<&String> = model
            .feature_names()
            .iter()
            .filter(|n| !names.contains(n))
            .collect();
        let added: Vec<&String> = names
            .iter()
            .filter(|n| !model.feature_names().contains(n))
            .collect();
        return Err(Error::ModelMismatch(format!(
            "the feature set changed: the model was trained with {:?} ({} features), these \
             features are {:?} ({}); features the model has and these lack: {missing:?}; new \
             ones: {added:?}",
            model.feature_spec(),
            model.feature_names().len(),
            features.spec(),
            names.len()
        )));
    }
    if let Some(trained_print) = model.features_fingerprint() {
        let now_print = features.fingerprint();
        if now_print != trained_print {
            return Err(Error::ModelMismatch(format!(
                "the features are computed differently than when the model was trained \
                 (feature-set fingerprint {trained_print} in the model, {now_print} in this \
                 build, feature revision {})",
                crate::FEATURES_REVISION
            )));
        }
    }
    Ok(())
}

impl Retriever for RankedRetriever {
    fn name(&self) -> &str {
        &self.name
    }

    fn retrieve(
        &self,
        query: &TurnContext,
        k: usize,
    ) -> music_crs_retrieval::Result<Vec<ScoredTrack>> {
        let candidates = self
            .channels
            .candidates_batch(self.features.index(), std::slice::from_ref(query))
            .map_err(|e| into_retrieval(e, &self.name))?;
        Ok(self.rank(query, &candidates[0], k))
    }

    fn retrieve_batch(
        &self,
        queries: &[TurnContext],
        k: usize,
    ) -> music_crs_retrieval::Result<Vec<Vec<ScoredTrack>>> {
        let mut out = Vec::with_capacity(queries.len());
        for chunk in queries.chunks(BATCH) {
            let candidates = self
                .channels
                .candidates_batch(self.features.index(), chunk)
                .map_err(|e| into_retrieval(e, &self.name))?;
            let started = std::time::Instant::now();
            out.par_extend(
                chunk
                    .par_iter()
                    .zip(candidates.par_iter())
                    .map(|(query, candidates)| self.rank(query, candidates, k)),
            );
            tracing::debug!(
                queries = chunk.len(),
                seconds = started.elapsed().as_secs_f64(),
                "features and ranking"
            );
        }
        Ok(out)
    }
}
