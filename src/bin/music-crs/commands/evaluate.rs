//! `music-crs evaluate`: score a prediction file against a ground truth.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use music_crs::RunData;
use music_crs_metrics::{
    DEFAULT_CATALOG_SIZE, EvaluationParams, Evaluator, GroundTruth, PredictionFile,
};

use super::create_parent_dir;
use crate::args::DatasetArgs;

#[derive(Debug, Args)]
pub(crate) struct EvaluateArgs {
    /// The prediction file.
    #[arg(long, short, value_name = "FILE")]
    pub(crate) predictions: PathBuf,
    /// Ground truth JSON (`{session_id, user_id, turn_number, ground_truth_track_id}` rows);
    /// without it, the gold tracks of the config's conversations split are used.
    #[arg(long, value_name = "FILE")]
    pub(crate) ground_truth: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
    /// Catalog size for catalog diversity [default: the loaded catalog's, or 47071 with
    /// --ground-truth].
    #[arg(long, value_name = "N")]
    pub(crate) catalog_size: Option<usize>,
    /// Score file [default: exp/scores/<predictions file stem>.json].
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

pub(crate) fn evaluate(args: EvaluateArgs) -> Result<i32> {
    let file = PredictionFile::from_json_file(&args.predictions)?;
    let (truth, catalog_size) = match &args.ground_truth {
        Some(path) => (
            GroundTruth::from_json_file(path)?,
            args.catalog_size.unwrap_or(DEFAULT_CATALOG_SIZE),
        ),
        None => {
            let config = args.dataset.load_config()?;
            let dataset = RunData::load(&config.dataset)?;
            let turns = dataset.turns()?;
            let truth = GroundTruth::from_turn_contexts(
                turns.iter().filter(|t| t.gold_track_id.is_some()),
            )?;
            if truth.is_empty() {
                bail!(
                    "the conversations {} have no gold tracks to score against (a blind set?); \
                     give --ground-truth",
                    config.dataset.to_spec()?.conversations
                );
            }
            (truth, args.catalog_size.unwrap_or(dataset.catalog.len()))
        }
    };
    let params = EvaluationParams {
        catalog_size,
        ..EvaluationParams::default()
    };
    let scores = Evaluator::new(params)?.evaluate(&truth, file.predictions())?;
    println!("{}", scores.table());
    let output = args.output.unwrap_or_else(|| {
        let stem = args
            .predictions
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "predictions".into());
        Path::new("exp/scores").join(format!("{stem}.json"))
    });
    create_parent_dir(&output)?;
    scores.write_official_json(&output)?;
    println!("wrote scores to {}", output.display());
    Ok(0)
}
