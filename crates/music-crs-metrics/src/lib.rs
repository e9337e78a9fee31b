//! # music-crs-metrics
//!
//! The Music-CRS challenge metrics, computed exactly as the official evaluator
//! (`nlp4musa/music-crs-evaluator`) computes them, and a validator that reports every
//! problem of a prediction file at once.
//!
//! - **Ranking**: nDCG@k (the official figures, k = 1, 10, 20), plus hit@k, MRR@k and
//!   recall@k. Each ground-truth turn takes the first prediction row of its
//!   (session, turn); the official figure is the mean over sessions for each turn
//!   number, then the mean over turn numbers. The per-turn table and the plain mean over
//!   rows are reported too.
//! - **Catalog diversity**: distinct ids over all scored lists ÷ catalog size.
//! - **Lexical diversity**: Distinct-2 of the scored responses (lowercased,
//!   whitespace-split, responses under two tokens skipped).
//! - **Per-turn tables** ([`Scores::turns`], [`Scores::write_turn_tables`]), **intervals and
//!   paired tests** over sessions ([`stats`]), **method comparisons** ([`compare()`]) and the
//!   challenge's **composite** ([`Composite`]).
//! - **Validation**: wrong or missing fields, repeated ids, lists over 20, duplicate,
//!   unknown and missing turns, ids outside the catalog — each named by row, session
//!   and turn.
//!
//! The sums follow the official code's order (pandas' compensated mean per turn, then a
//! left-to-right mean over turns) and [`Scores::write_official_json`] prints numbers as Python does, so
//! the score file matches the official one byte for byte.
//!
//! ```
//! use music_crs_metrics::{EvaluationParams, Evaluator, GroundTruth, PredictionFile, Validator};
//!
//! let truth = GroundTruth::from_json_str(
//!     r#"[{"session_id": "s1", "user_id": "u1", "turn_number": 1, "ground_truth_track_id": "t2"},
//!         {"session_id": "s1", "user_id": "u1", "turn_number": 2, "ground_truth_track_id": "t9"}]"#,
//!     "ground_truth.json",
//! )?;
//! let file = PredictionFile::from_json_str(
//!     r#"[{"session_id": "s1", "user_id": "u1", "turn_number": 1,
//!          "predicted_track_ids": ["t1", "t2"], "predicted_response": "Try these two songs"},
//!         {"session_id": "s1", "user_id": "u1", "turn_number": 2,
//!          "predicted_track_ids": ["t9"], "predicted_response": "Here is one more"}]"#,
//!     "predictions.json",
//! )?;
//! let report = Validator::new().with_ground_truth(&truth).validate(&file);
//! assert!(report.is_valid(), "{report}");
//!
//! let params = EvaluationParams { catalog_size: 10, ..EvaluationParams::default() };
//! let scores = Evaluator::new(params)?.evaluate(&truth, file.predictions())?;
//! // Turn 1: gold at rank 2 gives 1/log2(3); turn 2: gold at rank 1 gives 1.
//! let expected = (1.0 / 3f64.log2() + 1.0) / 2.0;
//! assert!((scores.macro_scores.ndcg(10).unwrap() - expected).abs() < 1e-12);
//! assert_eq!(scores.macro_scores.ndcg(1), Some(0.5));
//! assert_eq!(scores.catalog_diversity, 0.3); // t1, t2, t9 of 10 tracks
//! assert!(scores.official_json().starts_with("{\n  \"ndcg@1\": 0.5,"));
//! println!("{scores}"); // the readable table
//!
//! // A broken file: every problem is listed, each with its row, session and turn.
//! let bad = PredictionFile::from_json_str(
//!     r#"[{"session_id": "s1", "user_id": "u1", "turn_number": 1,
//!          "predicted_track_ids": ["t1", "t1"], "predicted_response": 5}]"#,
//!     "bad.json",
//! )?;
//! let report = Validator::new().with_ground_truth(&truth).validate(&bad);
//! assert_eq!(report.problems().len(), 2); // the response type, and turn 2 missing
//! assert!(report.to_string().contains("row 1, session s1, turn 1: predicted_response must be a string"));
//! # Ok::<(), music_crs_metrics::Error>(())
//! ```

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod compare;
pub mod composite;
pub mod diversity;
mod error;
mod evaluate;
mod fast_hash;
mod ground_truth;
mod json_rows;
mod numeric;
pub mod ranking;
pub mod stats;
mod turn_table;
mod validate;

pub use compare::{CompareParams, Comparison, MethodPredictions, compare};
pub use composite::{Composite, JudgeScores};
pub use error::{Error, Result};
pub use evaluate::{
    DEFAULT_CATALOG_SIZE, DEFAULT_CUTOFFS, Evaluation, EvaluationParams, Evaluator, MetricsAtK,
    MissingPredictions, RankingScores, Scores, ScoresTable, TurnRow, TurnScores, evaluate,
};
pub use ground_truth::{GoldTurn, GroundTruth};
pub use turn_table::{remove_score_files, turn_table_paths};
pub use validate::{
    CappedReport, PredictionFile, Problem, ProblemCounts, ProblemKind, TrackIdSet,
    ValidationReport, Validator,
};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
