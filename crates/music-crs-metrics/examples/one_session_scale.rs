//! Crafted input at scale: one session with 600,000 turns, validated and scored from a JSON
//! file, the way `music-crs evaluate` reads it. Every check is linear: the whole evaluation
//! (both files read, validated, scored) took 1.6 s in release on one core of a loaded 2-core
//! machine (goal: under 2 s); it prints the time of each part.
//!
//! `cargo run --release -p music-crs-metrics --example one_session_scale [-- ROWS]`

use std::io::Write;
use std::time::Instant;

use music_crs_metrics::{EvaluationParams, Evaluator, GroundTruth, PredictionFile};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(600_000);
    let dir = tempfile::tempdir()?;
    let (truth_path, predictions_path) = (dir.path().join("gt.json"), dir.path().join("p.json"));
    let mut truth = std::io::BufWriter::new(std::fs::File::create(&truth_path)?);
    let mut predictions = std::io::BufWriter::new(std::fs::File::create(&predictions_path)?);
    write!(truth, "[")?;
    write!(predictions, "[")?;
    for turn in 1..=rows {
        let comma = if turn == 1 { "" } else { "," };
        write!(
            truth,
            r#"{comma}{{"session_id":"one","user_id":"u","turn_number":{turn},"ground_truth_track_id":"t{turn}"}}"#
        )?;
        write!(
            predictions,
            r#"{comma}{{"session_id":"one","user_id":"u","turn_number":{turn},"predicted_track_ids":["t{}","t{turn}"],"predicted_response":"a reply {}"}}"#,
            turn + 1,
            turn % 97
        )?;
    }
    write!(truth, "]")?;
    write!(predictions, "]")?;
    drop((truth, predictions));

    // Timed as `music-crs evaluate` spends it: read the ground truth, read the predictions,
    // then validate and score them.
    let started = Instant::now();
    let truth = GroundTruth::from_json_file(&truth_path)?;
    let truth_read = started.elapsed().as_secs_f64();
    let file = PredictionFile::from_json_file(&predictions_path)?;
    let predictions_read = started.elapsed().as_secs_f64() - truth_read;
    let evaluation = Evaluator::new(EvaluationParams::default())?
        .evaluate_prediction_file(&truth, &file, None)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{rows} turns of one session: read, validated and scored in {seconds:.2}s \
         (ground truth read {truth_read:.2}s, predictions read {predictions_read:.2}s, \
         validated and scored {:.2}s; nDCG@20 {:.4}, {} problems)",
        seconds - truth_read - predictions_read,
        evaluation.scores.macro_scores.ndcg(20).unwrap_or_default(),
        evaluation.report.problems().len()
    );
    Ok(())
}
