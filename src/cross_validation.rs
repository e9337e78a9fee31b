//! Out-of-fold estimates of a learned ranker (`music-crs train-ranker --folds K`).
//!
//! A score measured on the sessions a ranker was trained on, or on a dev set used to choose
//! its settings, is optimistic: the model (or the person tuning it) has already seen those
//! answers. Cross-validation splits the training sessions into K folds, never a session in
//! two, trains on K − 1 folds, with co-occurrence and popularity channels built from those
//! folds only, and scores the held-out fold with the official metric. Every training session
//! is scored once by a model that never saw it; the figures come with bootstrap intervals
//! over sessions.

use music_crs_core::{Prediction, Session};
use music_crs_generate::GeneratorConfig;
use music_crs_metrics::stats::{Interval, ResampleParams, SessionDesign, bootstrap_macro};
use music_crs_metrics::{EvaluationParams, Evaluator, GoldTurn, GroundTruth, Scores};
use music_crs_rank::{
    ChannelResources, CrossValidation, FigureEstimate, RankedRetriever, RankerModel, train_ranker,
};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tracing::info;

use crate::build::fallback_tracks;
use crate::rank::{channel_resources, ranked_config};
use crate::{Crs, CrsConfig, Error, Result, RunData, build_generator};

/// The fold of every session (by index): sessions shuffled with `seed`, then dealt round
/// robin, so folds differ in size by at most one and a session sits in exactly one.
pub fn assign_folds(sessions: usize, folds: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sessions).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut fold_of = vec![0; sessions];
    for (position, &session) in order.iter().enumerate() {
        fold_of[session] = position % folds.max(1);
    }
    fold_of
}

/// K-fold cross-validation of the `ranked` config's ranker over the loaded train split
/// (`run.retriever_inputs.split_sessions`), with the final model's in-sample figures beside
/// it. `on_fold(k)` is called as each fold finishes.
pub fn cross_validate(
    config: &CrsConfig,
    run: &RunData,
    final_model: &RankerModel,
    folds: usize,
    resample: &ResampleParams,
    on_fold: &dyn Fn(usize),
) -> Result<CrossValidation> {
    let rank = channel_resources(run);
    let sessions = rank.train_sessions;
    if folds < 2 || folds > sessions.len() {
        return Err(Error::InvalidSetting {
            key: "--folds".into(),
            reason: format!(
                "needs 2..={} folds for {} training sessions, got {folds}",
                sessions.len(),
                sessions.len()
            ),
        });
    }
    let ranker = ranked_config(config)?.ranker();
    let fold_of = assign_folds(sessions.len(), folds, ranker.params.seed);
    let mut predictions = Vec::new();
    let mut gold = Vec::new();
    for fold in 0..folds {
        let mut held_out: Vec<&Session> = Vec::new();
        let mut train: Vec<Session> = Vec::new();
        for (session, &session_fold) in sessions.iter().zip(&fold_of) {
            if session_fold == fold {
                held_out.push(session);
            } else {
                train.push(session.clone());
            }
        }
        let resources = ChannelResources {
            index: rank.index.clone(),
            train_sessions: &train,
            track_embeddings: rank.track_embeddings,
            user_embeddings: rank.user_embeddings,
        };
        let (channels, features) = ranker.build(&resources)?;
        let model = train_ranker(&train, &channels, &features, &ranker.params)?;
        let retriever = RankedRetriever::new("ranked", channels, features, model)?;
        let (fold_predictions, fold_gold) = predict_sessions(config, run, retriever, &held_out)?;
        info!(
            fold = fold + 1,
            of = folds,
            held_out_sessions = held_out.len(),
            turns = fold_gold.len(),
            "fold scored"
        );
        predictions.extend(fold_predictions);
        gold.extend(fold_gold);
        on_fold(fold);
    }
    let catalog_size = run.catalog.len();
    let out_of_fold = estimates(gold, &predictions, catalog_size, resample)?;

    // The final model on the sessions it was trained on.
    let (channels, features) = ranker.build(&rank)?;
    let retriever = RankedRetriever::new("ranked", channels, features, final_model.clone())?;
    let all: Vec<&Session> = sessions.iter().collect();
    let (in_predictions, in_gold) = predict_sessions(config, run, retriever, &all)?;
    let turns = in_gold.len();
    let in_sample = estimates(in_gold, &in_predictions, catalog_size, resample)?;
    Ok(CrossValidation {
        folds,
        sessions: sessions.len(),
        turns,
        confidence: resample.confidence,
        out_of_fold,
        in_sample,
    })
}

/// Predicts every turn with a gold track of `sessions` as `run` would (same top k, user
/// profiles and fallback fill; template replies, which do not change the ranking), and
/// returns the predictions with their gold turns.
fn predict_sessions(
    config: &CrsConfig,
    run: &RunData,
    retriever: RankedRetriever,
    sessions: &[&Session],
) -> Result<(Vec<Prediction>, Vec<GoldTurn>)> {
    let crs = Crs::new(
        Box::new(retriever),
        build_generator(&GeneratorConfig::default())?,
        run.catalog.clone(),
    )
    .with_users(run.users.values().cloned())
    .with_top_k(config.retriever.k())?
    .with_fallback(fallback_tracks(&run.catalog));
    let mut turns = Vec::new();
    let mut gold = Vec::new();
    for session in sessions {
        for turn in session.labeled_turns()? {
            if let Some(track) = turn.gold_track_id {
                gold.push(GoldTurn {
                    session_id: turn.context.session_id.clone(),
                    user_id: turn.context.user_id.clone(),
                    turn_number: turn.context.turn_number,
                    gold_track_ids: vec![track],
                });
                turns.push(turn.context);
            }
        }
    }
    Ok((crs.predict(&turns)?, gold))
}

/// The official nDCG figures of `predictions` with bootstrap intervals over sessions.
fn estimates(
    gold: Vec<GoldTurn>,
    predictions: &[Prediction],
    catalog_size: usize,
    resample: &ResampleParams,
) -> Result<Vec<FigureEstimate>> {
    let truth = GroundTruth::new(gold)?;
    let params = EvaluationParams {
        catalog_size: catalog_size.max(1),
        ..EvaluationParams::default()
    };
    let scores: Scores = Evaluator::new(params)?.evaluate(&truth, predictions)?;
    let design = SessionDesign::new(&scores.turns);
    let cutoffs = scores.cutoffs();
    let series: Vec<Vec<f64>> = (0..cutoffs.len())
        .map(|c| scores.turns.iter().map(|r| r.metrics[c].ndcg).collect())
        .collect();
    let refs: Vec<&[f64]> = series.iter().map(Vec::as_slice).collect();
    let draws = bootstrap_macro(&design, &refs, resample)?;
    Ok(cutoffs
        .iter()
        .enumerate()
        .map(|(c, k)| {
            let interval = Interval::percentile(&draws[c], resample.confidence);
            FigureEstimate {
                metric: format!("ndcg@{k}"),
                value: scores.macro_scores.at[c].ndcg,
                low: interval.low,
                high: interval.high,
            }
        })
        .collect())
}

/// One line on a model's cross-validated figure, for `run` and `train-ranker`.
pub fn describe(model: &RankerModel) -> String {
    let Some(cv) = model.cross_validation() else {
        return "no out-of-fold estimate in this model: train it with `music-crs train-ranker \
                --folds 5` to know what to expect on unseen sessions"
            .to_owned();
    };
    let show = |f: Option<&FigureEstimate>| {
        f.map(|f| format!("{:.4} [{:.4}, {:.4}]", f.value, f.low, f.high))
            .unwrap_or_else(|| "n/a".to_owned())
    };
    format!(
        "ranker nDCG@20 out-of-fold {} ({} folds over {} sessions, {:.0}% interval); \
         in-sample {} (optimistic: trained on those sessions)",
        show(cv.out_of_fold("ndcg@20")),
        cv.folds,
        cv.sessions,
        cv.confidence * 100.0,
        show(cv.in_sample("ndcg@20")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_partition_sessions_evenly_and_deterministically() {
        let folds = assign_folds(103, 5, 7);
        assert_eq!(folds, assign_folds(103, 5, 7));
        let mut sizes = [0; 5];
        for &f in &folds {
            sizes[f] += 1;
        }
        // Every session in exactly one fold; sizes 20 or 21.
        assert_eq!(sizes.iter().sum::<usize>(), 103);
        assert!(sizes.iter().all(|&n| n == 20 || n == 21), "{sizes:?}");
        assert_ne!(folds, assign_folds(103, 5, 8));
    }
}
