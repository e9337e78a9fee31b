//! `music-crs train-ranker`: train the LambdaMART model a `ranked` config names.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use music_crs::RunData;
use music_crs::config::DEFAULT_CONFIG_PATH;
use music_crs_rank::TrainingProgress;
use tracing::info;

use crate::args::DatasetArgs;
use music_crs::cross_validation::{cross_validate, describe};
use music_crs_metrics::stats::ResampleParams;

use crate::logging::{progress_bar, set_active_bar, training_bar};

#[derive(Debug, Args)]
pub(crate) struct TrainRankerArgs {
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
    /// Also estimate the ranker on unseen sessions: split the training sessions into K folds,
    /// train on K − 1, score the held-out fold with the official metric, and store the
    /// out-of-fold nDCG (with intervals) in the model file. Costs K extra trainings.
    #[arg(long, value_name = "K")]
    pub(crate) folds: Option<usize>,
    /// Bootstrap resamples of the out-of-fold intervals.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub(crate) resamples: usize,
}

pub(crate) fn train_ranker(args: TrainRankerArgs, quiet: bool, started: Instant) -> Result<i32> {
    let config = args.dataset.load_config()?;
    config
        .validate()
        .context("the config with command-line overrides is invalid")?;
    let Some(model_path) = config.retriever.ranker_model_path() else {
        bail!(
            "train-ranker needs a config with `[retriever] kind = \"ranked\"` and its `model` \
             file; {} has kind {:?}",
            args.dataset
                .config
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_CONFIG_PATH))
                .display(),
            config.retriever.kind().as_str()
        );
    };
    let model_path = model_path.to_path_buf();
    let spec = config.dataset.to_spec()?;
    info!(
        tid = %config.tid,
        "loading the catalog {} and the {:?} split of {}",
        spec.tracks,
        music_crs::ranked_config(&config)?.train_split(),
        spec.conversations.source
    );
    let data = RunData::load_for_training(&config)?;
    info!(
        tracks = data.catalog.len(),
        train_sessions = data.retriever_inputs.split_sessions.len(),
        "data loaded in {:.2}s",
        started.elapsed().as_secs_f64()
    );

    let bar = training_bar(quiet);
    bar.set_message("building channels");
    set_active_bar(Some(&bar));
    let train_start = Instant::now();
    let on_progress = |step: TrainingProgress| {
        let (phase, done, total) = match step {
            TrainingProgress::Candidates { done, total } => ("candidates (turns)", done, total),
            TrainingProgress::Tree { tree, total, .. } => ("boosting (trees)", tree, total),
            _ => return,
        };
        if bar.message() != phase {
            // A new phase: its own total and ETA.
            bar.reset();
            bar.set_message(phase);
            bar.set_length(total as u64);
        }
        bar.set_position(done as u64);
    };
    let model = music_crs::train_ranker_with_progress(&config, &data, &on_progress);
    set_active_bar(None);
    bar.finish_and_clear();
    let mut model = model?;
    let train_seconds = train_start.elapsed().as_secs_f64();
    if let Some(folds) = args.folds {
        let cv_start = Instant::now();
        let bar = progress_bar(folds as u64, quiet);
        bar.set_message("cross-validation folds");
        set_active_bar(Some(&bar));
        let resample = ResampleParams {
            resamples: args.resamples,
            ..ResampleParams::default()
        };
        let estimate = cross_validate(&config, &data, &model, folds, &resample, &|_| bar.inc(1));
        set_active_bar(None);
        bar.finish_and_clear();
        model.set_cross_validation(estimate?);
        model.save(&model_path)?;
        println!(
            "cross-validated in {:.1}s: {}",
            cv_start.elapsed().as_secs_f64(),
            describe(&model)
        );
    }
    let summary = model.summary();
    println!(
        "wrote ranker model to {} ({} trees over {} features) in {train_seconds:.1}s",
        model_path.display(),
        model.tree_count(),
        model.feature_names().len()
    );
    println!(
        "training: {} turns drawn ({} train / {} validation with the target among the \
         candidates), {} rows; candidate recall {:.3}; {:.1}s candidates and features, {:.1}s \
         boosting",
        summary.turns,
        summary.train_queries,
        summary.valid_queries,
        summary.train_rows,
        summary.candidate_recall,
        summary.feature_seconds,
        summary.boosting_seconds
    );
    println!(
        "validation nDCG@{}: model {:.4}, candidate union RRF {:.4}",
        model.params().ndcg_k,
        summary.valid_ndcg_model,
        summary.valid_ndcg_union
    );
    println!(
        "total wall time: {:.2}s (load included)",
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}
