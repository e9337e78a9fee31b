//! Exact scoring of many queries against every row, for [`ExactIndex::search_batch`]: a
//! register-tiled SIMD kernel and a running top-k per query.
//!
//! Rows are scored in chunks small enough to stay in the L2 cache. Each chunk is first
//! repacked so that one SIMD register holds one dimension of `lanes` consecutive rows; a tile
//! of queries then multiplies broadcast query values into a few such registers (an outer
//! product). Every loaded value feeds several fused multiply-adds and no horizontal sums are
//! needed, which is what a BLAS matrix product does, without a scores matrix in memory: each
//! tile's scores go straight to the queries' running top-k, which rejects almost all of them
//! with one comparison.
//!
//! Each score sums its products in dimension order whatever the tile, chunk or thread, so the
//! results do not depend on the number of threads.
//!
//! [`ExactIndex::search_batch`]: super::ExactIndex

use pulp::{Simd, WithSimd};

use super::vectors::best_first;

/// Bytes of packed rows per chunk: a quarter to half of a current L2 cache, so the chunk and
/// the tile of queries being scored against it both stay there.
const CHUNK_BYTES: usize = 256 * 1024;

/// The best `k` (row, score) pairs offered so far, in the order of [`best_first`] (higher
/// score, then lower row), whatever the order they are offered in.
#[derive(Debug, Clone)]
pub(crate) struct TopK {
    k: usize,
    /// Up to `2k` candidates, cut back to the best `k` when full: amortised linear time
    /// without a heap's per-element work.
    kept: Vec<(usize, f32)>,
    /// The k-th best pair at the last cut: `k` kept pairs are at least as good, so a pair
    /// that does not beat it can never be among the best `k`.
    floor: (usize, f32),
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK {
            k,
            // Large k (up to the whole index) grows on demand instead of reserving 2k.
            kept: Vec::with_capacity(2 * k.min(512)),
            // Nothing beats +inf at row 0, so k = 0 keeps nothing without a branch per offer.
            floor: if k == 0 {
                (0, f32::INFINITY)
            } else {
                (usize::MAX, f32::NEG_INFINITY)
            },
        }
    }

    /// The score a pair must reach to have a chance (ties are then decided by row).
    #[inline(always)]
    pub(crate) fn floor_score(&self) -> f32 {
        self.floor.1
    }

    #[inline(always)]
    pub(crate) fn offer(&mut self, row: usize, score: f32) {
        let (floor_row, floor_score) = self.floor;
        // Written so that NaN is rejected too.
        let beats = score > floor_score || (score == floor_score && row < floor_row);
        if beats {
            self.kept.push((row, score));
            if self.kept.len() >= 2 * self.k {
                self.cut();
            }
        }
    }

    fn cut(&mut self) {
        let k = self.k;
        self.kept.select_nth_unstable_by(k - 1, best_first);
        self.kept.truncate(k);
        self.floor = self.kept[k - 1];
    }

    /// Offers every pair kept by `other` (a top-k over other rows).
    pub(crate) fn absorb(&mut self, other: &TopK) {
        for &(row, score) in &other.kept {
            self.offer(row, score);
        }
    }

    /// The best `k` pairs, best first.
    pub(crate) fn into_sorted(mut self) -> Vec<(usize, f32)> {
        if self.kept.len() > self.k {
            self.cut();
        }
        self.kept.sort_unstable_by(best_first);
        self.kept
    }
}

/// One job for the kernel: every row of `rows` against every query of `queries` (both
/// row-major with `dim` values per row, queries of unit length), feeding `tops` (one per
/// query). Row `i` of `rows` is reported as `first_row + i`.
pub(crate) struct ScoreRows<'a> {
    pub queries: &'a [f32],
    pub rows: &'a [f32],
    pub first_row: usize,
    pub dim: usize,
    pub tops: &'a mut [TopK],
}

impl WithSimd for ScoreRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        // Tiles of queries x register columns whose accumulators, the loaded row registers and
        // one broadcast query value fit in the register file: 32 registers with AVX-512
        // (24 + 3 + 1), 16 with AVX2 (12 + 3 + 1).
        if S::F32_LANES >= 16 {
            score_rows::<S, 8, 3>(simd, self)
        } else if S::F32_LANES >= 8 {
            score_rows::<S, 4, 3>(simd, self)
        } else {
            score_rows::<S, 4, 4>(simd, self)
        }
    }
}

/// The kernel for tiles of `Q` queries x `P` registers of rows.
#[inline(always)]
fn score_rows<S: Simd, const Q: usize, const P: usize>(simd: S, job: ScoreRows<'_>) {
    let ScoreRows {
        queries,
        rows,
        first_row,
        dim,
        tops,
    } = job;
    let query_count = tops.len();
    if dim == 0 || query_count == 0 || queries.len() != query_count * dim {
        return;
    }
    let lanes = S::F32_LANES;
    let tile_rows = P * lanes;
    let chunk_rows = (CHUNK_BYTES / (4 * dim)).max(1).div_ceil(tile_rows) * tile_rows;
    let row_count = rows.len() / dim;
    let mut packed = vec![0f32; chunk_rows.min(row_count.div_ceil(tile_rows) * tile_rows) * dim];
    let mut tile_scores = vec![0f32; tile_rows];

    for chunk_start in (0..row_count).step_by(chunk_rows) {
        let chunk_len = chunk_rows.min(row_count - chunk_start);
        let padded = chunk_len.div_ceil(tile_rows) * tile_rows;
        let chunk = &rows[chunk_start * dim..(chunk_start + chunk_len) * dim];
        pack(chunk, dim, lanes, &mut packed[..padded * dim]);
        // `padded * dim` is a multiple of `lanes`: no scalar tail.
        let (registers, _) = S::as_simd_f32s(&packed[..padded * dim]);

        for first_query in (0..query_count).step_by(Q) {
            let in_tile = Q.min(query_count - first_query);
            // A short last tile repeats its last query; those scores are not used.
            let tile_queries: [&[f32]; Q] = std::array::from_fn(|i| {
                let q = (first_query + i).min(query_count - 1);
                &queries[q * dim..(q + 1) * dim]
            });
            for column in (0..padded).step_by(tile_rows) {
                let first_register = column / lanes * dim;
                let columns: [&[S::f32s]; P] = std::array::from_fn(|p| {
                    &registers[first_register + p * dim..first_register + (p + 1) * dim]
                });
                let sums = tile::<S, Q, P>(simd, &tile_queries, &columns, dim);
                let valid = tile_rows.min(chunk_len - column);
                let row0 = first_row + chunk_start + column;
                for (query_sums, top) in sums.iter().zip(&mut tops[first_query..]).take(in_tile) {
                    let best = query_sums[1..]
                        .iter()
                        .fold(query_sums[0], |m, &s| simd.max_f32s(m, s));
                    // Most tiles hold nothing better than the query's current k-th score (a NaN
                    // goes on to `offer`, which rejects it).
                    if simd.reduce_max_f32s(best) < top.floor_score() {
                        continue;
                    }
                    let (out, _) = S::as_mut_simd_f32s(&mut tile_scores);
                    out.copy_from_slice(query_sums);
                    for (i, &score) in tile_scores[..valid].iter().enumerate() {
                        top.offer(row0 + i, score);
                    }
                }
            }
        }
    }
}

/// Dot products of `Q` queries with the `P * lanes` rows of `columns` (each one register per
/// dimension), summed in dimension order.
#[inline(always)]
fn tile<S: Simd, const Q: usize, const P: usize>(
    simd: S,
    queries: &[&[f32]; Q],
    columns: &[&[S::f32s]; P],
    dim: usize,
) -> [[S::f32s; P]; Q] {
    let mut sums = [[simd.splat_f32s(0.0); P]; Q];
    for d in 0..dim {
        let row_values: [S::f32s; P] = std::array::from_fn(|p| columns[p][d]);
        for (query, query_sums) in queries.iter().zip(&mut sums) {
            let value = simd.splat_f32s(query[d]);
            for (sum, &rows) in query_sums.iter_mut().zip(&row_values) {
                *sum = simd.mul_add_e_f32s(value, rows, *sum);
            }
        }
    }
    sums
}

/// Repacks row-major `chunk` into `packed`: for each group of `lanes` rows, `dim` runs of
/// `lanes` values (dimension `d` of each row of the group), zeros past the last row.
#[inline(always)]
fn pack(chunk: &[f32], dim: usize, lanes: usize, packed: &mut [f32]) {
    let rows = chunk.len() / dim;
    for (group, out) in packed.chunks_exact_mut(lanes * dim).enumerate() {
        let first = group * lanes;
        for lane in 0..lanes {
            let row = first + lane;
            if row < rows {
                let values = &chunk[row * dim..(row + 1) * dim];
                for (slot, &value) in out[lane..].iter_mut().step_by(lanes).zip(values) {
                    *slot = value;
                }
            } else {
                out[lane..]
                    .iter_mut()
                    .step_by(lanes)
                    .for_each(|slot| *slot = 0.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::vectors::top_k;

    fn scores_naive(queries: &[f32], rows: &[f32], dim: usize, k: usize) -> Vec<Vec<usize>> {
        queries
            .chunks_exact(dim)
            .map(|q| {
                let all = rows
                    .chunks_exact(dim)
                    .enumerate()
                    .map(|(i, r)| (i, q.iter().zip(r).map(|(a, b)| a * b).sum::<f32>()));
                let mut all: Vec<(usize, f32)> = all.collect();
                all.sort_by(best_first);
                all.truncate(k);
                all.into_iter().map(|(i, _)| i).collect()
            })
            .collect()
    }

    /// Values on a coarse grid: every product and partial sum is exact in f32, so every order
    /// of summation gives the same score and ties are real ties.
    fn grid_values(count: usize, seed: usize) -> Vec<f32> {
        (0..count)
            .map(|i| ((i * 7 + seed * 13) % 9) as f32 * 0.25 - 1.0)
            .collect()
    }

    fn run(simd_run: impl Fn(ScoreRows<'_>), dim: usize, rows: usize, queries: usize, k: usize) {
        let data = grid_values(rows * dim, 1);
        let query_data = grid_values(queries * dim, 2);
        let mut tops: Vec<TopK> = (0..queries).map(|_| TopK::new(k)).collect();
        simd_run(ScoreRows {
            queries: &query_data,
            rows: &data,
            first_row: 0,
            dim,
            tops: &mut tops,
        });
        let got: Vec<Vec<usize>> = tops
            .into_iter()
            .map(|t| t.into_sorted().into_iter().map(|(i, _)| i).collect())
            .collect();
        assert_eq!(
            got,
            scores_naive(&query_data, &data, dim, k),
            "dim {dim}, rows {rows}, queries {queries}, k {k}"
        );
    }

    /// Shapes around every edge: short tiles, padded columns, several chunks, k above the
    /// row count and 0.
    const SHAPES: [(usize, usize, usize, usize); 7] = [
        (3, 1, 1, 1),
        (5, 17, 3, 4),
        (16, 100, 9, 7),
        (33, 250, 13, 20),
        (384, 700, 10, 20),
        (7, 40, 5, 100),
        (8, 30, 4, 0),
    ];

    #[test]
    fn every_instruction_set_matches_a_naive_scan() {
        for (dim, rows, queries, k) in SHAPES {
            run(
                |job| job.with_simd(pulp::Scalar::new()),
                dim,
                rows,
                queries,
                k,
            );
            run(|job| pulp::Arch::new().dispatch(job), dim, rows, queries, k);
            #[cfg(target_arch = "x86_64")]
            if let Some(simd) = pulp::x86::V3::try_new() {
                run(|job| Simd::vectorize(simd, job), dim, rows, queries, k);
            }
        }
    }

    #[test]
    fn top_k_keeps_the_best_in_any_order() {
        let pairs: Vec<(usize, f32)> = (0..500).map(|i| (i, ((i * 7919) % 101) as f32)).collect();
        let mut sorted = pairs.clone();
        sorted.sort_by(best_first);
        for k in [1, 5, 20, 600] {
            let mut reversed = TopK::new(k);
            pairs.iter().rev().for_each(|&(r, s)| reversed.offer(r, s));
            let want: Vec<(usize, f32)> = sorted.iter().copied().take(k).collect();
            assert_eq!(reversed.into_sorted(), want, "k {k}");
            assert_eq!(top_k(pairs.clone(), k), want, "k {k}");
        }
        let mut halves = TopK::new(20);
        let mut first = TopK::new(20);
        let mut second = TopK::new(20);
        pairs[..250].iter().for_each(|&(r, s)| first.offer(r, s));
        pairs[250..].iter().for_each(|&(r, s)| second.offer(r, s));
        halves.absorb(&second);
        halves.absorb(&first);
        assert_eq!(halves.into_sorted(), sorted[..20].to_vec());
    }

    #[test]
    fn nan_is_never_kept() {
        let mut top = TopK::new(3);
        top.offer(0, f32::NAN);
        top.offer(1, 0.5);
        assert_eq!(top.into_sorted(), vec![(1, 0.5)]);
    }
}
