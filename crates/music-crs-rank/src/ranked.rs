//! [`RankedRetriever`]: channels, features and a trained model behind the `Retriever` trait.

use music_crs_core::{ScoredTrack, TurnContext};
use music_crs_retrieval::Retriever;
use rayon::prelude::*;

use crate::candidates::Candidates;
use crate::error::into_retrieval;
use crate::model::BATCH;
use crate::{ChannelSet, Error, FeatureExtractor, RankerModel, Result};

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
    /// Combines channels, features and a model; fails when the model was trained with other
    /// channels (names or depths) or other features.
    pub fn new(
        name: impl Into<String>,
        channels: ChannelSet,
        features: FeatureExtractor,
        model: RankerModel,
    ) -> Result<Self> {
        let specs = channels.specs();
        if specs != model.channels() {
            let show = |s: &[crate::ChannelSpec]| {
                s.iter()
                    .map(|c| format!("{}@{}", c.name, c.depth))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(Error::ModelMismatch(format!(
                "the model was trained with channels [{}], these are [{}]",
                show(model.channels()),
                show(&specs)
            )));
        }
        let names = features.feature_names(&specs);
        if names != model.feature_names() {
            return Err(Error::ModelMismatch(format!(
                "the model expects {} features ({:?}), the extractor gives {}",
                model.feature_names().len(),
                model.feature_spec(),
                names.len()
            )));
        }
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
            out.par_extend(
                chunk
                    .par_iter()
                    .zip(candidates.par_iter())
                    .map(|(query, candidates)| self.rank(query, candidates, k)),
            );
        }
        Ok(out)
    }
}
