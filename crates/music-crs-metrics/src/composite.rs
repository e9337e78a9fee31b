//! The challenge's final composite score.
//!
//! Participants' write-ups of the Music-CRS challenge (RecSys Challenge 2026) report the final
//! ranking as `0.5 · nDCG@20 + 0.1 · catalog diversity + 0.1 · lexical diversity +
//! 0.3 · (judge − 1) / 4`, where an LLM judge scores each reply from 1 to 5. The judge model
//! and its prompt are not public, so the judge part is only known when the caller supplies
//! per-turn judge scores ([`JudgeScores`]); without them [`Composite::total`] is `None` and
//! [`Composite::known_part`] holds the three parts this crate computes.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{json_type_name, parse_json_array, read_text};
use crate::fast_hash::FastHashMap;
use crate::{Error, GroundTruth, Result, Scores};

/// Weight of nDCG@20 in the composite.
pub const WEIGHT_NDCG_AT_20: f64 = 0.5;
/// Weight of catalog diversity.
pub const WEIGHT_CATALOG_DIVERSITY: f64 = 0.1;
/// Weight of lexical diversity (Distinct-2).
pub const WEIGHT_LEXICAL_DIVERSITY: f64 = 0.1;
/// Weight of the LLM judge's score, rescaled from 1..5 to 0..1.
pub const WEIGHT_JUDGE: f64 = 0.3;

/// The parts of the composite for one prediction file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Composite {
    /// nDCG@20 (the official macro figure).
    pub ndcg_at_20: f64,
    /// Catalog diversity.
    pub catalog_diversity: f64,
    /// Lexical diversity.
    pub lexical_diversity: f64,
    /// The mean judge score (1..5) over the scored turns, when known.
    pub judge: Option<f64>,
}

impl Composite {
    /// The parts of `scores` (which must include cutoff 20), with the judge's mean if known.
    pub fn new(scores: &Scores, judge: Option<f64>) -> Result<Self> {
        let ndcg_at_20 = scores.macro_scores.ndcg(20).ok_or(Error::InvalidParams {
            field: "cutoffs",
            reason: "the composite needs nDCG@20; evaluate with cutoff 20".to_owned(),
        })?;
        Ok(Composite {
            ndcg_at_20,
            catalog_diversity: scores.catalog_diversity,
            lexical_diversity: scores.lexical_diversity,
            judge,
        })
    }

    /// `0.5 · nDCG@20 + 0.1 · catalog diversity + 0.1 · lexical diversity`: the composite
    /// without its judge part (at most 0.7).
    pub fn known_part(&self) -> f64 {
        WEIGHT_NDCG_AT_20 * self.ndcg_at_20
            + WEIGHT_CATALOG_DIVERSITY * self.catalog_diversity
            + WEIGHT_LEXICAL_DIVERSITY * self.lexical_diversity
    }

    /// The full composite, when the judge's scores are known.
    pub fn total(&self) -> Option<f64> {
        self.judge
            .map(|judge| self.known_part() + WEIGHT_JUDGE * (judge - 1.0) / 4.0)
    }
}

impl fmt::Display for Composite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "composite: 0.5 × nDCG@20 {:.4} + 0.1 × catalog div. {:.4} + 0.1 × Distinct-2 {:.4}",
            self.ndcg_at_20, self.catalog_diversity, self.lexical_diversity
        )?;
        match (self.judge, self.total()) {
            (Some(judge), Some(total)) => {
                write!(f, " + 0.3 × (judge {judge:.3} − 1) / 4 = {total:.4}")
            }
            _ => write!(
                f,
                " = {:.4} (of 0.7; the 0.3 judge part needs --judge-scores)",
                self.known_part()
            ),
        }
    }
}

/// Per-turn LLM-judge scores (1 to 5), read from a JSON array of
/// `{session_id, turn_number, score}` rows or a CSV file with those columns.
#[derive(Debug, Clone, Default)]
pub struct JudgeScores {
    scores: FastHashMap<(String, u32), f64>,
}

impl JudgeScores {
    /// Reads a `.csv` file (header `session_id,turn_number,score`) or else a JSON array.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = read_text(path)?;
        let name = path.display().to_string();
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            Self::from_csv_str(&text, &name)
        } else {
            Self::from_json_str(&text, &name)
        }
    }

    /// Reads judge scores from JSON text; `source_name` names it in errors.
    pub fn from_json_str(text: &str, source_name: &str) -> Result<Self> {
        let rows = parse_json_array(text, source_name)?;
        let mut judge = JudgeScores::default();
        let mut problems = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            let at = format!("row {}", index + 1);
            let Value::Object(fields) = row else {
                problems.push(format!(
                    "{at}: expected an object, found {}",
                    json_type_name(row)
                ));
                continue;
            };
            let session = fields.get("session_id").and_then(Value::as_str);
            let turn = fields.get("turn_number").and_then(Value::as_u64);
            let score = fields.get("score").and_then(Value::as_f64);
            match (session, turn, score) {
                (Some(session), Some(turn), Some(score)) => {
                    judge.insert(session, turn, score, &at, &mut problems)
                }
                _ => problems.push(format!(
                    "{at}: needs session_id (string), turn_number (integer) and score (number)"
                )),
            }
        }
        judge.finish(problems, source_name)
    }

    /// Reads judge scores from CSV text with a header naming `session_id`, `turn_number`
    /// and `score`; `source_name` names it in errors.
    pub fn from_csv_str(text: &str, source_name: &str) -> Result<Self> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let bad = |reason: String| Error::InvalidJudgeScores {
            source_name: source_name.to_owned(),
            problems: vec![reason],
        };
        let header = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
        let column = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| bad(format!("the header has no `{name}` column")))
        };
        let (session_at, turn_at, score_at) = (
            column("session_id")?,
            column("turn_number")?,
            column("score")?,
        );
        let mut judge = JudgeScores::default();
        let mut problems = Vec::new();
        for (index, record) in reader.records().enumerate() {
            let at = format!("row {}", index + 1);
            let record = record.map_err(|e| bad(format!("{at}: {e}")))?;
            let turn = record
                .get(turn_at)
                .and_then(|t| t.trim().parse::<u64>().ok());
            let score = record
                .get(score_at)
                .and_then(|s| s.trim().parse::<f64>().ok());
            match (record.get(session_at), turn, score) {
                (Some(session), Some(turn), Some(score)) => {
                    judge.insert(session, turn, score, &at, &mut problems)
                }
                _ => problems.push(format!(
                    "{at}: needs session_id, an integer turn_number and a numeric score"
                )),
            }
        }
        judge.finish(problems, source_name)
    }

    fn insert(
        &mut self,
        session: &str,
        turn: u64,
        score: f64,
        at: &str,
        problems: &mut Vec<String>,
    ) {
        if !(1.0..=5.0).contains(&score) {
            problems.push(format!(
                "{at}, session {session}, turn {turn}: score {score} is outside 1..5"
            ));
            return;
        }
        let Ok(turn) = u32::try_from(turn) else {
            problems.push(format!("{at}: turn_number {turn} is too large"));
            return;
        };
        if self
            .scores
            .insert((session.to_owned(), turn), score)
            .is_some()
        {
            problems.push(format!(
                "{at}, session {session}, turn {turn}: scored twice"
            ));
        }
    }

    fn finish(self, problems: Vec<String>, source_name: &str) -> Result<Self> {
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(Error::InvalidJudgeScores {
                source_name: source_name.to_owned(),
                problems,
            })
        }
    }

    /// Scored turns.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// True when no turn is scored.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// The mean judge score over the turns of `ground_truth`; fails naming the turns that
    /// have no score.
    pub fn mean_over(&self, ground_truth: &GroundTruth, source_name: &str) -> Result<f64> {
        let mut sum = 0.0;
        let mut missing = Vec::new();
        for gold in ground_truth.turns() {
            match self
                .scores
                .get(&(gold.session_id.clone(), gold.turn_number))
            {
                Some(score) => sum += score,
                None => missing.push(format!(
                    "session {}, turn {}: no judge score",
                    gold.session_id, gold.turn_number
                )),
            }
        }
        if !missing.is_empty() {
            let shown = missing.len().min(20);
            let more = missing.len() - shown;
            missing.truncate(shown);
            if more > 0 {
                missing.push(format!("... and {more} more turns"));
            }
            return Err(Error::InvalidJudgeScores {
                source_name: source_name.to_owned(),
                problems: missing,
            });
        }
        Ok(sum / ground_truth.len().max(1) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth() -> GroundTruth {
        GroundTruth::from_json_str(
            r#"[{"session_id": "s1", "user_id": "", "turn_number": 1, "ground_truth_track_id": "a"},
                {"session_id": "s1", "user_id": "", "turn_number": 2, "ground_truth_track_id": "b"}]"#,
            "gt",
        )
        .unwrap()
    }

    #[test]
    fn composite_weights_follow_the_write_ups() {
        let parts = Composite {
            ndcg_at_20: 0.2,
            catalog_diversity: 0.5,
            lexical_diversity: 0.4,
            judge: None,
        };
        // 0.1 + 0.05 + 0.04
        assert!((parts.known_part() - 0.19).abs() < 1e-12);
        assert_eq!(parts.total(), None);
        assert!(
            parts
                .to_string()
                .contains("judge part needs --judge-scores")
        );
        let judged = Composite {
            judge: Some(4.0),
            ..parts
        };
        // + 0.3 * 3 / 4 = 0.225
        assert!((judged.total().unwrap() - 0.415).abs() < 1e-12);
        let best = Composite {
            ndcg_at_20: 1.0,
            catalog_diversity: 1.0,
            lexical_diversity: 1.0,
            judge: Some(5.0),
        };
        assert!((best.total().unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn judge_scores_read_from_json_and_csv_and_average_over_the_truth() {
        let json = JudgeScores::from_json_str(
            r#"[{"session_id": "s1", "turn_number": 1, "score": 3},
                {"session_id": "s1", "turn_number": 2, "score": 4.5}]"#,
            "judge.json",
        )
        .unwrap();
        assert_eq!(json.mean_over(&truth(), "judge.json").unwrap(), 3.75);
        let csv =
            JudgeScores::from_csv_str("turn_number,session_id,score\n1,s1,2\n2,s1,5\n", "j.csv")
                .unwrap();
        assert_eq!(csv.mean_over(&truth(), "j.csv").unwrap(), 3.5);
    }

    #[test]
    fn bad_judge_scores_name_the_row() {
        let err = JudgeScores::from_json_str(
            r#"[{"session_id": "s1", "turn_number": 1, "score": 7},
                {"session_id": "s1", "turn_number": 1, "score": 2},
                {"session_id": "s1", "turn_number": 1, "score": 3},
                {"session_id": "s1"}]"#,
            "judge.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("row 1, session s1, turn 1: score 7 is outside 1..5"),
            "{err}"
        );
        assert!(
            err.contains("row 3, session s1, turn 1: scored twice"),
            "{err}"
        );
        assert!(err.contains("row 4: needs session_id"), "{err}");
        let partial = JudgeScores::from_json_str(
            r#"[{"session_id": "s1", "turn_number": 1, "score": 3}]"#,
            "j",
        )
        .unwrap();
        let err = partial.mean_over(&truth(), "j").unwrap_err().to_string();
        assert!(err.contains("session s1, turn 2: no judge score"), "{err}");
    }
}
