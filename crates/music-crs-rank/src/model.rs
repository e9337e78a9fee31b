//! The learned ranker: parameters, training on a split of sessions, and the model file.

use std::path::Path;
use std::time::Instant;

use music_crs_core::{Session, TurnContext};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::lambdamart::{self, BoostParams, QueryData, Tree};
use crate::{ChannelSet, ChannelSpec, Error, FeatureExtractor, FeatureSpec, Result};

/// The `format` field of every model file.
pub const MODEL_FORMAT: &str = "music-crs-ranker";
/// The model file version this build writes and reads.
pub const MODEL_VERSION: u32 = 1;

/// Queries handed to the channels at once during training and batch ranking.
pub(crate) const BATCH: usize = 256;

/// Training parameters of the LambdaMART ranker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankerParams {
    /// Most boosting rounds (trees).
    pub trees: usize,
    /// Shrinkage applied to each tree's leaves.
    pub learning_rate: f32,
    /// Depth of each tree (at most `2^max_depth` leaves).
    pub max_depth: usize,
    /// Fewest training rows in a leaf.
    pub min_data_in_leaf: usize,
    /// Smallest sum of hessians in a leaf.
    pub min_hessian_in_leaf: f32,
    /// L2 regularisation of leaf values.
    pub l2: f32,
    /// Histogram bins per feature, missing values included (4..=256).
    pub max_bins: usize,
    /// Steepness of the pairwise logistic loss.
    pub sigma: f32,
    /// Irrelevant candidates kept per training turn: half the best-ranked by the candidate
    /// union's RRF (hard negatives), half drawn at random from the rest.
    pub negatives_per_query: usize,
    /// Most training turns used (drawn at random from the sessions' turns; 0 = all).
    pub max_train_queries: usize,
    /// Share of sessions held out to pick the number of trees (0 = no early stopping).
    pub validation_fraction: f32,
    /// Stop after this many trees without a better validation nDCG (0 = never).
    pub early_stopping_rounds: usize,
    /// The cut-off of the nDCG that validation reports.
    pub ndcg_k: usize,
    /// Seed of every random choice (turn sampling, negatives, validation split).
    pub seed: u64,
}

impl RankerParams {
    /// Default [`RankerParams::trees`].
    pub const DEFAULT_TREES: usize = 300;
    /// Default [`RankerParams::learning_rate`].
    pub const DEFAULT_LEARNING_RATE: f32 = 0.08;
    /// Default [`RankerParams::max_depth`].
    pub const DEFAULT_MAX_DEPTH: usize = 6;
    /// Default [`RankerParams::min_data_in_leaf`].
    pub const DEFAULT_MIN_DATA_IN_LEAF: usize = 50;
    /// Default [`RankerParams::min_hessian_in_leaf`].
    pub const DEFAULT_MIN_HESSIAN_IN_LEAF: f32 = 1e-3;
    /// Default [`RankerParams::l2`].
    pub const DEFAULT_L2: f32 = 1.0;
    /// Default [`RankerParams::max_bins`].
    pub const DEFAULT_MAX_BINS: usize = 64;
    /// Default [`RankerParams::sigma`].
    pub const DEFAULT_SIGMA: f32 = 1.0;
    /// Default [`RankerParams::negatives_per_query`].
    pub const DEFAULT_NEGATIVES_PER_QUERY: usize = 60;
    /// Default [`RankerParams::max_train_queries`].
    pub const DEFAULT_MAX_TRAIN_QUERIES: usize = 20_000;
    /// Default [`RankerParams::validation_fraction`].
    pub const DEFAULT_VALIDATION_FRACTION: f32 = 0.1;
    /// Default [`RankerParams::early_stopping_rounds`].
    pub const DEFAULT_EARLY_STOPPING_ROUNDS: usize = 40;
    /// Default [`RankerParams::ndcg_k`] (the challenge's deepest cut-off).
    pub const DEFAULT_NDCG_K: usize = 20;
    /// Default [`RankerParams::seed`].
    pub const DEFAULT_SEED: u64 = 2026;

    /// Checks every value.
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &str, v: usize| {
            if v == 0 {
                Err(Error::param(name, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        positive("trees", self.trees)?;
        positive("max_depth", self.max_depth)?;
        positive("min_data_in_leaf", self.min_data_in_leaf)?;
        positive("negatives_per_query", self.negatives_per_query)?;
        positive("ndcg_k", self.ndcg_k)?;
        if self.max_depth > 16 {
            return Err(Error::param("max_depth", "at most 16"));
        }
        if !(4..=256).contains(&self.max_bins) {
            return Err(Error::param(
                "max_bins",
                format!("{} is outside 4..=256", self.max_bins),
            ));
        }
        let finite_positive = |name: &str, v: f32| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::param(name, format!("{v} must be finite and > 0")))
            }
        };
        finite_positive("learning_rate", self.learning_rate)?;
        finite_positive("sigma", self.sigma)?;
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(Error::param(
                "l2",
                format!("{} must be finite and >= 0", self.l2),
            ));
        }
        if !(self.min_hessian_in_leaf.is_finite() && self.min_hessian_in_leaf >= 0.0) {
            return Err(Error::param(
                "min_hessian_in_leaf",
                "must be finite and >= 0",
            ));
        }
        if !(0.0..0.9).contains(&self.validation_fraction) {
            return Err(Error::param(
                "validation_fraction",
                format!("{} is outside [0, 0.9)", self.validation_fraction),
            ));
        }
        Ok(())
    }

    fn boost(&self) -> BoostParams {
        BoostParams {
            trees: self.trees,
            learning_rate: self.learning_rate,
            max_depth: self.max_depth,
            min_data_in_leaf: self.min_data_in_leaf,
            min_hessian_in_leaf: self.min_hessian_in_leaf,
            l2: self.l2,
            max_bins: self.max_bins,
            sigma: self.sigma,
            ndcg_k: self.ndcg_k,
            early_stopping_rounds: self.early_stopping_rounds,
        }
    }
}

impl Default for RankerParams {
    fn default() -> Self {
        RankerParams {
            trees: Self::DEFAULT_TREES,
            learning_rate: Self::DEFAULT_LEARNING_RATE,
            max_depth: Self::DEFAULT_MAX_DEPTH,
            min_data_in_leaf: Self::DEFAULT_MIN_DATA_IN_LEAF,
            min_hessian_in_leaf: Self::DEFAULT_MIN_HESSIAN_IN_LEAF,
            l2: Self::DEFAULT_L2,
            max_bins: Self::DEFAULT_MAX_BINS,
            sigma: Self::DEFAULT_SIGMA,
            negatives_per_query: Self::DEFAULT_NEGATIVES_PER_QUERY,
            max_train_queries: Self::DEFAULT_MAX_TRAIN_QUERIES,
            validation_fraction: Self::DEFAULT_VALIDATION_FRACTION,
            early_stopping_rounds: Self::DEFAULT_EARLY_STOPPING_ROUNDS,
            ndcg_k: Self::DEFAULT_NDCG_K,
            seed: Self::DEFAULT_SEED,
        }
    }
}

/// What training saw and reached, kept in the model file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Turns drawn for training and validation.
    pub turns: usize,
    /// Share of those turns whose target track was among the candidates (the ranker's ceiling).
    pub candidate_recall: f64,
    /// Training turns and rows used.
    pub train_queries: usize,
    /// Rows (turn, candidate) trained on.
    pub train_rows: usize,
    /// Validation turns (target among the candidates).
    pub valid_queries: usize,
    /// Validation nDCG@k of the candidate union's RRF order, for comparison.
    pub valid_ndcg_union: f64,
    /// Validation nDCG@k of the trained model.
    pub valid_ndcg_model: f64,
    /// Trees kept.
    pub trees: usize,
    /// Seconds spent gathering candidates and features.
    pub feature_seconds: f64,
    /// Seconds spent boosting.
    pub boosting_seconds: f64,
}

/// One figure with its interval, as an estimate stored in a model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureEstimate {
    /// The metric (`ndcg@20`...).
    pub metric: String,
    /// Its value.
    pub value: f64,
    /// Lower bound of its interval.
    pub low: f64,
    /// Upper bound of its interval.
    pub high: f64,
}

/// How well the ranker does on sessions it never saw, estimated by K-fold cross-validation
/// over training sessions, beside its score on the sessions it was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossValidation {
    /// Folds (K).
    pub folds: usize,
    /// Training sessions split into folds (no session in two folds).
    pub sessions: usize,
    /// Held-out turns scored.
    pub turns: usize,
    /// Confidence level of the intervals (bootstrap over sessions).
    pub confidence: f64,
    /// The official figures over the held-out folds, each scored by a model trained
    /// without it.
    pub out_of_fold: Vec<FigureEstimate>,
    /// The same figures of the final model on the sessions it was trained on (optimistic).
    pub in_sample: Vec<FigureEstimate>,
}

impl CrossValidation {
    /// The out-of-fold estimate of `metric`.
    pub fn out_of_fold(&self, metric: &str) -> Option<&FigureEstimate> {
        self.out_of_fold.iter().find(|f| f.metric == metric)
    }

    /// The in-sample figure of `metric`.
    pub fn in_sample(&self, metric: &str) -> Option<&FigureEstimate> {
        self.in_sample.iter().find(|f| f.metric == metric)
    }
}

/// A trained ranker: the channels and features it was trained with, and its trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankerModel {
    format: String,
    version: u32,
    channels: Vec<ChannelSpec>,
    features: FeatureSpec,
    feature_names: Vec<String>,
    /// [`FeatureExtractor::fingerprint`] at training; absent in files saved before models
    /// recorded it (those load with a warning, see [`RankerModel::load`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    features_fingerprint: Option<String>,
    params: RankerParams,
    summary: TrainingSummary,
    /// Absent unless trained with cross-validation (older files have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cross_validation: Option<CrossValidation>,
    trees: Vec<Tree>,
}

/// The first fields of a model file, read before the rest to report a version mismatch.
#[derive(Deserialize)]
struct Header {
    format: String,
    version: u32,
}

impl RankerModel {
    /// The channels the model was trained with (names, depths and configuration
    /// fingerprints, in feature order).
    pub fn channels(&self) -> &[ChannelSpec] {
        &self.channels
    }

    /// The side information its features read.
    pub fn feature_spec(&self) -> &FeatureSpec {
        &self.features
    }

    /// The fingerprint of the feature set it was trained with (`None` for models saved
    /// before models recorded it).
    pub fn features_fingerprint(&self) -> Option<&str> {
        self.features_fingerprint.as_deref()
    }

    /// Feature names, in the order the trees index them.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The parameters it was trained with.
    pub fn params(&self) -> &RankerParams {
        &self.params
    }

    /// What training saw and reached.
    pub fn summary(&self) -> &TrainingSummary {
        &self.summary
    }

    /// The cross-validated estimate stored with the model, if it was trained with folds.
    pub fn cross_validation(&self) -> Option<&CrossValidation> {
        self.cross_validation.as_ref()
    }

    /// Stores a cross-validated estimate with the model (saved by [`RankerModel::save`]).
    pub fn set_cross_validation(&mut self, estimate: CrossValidation) {
        self.cross_validation = Some(estimate);
    }

    /// Number of trees.
    pub fn tree_count(&self) -> usize {
        self.trees.len()
    }

    /// The scores of row-major feature rows (higher ranks first).
    pub(crate) fn score_rows(&self, rows: &[f32], width: usize) -> Vec<f32> {
        lambdamart::predict_rows(&self.trees, rows, width)
    }

    /// Writes the model as JSON to a temporary file beside `path`, then renames it over
    /// `path`, so readers never see half a file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        music_crs_core::atomic::write_atomically(path, |writer| {
            serde_json::to_writer(writer, self).map_err(std::io::Error::from)
        })
        .map_err(|e: std::io::Error| {
            Error::from(std::io::Error::new(
                e.kind(),
                format!("writing ranker model: {e}"),
            ))
        })
    }

    /// Reads a model written by [`RankerModel::save`]. A file that is not a ranker model, has
    /// another version or holds trees that cannot be walked is an [`Error::CorruptModel`].
    ///
    /// A model saved before models recorded the fingerprints of their channels'
    /// configurations and of their feature set still loads, with a `tracing` warning: its
    /// channel names, depths and feature names are still checked by
    /// [`RankedRetriever::new`](crate::RankedRetriever::new), and the fingerprints are
    /// additive fields of the same file version, so refusing it would force retraining models
    /// that may well be right. Only a channel whose kind or parameters changed under the same
    /// name goes unnoticed; the warning says to retrain to close that gap.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = fs_err::read_to_string(path)?;
        Self::from_json_str(&text, path)
    }

    /// [`RankerModel::load`] on the text of a model file; `path` names it in errors.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let corrupt = |reason: String| Error::CorruptModel {
            path: path.to_path_buf(),
            reason,
        };
        let header: Header = serde_json::from_str(text)
            .map_err(|e| corrupt(format!("not a ranker model file ({e})")))?;
        if header.format != MODEL_FORMAT {
            return Err(corrupt(format!(
                "format is {:?}, expected {MODEL_FORMAT:?}",
                header.format
            )));
        }
        if header.version != MODEL_VERSION {
            return Err(corrupt(format!(
                "version {} is not supported (this build reads version {MODEL_VERSION}); retrain the model",
                header.version
            )));
        }
        let model: RankerModel = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        model.check().map_err(corrupt)?;
        if model.features_fingerprint.is_none() {
            tracing::warn!(
                model = %path.display(),
                "the ranker model records no fingerprints of its channels' configurations and \
                 feature set (saved by an older build): a channel whose kind or parameters \
                 changed under the same name cannot be detected; retrain it with \
                 `music-crs train-ranker --config <its config>` to record them"
            );
        }
        Ok(model)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let per_channel = 3 * self.channels.len();
        if self.feature_names.len() < per_channel {
            return Err("fewer feature names than its channels need".into());
        }
        for (i, tree) in self.trees.iter().enumerate() {
            tree.check(self.feature_names.len())
                .map_err(|e| format!("tree {i}: {e}"))?;
        }
        Ok(())
    }
}

/// One training turn turned into rows.
struct TurnRows {
    features: Vec<f32>,
    labels: Vec<f32>,
    /// How many full-list rows each row stands for.
    weights: Vec<f32>,
    /// Candidate union order, to score the RRF baseline.
    union_scores: Vec<f32>,
}

/// A step of ranker training, passed to the callback of [`train_ranker_with_progress`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum TrainingProgress {
    /// Candidates and features are gathered for `done` of `total` turns.
    Candidates {
        /// Turns done.
        done: usize,
        /// Turns to do.
        total: usize,
    },
    /// Tree `tree` of at most `total` is grown (early stopping may end training sooner).
    Tree {
        /// Trees grown so far.
        tree: usize,
        /// The most trees training grows ([`RankerParams::trees`]).
        total: usize,
        /// Validation nDCG@k after this tree, when there is a validation set.
        valid_ndcg: Option<f64>,
    },
}

/// Trains a LambdaMART ranker over `channels` and `features` on the turns of
/// `train_sessions` (every turn with a target track; at most `params.max_train_queries`).
///
/// Sessions are split into training and validation by `params.validation_fraction`; the
/// number of trees is picked on validation. Timings are logged with `tracing`; see
/// [`train_ranker_with_progress`] to follow the work as it goes.
pub fn train_ranker(
    train_sessions: &[Session],
    channels: &ChannelSet,
    features: &FeatureExtractor,
    params: &RankerParams,
) -> Result<RankerModel> {
    train_ranker_with_progress(train_sessions, channels, features, params, &|_| {})
}

/// [`train_ranker`], calling `progress` after each batch of turns whose candidates and
/// features are gathered and after each tree (a progress bar needs nothing more).
pub fn train_ranker_with_progress(
    train_sessions: &[Session],
    channels: &ChannelSet,
    features: &FeatureExtractor,
    params: &RankerParams,
    progress: &(dyn Fn(TrainingProgress) + Sync),
) -> Result<RankerModel> {
    params.validate()?;
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let mut sessions: Vec<&Session> = train_sessions.iter().collect();
    sessions.shuffle(&mut rng);
    let valid_sessions = (sessions.len() as f32 * params.validation_fraction).round() as usize;
    // Each turn's label stays beside its context: the channels and features see the context
    // only.
    let mut turns: Vec<(bool, TurnContext, String)> = Vec::new();
    for (i, session) in sessions.iter().enumerate() {
        for turn in session.labeled_turns()? {
            if let Some(gold) = turn.gold_track_id {
                turns.push((i < valid_sessions, turn.context, gold));
            }
        }
    }
    turns.shuffle(&mut rng);
    if params.max_train_queries > 0 {
        turns.truncate(params.max_train_queries);
    }
    if turns.is_empty() {
        return Err(Error::NoTrainingData(
            "the training sessions have no turn with a target track".into(),
        ));
    }
    let specs = channels.specs();
    let width = features.feature_names(&specs).len();
    tracing::info!(
        turns = turns.len(),
        channels = specs.len(),
        features = width,
        "gathering ranker training candidates"
    );
    let seeds: Vec<u64> = turns.iter().map(|_| rng.random()).collect();
    let contexts: Vec<TurnContext> = turns.iter().map(|(_, t, _)| t.clone()).collect();
    let mut rows: Vec<Option<TurnRows>> = Vec::with_capacity(turns.len());
    for (b, chunk) in contexts.chunks(BATCH).enumerate() {
        let candidates = channels.candidates_batch(features.index(), chunk)?;
        let batch: Vec<Option<TurnRows>> = chunk
            .par_iter()
            .zip(candidates.par_iter())
            .enumerate()
            .map(|(i, (query, candidates))| {
                let n = b * BATCH + i;
                let (is_valid, _, gold) = &turns[n];
                turn_rows(
                    features, &specs, query, gold, candidates, !is_valid, params, seeds[n],
                )
            })
            .collect();
        rows.extend(batch);
        progress(TrainingProgress::Candidates {
            done: rows.len(),
            total: contexts.len(),
        });
        if (b + 1) % 20 == 0 {
            tracing::debug!(
                done = rows.len(),
                of = contexts.len(),
                "candidates gathered"
            );
        }
    }
    let feature_seconds = started.elapsed().as_secs_f64();
    let with_target = rows.iter().filter(|r| r.is_some()).count();
    let mut train_data = QueryData::new(width);
    let mut valid_data = QueryData::new(width);
    let mut union_valid = Vec::new();
    for ((is_valid, _, _), turn) in turns.iter().zip(rows) {
        let Some(turn) = turn else { continue };
        if *is_valid {
            valid_data.push_query(&turn.features, &turn.labels);
            union_valid.extend(turn.union_scores);
        } else {
            train_data.push_weighted_query(&turn.features, &turn.labels, &turn.weights);
        }
    }
    if train_data.queries() == 0 {
        return Err(Error::NoTrainingData(format!(
            "no training turn had its target among the candidates ({} turns tried)",
            turns.len()
        )));
    }
    let candidate_recall = with_target as f64 / turns.len() as f64;
    tracing::info!(
        train_queries = train_data.queries(),
        train_rows = train_data.rows(),
        valid_queries = valid_data.queries(),
        candidate_recall = %format!("{candidate_recall:.3}"),
        "training rows ready in {feature_seconds:.1}s"
    );
    let boosting = Instant::now();
    let boost = params.boost();
    let trees = lambdamart::train(&train_data, Some(&valid_data), &boost, |p| {
        progress(TrainingProgress::Tree {
            tree: p.tree,
            total: boost.trees,
            valid_ndcg: p.valid_ndcg,
        });
        if let Some(train_ndcg) = p.train_ndcg {
            tracing::debug!(
                tree = p.tree,
                train_ndcg = %format!("{train_ndcg:.4}"),
                valid_ndcg = %p.valid_ndcg.map_or("-".into(), |v| format!("{v:.4}")),
                "boosting"
            );
        }
    });
    let boosting_seconds = boosting.elapsed().as_secs_f64();
    let valid_scores = lambdamart::predict_rows(&trees, &valid_data.features, width);
    let summary = TrainingSummary {
        turns: turns.len(),
        candidate_recall,
        train_queries: train_data.queries(),
        train_rows: train_data.rows(),
        valid_queries: valid_data.queries(),
        valid_ndcg_union: lambdamart::mean_ndcg(&valid_data, &union_valid, params.ndcg_k),
        valid_ndcg_model: lambdamart::mean_ndcg(&valid_data, &valid_scores, params.ndcg_k),
        trees: trees.len(),
        feature_seconds,
        boosting_seconds,
    };
    tracing::debug!(?summary, "ranker trained");
    Ok(RankerModel {
        format: MODEL_FORMAT.into(),
        version: MODEL_VERSION,
        channels: specs,
        features: features.spec().clone(),
        feature_names: features.feature_names(&channels.specs()),
        features_fingerprint: Some(features.fingerprint()),
        params: params.clone(),
        summary,
        cross_validation: None,
        trees,
    })
}

/// The rows of one turn, or `None` when its target is not among the candidates (nothing to
/// learn) or it has no other candidate. Validation turns keep every candidate, as at
/// prediction time. Training turns keep the target, the `negatives_per_query / 2` best-ranked
/// negatives of the candidate union (hard negatives) and a uniform sample of the rest; each
/// sampled row stands for `rest / sampled` rows of the full list (see
/// [`QueryData::weights`](crate::lambdamart::QueryData)), so training optimises the ranking of
/// the whole candidate list that validation and prediction score.
#[allow(clippy::too_many_arguments)]
fn turn_rows(
    features: &FeatureExtractor,
    specs: &[ChannelSpec],
    query: &TurnContext,
    gold_track_id: &str,
    candidates: &crate::candidates::Candidates,
    training: bool,
    params: &RankerParams,
    seed: u64,
) -> Option<TurnRows> {
    let gold = features.index().position(gold_track_id)?;
    let gold_slot = candidates.keys.iter().position(|&p| p == gold)?;
    if candidates.len() < 2 {
        return None;
    }
    let mut keep: Vec<(usize, f32)> = (0..candidates.len()).map(|s| (s, 1.0)).collect();
    if training && candidates.len() - 1 > params.negatives_per_query {
        let negatives: Vec<usize> = (0..candidates.len()).filter(|&s| s != gold_slot).collect();
        let hard = params.negatives_per_query / 2;
        let mut rest: Vec<usize> = negatives[hard..].to_vec();
        let rest_len = rest.len();
        rest.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        rest.truncate(params.negatives_per_query - hard);
        let weight = rest_len as f32 / rest.len() as f32;
        keep = negatives[..hard].iter().map(|&s| (s, 1.0)).collect();
        keep.extend(rest.into_iter().map(|s| (s, weight)));
        keep.push((gold_slot, 1.0));
        keep.sort_unstable_by_key(|&(s, _)| s);
    }
    let slots: Vec<usize> = keep.iter().map(|&(s, _)| s).collect();
    let subset = candidates.subset(&slots);
    Some(TurnRows {
        features: features.extract(query, specs, &subset),
        labels: slots
            .iter()
            .map(|&s| (s == gold_slot) as u8 as f32)
            .collect(),
        weights: keep.iter().map(|&(_, w)| w).collect(),
        union_scores: slots.iter().map(|&s| -(s as f32)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use music_crs_core::{Catalog, LabeledTurn, Message, Role, Track};
    use music_crs_retrieval::Retriever;

    use super::*;
    use crate::{
        CatalogIndex, ContinuityChannel, ContinuityParams, NamedChannel, PopularityPrior,
        PopularityPriorParams, RankedRetriever,
    };

    const MOODS: [&str; 8] = [
        "calm", "happy", "sad", "loud", "dreamy", "dark", "bright", "angry",
    ];

    /// 20 artists with one track per mood each. In every session the listener stays with one
    /// artist and names the mood of the track that follows: the continuity channel finds the
    /// artist's tracks, only the message's words say which one.
    fn world(sessions: usize, seed: u64) -> (Arc<CatalogIndex>, Vec<Session>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut tracks = Vec::new();
        for a in 0..20 {
            for (m, mood) in MOODS.iter().enumerate() {
                let mut track =
                    Track::new(format!("t{a}-{m}"), format!("song {m}"), format!("band{a}"));
                track.tag_list = vec![mood.to_string()];
                track.popularity = Some(((a * 7 + m * 13) % 100) as f64);
                tracks.push(track);
            }
        }
        let index = Arc::new(CatalogIndex::new(Arc::new(Catalog::new(tracks).unwrap())));
        let sessions = (0..sessions)
            .map(|s| {
                let artist = rng.random_range(0..20);
                let mut moods: Vec<usize> = (0..MOODS.len()).collect();
                moods.shuffle(&mut rng);
                let messages = moods[..4]
                    .iter()
                    .enumerate()
                    .flat_map(|(i, &m)| {
                        let turn = i as u32 + 1;
                        [
                            Message::new(turn, Role::User, format!("now something {}", MOODS[m])),
                            Message::new(turn, Role::Music, format!("t{artist}-{m}")),
                            Message::new(turn, Role::Assistant, "here you go"),
                        ]
                    })
                    .collect();
                Session {
                    session_id: format!("s{seed}-{s}"),
                    user_id: format!("u{s}"),
                    messages,
                    ..Session::default()
                }
            })
            .collect();
        (index, sessions)
    }

    fn channels(index: &Arc<CatalogIndex>, depth: usize) -> ChannelSet {
        ChannelSet::new(vec![
            NamedChannel {
                name: "continuity".into(),
                depth,
                channel: Box::new(
                    ContinuityChannel::new(
                        "continuity",
                        index.clone(),
                        ContinuityParams::default(),
                    )
                    .unwrap(),
                ),
            },
            NamedChannel {
                name: "popularity".into(),
                depth,
                channel: Box::new(
                    PopularityPrior::build(
                        "popularity",
                        index.clone(),
                        &[],
                        PopularityPriorParams::default(),
                    )
                    .unwrap(),
                ),
            },
        ])
        .unwrap()
    }

    fn params() -> RankerParams {
        RankerParams {
            trees: 30,
            learning_rate: 0.2,
            max_depth: 4,
            min_data_in_leaf: 10,
            validation_fraction: 0.2,
            ..RankerParams::default()
        }
    }

    /// Mean of 1 / log2(rank + 1) of the gold track (nDCG@20 with one relevant track) over the
    /// turns that have a played track.
    fn mean_ndcg(retriever: &dyn Retriever, sessions: &[Session]) -> f64 {
        let labeled: Vec<LabeledTurn> = sessions
            .iter()
            .flat_map(|s| s.labeled_turns().unwrap())
            .filter(|t| !t.context.played_track_ids.is_empty())
            .collect();
        let turns = LabeledTurn::contexts(&labeled);
        let hits = retriever.retrieve_batch(&turns, 20).unwrap();
        let total: f64 = labeled
            .iter()
            .zip(&hits)
            .map(|(turn, hits)| {
                hits.iter()
                    .position(|h| Some(&h.track_id) == turn.gold_track_id.as_ref())
                    .map_or(0.0, |r| 1.0 / ((r + 2) as f64).log2())
            })
            .sum();
        total / turns.len() as f64
    }

    #[test]
    fn the_ranker_learns_what_the_channels_miss() {
        let (index, train) = world(300, 1);
        let (_, test) = world(100, 2);
        let features = FeatureExtractor::without_embeddings(index.clone());
        let model = train_ranker(&train, &channels(&index, 20), &features, &params()).unwrap();
        assert!(
            model.summary().candidate_recall > 0.7,
            "{:?}",
            model.summary()
        );
        let ranked = RankedRetriever::new("ranked", channels(&index, 20), features, model).unwrap();
        let continuity =
            ContinuityChannel::new("c", index.clone(), ContinuityParams::default()).unwrap();
        let learned = mean_ndcg(&ranked, &test);
        let channel_alone = mean_ndcg(&continuity, &test);
        eprintln!("ranker nDCG@20 {learned:.3}, continuity alone {channel_alone:.3}");
        assert!(
            learned > channel_alone + 0.3 && learned > 0.9,
            "ranker {learned:.3} vs continuity alone {channel_alone:.3}"
        );
    }

    #[test]
    fn save_load_round_trip_and_determinism() {
        let (index, train) = world(120, 3);
        let features = FeatureExtractor::without_embeddings(index.clone());
        let a = train_ranker(&train, &channels(&index, 20), &features, &params()).unwrap();
        let b = train_ranker(&train, &channels(&index, 20), &features, &params()).unwrap();
        assert_eq!(a.trees, b.trees, "same data and seed give the same trees");
        assert!(!a.trees.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ranker.json");
        a.save(&path).unwrap();
        let loaded = RankerModel::load(&path).unwrap();
        assert_eq!(loaded, a);
        // Saving again replaces the file whole.
        b.save(&path).unwrap();
        assert_eq!(RankerModel::load(&path).unwrap().trees, b.trees);
        let other_seed = RankerParams {
            seed: 7,
            ..params()
        };
        let c = train_ranker(&train, &channels(&index, 20), &features, &other_seed).unwrap();
        assert_ne!(c.trees, a.trees, "another seed draws other turns");
    }

    #[test]
    fn bad_model_files_are_clear_errors() {
        let (index, train) = world(60, 4);
        let features = FeatureExtractor::without_embeddings(index.clone());
        let model = train_ranker(&train, &channels(&index, 20), &features, &params()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        let expect = |text: &str, needle: &str| {
            fs_err::write(&path, text).unwrap();
            let err = RankerModel::load(&path).unwrap_err();
            assert!(matches!(err, Error::CorruptModel { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.contains("model.json"), "{message}");
            assert!(message.contains(needle), "{message}");
        };
        expect("not json at all", "not a ranker model file");
        expect(
            r#"{"format": "lightgbm", "version": 1}"#,
            "format is \"lightgbm\"",
        );
        expect(
            r#"{"format": "music-crs-ranker", "version": 99}"#,
            "version 99 is not supported",
        );
        let mut broken = serde_json::to_value(&model).unwrap();
        broken["trees"][0]["nodes"][0]["left"] = serde_json::json!(0);
        broken["trees"][0]["nodes"][0]["feature"] = serde_json::json!(0);
        expect(&broken.to_string(), "tree 0");
        let text = serde_json::to_string(&model).unwrap();
        expect(&text[..text.len() / 2], "EOF");
        let missing = RankerModel::load(dir.path().join("absent.json")).unwrap_err();
        assert!(missing.to_string().contains("absent.json"), "{missing}");
    }

    #[test]
    fn a_model_needs_its_own_channels() {
        let (index, train) = world(60, 5);
        let features = FeatureExtractor::without_embeddings(index.clone());
        let model = train_ranker(&train, &channels(&index, 20), &features, &params()).unwrap();
        let err = RankedRetriever::new("r", channels(&index, 10), features, model).unwrap_err();
        assert!(matches!(err, Error::ModelMismatch(_)), "{err:?}");
        assert!(err.to_string().contains("continuity@20"), "{err}");
    }

    /// A ranker config over the test world: continuity and popularity channels, no
    /// embedding features, its model at `model`.
    fn ranker_config(model: &Path) -> crate::RankerConfig {
        use crate::{ChannelConfig, NamedChannelConfig};
        crate::RankerConfig {
            model: model.to_path_buf(),
            channels: vec![
                NamedChannelConfig {
                    name: "continuity".into(),
                    depth: 20,
                    channel: ChannelConfig::Continuity(ContinuityParams::default()),
                },
                NamedChannelConfig {
                    name: "popularity".into(),
                    depth: 20,
                    channel: ChannelConfig::PopularityPrior(PopularityPriorParams::default()),
                },
            ],
            features: FeatureSpec::default(),
            params: params(),
        }
    }

    /// The message of the error `config` gives when it builds its ranked retriever.
    fn mismatch(config: &crate::RankerConfig, resources: &crate::ChannelResources<'_>) -> String {
        let Err(err) = config.load("ranked", resources) else {
            panic!("a model of other channels or features was accepted");
        };
        assert!(matches!(err, Error::ModelMismatch(_)), "{err:?}");
        err.to_string()
    }

    /// The test world as channel resources, without embedding tables.
    fn without_embeddings<'a>(
        index: &Arc<CatalogIndex>,
        train: &'a [Session],
    ) -> crate::ChannelResources<'a> {
        crate::ChannelResources {
            index: index.clone(),
            train_sessions: train,
            track_embeddings: &[],
            user_embeddings: &[],
        }
    }

    #[test]
    fn a_channel_changed_under_the_same_name_is_refused() {
        use crate::ChannelConfig;
        let (index, train) = world(60, 7);
        let dir = tempfile::tempdir().unwrap();
        let config = ranker_config(&dir.path().join("ranker.json"));
        let resources = without_embeddings(&index, &train);
        let model = config.train(&resources).unwrap();
        let recorded = model.channels()[0].fingerprint.as_ref().unwrap();
        assert_eq!(recorded.kind, "continuity");
        assert!(model.features_fingerprint().is_some());
        config.load("ranked", &resources).unwrap();

        // Another kind under the same name and depth.
        let mut other_kind = config.clone();
        other_kind.channels[1].channel = ChannelConfig::Continuity(ContinuityParams::default());
        let message = mismatch(&other_kind, &resources);
        assert!(
            message.contains("channel \"popularity\" changed kind")
                && message.contains("popularity_prior")
                && !message.contains("\"continuity\" changed"),
            "{message}"
        );

        // Same kind, one parameter changed.
        let mut other_params = config.clone();
        other_params.channels[0].channel = ChannelConfig::Continuity(ContinuityParams {
            album_weight: 0.0,
            ..ContinuityParams::default()
        });
        let message = mismatch(&other_params, &resources);
        assert!(
            message.contains("channel \"continuity\" (continuity) changed parameters"),
            "{message}"
        );

        // Spelling out a default is the same configuration.
        let mut spelled_out = config.clone();
        spelled_out.channels[0].channel = ChannelConfig::Continuity(ContinuityParams {
            album_weight: ContinuityParams::DEFAULT_ALBUM_WEIGHT,
            ..ContinuityParams::default()
        });
        spelled_out.load("ranked", &resources).unwrap();
    }

    #[test]
    fn a_changed_feature_set_is_refused() {
        use crate::ChannelResources;
        let (index, train) = world(60, 8);
        let dir = tempfile::tempdir().unwrap();
        let config = ranker_config(&dir.path().join("ranker.json"));
        // Every catalog track has a vector of the "image" kind.
        let image = Arc::new(
            music_crs_core::EmbeddingTable::new(
                "image",
                2,
                index
                    .catalog()
                    .tracks()
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.track_id.clone(), Some(vec![1.0, i as f32]))),
            )
            .unwrap(),
        );
        let tables = [image];
        let resources = ChannelResources {
            index: index.clone(),
            train_sessions: &train,
            track_embeddings: &tables,
            user_embeddings: &[],
        };
        config.train(&resources).unwrap();

        // One more similarity kind among the features.
        let mut more_features = config.clone();
        more_features.features.similarity_kinds = vec!["image".into()];
        let message = mismatch(&more_features, &resources);
        assert!(
            message.contains("the feature set changed") && message.contains("sim_last:image"),
            "{message}"
        );

        // Same names, features computed by another build (another FEATURES_REVISION): only
        // the fingerprint tells.
        let mut model: serde_json::Value =
            serde_json::from_str(&fs_err::read_to_string(&config.model).unwrap()).unwrap();
        model["features_fingerprint"] = serde_json::json!("0123456789abcdef");
        fs_err::write(&config.model, model.to_string()).unwrap();
        let message = mismatch(&config, &resources);
        assert!(
            message.contains("features are computed differently")
                && message.contains("0123456789abcdef"),
            "{message}"
        );
    }

    thread_local! {
        /// What the test subscriber logged on this thread.
        static LOGGED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// Writes into this thread's [`LOGGED`] buffer.
    struct ThreadBuffer;

    impl std::io::Write for ThreadBuffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            LOGGED.with(|logged| logged.borrow_mut().extend_from_slice(bytes));
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What was logged at warning level on this thread while `f` ran. One global subscriber
    /// writes each thread's events to that thread's buffer: scoped subscribers
    /// (`with_default`) lose events when tests register callsites in parallel.
    fn logged_warnings<T>(f: impl FnOnce() -> T) -> (T, String) {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let _ = tracing_subscriber::fmt()
                .with_writer(|| ThreadBuffer)
                .with_max_level(tracing::Level::WARN)
                .with_ansi(false)
                .try_init();
        });
        LOGGED.with(|logged| logged.borrow_mut().clear());
        let out = f();
        let text = LOGGED.with(|logged| String::from_utf8_lossy(&logged.take()).into_owned());
        (out, text)
    }

    #[test]
    fn a_model_without_fingerprints_loads_with_a_warning() {
        use crate::ChannelConfig;
        let (index, train) = world(60, 9);
        let dir = tempfile::tempdir().unwrap();
        let config = ranker_config(&dir.path().join("ranker.json"));
        let resources = without_embeddings(&index, &train);
        config.train(&resources).unwrap();
        // What a build before fingerprints wrote: the same file without them.
        let mut model: serde_json::Value =
            serde_json::from_str(&fs_err::read_to_string(&config.model).unwrap()).unwrap();
        model
            .as_object_mut()
            .unwrap()
            .remove("features_fingerprint");
        for channel in model["channels"].as_array_mut().unwrap() {
            channel.as_object_mut().unwrap().remove("fingerprint");
        }
        fs_err::write(&config.model, model.to_string()).unwrap();

        let (loaded, logged) = logged_warnings(|| RankerModel::load(&config.model).unwrap());
        assert!(
            logged.contains("WARN")
                && logged.contains("ranker.json")
                && logged.contains("music-crs train-ranker"),
            "{logged}"
        );
        assert!(loaded.features_fingerprint().is_none());
        assert!(loaded.channels().iter().all(|c| c.fingerprint.is_none()));
        // Names and depths are still checked; parameters cannot be.
        let mut other_params = config.clone();
        other_params.channels[0].channel = ChannelConfig::Continuity(ContinuityParams {
            album_weight: 0.0,
            ..ContinuityParams::default()
        });
        other_params.load("ranked", &resources).unwrap();
        let mut other_depth = config.clone();
        other_depth.channels[0].depth = 5;
        assert!(mismatch(&other_depth, &resources).contains("continuity@20"));
    }

    #[test]
    fn bad_params_and_empty_training_data() {
        let bad = RankerParams {
            max_bins: 300,
            ..RankerParams::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("max_bins"));
        let (index, _) = world(1, 6);
        let features = FeatureExtractor::without_embeddings(index.clone());
        let err = train_ranker(&[], &channels(&index, 5), &features, &params()).unwrap_err();
        assert!(matches!(err, Error::NoTrainingData(_)), "{err:?}");
    }
}
