//! How sure a score is: bootstrap intervals over sessions, paired significance tests and
//! Holm's correction, computed for the official macro figure (mean over sessions per turn,
//! then mean over turns).
//!
//! Sessions, not turns, are the unit of resampling: the turns of one conversation are not
//! independent, and the challenge samples sessions. Every resampling is seeded, so the same
//! inputs give the same intervals and p-values on any machine and thread count (resamples
//! run in fixed blocks, each with its own ChaCha stream).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::fast_hash::FastHashMap;
use crate::{Error, Result, TurnRow};

/// Resamples per block: one ChaCha stream and one scratch buffer per block.
const BLOCK: usize = 256;

/// Parameters of a resampling procedure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResampleParams {
    /// Bootstrap resamples (and permutations of a permutation test); default 10,000.
    pub resamples: usize,
    /// Seed of every draw.
    pub seed: u64,
    /// Two-sided confidence level of the intervals, in (0, 1); default 0.95.
    pub confidence: f64,
}

impl Default for ResampleParams {
    fn default() -> Self {
        ResampleParams {
            resamples: 10_000,
            seed: 2026,
            confidence: 0.95,
        }
    }
}

impl ResampleParams {
    /// Checks there is at least one resample and the confidence lies in (0, 1).
    pub fn validate(&self) -> Result<()> {
        if self.resamples == 0 {
            return Err(Error::InvalidParams {
                field: "resamples",
                reason: "at least one resample is needed".to_owned(),
            });
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(Error::InvalidParams {
                field: "confidence",
                reason: format!("must lie strictly between 0 and 1, got {}", self.confidence),
            });
        }
        Ok(())
    }
}

/// A two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

impl Interval {
    /// The percentile interval of `draws` at `confidence` (linear interpolation between
    /// order statistics, as numpy's default quantile); `draws` must not be empty.
    pub fn percentile(draws: &[f64], confidence: f64) -> Interval {
        let mut sorted = draws.to_vec();
        sorted.sort_by(f64::total_cmp);
        let tail = (1.0 - confidence) / 2.0;
        Interval {
            low: quantile_sorted(&sorted, tail),
            high: quantile_sorted(&sorted, 1.0 - tail),
        }
    }

    /// The percentile interval of `draws` moved so that the draws' mean sits on `estimate`:
    /// for statistics that resampling with replacement biases, such as distinct counts
    /// (a session drawn twice adds no new ids or bigrams, so every draw is lower than the
    /// full sample), the draws still measure the spread but not the location.
    pub fn recentred(draws: &[f64], estimate: f64, confidence: f64) -> Interval {
        let raw = Interval::percentile(draws, confidence);
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        // The max(0) keeps rounding from pushing a degenerate interval off the estimate.
        Interval {
            low: estimate - (mean - raw.low).max(0.0),
            high: estimate + (raw.high - mean).max(0.0),
        }
    }

    /// True when `value` lies within the interval (bounds included).
    pub fn contains(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }

    /// `high - low`.
    pub fn width(&self) -> f64 {
        self.high - self.low
    }
}

/// The `q` quantile of sorted values, interpolated linearly.
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let fraction = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

/// The rows of one ground truth, grouped as the official macro mean groups them: by
/// session (the resampling unit) and by turn number (the averaging unit).
#[derive(Debug, Clone)]
pub struct SessionDesign {
    row_session: Vec<u32>,
    row_turn: Vec<u32>,
    rows_per_turn: Vec<usize>,
    session_count: usize,
}

impl SessionDesign {
    /// The design of per-turn rows (from [`crate::Scores::turns`]); sessions are numbered
    /// by first appearance, turn slots by increasing turn number.
    pub fn new(rows: &[TurnRow]) -> Self {
        let mut sessions: FastHashMap<&str, u32> = FastHashMap::default();
        let mut turn_numbers: Vec<u32> = rows.iter().map(|r| r.turn_number).collect();
        turn_numbers.sort_unstable();
        turn_numbers.dedup();
        let mut row_session = Vec::with_capacity(rows.len());
        let mut row_turn = Vec::with_capacity(rows.len());
        let mut rows_per_turn = vec![0; turn_numbers.len()];
        for row in rows {
            let next = sessions.len() as u32;
            row_session.push(*sessions.entry(row.session_id.as_str()).or_insert(next));
            let slot = turn_numbers
                .binary_search(&row.turn_number)
                .expect("every turn number was collected");
            row_turn.push(slot as u32);
            rows_per_turn[slot] += 1;
        }
        SessionDesign {
            row_session,
            row_turn,
            rows_per_turn,
            session_count: sessions.len(),
        }
    }

    /// Rows (ground-truth turns).
    pub fn rows(&self) -> usize {
        self.row_session.len()
    }

    /// Distinct sessions.
    pub fn sessions(&self) -> usize {
        self.session_count
    }

    /// Distinct turn numbers.
    pub fn turns(&self) -> usize {
        self.rows_per_turn.len()
    }

    /// The session index (0-based, by first appearance) of every row.
    pub fn row_sessions(&self) -> &[u32] {
        &self.row_session
    }

    /// The macro mean of per-row `values`: the mean per turn number, then the mean over
    /// turn numbers (plain sums; the official figure uses compensated sums and may differ
    /// in the last bits).
    pub fn macro_mean(&self, values: &[f64]) -> f64 {
        let mut sums = vec![0.0; self.turns()];
        for (value, &turn) in values.iter().zip(&self.row_turn) {
            sums[turn as usize] += value;
        }
        let turn_count = self.turns().max(1) as f64;
        sums.iter()
            .zip(&self.rows_per_turn)
            .map(|(sum, &rows)| sum / rows as f64)
            .sum::<f64>()
            / turn_count
    }

    /// Each session's share of the macro mean of `values`: row values divided by their
    /// turn's row count and by the number of turns, summed per session. The macro mean is
    /// the sum of the shares.
    fn session_shares(&self, values: &[f64]) -> Vec<f64> {
        let mut shares = vec![0.0; self.session_count];
        let turn_count = self.turns() as f64;
        for ((value, &session), &turn) in values.iter().zip(&self.row_session).zip(&self.row_turn) {
            shares[session as usize] +=
                value / (self.rows_per_turn[turn as usize] as f64 * turn_count);
        }
        shares
    }

    fn check_len(&self, values: &[f64]) -> Result<()> {
        if values.len() == self.rows() {
            Ok(())
        } else {
            Err(Error::InvalidParams {
                field: "values",
                reason: format!(
                    "{} values given for a ground truth of {} turns",
                    values.len(),
                    self.rows()
                ),
            })
        }
    }
}

/// Draws `counts[s]`, how many times each session appears in one bootstrap resample of
/// `counts.len()` sessions drawn with replacement.
fn draw_counts(rng: &mut ChaCha8Rng, counts: &mut [u32]) {
    counts.fill(0);
    let n = counts.len();
    for _ in 0..n {
        counts[rng.random_range(0..n)] += 1;
    }
}

/// The RNG of block `block` of a procedure seeded with `seed`.
fn block_rng(seed: u64, block: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(block as u64);
    rng
}

/// Runs `resamples` draws in blocks of [`BLOCK`], in parallel, each block with its own
/// stream; `one(rng, scratch, out)` writes one draw's values for every series into `out`.
/// Returns the draws as `[series][resample]`.
fn resample<S: Send>(
    series: usize,
    resamples: usize,
    seed: u64,
    scratch: impl Fn() -> S + Sync,
    one: impl Fn(&mut ChaCha8Rng, &mut S, &mut [f64]) + Sync,
) -> Vec<Vec<f64>> {
    let blocks = resamples.div_ceil(BLOCK);
    let per_block: Vec<Vec<f64>> = (0..blocks)
        .into_par_iter()
        .map(|block| {
            let mut rng = block_rng(seed, block);
            let mut state = scratch();
            let count = BLOCK.min(resamples - block * BLOCK);
            let mut values = vec![0.0; count * series];
            for draw in values.chunks_mut(series.max(1)).take(count) {
                one(&mut rng, &mut state, draw);
            }
            values
        })
        .collect();
    let mut out = vec![Vec::with_capacity(resamples); series];
    for block in per_block {
        for draw in block.chunks(series.max(1)) {
            for (column, value) in out.iter_mut().zip(draw) {
                column.push(*value);
            }
        }
    }
    out
}

/// The bootstrap distribution of the macro mean of each series of per-row values,
/// sessions drawn with replacement. All series share the same draws, so the distributions
/// of two series are paired (their difference is the paired bootstrap of the difference).
/// Returns `[series][resample]`.
pub fn bootstrap_macro(
    design: &SessionDesign,
    series: &[&[f64]],
    params: &ResampleParams,
) -> Result<Vec<Vec<f64>>> {
    params.validate()?;
    for values in series {
        design.check_len(values)?;
    }
    let turns = design.turns();
    let sessions = design.sessions();
    // Most designs are dense (every session has most turn numbers): then each turn's
    // resampled sum is a dot product of session counts with a contiguous row of values,
    // which vectorises. A crafted sparse design (one session with 600,000 turn numbers)
    // takes the per-row path, linear in rows.
    if sessions.saturating_mul(turns) <= 2 * design.rows() + 1024 {
        return Ok(bootstrap_dense(design, series, params));
    }
    Ok(resample(
        series.len(),
        params.resamples,
        params.seed,
        || {
            (
                vec![0_u32; sessions],
                vec![0.0_f64; design.rows()],
                vec![0.0_f64; turns],
                vec![0.0_f64; turns],
            )
        },
        |rng, (counts, weights, turn_weights, sums), out| {
            draw_counts(rng, counts);
            turn_weights.fill(0.0);
            for ((weight, &session), &turn) in weights
                .iter_mut()
                .zip(&design.row_session)
                .zip(&design.row_turn)
            {
                *weight = counts[session as usize] as f64;
                turn_weights[turn as usize] += *weight;
            }
            for (values, slot) in series.iter().zip(out.iter_mut()) {
                sums.fill(0.0);
                for ((value, weight), &turn) in
                    values.iter().zip(weights.iter()).zip(&design.row_turn)
                {
                    sums[turn as usize] += value * weight;
                }
                *slot = macro_of(sums, turn_weights);
            }
        },
    ))
}

/// The mean over turns with a positive weight of `sums / weights`.
fn macro_of(sums: &[f64], weights: &[f64]) -> f64 {
    let present = weights.iter().filter(|w| **w > 0.0).count().max(1) as f64;
    sums.iter()
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(sum, w)| sum / w)
        .sum::<f64>()
        / present
}

/// `a · b` with eight independent partial sums, so the compiler can keep them in SIMD
/// registers.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut partial = [0.0_f64; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            partial[lane] += x[lane] * y[lane];
        }
    }
    partial.iter().sum::<f64>() + tail
}

/// [`bootstrap_macro`] on a dense `[turn][session]` layout of every series.
fn bootstrap_dense(
    design: &SessionDesign,
    series: &[&[f64]],
    params: &ResampleParams,
) -> Vec<Vec<f64>> {
    let (turns, sessions) = (design.turns(), design.sessions());
    let cell =
        |row: usize| design.row_turn[row] as usize * sessions + design.row_session[row] as usize;
    let mut present = vec![0.0_f64; turns * sessions];
    for row in 0..design.rows() {
        present[cell(row)] = 1.0;
    }
    let layouts: Vec<Vec<f64>> = series
        .iter()
        .map(|values| {
            let mut layout = vec![0.0_f64; turns * sessions];
            for (row, value) in values.iter().enumerate() {
                layout[cell(row)] = *value;
            }
            layout
        })
        .collect();
    resample(
        series.len(),
        params.resamples,
        params.seed,
        || {
            (
                vec![0_u32; sessions],
                vec![0.0_f64; sessions],
                vec![0.0_f64; turns],
                vec![0.0_f64; turns],
            )
        },
        |rng, (counts, weights, turn_weights, sums), out| {
            draw_counts(rng, counts);
            for (weight, count) in weights.iter_mut().zip(counts.iter()) {
                *weight = *count as f64;
            }
            for (turn, slot) in turn_weights.iter_mut().enumerate() {
                *slot = dot(&present[turn * sessions..(turn + 1) * sessions], weights);
            }
            for (layout, slot) in layouts.iter().zip(out.iter_mut()) {
                for (turn, sum) in sums.iter_mut().enumerate() {
                    *sum = dot(&layout[turn * sessions..(turn + 1) * sessions], weights);
                }
                *slot = macro_of(sums, turn_weights);
            }
        },
    )
}

/// Two-sided p-values of paired randomization (permutation) tests, one per series of
/// per-row differences `a - b`: under the null the two methods' outputs are exchangeable
/// within a session, so each session's differences flip sign at random. The statistic is
/// the macro mean of the differences; `p = (1 + #{|T*| >= |T|}) / (1 + resamples)`.
/// Identical runs give p = 1.
pub fn permutation_test(
    design: &SessionDesign,
    differences: &[&[f64]],
    params: &ResampleParams,
) -> Result<Vec<f64>> {
    params.validate()?;
    for values in differences {
        design.check_len(values)?;
    }
    let shares: Vec<Vec<f64>> = differences
        .iter()
        .map(|d| design.session_shares(d))
        .collect();
    let observed: Vec<f64> = shares.iter().map(|s| s.iter().sum::<f64>().abs()).collect();
    // Flipped sums that equal the observed one up to rounding count as "as extreme".
    let tolerance: Vec<f64> = shares
        .iter()
        .map(|s| {
            1e-12
                * s.iter()
                    .map(|v| v.abs())
                    .sum::<f64>()
                    .max(f64::MIN_POSITIVE)
        })
        .collect();
    let sessions = design.sessions();
    let draws = resample(
        differences.len(),
        params.resamples,
        params.seed,
        || vec![false; sessions],
        |rng, flips, out| {
            for flip in flips.iter_mut() {
                *flip = rng.random();
            }
            for (session_shares, slot) in shares.iter().zip(out.iter_mut()) {
                *slot = session_shares
                    .iter()
                    .zip(flips.iter())
                    .map(|(share, flip)| if *flip { -share } else { *share })
                    .sum::<f64>()
                    .abs();
            }
        },
    );
    Ok(draws
        .iter()
        .zip(observed.iter().zip(&tolerance))
        .map(|(column, (observed, tolerance))| {
            let extreme = column
                .iter()
                .filter(|t| **t >= observed - tolerance)
                .count();
            (1 + extreme) as f64 / (1 + column.len()) as f64
        })
        .collect())
}

/// The two-sided p-value of a paired bootstrap test from paired bootstrap draws of two
/// methods' figures and their observed difference: the draws of the difference, centred
/// on the observed one, approximate its null distribution;
/// `p = (1 + #{|d* - d| >= |d|}) / (1 + resamples)`.
pub fn paired_bootstrap_p(a_draws: &[f64], b_draws: &[f64], observed: f64) -> f64 {
    let tolerance = 1e-12 * observed.abs().max(f64::MIN_POSITIVE);
    let extreme = a_draws
        .iter()
        .zip(b_draws)
        .filter(|(a, b)| (*a - *b - observed).abs() >= observed.abs() - tolerance)
        .count();
    (1 + extreme) as f64 / (1 + a_draws.len().min(b_draws.len())) as f64
}

/// Holm's step-down adjustment of p-values for multiple tests (controls the family-wise
/// error rate): sorted ascending, the i-th (0-based) of m is multiplied by `m - i`, then made
/// monotone and capped at 1. Returned in input order.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0_f64;
    for (i, &index) in order.iter().enumerate() {
        running = running.max(((m - i) as f64 * p_values[index]).min(1.0));
        adjusted[index] = running;
    }
    adjusted
}

/// What one session contributes to the two diversity metrics: the ids of its scored lists
/// and the bigrams of its responses, interned to dense numbers.
#[derive(Debug, Clone, Default)]
pub struct DiversityDesign {
    session_ids: Vec<Vec<u32>>,
    session_bigrams: Vec<Vec<u32>>,
    session_bigram_count: Vec<usize>,
    id_count: usize,
    bigram_count: usize,
    catalog_size: usize,
}

impl DiversityDesign {
    /// Interns the scored lists and responses of every row (in the order of `design`'s
    /// rows; `None` for a turn without a prediction). `catalog_size` divides catalog diversity.
    pub fn new<'a>(
        design: &SessionDesign,
        rows: impl IntoIterator<Item = Option<(&'a [String], &'a str)>>,
        catalog_size: usize,
    ) -> Self {
        let sessions = design.sessions();
        let mut ids: FastHashMap<&str, u32> = FastHashMap::default();
        let mut bigrams: FastHashMap<(String, String), u32> = FastHashMap::default();
        let mut session_ids = vec![Vec::new(); sessions];
        let mut session_bigrams = vec![Vec::new(); sessions];
        let mut session_bigram_count = vec![0; sessions];
        for (row, &session) in rows.into_iter().zip(&design.row_session) {
            let Some((list, response)) = row else {
                continue;
            };
            let session = session as usize;
            for id in list {
                let next = ids.len() as u32;
                session_ids[session].push(*ids.entry(id.as_str()).or_insert(next));
            }
            let lowered = response.to_lowercase();
            let tokens: Vec<&str> = crate::diversity::tokens(&lowered).collect();
            if tokens.len() < 2 {
                continue;
            }
            for pair in tokens.windows(2) {
                let next = bigrams.len() as u32;
                let id = *bigrams
                    .entry((pair[0].to_owned(), pair[1].to_owned()))
                    .or_insert(next);
                session_bigrams[session].push(id);
                session_bigram_count[session] += 1;
            }
        }
        // A session repeats ids and bigrams; each counts once for "distinct".
        for list in session_ids.iter_mut().chain(session_bigrams.iter_mut()) {
            list.sort_unstable();
            list.dedup();
        }
        DiversityDesign {
            session_ids,
            session_bigrams,
            session_bigram_count,
            id_count: ids.len(),
            bigram_count: bigrams.len(),
            catalog_size,
        }
    }

    /// The bootstrap draws of (catalog diversity, lexical diversity), sessions drawn with
    /// replacement: a session drawn twice adds its ids and bigrams once to the distinct
    /// counts and twice to the bigram total, as two copies of it would.
    pub fn bootstrap(&self, params: &ResampleParams) -> Result<(Vec<f64>, Vec<f64>)> {
        params.validate()?;
        let sessions = self.session_ids.len();
        let catalog = self.catalog_size.max(1) as f64;
        let mut draws = resample(
            2,
            params.resamples,
            params.seed,
            || {
                (
                    vec![0_u32; sessions],
                    vec![u32::MAX; self.id_count],
                    vec![u32::MAX; self.bigram_count],
                    0_u32,
                )
            },
            |rng, (counts, id_stamp, bigram_stamp, draw), out| {
                draw_counts(rng, counts);
                let mut distinct_ids = 0_usize;
                let mut distinct_bigrams = 0_usize;
                let mut total_bigrams = 0_usize;
                for (session, &count) in counts.iter().enumerate() {
                    if count == 0 {
                        continue;
                    }
                    for &id in &self.session_ids[session] {
                        if id_stamp[id as usize] != *draw {
                            id_stamp[id as usize] = *draw;
                            distinct_ids += 1;
                        }
                    }
                    for &id in &self.session_bigrams[session] {
                        if bigram_stamp[id as usize] != *draw {
                            bigram_stamp[id as usize] = *draw;
                            distinct_bigrams += 1;
                        }
                    }
                    total_bigrams += count as usize * self.session_bigram_count[session];
                }
                *draw += 1;
                out[0] = distinct_ids as f64 / catalog;
                out[1] = if total_bigrams == 0 {
                    0.0
                } else {
                    distinct_bigrams as f64 / total_bigrams as f64
                };
            },
        );
        let lexical = draws.pop().unwrap_or_default();
        let catalog = draws.pop().unwrap_or_default();
        Ok((catalog, lexical))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricsAtK;

    /// Rows for `sessions` sessions of `turns` turns each.
    fn rows(sessions: usize, turns: u32) -> Vec<TurnRow> {
        (0..sessions)
            .flat_map(|s| {
                (1..=turns).map(move |t| TurnRow {
                    session_id: format!("s{s}"),
                    turn_number: t,
                    user_id: String::new(),
                    gold_rank: None,
                    metrics: vec![MetricsAtK {
                        k: 1,
                        ndcg: 0.0,
                        hit: 0.0,
                        mrr: 0.0,
                        recall: 0.0,
                    }],
                })
            })
            .collect()
    }

    /// Deterministic pseudo-scores in [0, 1].
    fn values(n: usize, salt: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(salt);
        (0..n).map(|_| rng.random::<f64>()).collect()
    }

    #[test]
    fn macro_mean_averages_turns_then_turn_numbers() {
        // Turn 1 has two sessions (0 and 1), turn 2 one (1): (0.5 + 1.0) / 2.
        let mut design_rows = rows(2, 1);
        design_rows.push(TurnRow {
            turn_number: 2,
            ..design_rows[1].clone()
        });
        let design = SessionDesign::new(&design_rows);
        assert_eq!(
            (design.sessions(), design.turns(), design.rows()),
            (2, 2, 3)
        );
        assert_eq!(design.macro_mean(&[0.0, 1.0, 1.0]), 0.75);
        // The session shares add up to the macro mean.
        let shares = design.session_shares(&[0.0, 1.0, 1.0]);
        assert_eq!(shares, vec![0.0, 0.75]);
    }

    #[test]
    fn bootstrap_interval_contains_the_mean_and_shrinks_with_more_sessions() {
        let params = ResampleParams {
            resamples: 2_000,
            ..ResampleParams::default()
        };
        let mut widths = Vec::new();
        for sessions in [20, 80, 320] {
            let design = SessionDesign::new(&rows(sessions, 4));
            let scores = values(design.rows(), sessions as u64);
            let draws = bootstrap_macro(&design, &[&scores], &params).unwrap();
            let interval = Interval::percentile(&draws[0], params.confidence);
            assert!(
                interval.contains(design.macro_mean(&scores)),
                "{interval:?}"
            );
            widths.push(interval.width());
        }
        // Four times the sessions: about half the width (1 / sqrt(4)).
        assert!(
            widths[1] < widths[0] * 0.7 && widths[2] < widths[1] * 0.7,
            "{widths:?}"
        );
    }

    #[test]
    fn bootstrap_width_matches_the_normal_approximation() {
        // 400 sessions of one turn, values 0/1 with p = 0.3: the standard error of the mean is
        // sqrt(0.3 * 0.7 / 400) = 0.0229, so the 95% interval is about 2 * 1.96 * 0.0229 wide.
        let design = SessionDesign::new(&rows(400, 1));
        let scores: Vec<f64> = (0..400)
            .map(|i| if i % 10 < 3 { 1.0 } else { 0.0 })
            .collect();
        let draws = bootstrap_macro(&design, &[&scores], &ResampleParams::default()).unwrap();
        let width = Interval::percentile(&draws[0], 0.95).width();
        let expected = 2.0 * 1.959_964 * (0.3_f64 * 0.7 / 400.0).sqrt();
        assert!(
            (width - expected).abs() < 0.1 * expected,
            "{width} vs {expected}"
        );
    }

    #[test]
    fn dense_and_per_row_paths_agree() {
        // Sessions with different numbers of turns: dense layout with holes.
        let mut design_rows = rows(30, 8);
        design_rows.retain(|r| r.turn_number <= 3 + r.session_id[1..].parse::<u32>().unwrap() % 6);
        let design = SessionDesign::new(&design_rows);
        let scores = values(design.rows(), 11);
        let params = ResampleParams {
            resamples: 300,
            ..ResampleParams::default()
        };
        let dense = bootstrap_dense(&design, &[&scores], &params);
        let turns = design.turns();
        let per_row = resample(
            1,
            params.resamples,
            params.seed,
            || {
                (
                    vec![0_u32; design.sessions()],
                    vec![0.0; turns],
                    vec![0.0; turns],
                )
            },
            |rng, (counts, weights, sums), out| {
                draw_counts(rng, counts);
                weights.fill(0.0);
                sums.fill(0.0);
                for (row, value) in scores.iter().enumerate() {
                    let w = counts[design.row_session[row] as usize] as f64;
                    weights[design.row_turn[row] as usize] += w;
                    sums[design.row_turn[row] as usize] += w * value;
                }
                out[0] = macro_of(sums, weights);
            },
        );
        for (a, b) in dense[0].iter().zip(&per_row[0]) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn bootstrap_is_seeded_and_independent_of_threads() {
        let design = SessionDesign::new(&rows(50, 3));
        let scores = values(design.rows(), 7);
        let params = ResampleParams {
            resamples: 700,
            ..ResampleParams::default()
        };
        let first = bootstrap_macro(&design, &[&scores], &params).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let second = pool.install(|| bootstrap_macro(&design, &[&scores], &params).unwrap());
        assert_eq!(first, second);
        assert_eq!(first[0].len(), 700);
        let other_seed = ResampleParams { seed: 1, ..params };
        assert_ne!(
            first,
            bootstrap_macro(&design, &[&scores], &other_seed).unwrap()
        );
    }

    #[test]
    fn permutation_test_separates_equal_from_better_runs() {
        let design = SessionDesign::new(&rows(80, 8));
        let same = vec![0.0; design.rows()];
        let better: Vec<f64> = values(design.rows(), 4)
            .iter()
            .map(|v| v * 0.3 + 0.1)
            .collect();
        let noise: Vec<f64> = values(design.rows(), 5)
            .iter()
            .zip(values(design.rows(), 6))
            .map(|(a, b)| a - b)
            .collect();
        let p = permutation_test(
            &design,
            &[&same, &better, &noise],
            &ResampleParams::default(),
        )
        .unwrap();
        assert_eq!(p[0], 1.0, "identical runs");
        assert!(p[1] < 0.001, "a clearly better run: {}", p[1]);
        assert!(p[2] > 0.05, "pure noise: {}", p[2]);
    }

    #[test]
    fn permutation_p_matches_exact_enumeration_on_a_tiny_case() {
        // Three sessions of one turn with differences 1, 2, 3: of the 8 sign patterns,
        // |sum| >= 6 holds for 2 (all +, all -), so the exact p is 2/8 = 0.25.
        let design = SessionDesign::new(&rows(3, 1));
        let p = permutation_test(
            &design,
            &[&[1.0, 2.0, 3.0]],
            &ResampleParams {
                resamples: 40_000,
                ..ResampleParams::default()
            },
        )
        .unwrap();
        assert!((p[0] - 0.25).abs() < 0.01, "{}", p[0]);
    }

    #[test]
    fn paired_bootstrap_p_is_one_for_identical_draws_and_small_for_a_clear_gain() {
        let draws = vec![0.2, 0.25, 0.3];
        assert_eq!(paired_bootstrap_p(&draws, &draws, 0.0), 1.0);
        let design = SessionDesign::new(&rows(80, 8));
        let a: Vec<f64> = values(design.rows(), 8)
            .iter()
            .map(|v| v * 0.5 + 0.3)
            .collect();
        let b = values(design.rows(), 9)
            .iter()
            .map(|v| v * 0.5)
            .collect::<Vec<_>>();
        let params = ResampleParams::default();
        let draws = bootstrap_macro(&design, &[&a, &b], &params).unwrap();
        let observed = design.macro_mean(&a) - design.macro_mean(&b);
        assert!(paired_bootstrap_p(&draws[0], &draws[1], observed) < 0.001);
    }

    #[test]
    fn holm_adjusts_in_step_down_order() {
        // Sorted 0.01, 0.02, 0.03, 0.5 of m = 4: 0.04, 0.06, 0.06 (monotone), 0.5.
        let adjusted = holm(&[0.03, 0.5, 0.01, 0.02]);
        let expected = [0.06, 0.5, 0.04, 0.06];
        for (a, e) in adjusted.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{adjusted:?}");
        }
        assert_eq!(holm(&[0.9, 0.8]), vec![1.0, 1.0]);
        assert!(holm(&[]).is_empty());
    }

    #[test]
    fn diversity_bootstrap_brackets_the_full_sample_figures() {
        let design = SessionDesign::new(&rows(60, 2));
        let lists: Vec<Vec<String>> = (0..design.rows())
            .map(|r| (0..5).map(|j| format!("t{}", r * 5 + j)).collect())
            .collect();
        let responses: Vec<String> = (0..design.rows())
            .map(|r| format!("try song {} by artist {}", r % 40, r % 7))
            .collect();
        let rows = lists
            .iter()
            .zip(&responses)
            .map(|(l, r)| Some((l.as_slice(), r.as_str())));
        let diversity = DiversityDesign::new(&design, rows, 1_000);
        let (catalog, lexical) = diversity
            .bootstrap(&ResampleParams {
                resamples: 500,
                ..ResampleParams::default()
            })
            .unwrap();
        let full_catalog =
            crate::diversity::catalog_diversity(lists.iter().map(Vec::as_slice), 1_000);
        let full_lexical =
            crate::diversity::lexical_diversity(responses.iter().map(String::as_str));
        // Resampling with replacement repeats sessions: fewer distinct ids and bigrams,
        // so the full-sample figure sits at the top of the draws, never far above them.
        let max_catalog = catalog.iter().copied().fold(0.0, f64::max);
        assert!(max_catalog <= full_catalog + 1e-12);
        let min_catalog = catalog.iter().copied().fold(1.0, f64::min);
        assert!(
            min_catalog > 0.4 * full_catalog,
            "{min_catalog} {full_catalog}"
        );
        assert!(lexical.iter().all(|l| *l > 0.0 && *l <= 1.0));
        assert!(lexical.iter().copied().fold(0.0, f64::max) <= full_lexical + 0.05);
        // Recentred, the interval holds the full-sample figure.
        let interval = Interval::recentred(&catalog, full_catalog, 0.95);
        assert!(interval.contains(full_catalog), "{interval:?}");
        assert!(!Interval::percentile(&catalog, 0.95).contains(full_catalog));
    }
}
