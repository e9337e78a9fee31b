//! One module per subcommand: its arguments and what it does.

pub(crate) mod chat;
pub(crate) mod compare;
pub(crate) mod demo_data;
pub(crate) mod evaluate;
pub(crate) mod export;
pub(crate) mod run;
#[cfg(feature = "serve")]
pub(crate) mod serve;
pub(crate) mod train_ranker;
pub(crate) mod validate;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use music_crs::RunData;
use music_crs_metrics::{
    Composite, DEFAULT_CATALOG_SIZE, EvaluationParams, Evaluator, GroundTruth, PredictionFile,
    Scores, ValidationReport,
};

use crate::args::GroundTruthArgs;

pub(crate) fn create_parent_dir(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs_err::create_dir_all(dir)?;
    }
    Ok(())
}

/// The items of the first `n` sessions (in order of first appearance), in their order;
/// `session` names an item's session. Shared by `run --sessions` and `compare --sessions`.
pub(crate) fn first_sessions<T>(
    items: impl IntoIterator<Item = T>,
    n: usize,
    session: impl Fn(&T) -> &str,
) -> Vec<T> {
    let mut kept: std::collections::HashSet<String> = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|item| {
            let id = session(item);
            if kept.contains(id) {
                return true;
            }
            if kept.len() < n {
                kept.insert(id.to_owned());
                return true;
            }
            false
        })
        .collect()
}

/// The ground truth to score against and the catalog size for catalog diversity: the
/// `--ground-truth` file, or the gold tracks of the config's conversations split. The catalog
/// size is `--catalog-size`, else the size of the dataset's catalog when a dataset is named,
/// else the challenge's 47,071 (a ground-truth file alone says nothing of its catalog).
pub(crate) fn load_ground_truth(args: &GroundTruthArgs) -> Result<(GroundTruth, usize)> {
    let catalog_size = args.catalog_size;
    if let Some(path) = &args.ground_truth {
        let truth = GroundTruth::from_json_file(path)?;
        let size = match catalog_size {
            Some(size) => size,
            None if args.dataset.any() => {
                let config = args.dataset.load_config()?;
                RunData::load_catalog_and_users(&config.dataset)?
                    .catalog
                    .len()
            }
            None => DEFAULT_CATALOG_SIZE,
        };
        return Ok((truth, size));
    }
    let config = args.dataset.load_config()?;
    let data = RunData::load(&config.dataset)?;
    let turns = data.labeled_turns()?;
    let truth =
        GroundTruth::from_labeled_turns(turns.iter().filter(|t| t.gold_track_id.is_some()))?;
    if truth.is_empty() {
        bail!(
            "the conversations {} have no gold tracks to score against (a blind set?); give \
             --ground-truth",
            config.dataset.to_spec()?.conversations
        );
    }
    Ok((truth, catalog_size.unwrap_or(data.catalog.len())))
}

/// Refuses to write `output` over one of the `inputs` (a score file aimed at the
/// predictions would destroy them).
pub(crate) fn refuse_overwriting_inputs(output: &Path, inputs: &[&Path]) -> Result<()> {
    let canonical = |p: &Path| fs_err::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p));
    let target = canonical(output);
    for input in inputs {
        if canonical(input) == target {
            bail!(
                "the output {} is an input file; choose another --output",
                output.display()
            );
        }
    }
    Ok(())
}

/// Problems listed by `evaluate` and `run` before the rest are only counted.
pub(crate) const LISTED_PROBLEMS: usize = 20;

/// Prints a validation report of `file` with at most [`LISTED_PROBLEMS`] problems, and when
/// more are hidden, how to list them all; when no row matches the ground truth, says so.
pub(crate) fn print_report(report: &ValidationReport, file: &Path) {
    let capped = report.capped(LISTED_PROBLEMS);
    println!("{capped}");
    if capped.hidden() > 0 {
        println!(
            "  (`music-crs validate {}` with the same ground truth lists every problem)",
            file.display()
        );
    }
    let counts = report.counts();
    if report.rows() > 0 && counts.unknown_turns == report.rows() {
        println!(
            "  no row of {} is a turn of the ground truth: are the predictions for another split?",
            file.display()
        );
    }
}

/// Validates `file` against `truth` (and the catalog), lists its problems as `validate` does
/// (capped), scores it with the official metric, prints the table and writes the scores: the
/// one sequence `run` and `evaluate` share. Returns the exit code: 0, or 1 when the file has
/// problems that still leave the scores defined; fails when a problem blocks scoring.
pub(crate) fn score_and_save(
    truth: &GroundTruth,
    file: &PredictionFile,
    file_path: &Path,
    catalog: Option<&dyn music_crs_metrics::TrackIdSet>,
    params: EvaluationParams,
    scores_path: &Path,
    judge: Option<f64>,
) -> Result<i32> {
    let evaluation = match Evaluator::new(params)?.evaluate_prediction_file(truth, file, catalog) {
        Ok(evaluation) => evaluation,
        Err(music_crs_metrics::Error::InvalidPredictions(report)) => {
            print_report(&report, file_path);
            bail!(
                "{} cannot be scored against this ground truth ({})",
                file_path.display(),
                report.counts()
            );
        }
        Err(other) => return Err(other.into()),
    };
    if !evaluation.report.is_valid() {
        print_report(&evaluation.report, file_path);
    }
    println!("{}", evaluation.scores.table());
    save_scores(&evaluation.scores, scores_path, judge)?;
    Ok(if evaluation.report.is_valid() { 0 } else { 1 })
}

/// Writes the official score file and its per-turn tables beside it, and prints where, with
/// the challenge composite (its judge part only when `judge` is known).
pub(crate) fn save_scores(scores: &Scores, path: &Path, judge: Option<f64>) -> Result<()> {
    create_parent_dir(path)?;
    scores.write_official_json(path)?;
    let (csv, json) = scores.write_turn_tables(path)?;
    println!(
        "wrote scores to {} (per turn: {}, {})",
        path.display(),
        csv.display(),
        json.display()
    );
    if scores.cutoffs().contains(&20) {
        println!("{}", Composite::new(scores, judge)?);
    }
    Ok(())
}
