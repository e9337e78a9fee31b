//! Scoring predictions against the ground truth, as the official evaluator does.

use std::fmt;
use std::path::Path;

use music_crs_core::Prediction;
use serde::{Deserialize, Serialize};

use crate::fast_hash::{FastHashMap, first_repeat};
use crate::numeric::{kahan_mean, python_float_repr, sequential_mean};
use crate::ranking::metrics_at;
use crate::validate::{
    PredictionFile, Problem, ProblemKind, TrackIdSet, ValidationReport, Validator,
};
use crate::{Error, GroundTruth, Result, diversity};

/// The size of the challenge catalog (TalkPlayData-Challenge-Track-Metadata `all_tracks`).
pub const DEFAULT_CATALOG_SIZE: usize = 47_071;
/// The cutoffs the challenge reports nDCG at.
pub const DEFAULT_CUTOFFS: [usize; 3] = [1, 10, 20];

/// What to do with a ground-truth turn that has no prediction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingPredictions {
    /// Refuse to score (the official evaluator fails on such a file).
    #[default]
    Reject,
    /// Score the turn 0 with no ids and no response (for partial runs).
    ScoreZero,
}

/// Parameters of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvaluationParams {
    /// The cutoffs k, increasing (default [`DEFAULT_CUTOFFS`]).
    pub cutoffs: Vec<usize>,
    /// The catalog size that catalog diversity divides by (default [`DEFAULT_CATALOG_SIZE`]).
    pub catalog_size: usize,
    /// What to do with turns that have no prediction.
    pub missing: MissingPredictions,
}

impl Default for EvaluationParams {
    fn default() -> Self {
        EvaluationParams {
            cutoffs: DEFAULT_CUTOFFS.to_vec(),
            catalog_size: DEFAULT_CATALOG_SIZE,
            missing: MissingPredictions::default(),
        }
    }
}

impl EvaluationParams {
    /// Checks the cutoffs are positive and strictly increasing and the catalog is not empty.
    pub fn validate(&self) -> Result<()> {
        if self.cutoffs.is_empty() {
            return Err(Error::InvalidParams {
                field: "cutoffs",
                reason: "at least one cutoff k is needed".to_owned(),
            });
        }
        if self.cutoffs.contains(&0) {
            return Err(Error::InvalidParams {
                field: "cutoffs",
                reason: "every cutoff k must be at least 1".to_owned(),
            });
        }
        if self.cutoffs.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(Error::InvalidParams {
                field: "cutoffs",
                reason: format!("must be strictly increasing, got {:?}", self.cutoffs),
            });
        }
        if self.catalog_size == 0 {
            return Err(Error::InvalidParams {
                field: "catalog_size",
                reason: "the catalog cannot be empty".to_owned(),
            });
        }
        Ok(())
    }
}

/// The ranking metrics at one cutoff k.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricsAtK {
    /// The cutoff.
    pub k: usize,
    /// nDCG@k.
    pub ndcg: f64,
    /// hit@k (hit rate).
    pub hit: f64,
    /// MRR@k (mean reciprocal rank).
    pub mrr: f64,
    /// recall@k.
    pub recall: f64,
}

/// The ranking metrics at every cutoff, in increasing k.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankingScores {
    /// One entry per cutoff.
    pub at: Vec<MetricsAtK>,
}

impl RankingScores {
    /// The metrics at cutoff `k`, if it was evaluated.
    pub fn at_k(&self, k: usize) -> Option<&MetricsAtK> {
        self.at.iter().find(|m| m.k == k)
    }

    /// nDCG@k, if `k` was evaluated.
    pub fn ndcg(&self, k: usize) -> Option<f64> {
        self.at_k(k).map(|m| m.ndcg)
    }

    /// Averages per-row metrics with `mean`, cutoff by cutoff and metric by metric.
    fn average(
        rows: &[&[MetricsAtK]],
        cutoffs: &[usize],
        mean: impl Fn(&mut dyn Iterator<Item = f64>) -> f64,
    ) -> Self {
        let at = cutoffs
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                let column =
                    |pick: fn(&MetricsAtK) -> f64| mean(&mut rows.iter().map(|r| pick(&r[i])));
                MetricsAtK {
                    k,
                    ndcg: column(|m| m.ndcg),
                    hit: column(|m| m.hit),
                    mrr: column(|m| m.mrr),
                    recall: column(|m| m.recall),
                }
            })
            .collect();
        RankingScores { at }
    }
}

/// The scores of one turn number, averaged over its sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnScores {
    /// The turn.
    pub turn_number: u32,
    /// The number of sessions (rows) with this turn.
    pub rows: usize,
    /// Their mean metrics.
    pub scores: RankingScores,
}

/// The scores of one ground-truth turn (one row of the per-turn table that
/// [`Scores::write_turn_tables`] saves beside the official score file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRow {
    /// The session.
    pub session_id: String,
    /// The turn.
    pub turn_number: u32,
    /// The listener (empty when unknown).
    pub user_id: String,
    /// The 1-based rank of the first gold track in the scored list; `None` when the list
    /// misses it (or the turn had no prediction).
    pub gold_rank: Option<usize>,
    /// The metrics of this turn at every cutoff.
    pub metrics: Vec<MetricsAtK>,
}

/// The result of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// The official figures: mean over sessions per turn, then mean over turns.
    pub macro_scores: RankingScores,
    /// The plain mean over all rows.
    pub micro_scores: RankingScores,
    /// The mean per turn number, by increasing turn.
    pub per_turn: Vec<TurnScores>,
    /// Distinct recommended ids ÷ catalog size.
    pub catalog_diversity: f64,
    /// Distinct-2 of the responses.
    pub lexical_diversity: f64,
    /// The catalog size used.
    pub total_catalog_size: usize,
    /// Distinct recommended ids.
    pub distinct_track_ids: usize,
    /// Ground-truth rows scored.
    pub rows: usize,
    /// Rows without a prediction, scored 0 (only with [`MissingPredictions::ScoreZero`]).
    pub missing_predictions: usize,
    /// One row per ground-truth turn, in ground-truth order.
    pub turns: Vec<TurnRow>,
}

impl Scores {
    /// The official score file: `ndcg@k` for every cutoff, `catalog_diversity`,
    /// `lexical_diversity` and `total_catalog_size`, written as Python's `json.dump(...,
    /// indent=2)` writes it (same key order and number format, no final newline).
    pub fn official_json(&self) -> String {
        let mut lines: Vec<String> = self
            .macro_scores
            .at
            .iter()
            .map(|m| format!("  \"ndcg@{}\": {}", m.k, python_float_repr(m.ndcg)))
            .collect();
        lines.push(format!(
            "  \"catalog_diversity\": {}",
            python_float_repr(self.catalog_diversity)
        ));
        lines.push(format!(
            "  \"lexical_diversity\": {}",
            python_float_repr(self.lexical_diversity)
        ));
        lines.push(format!(
            "  \"total_catalog_size\": {}",
            self.total_catalog_size
        ));
        format!("{{\n{}\n}}", lines.join(",\n"))
    }

    /// Writes [`Scores::official_json`] to `path` atomically: a temporary file in the
    /// same folder, then a rename, so a reader never sees half a file.
    pub fn write_official_json(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomically(path.as_ref(), self.official_json().as_bytes())
    }

    /// A readable table: the official (macro) and plain (micro) means, then one row per
    /// turn, with nDCG, hit, MRR and recall at every cutoff, and the diversities.
    pub fn table(&self) -> ScoresTable<'_> {
        ScoresTable(self)
    }
}

impl fmt::Display for Scores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.table().fmt(f)
    }
}

/// Reads one metric out of a [`MetricsAtK`].
type PickMetric = fn(&MetricsAtK) -> f64;

/// The readable table of [`Scores`] (see [`Scores::table`]).
#[derive(Debug, Clone, Copy)]
pub struct ScoresTable<'a>(&'a Scores);

impl fmt::Display for ScoresTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scores = self.0;
        let cutoffs: Vec<usize> = scores.macro_scores.at.iter().map(|m| m.k).collect();
        let metrics: [(&str, PickMetric); 4] = [
            ("ndcg", |m| m.ndcg),
            ("hit", |m| m.hit),
            ("mrr", |m| m.mrr),
            ("recall", |m| m.recall),
        ];
        let mut header = format!("{:<10}{:>6}", "turn", "rows");
        for (name, _) in &metrics {
            for k in &cutoffs {
                header.push_str(&format!("{:>10}", format!("{name}@{k}")));
            }
        }
        let line = |label: &str, rows: usize, values: &RankingScores| {
            let mut text = format!("{label:<10}{rows:>6}");
            for (_, pick) in &metrics {
                for m in &values.at {
                    text.push_str(&format!("{:>10.4}", pick(m)));
                }
            }
            text
        };
        writeln!(f, "{header}")?;
        writeln!(f, "{}", "-".repeat(header.len()))?;
        for turn in &scores.per_turn {
            writeln!(
                f,
                "{}",
                line(&turn.turn_number.to_string(), turn.rows, &turn.scores)
            )?;
        }
        writeln!(f, "{}", "-".repeat(header.len()))?;
        writeln!(f, "{}", line("macro", scores.rows, &scores.macro_scores))?;
        writeln!(f, "{}", line("micro", scores.rows, &scores.micro_scores))?;
        writeln!(f)?;
        writeln!(
            f,
            "catalog diversity {:.6} ({} distinct ids / {} tracks)",
            scores.catalog_diversity, scores.distinct_track_ids, scores.total_catalog_size
        )?;
        write!(
            f,
            "lexical diversity {:.6} (Distinct-2)",
            scores.lexical_diversity
        )?;
        if scores.missing_predictions > 0 {
            write!(
                f,
                "\n{} ground-truth turns had no prediction and scored 0",
                scores.missing_predictions
            )?;
        }
        Ok(())
    }
}

/// A validation report and, when the predictions could be scored, their scores.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Every problem of the prediction file (problems that do not block scoring, such as
    /// unknown turns or ids outside the catalog, leave the scores defined).
    pub report: ValidationReport,
    /// The scores.
    pub scores: Scores,
}

/// Scores predictions with fixed [`EvaluationParams`].
#[derive(Debug, Clone, Default)]
pub struct Evaluator {
    params: EvaluationParams,
}

impl Evaluator {
    /// An evaluator; fails when the params are invalid.
    pub fn new(params: EvaluationParams) -> Result<Self> {
        params.validate()?;
        Ok(Evaluator { params })
    }

    /// The params in use.
    pub fn params(&self) -> &EvaluationParams {
        &self.params
    }

    /// Reads, validates and scores a prediction file in one call. Fails on an unreadable
    /// file or one that is not a JSON array, and with [`Error::InvalidPredictions`] (the
    /// full report) when a problem blocks scoring: a repeated id in a list, or, under
    /// [`MissingPredictions::Reject`], a missing turn or a malformed row. Other problems
    /// (lists over 20, unknown turns or ids, duplicate rows) leave the official scores
    /// defined and come back in the [`Evaluation::report`].
    pub fn evaluate_file(
        &self,
        ground_truth: &GroundTruth,
        predictions_path: impl AsRef<Path>,
        catalog: Option<&dyn TrackIdSet>,
    ) -> Result<Evaluation> {
        let file = PredictionFile::from_json_file(predictions_path)?;
        self.evaluate_prediction_file(ground_truth, &file, catalog)
    }

    /// [`Evaluator::evaluate_file`] on a file already read.
    pub fn evaluate_prediction_file(
        &self,
        ground_truth: &GroundTruth,
        file: &PredictionFile,
        catalog: Option<&dyn TrackIdSet>,
    ) -> Result<Evaluation> {
        let mut validator = Validator::new().with_ground_truth(ground_truth);
        if let Some(catalog) = catalog {
            validator = validator.with_catalog(catalog);
        }
        let report = validator.validate(file);
        // A malformed row cannot be scored: under `Reject` it blocks like a missing turn
        // (the report shows why); under `ScoreZero` its turn scores 0.
        let reject = self.params.missing == MissingPredictions::Reject;
        let blocking = report.problems().iter().any(|p| match p.kind {
            ProblemKind::MissingPrediction
            | ProblemKind::RowNotObject { .. }
            | ProblemKind::MissingField { .. }
            | ProblemKind::WrongType { .. } => reject,
            _ => p.blocks_scoring(),
        });
        if blocking {
            return Err(Error::InvalidPredictions(Box::new(report)));
        }
        let scores = self.evaluate(ground_truth, file.predictions())?;
        Ok(Evaluation { report, scores })
    }

    /// Scores predictions against the ground truth as the official evaluator does: each
    /// ground-truth turn takes the first prediction row of its (session, turn); rows for
    /// other turns are ignored; the nDCG of each turn number is the mean over its
    /// sessions and the reported nDCG is the mean over turn numbers; catalog diversity
    /// counts every id of the scored rows and lexical diversity their responses.
    ///
    /// Fails with [`Error::InvalidPredictions`] when a scored list repeats an id, or a
    /// turn has no prediction under [`MissingPredictions::Reject`].
    pub fn evaluate(
        &self,
        ground_truth: &GroundTruth,
        predictions: &[Prediction],
    ) -> Result<Scores> {
        let cutoffs = &self.params.cutoffs;
        let scored = first_predictions(ground_truth, predictions);

        let mut problems = Vec::new();
        let mut row_metrics: Vec<Vec<MetricsAtK>> = Vec::with_capacity(ground_truth.len());
        let mut scored_lists: Vec<&[String]> = Vec::with_capacity(ground_truth.len());
        let mut responses: Vec<&str> = Vec::with_capacity(ground_truth.len());
        let mut missing = 0;
        let mut gold_ranks: Vec<Option<usize>> = Vec::with_capacity(ground_truth.len());
        for (gold, prediction) in ground_truth.turns().iter().zip(scored) {
            let Some(prediction) = prediction else {
                missing += 1;
                if self.params.missing == MissingPredictions::Reject {
                    problems.push(Problem {
                        row: None,
                        session_id: Some(gold.session_id.clone()),
                        turn_number: Some(gold.turn_number),
                        kind: ProblemKind::MissingPrediction,
                    });
                }
                gold_ranks.push(None);
                row_metrics.push(
                    cutoffs
                        .iter()
                        .map(|&k| MetricsAtK {
                            k,
                            ndcg: 0.0,
                            hit: 0.0,
                            mrr: 0.0,
                            recall: 0.0,
                        })
                        .collect(),
                );
                continue;
            };
            let ids = &prediction.predicted_track_ids;
            if let Some((rank, first_rank)) = first_repeat(ids) {
                problems.push(Problem {
                    row: None,
                    session_id: Some(gold.session_id.clone()),
                    turn_number: Some(gold.turn_number),
                    kind: ProblemKind::DuplicateTrackId {
                        track_id: ids[rank - 1].clone(),
                        first_rank,
                        rank,
                    },
                });
            }
            gold_ranks.push(
                ids.iter()
                    .position(|id| gold.gold_track_ids.contains(id))
                    .map(|index| index + 1),
            );
            row_metrics.push(metrics_at(&gold.gold_track_ids, ids, cutoffs));
            scored_lists.push(ids);
            responses.push(&prediction.predicted_response);
        }
        if !problems.is_empty() {
            let report = ValidationReport::from_problems(
                "predictions".to_owned(),
                predictions.len(),
                problems,
            );
            return Err(Error::InvalidPredictions(Box::new(report)));
        }

        // pandas `groupby("turn_number").mean()`: turns in increasing order, a compensated
        // mean within each; then `DataFrame.mean()`: a left-to-right mean over turns.
        // Rows grouped by turn number with one stable sort (ground-truth order within a
        // turn), not a map of one list per turn.
        let gold_turns = ground_truth.turns();
        let mut order: Vec<usize> = (0..gold_turns.len()).collect();
        order.sort_by_key(|&index| gold_turns[index].turn_number);
        let sorted: Vec<&[MetricsAtK]> = order.iter().map(|&i| row_metrics[i].as_slice()).collect();
        let per_turn: Vec<TurnScores> = order
            .chunk_by(|&a, &b| gold_turns[a].turn_number == gold_turns[b].turn_number)
            .scan(0, |start, group| {
                let rows = &sorted[*start..*start + group.len()];
                *start += group.len();
                Some(TurnScores {
                    turn_number: gold_turns[group[0]].turn_number,
                    rows: rows.len(),
                    scores: RankingScores::average(rows, cutoffs, |values| kahan_mean(values)),
                })
            })
            .collect();
        let turn_rows: Vec<&[MetricsAtK]> =
            per_turn.iter().map(|t| t.scores.at.as_slice()).collect();
        let macro_scores =
            RankingScores::average(&turn_rows, cutoffs, |values| sequential_mean(values));
        let all_rows: Vec<&[MetricsAtK]> = row_metrics.iter().map(Vec::as_slice).collect();
        let micro_scores = RankingScores::average(&all_rows, cutoffs, |values| kahan_mean(values));

        let distinct_track_ids = diversity::distinct_ids(scored_lists.iter().copied());
        let turns = ground_truth
            .turns()
            .iter()
            .zip(row_metrics)
            .zip(gold_ranks)
            .map(|((gold, metrics), gold_rank)| TurnRow {
                session_id: gold.session_id.clone(),
                turn_number: gold.turn_number,
                user_id: gold.user_id.clone(),
                gold_rank,
                metrics,
            })
            .collect();
        Ok(Scores {
            macro_scores,
            micro_scores,
            per_turn,
            catalog_diversity: distinct_track_ids as f64 / self.params.catalog_size as f64,
            lexical_diversity: diversity::lexical_diversity(responses.iter().copied()),
            total_catalog_size: self.params.catalog_size,
            distinct_track_ids,
            rows: ground_truth.len(),
            missing_predictions: missing,
            turns,
        })
    }
}

/// The prediction each ground-truth turn is scored on, in ground-truth order: the first
/// row of its (session, turn), as the official evaluator takes it; `None` when there is none.
pub(crate) fn first_predictions<'a>(
    ground_truth: &GroundTruth,
    predictions: &'a [Prediction],
) -> Vec<Option<&'a Prediction>> {
    let gold = ground_truth.turns();
    // Files written for this ground truth list its turns in its order: while rows line up
    // with the gold turns, each row is the first of its (session, turn), as the gold keys
    // are distinct; a map is only built when they do not line up.
    let aligned = gold
        .iter()
        .zip(predictions)
        .take_while(|(gold, prediction)| {
            gold.turn_number == prediction.turn_number && gold.session_id == prediction.session_id
        })
        .count();
    if aligned == gold.len() {
        return predictions[..aligned].iter().map(Some).collect();
    }
    let mut first: FastHashMap<(&str, u32), &Prediction> = FastHashMap::default();
    first.reserve(predictions.len());
    for prediction in predictions {
        first
            .entry((prediction.session_id.as_str(), prediction.turn_number))
            .or_insert(prediction);
    }
    gold.iter()
        .map(|gold| {
            first
                .get(&(gold.session_id.as_str(), gold.turn_number))
                .copied()
        })
        .collect()
}

/// Scores predictions with `params` (see [`Evaluator::evaluate`]).
pub fn evaluate(
    ground_truth: &GroundTruth,
    predictions: &[Prediction],
    params: &EvaluationParams,
) -> Result<Scores> {
    Evaluator::new(params.clone())?.evaluate(ground_truth, predictions)
}

/// Writes `bytes` to `path` atomically ([`music_crs_core::atomic`]), creating its folder.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    music_crs_core::atomic::write_bytes_atomically(path, bytes).map_err(|err| Error::io(path, err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GoldTurn;

    fn gold(session_id: &str, turn_number: u32) -> GoldTurn {
        GoldTurn {
            session_id: session_id.to_owned(),
            user_id: String::new(),
            turn_number,
            gold_track_ids: vec![format!("{session_id}{turn_number}")],
        }
    }

    fn row(session_id: &str, turn_number: u32, reply: &str) -> Prediction {
        Prediction {
            session_id: session_id.to_owned(),
            user_id: String::new(),
            turn_number,
            predicted_track_ids: Vec::new(),
            predicted_response: reply.to_owned(),
        }
    }

    fn picked(truth: &GroundTruth, rows: &[Prediction]) -> Vec<Option<String>> {
        first_predictions(truth, rows)
            .into_iter()
            .map(|p| p.map(|p| p.predicted_response.clone()))
            .collect()
    }

    #[test]
    fn each_gold_turn_takes_the_first_row_of_its_key_in_any_order() {
        let truth = GroundTruth::new(vec![gold("a", 1), gold("a", 2), gold("b", 1)]).unwrap();
        let some = |replies: &[&str]| -> Vec<Option<String>> {
            replies.iter().map(|r| Some(r.to_string())).collect()
        };
        // Rows in gold order, then a later duplicate: the first rows count.
        let rows = [
            row("a", 1, "x"),
            row("a", 2, "y"),
            row("b", 1, "z"),
            row("a", 2, "late"),
        ];
        assert_eq!(picked(&truth, &rows), some(&["x", "y", "z"]));
        // A duplicate inside the aligned run breaks it; the first of the two still counts.
        let rows = [
            row("a", 1, "x"),
            row("a", 1, "again"),
            row("a", 2, "y"),
            row("b", 1, "z"),
        ];
        assert_eq!(picked(&truth, &rows), some(&["x", "y", "z"]));
        // Another order, an unknown turn, and a missing one.
        let rows = [row("b", 1, "z"), row("c", 9, "?"), row("a", 1, "x")];
        assert_eq!(
            picked(&truth, &rows),
            vec![Some("x".to_owned()), None, Some("z".to_owned())]
        );
        // Fewer rows than gold turns, all aligned.
        assert_eq!(
            picked(&truth, &[row("a", 1, "x")]),
            vec![Some("x".to_owned()), None, None]
        );
    }
}
