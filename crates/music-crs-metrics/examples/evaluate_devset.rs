//! Times validation and evaluation of a full dev-set prediction file (8,000 turns).
//!
//! Builds a deterministic prediction file for `shared/fixtures/evaluator/
//! devset_ground_truth.json` (gold at a varying rank or absent, 20 ids per turn, short
//! replies), writes it, then times reading + validating + scoring it.
//!
//! ```text
//! cargo run --release -p music-crs-metrics --example evaluate_devset -- [PREDICTIONS_OUT [SCORES_OUT]]
//! ```
//!
//! `PREDICTIONS_OUT` defaults to a file in the system temp folder; `SCORES_OUT`, when
//! given, receives the official score JSON (to compare with the Python evaluator).

use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use music_crs_core::Prediction;
use music_crs_core::shared::shared_path;
use music_crs_metrics::{EvaluationParams, Evaluator, GroundTruth, PredictionFile, Validator};

/// A small deterministic generator (splitmix64), so the file is the same on every run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: [&str; 24] = [
    "here", "is", "a", "song", "you", "might", "enjoy", "this", "track", "has", "warm", "vocals",
    "and", "driving", "drums", "try", "another", "calm", "piano", "piece", "upbeat", "Energy",
    "for", "tonight",
];

/// One prediction per ground-truth turn, in shuffled row order.
fn make_predictions(truth: &GroundTruth) -> Vec<Prediction> {
    let pool: Vec<&str> = truth
        .turns()
        .iter()
        .flat_map(|t| t.gold_track_ids.iter().map(String::as_str))
        .collect();
    let mut rng = SplitMix(2026);
    let mut predictions: Vec<Prediction> = truth
        .turns()
        .iter()
        .map(|turn| {
            let mut ids: Vec<String> = Vec::with_capacity(20);
            // Gold at rank 1..30: inside the list two times in three.
            let gold_rank = rng.below(30);
            while ids.len() < 20 {
                let candidate = if ids.len() == gold_rank {
                    turn.gold_track_ids[0].as_str()
                } else {
                    pool[rng.below(pool.len())]
                };
                let is_other_gold =
                    turn.gold_track_ids.iter().any(|g| g == candidate) && ids.len() != gold_rank;
                if !is_other_gold && !ids.iter().any(|id| id == candidate) {
                    ids.push(candidate.to_owned());
                }
            }
            let words = rng.below(15);
            let response: Vec<&str> = (0..words).map(|_| WORDS[rng.below(WORDS.len())]).collect();
            Prediction {
                session_id: turn.session_id.clone(),
                user_id: turn.user_id.clone(),
                turn_number: turn.turn_number,
                predicted_track_ids: ids,
                predicted_response: response.join(" "),
            }
        })
        .collect();
    for i in (1..predictions.len()).rev() {
        let j = rng.below(i + 1);
        predictions.swap(i, j);
    }
    predictions
}

/// CPU time of this (single-threaded) process so far, from Linux `/proc/self/schedstat`:
/// on a busy machine it shows the work apart from the waiting for a core.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    let nanos: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

fn main() -> Result<(), Box<dyn Error>> {
    let Some(truth_path) = shared_path("fixtures/evaluator/devset_ground_truth.json") else {
        return Err("shared/fixtures/evaluator/devset_ground_truth.json is needed".into());
    };
    let mut args = std::env::args_os().skip(1);
    let predictions_path = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("music-crs-devset-predictions.json"));
    let scores_path = args.next().map(PathBuf::from);

    let truth = GroundTruth::from_json_file(&truth_path)?;
    let predictions = make_predictions(&truth);
    std::fs::write(&predictions_path, serde_json::to_vec(&predictions)?)
        .map_err(|err| format!("{}: {err}", predictions_path.display()))?;
    let bytes = std::fs::metadata(&predictions_path)?.len();
    println!(
        "wrote {} predictions ({:.1} MB) to {}",
        predictions.len(),
        bytes as f64 / 1e6,
        predictions_path.display()
    );

    let evaluator = Evaluator::new(EvaluationParams::default())?;
    // Several runs: on a shared machine the fastest one shows the work, not the waiting.
    const RUNS: usize = 5;
    let mut timings = Vec::with_capacity(RUNS);
    let mut cpu = Vec::with_capacity(RUNS);
    let mut outcome = None;
    for _ in 0..RUNS {
        let cpu_start = cpu_time();
        let start = Instant::now();
        let file = PredictionFile::from_json_file(&predictions_path)?;
        let read = start.elapsed();
        let report = Validator::new().with_ground_truth(&truth).validate(&file);
        let validated = start.elapsed();
        let scores = evaluator.evaluate(&truth, file.predictions())?;
        let total = start.elapsed();
        timings.push([read, validated - read, total - validated, total]);
        if let (Some(before), Some(after)) = (cpu_start, cpu_time()) {
            cpu.push(after - before);
        }
        outcome = Some((file.rows(), report, scores));
    }
    let Some((rows, report, scores)) = outcome else {
        return Err("no run".into());
    };
    println!("{}", report.summary());
    println!("{scores}");
    timings.sort_by_key(|t| t[3]);
    cpu.sort();
    for (label, t) in [("fastest", timings[0]), ("median", timings[RUNS / 2])] {
        println!(
            "{label} of {RUNS}: read + parse {:.1} ms, validate {:.1} ms, evaluate {:.1} ms: total {:.1} ms for {rows} rows",
            t[0].as_secs_f64() * 1e3,
            t[1].as_secs_f64() * 1e3,
            t[2].as_secs_f64() * 1e3,
            t[3].as_secs_f64() * 1e3,
        );
    }
    if let Some(fastest) = cpu.first() {
        println!(
            "CPU time of one read + validate + evaluate: fastest {:.1} ms, median {:.1} ms",
            fastest.as_secs_f64() * 1e3,
            cpu[cpu.len() / 2].as_secs_f64() * 1e3
        );
    }
    if let Some(path) = scores_path {
        scores.write_official_json(&path)?;
        println!("official scores written to {}", path.display());
    }
    Ok(())
}
