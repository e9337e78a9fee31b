//! `music-crs validate`: list every problem of a prediction file.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use music_crs::RunData;
use music_crs_metrics::{GroundTruth, PredictionFile, Validator};

use crate::args::DatasetArgs;

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The prediction file.
    pub(crate) file: PathBuf,
    /// Ground truth JSON: also check that every gold turn is predicted once.
    #[arg(long, value_name = "FILE")]
    pub(crate) ground_truth: Option<PathBuf>,
    /// Check against the config's dataset: turns to predict and catalog ids.
    #[arg(long)]
    pub(crate) with_dataset: bool,
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
}

pub(crate) fn validate(args: ValidateArgs) -> Result<i32> {
    let file = PredictionFile::from_json_file(&args.file)?;
    let truth_file = args
        .ground_truth
        .as_ref()
        .map(GroundTruth::from_json_file)
        .transpose()?;
    let dataset = if args.with_dataset || args.dataset.any() {
        let config = args.dataset.load_config()?;
        let dataset = RunData::load(&config.dataset)?;
        let turns = dataset.labeled_turns()?;
        Some((dataset, turns))
    } else {
        None
    };
    // Gold turns of the dataset, when it has them (not blind sets).
    let truth_from_dataset = match (&truth_file, &dataset) {
        (None, Some((_, turns))) if turns.iter().all(|t| t.gold_track_id.is_some()) => {
            Some(GroundTruth::from_labeled_turns(turns)?)
        }
        _ => None,
    };
    let mut validator = Validator::new();
    if let Some(truth) = truth_file.as_ref().or(truth_from_dataset.as_ref()) {
        validator = validator.with_ground_truth(truth);
    }
    if let Some((dataset, _)) = &dataset {
        validator = validator.with_catalog(dataset.catalog.as_ref());
    }
    let report = validator.validate(&file);
    println!("{report}");
    let mut valid = report.is_valid();
    // A blind set has no gold: check the (session, turn) pairs it asks for instead.
    if let (None, None, Some((_, turns))) = (&truth_file, &truth_from_dataset, &dataset) {
        let problems = music_crs::output::coverage_problems(
            file.predictions(),
            &music_crs::core::LabeledTurn::contexts(turns),
        );
        for problem in &problems {
            println!("  - {problem}");
        }
        if problems.is_empty() {
            println!(
                "every one of the {} turns to predict has one prediction",
                turns.len()
            );
        }
        valid &= problems.is_empty();
    }
    Ok(if valid { 0 } else { 1 })
}
