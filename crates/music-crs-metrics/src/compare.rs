//! Several methods scored on one ground truth, with the uncertainty of every figure and
//! paired tests against a baseline: is the difference real, or within noise?
//!
//! Every method's official scores come from [`crate::Evaluator`]; intervals and tests come
//! from [`crate::stats`], resampling sessions. The ranking figures (nDCG@k) get paired
//! permutation and paired bootstrap tests, Holm-corrected over every (method, metric) pair;
//! the diversity figures, which are not means over turns, get bootstrap intervals only,
//! recentred on the full-sample figure ([`Interval::recentred`]).

use serde::{Deserialize, Serialize};

use music_crs_core::Prediction;

use crate::evaluate::first_predictions;
use crate::stats::{
    DiversityDesign, Interval, ResampleParams, SessionDesign, bootstrap_macro, holm,
    paired_bootstrap_p, permutation_test,
};
use crate::{Composite, Error, EvaluationParams, Evaluator, GroundTruth, Result, Scores, TurnRow};

/// Parameters of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompareParams {
    /// Resamples, seed and confidence of the nDCG intervals and tests.
    pub resample: ResampleParams,
    /// Resamples of the diversity intervals and the per-turn bands (each recomputes distinct
    /// sets, so fewer by default: 1,000).
    pub diversity_resamples: usize,
    /// The index of the baseline method (default 0, the first).
    pub baseline: usize,
    /// Level below which a Holm-corrected p-value counts as a real difference.
    pub alpha: f64,
    /// The evaluation (cutoffs, catalog size).
    pub evaluation: EvaluationParams,
}

impl Default for CompareParams {
    fn default() -> Self {
        CompareParams {
            resample: ResampleParams::default(),
            diversity_resamples: 1_000,
            baseline: 0,
            alpha: 0.05,
            evaluation: EvaluationParams::default(),
        }
    }
}

impl CompareParams {
    /// Checks every part.
    pub fn validate(&self) -> Result<()> {
        self.resample.validate()?;
        self.evaluation.validate()?;
        if self.diversity_resamples == 0 {
            return Err(Error::InvalidParams {
                field: "diversity_resamples",
                reason: "at least one resample is needed".to_owned(),
            });
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(Error::InvalidParams {
                field: "alpha",
                reason: format!("must lie strictly between 0 and 1, got {}", self.alpha),
            });
        }
        Ok(())
    }
}

/// One figure with its bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The metric (`ndcg@20`, `catalog_diversity`, ...).
    pub metric: String,
    /// The official value.
    pub value: f64,
    /// Its bootstrap interval over sessions.
    pub interval: Interval,
}

/// The mean of one metric at one turn number, with its interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnEstimate {
    /// The turn.
    pub turn_number: u32,
    /// The metric.
    pub metric: String,
    /// The mean over the sessions with this turn.
    pub value: f64,
    /// Its bootstrap interval.
    pub interval: Interval,
}

/// One method's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodReport {
    /// Its name (a file stem or a config's tid).
    pub name: String,
    /// nDCG at every cutoff, then catalog and lexical diversity, each with its interval.
    pub estimates: Vec<Estimate>,
    /// The known part of the challenge composite (see [`Composite`]).
    pub composite: Composite,
    /// nDCG per turn number with intervals.
    pub per_turn: Vec<TurnEstimate>,
    /// How often the gold track sat at rank 1, 2, ..., 20 (index 0 is rank 1).
    pub gold_rank_counts: Vec<usize>,
    /// Turns whose list missed the gold track within the first 20.
    pub gold_missed: usize,
}

impl MethodReport {
    /// The estimate of `metric`.
    pub fn estimate(&self, metric: &str) -> Option<&Estimate> {
        self.estimates.iter().find(|e| e.metric == metric)
    }
}

/// A method against the baseline on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedTest {
    /// The method.
    pub method: String,
    /// The baseline.
    pub baseline: String,
    /// The metric.
    pub metric: String,
    /// Method minus baseline (the effect size, in the metric's units).
    pub difference: f64,
    /// The paired bootstrap interval of the difference.
    pub interval: Interval,
    /// Two-sided p-value of the paired permutation test.
    pub p_permutation: f64,
    /// Two-sided p-value of the paired bootstrap test.
    pub p_bootstrap: f64,
    /// `p_permutation`, Holm-corrected over every test of the comparison.
    pub p_permutation_holm: f64,
    /// `p_bootstrap`, Holm-corrected over every test of the comparison.
    pub p_bootstrap_holm: f64,
    /// False when the Holm-corrected permutation p-value is below alpha: the difference is
    /// not explained by which sessions were sampled.
    pub within_noise: bool,
}

/// Methods compared on one ground truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The ground truth's sessions.
    pub sessions: usize,
    /// Its turns.
    pub turns: usize,
    /// The parameters used.
    pub params: CompareParams,
    /// One report per method, in input order.
    pub methods: Vec<MethodReport>,
    /// Every method but the baseline against it, metric by metric.
    pub tests: Vec<PairedTest>,
}

impl Comparison {
    /// The baseline's name.
    pub fn baseline(&self) -> &str {
        &self.methods[self.params.baseline].name
    }

    /// The metrics every method reports, in table order.
    pub fn metrics(&self) -> Vec<&str> {
        self.methods
            .first()
            .map(|m| m.estimates.iter().map(|e| e.metric.as_str()).collect())
            .unwrap_or_default()
    }

    /// One sentence per test: the difference with its interval and p-values, and whether it
    /// is within noise.
    pub fn verdicts(&self) -> Vec<String> {
        self.tests
            .iter()
            .map(|t| {
                let verdict = if t.within_noise {
                    format!(
                        "within noise (Holm p {:.3} ≥ {}): these {} sessions cannot tell them apart",
                        t.p_permutation_holm, self.params.alpha, self.sessions
                    )
                } else {
                    format!("a real difference (Holm p {:.4} < {})", t.p_permutation_holm, self.params.alpha)
                };
                format!(
                    "{} vs {} on {}: {:+.4} [{:+.4}, {:+.4}], permutation p {:.4}, bootstrap p {:.4}: {verdict}",
                    t.method,
                    t.baseline,
                    t.metric,
                    t.difference,
                    t.interval.low,
                    t.interval.high,
                    t.p_permutation,
                    t.p_bootstrap
                )
            })
            .collect()
    }
}

/// One method to compare: its name and its predictions.
#[derive(Debug, Clone, Copy)]
pub struct MethodPredictions<'a> {
    /// The name shown in tables.
    pub name: &'a str,
    /// Its predictions.
    pub predictions: &'a [Prediction],
}

/// Scores every method on `ground_truth` and compares each with the baseline.
///
/// Fails when a method cannot be scored (as [`Evaluator::evaluate`] fails), when no method
/// is given, or when the baseline index is out of range.
pub fn compare(
    ground_truth: &GroundTruth,
    methods: &[MethodPredictions<'_>],
    params: &CompareParams,
) -> Result<Comparison> {
    params.validate()?;
    if methods.is_empty() {
        return Err(Error::InvalidParams {
            field: "methods",
            reason: "at least one prediction file is needed".to_owned(),
        });
    }
    if params.baseline >= methods.len() {
        return Err(Error::InvalidParams {
            field: "baseline",
            reason: format!(
                "baseline {} chosen among {} methods",
                params.baseline,
                methods.len()
            ),
        });
    }
    let evaluator = Evaluator::new(params.evaluation.clone())?;
    let scores: Vec<Scores> = methods
        .iter()
        .map(|m| evaluator.evaluate(ground_truth, m.predictions))
        .collect::<Result<_>>()?;
    let cutoffs = params.evaluation.cutoffs.clone();
    let design = SessionDesign::new(&scores[0].turns);

    // Series m * cutoffs + c: per-row nDCG of method m at cutoff c.
    let series: Vec<Vec<f64>> = scores
        .iter()
        .flat_map(|s| {
            (0..cutoffs.len()).map(move |c| s.turns.iter().map(|row| row.metrics[c].ndcg).collect())
        })
        .collect();
    let series_refs: Vec<&[f64]> = series.iter().map(Vec::as_slice).collect();
    let draws = bootstrap_macro(&design, &series_refs, &params.resample)?;

    let band_params = ResampleParams {
        resamples: params.diversity_resamples,
        ..params.resample.clone()
    };
    let mut reports = Vec::with_capacity(methods.len());
    for (m, (method, method_scores)) in methods.iter().zip(&scores).enumerate() {
        let mut estimates = Vec::new();
        for (c, &k) in cutoffs.iter().enumerate() {
            estimates.push(Estimate {
                metric: format!("ndcg@{k}"),
                value: method_scores.macro_scores.at[c].ndcg,
                interval: Interval::percentile(
                    &draws[m * cutoffs.len() + c],
                    params.resample.confidence,
                ),
            });
        }
        let rows = first_predictions(ground_truth, method.predictions)
            .into_iter()
            .map(|p| {
                p.map(|p| {
                    (
                        p.predicted_track_ids.as_slice(),
                        p.predicted_response.as_str(),
                    )
                })
            });
        let diversity = DiversityDesign::new(&design, rows, params.evaluation.catalog_size);
        let (catalog_draws, lexical_draws) = diversity.bootstrap(&band_params)?;
        estimates.push(Estimate {
            metric: "catalog_diversity".to_owned(),
            value: method_scores.catalog_diversity,
            interval: unit(Interval::recentred(
                &catalog_draws,
                method_scores.catalog_diversity,
                params.resample.confidence,
            )),
        });
        estimates.push(Estimate {
            metric: "lexical_diversity".to_owned(),
            value: method_scores.lexical_diversity,
            interval: unit(Interval::recentred(
                &lexical_draws,
                method_scores.lexical_diversity,
                params.resample.confidence,
            )),
        });
        let composite = match cutoffs.contains(&20) {
            true => Composite::new(method_scores, None)?,
            false => Composite {
                ndcg_at_20: f64::NAN,
                catalog_diversity: method_scores.catalog_diversity,
                lexical_diversity: method_scores.lexical_diversity,
                judge: None,
            },
        };
        let mut gold_rank_counts = vec![0; 20];
        let mut gold_missed = 0;
        for row in &method_scores.turns {
            match row.gold_rank {
                Some(rank) if rank <= 20 => gold_rank_counts[rank - 1] += 1,
                _ => gold_missed += 1,
            }
        }
        reports.push(MethodReport {
            name: method.name.to_owned(),
            estimates,
            composite,
            per_turn: per_turn_estimates(method_scores, &cutoffs, &band_params)?,
            gold_rank_counts,
            gold_missed,
        });
    }

    // Paired tests on nDCG: every method but the baseline, every cutoff.
    let baseline = params.baseline;
    let mut pairs = Vec::new();
    let mut differences = Vec::new();
    for m in (0..methods.len()).filter(|&m| m != baseline) {
        for c in 0..cutoffs.len() {
            let (a, b) = (
                &series[m * cutoffs.len() + c],
                &series[baseline * cutoffs.len() + c],
            );
            differences.push(a.iter().zip(b).map(|(x, y)| x - y).collect::<Vec<f64>>());
            pairs.push((m, c));
        }
    }
    let difference_refs: Vec<&[f64]> = differences.iter().map(Vec::as_slice).collect();
    let p_permutation = permutation_test(&design, &difference_refs, &params.resample)?;
    let mut tests: Vec<PairedTest> = Vec::with_capacity(pairs.len());
    for (&(m, c), p_perm) in pairs.iter().zip(&p_permutation) {
        let a = &draws[m * cutoffs.len() + c];
        let b = &draws[baseline * cutoffs.len() + c];
        let difference =
            scores[m].macro_scores.at[c].ndcg - scores[baseline].macro_scores.at[c].ndcg;
        let delta: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
        tests.push(PairedTest {
            method: methods[m].name.to_owned(),
            baseline: methods[baseline].name.to_owned(),
            metric: format!("ndcg@{}", cutoffs[c]),
            difference,
            interval: Interval::percentile(&delta, params.resample.confidence),
            p_permutation: *p_perm,
            p_bootstrap: paired_bootstrap_p(a, b, difference),
            p_permutation_holm: 0.0,
            p_bootstrap_holm: 0.0,
            within_noise: true,
        });
    }
    let holm_permutation = holm(&tests.iter().map(|t| t.p_permutation).collect::<Vec<_>>());
    let holm_bootstrap = holm(&tests.iter().map(|t| t.p_bootstrap).collect::<Vec<_>>());
    for ((test, p_perm), p_boot) in tests.iter_mut().zip(holm_permutation).zip(holm_bootstrap) {
        test.p_permutation_holm = p_perm;
        test.p_bootstrap_holm = p_boot;
        test.within_noise = p_perm >= params.alpha;
    }
    Ok(Comparison {
        sessions: design.sessions(),
        turns: design.rows(),
        params: params.clone(),
        methods: reports,
        tests,
    })
}

/// `interval` clipped to [0, 1], where both diversities live.
fn unit(interval: Interval) -> Interval {
    Interval {
        low: interval.low.clamp(0.0, 1.0),
        high: interval.high.clamp(0.0, 1.0),
    }
}

/// nDCG at every cutoff per turn number, each with a bootstrap band over that turn's
/// sessions.
fn per_turn_estimates(
    scores: &Scores,
    cutoffs: &[usize],
    params: &ResampleParams,
) -> Result<Vec<TurnEstimate>> {
    let mut by_turn: std::collections::BTreeMap<u32, Vec<TurnRow>> = Default::default();
    for row in &scores.turns {
        by_turn
            .entry(row.turn_number)
            .or_default()
            .push(row.clone());
    }
    let mut out = Vec::new();
    for turn in &scores.per_turn {
        let rows = by_turn.remove(&turn.turn_number).unwrap_or_default();
        let design = SessionDesign::new(&rows);
        let series: Vec<Vec<f64>> = (0..cutoffs.len())
            .map(|c| rows.iter().map(|r| r.metrics[c].ndcg).collect())
            .collect();
        let refs: Vec<&[f64]> = series.iter().map(Vec::as_slice).collect();
        let draws = bootstrap_macro(&design, &refs, params)?;
        for (c, &k) in cutoffs.iter().enumerate() {
            out.push(TurnEstimate {
                turn_number: turn.turn_number,
                metric: format!("ndcg@{k}"),
                value: turn.scores.at[c].ndcg,
                interval: Interval::percentile(&draws[c], params.confidence),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ground truth of `sessions` sessions × 8 turns, gold `g{s}_{t}`.
    fn truth(sessions: usize) -> GroundTruth {
        let rows: Vec<String> = (0..sessions)
            .flat_map(|s| {
                (1..=8).map(move |t| {
                    format!(
                        r#"{{"session_id": "s{s}", "user_id": "u", "turn_number": {t}, "ground_truth_track_id": "g{s}_{t}"}}"#
                    )
                })
            })
            .collect();
        GroundTruth::from_json_str(&format!("[{}]", rows.join(",")), "gt").unwrap()
    }

    /// Predictions that put the gold first on `hit_every`-th rows (by a hash of the row).
    fn predictions(truth: &GroundTruth, hit_share: f64, salt: u64) -> Vec<Prediction> {
        truth
            .turns()
            .iter()
            .enumerate()
            .map(|(i, gold)| {
                let u = ((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt) % 1000;
                let mut ids: Vec<String> = (0..5).map(|j| format!("x{i}_{j}")).collect();
                if (u as f64) < hit_share * 1000.0 {
                    ids[0] = gold.gold_track_ids[0].clone();
                }
                Prediction {
                    session_id: gold.session_id.clone(),
                    user_id: gold.user_id.clone(),
                    turn_number: gold.turn_number,
                    predicted_track_ids: ids,
                    predicted_response: format!("here is song {} for you", i % 13),
                }
            })
            .collect()
    }

    fn params() -> CompareParams {
        CompareParams {
            resample: ResampleParams {
                resamples: 2_000,
                ..ResampleParams::default()
            },
            diversity_resamples: 200,
            evaluation: EvaluationParams {
                catalog_size: 10_000,
                ..EvaluationParams::default()
            },
            ..CompareParams::default()
        }
    }

    #[test]
    fn identical_runs_are_within_noise_and_a_much_better_run_is_not() {
        let truth = truth(100);
        let base = predictions(&truth, 0.1, 1);
        let better = predictions(&truth, 0.6, 2);
        let methods = [
            MethodPredictions {
                name: "base",
                predictions: &base,
            },
            MethodPredictions {
                name: "same",
                predictions: &base,
            },
            MethodPredictions {
                name: "better",
                predictions: &better,
            },
        ];
        let comparison = compare(&truth, &methods, &params()).unwrap();
        assert_eq!((comparison.sessions, comparison.turns), (100, 800));
        assert_eq!(comparison.tests.len(), 6);
        for test in comparison.tests.iter().filter(|t| t.method == "same") {
            assert_eq!(test.difference, 0.0);
            assert_eq!((test.p_permutation, test.p_bootstrap), (1.0, 1.0));
            assert!(test.within_noise);
        }
        for test in comparison.tests.iter().filter(|t| t.method == "better") {
            assert!(test.difference > 0.3, "{test:?}");
            assert!(
                !test.within_noise && test.p_permutation_holm < 0.01,
                "{test:?}"
            );
            assert!(test.interval.contains(test.difference));
        }
        let report = &comparison.methods[2];
        for estimate in &report.estimates {
            assert!(estimate.interval.contains(estimate.value), "{estimate:?}");
        }
        // Every hit is at rank 1.
        assert_eq!(report.gold_rank_counts[0] + report.gold_missed, 800);
        assert_eq!(report.per_turn.len(), 8 * 3);
        assert!(comparison.verdicts()[0].contains("within noise"));
    }

    #[test]
    fn a_bad_baseline_or_no_method_is_an_error() {
        let truth = truth(3);
        let base = predictions(&truth, 0.5, 1);
        let one = [MethodPredictions {
            name: "a",
            predictions: &base,
        }];
        let wrong = CompareParams {
            baseline: 1,
            ..params()
        };
        assert!(
            compare(&truth, &one, &wrong)
                .unwrap_err()
                .to_string()
                .contains("baseline")
        );
        assert!(compare(&truth, &[], &params()).is_err());
    }
}
