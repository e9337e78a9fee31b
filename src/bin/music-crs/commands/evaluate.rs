//! `music-crs evaluate`: score a prediction file against a ground truth.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use music_crs_metrics::{EvaluationParams, JudgeScores, PredictionFile};

use super::{load_ground_truth, refuse_overwriting_inputs, score_and_save};
use crate::args::GroundTruthArgs;

#[derive(Debug, Args)]
pub(crate) struct EvaluateArgs {
    /// The prediction file.
    #[arg(long, short, value_name = "FILE")]
    pub(crate) predictions: PathBuf,
    #[command(flatten)]
    pub(crate) truth: GroundTruthArgs,
    /// Per-turn LLM-judge scores (1..5) for the challenge composite: a JSON array of
    /// `{session_id, turn_number, score}` or a CSV with those columns.
    #[arg(long, value_name = "FILE")]
    pub(crate) judge_scores: Option<PathBuf>,
    /// Score file [default: exp/scores/<predictions file stem>.json]; the per-turn tables go
    /// beside it (`<stem>.turns.csv`, `<stem>.turns.json`).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

pub(crate) fn evaluate(args: EvaluateArgs) -> Result<i32> {
    let output = args.output.clone().unwrap_or_else(|| {
        let stem = args
            .predictions
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "predictions".into());
        Path::new("exp/scores").join(format!("{stem}.json"))
    });
    let mut inputs = vec![args.predictions.as_path()];
    inputs.extend(args.truth.ground_truth.as_deref());
    inputs.extend(args.judge_scores.as_deref());
    refuse_overwriting_inputs(&output, &inputs)?;
    let file = PredictionFile::from_json_file(&args.predictions)?;
    let (truth, catalog_size) = load_ground_truth(&args.truth)?;
    let judge = match &args.judge_scores {
        Some(path) => {
            Some(JudgeScores::from_file(path)?.mean_over(&truth, &path.display().to_string())?)
        }
        None => None,
    };
    let params = EvaluationParams {
        catalog_size,
        ..EvaluationParams::default()
    };
    // Validated first, as `validate` does: problems are listed (capped) whether or not they
    // block scoring.
    score_and_save(
        &truth,
        &file,
        &args.predictions,
        None,
        params,
        &output,
        judge,
    )
}
