//! Crafted input at scale: one session with 600,000 turns, validated and scored from a JSON
//! file, the way `music-crs evaluate` reads it. Every check is linear, so this takes about
//! a second in release (goal: under 2 s).
//!
//! `cargo run --release -p music-crs-metrics --example one_session_scale [-- ROWS]`

use std::io::Write;
use std::time::Instant;

use music_crs_metrics::{EvaluationParams, Evaluator, GroundTruth};

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

    let started = Instant::now();
    let truth = GroundTruth::from_json_file(&truth_path)?;
    let evaluation = Evaluator::new(EvaluationParams::default())?.evaluate_file(
        &truth,
        &predictions_path,
        None,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{rows} turns of one session: read, validated and scored in {seconds:.2}s \
         (nDCG@20 {:.4}, {} problems)",
        evaluation.scores.macro_scores.ndcg(20).unwrap_or_default(),
        evaluation.report.problems().len()
    );
    Ok(())
}
