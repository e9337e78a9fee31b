//! Small vector helpers shared by the indexes and retrievers: dot products, normalisation,
//! checks and top-k selection.

use std::cmp::Ordering;

use crate::{Error, Result};

/// The dot product of two equally long slices.
///
/// On x86-64 CPUs with AVX-512 or AVX2 and FMA (detected once at run time, so builds need no
/// `target-cpu` flag) the loop runs on 16- or 8-wide fused multiply-adds through `pulp`'s safe
/// SIMD; elsewhere a 16-accumulator loop lets the compiler vectorise for the baseline target.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        let arch = *SIMD_ARCH;
        if !matches!(arch, pulp::Arch::Scalar) {
            return arch.dispatch(SimdDot { a, b });
        }
    }
    dot_portable(a, b)
}

/// The CPU's best instruction set, detected once.
pub(crate) static SIMD_ARCH: std::sync::LazyLock<pulp::Arch> =
    std::sync::LazyLock::new(pulp::Arch::new);

/// `dot` for one SIMD instruction set: four independent accumulators hide the FMA latency.
#[cfg(target_arch = "x86_64")]
struct SimdDot<'a> {
    a: &'a [f32],
    b: &'a [f32],
}

#[cfg(target_arch = "x86_64")]
impl pulp::WithSimd for SimdDot<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) -> f32 {
        let (head_a, tail_a) = S::as_simd_f32s(self.a);
        let (head_b, tail_b) = S::as_simd_f32s(self.b);
        let zero = simd.splat_f32s(0.0);
        let mut acc = [zero; 4];
        let (quads_a, rest_a) = head_a.as_chunks::<4>();
        let (quads_b, rest_b) = head_b.as_chunks::<4>();
        for (qa, qb) in quads_a.iter().zip(quads_b) {
            for ((sum, &x), &y) in acc.iter_mut().zip(qa).zip(qb) {
                *sum = simd.mul_add_e_f32s(x, y, *sum);
            }
        }
        for (&x, &y) in rest_a.iter().zip(rest_b) {
            acc[0] = simd.mul_add_e_f32s(x, y, acc[0]);
        }
        let pairs = [simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3])];
        let total = simd.reduce_sum_f32s(simd.add_f32s(pairs[0], pairs[1]));
        total + tail_a.iter().zip(tail_b).map(|(x, y)| x * y).sum::<f32>()
    }
}

/// The dot product without run-time dispatch.
///
/// Sixteen independent accumulators let the compiler vectorise the loop even on the baseline
/// x86-64 target (float addition is not associative, so a single accumulator stays scalar).
pub(crate) fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    const LANES: usize = 16;
    let mut acc = [0f32; LANES];
    let (chunks_a, tail_a) = a.as_chunks::<LANES>();
    let (chunks_b, tail_b) = b.as_chunks::<LANES>();
    for (ca, cb) in chunks_a.iter().zip(chunks_b) {
        for ((sum, x), y) in acc.iter_mut().zip(ca).zip(cb) {
            *sum += x * y;
        }
    }
    let tail: f32 = tail_a.iter().zip(tail_b).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Scales `v` to unit length in place; a zero vector is left as it is. Returns the old norm.
pub fn normalize(v: &mut [f32]) -> f32 {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    norm
}

/// Checks a flat row-major matrix: its length is a multiple of `dim` and every value finite.
/// `name` names each row in errors (e.g. the track id).
pub(crate) fn check_rows<'a>(
    data: &[f32],
    dim: usize,
    name: impl Fn(usize) -> std::borrow::Cow<'a, str>,
) -> Result<()> {
    if dim == 0 {
        return Err(Error::InvalidParameter {
            name: "dim",
            reason: "vectors must have at least one dimension".into(),
        });
    }
    if !data.len().is_multiple_of(dim) {
        return Err(Error::DimensionMismatch {
            what: format!("a matrix of {} values", data.len()),
            expected: dim,
            found: data.len() % dim,
        });
    }
    for (row, values) in data.chunks_exact(dim).enumerate() {
        if values.iter().any(|x| !x.is_finite()) {
            return Err(Error::NonFiniteVector {
                what: name(row).into_owned(),
            });
        }
    }
    Ok(())
}

/// Checks one query vector against an index's dimension.
pub(crate) fn check_query(query: &[f32], dim: usize, what: impl Fn() -> String) -> Result<()> {
    if query.len() != dim {
        return Err(Error::DimensionMismatch {
            what: what(),
            expected: dim,
            found: query.len(),
        });
    }
    if query.iter().any(|x| !x.is_finite()) {
        return Err(Error::NonFiniteVector { what: what() });
    }
    Ok(())
}

/// A checked copy of `query` scaled to unit length (what both indexes search with).
pub(crate) fn unit_query(query: &[f32], dim: usize, what: impl Fn() -> String) -> Result<Vec<f32>> {
    check_query(query, dim, what)?;
    let mut unit = query.to_vec();
    normalize(&mut unit);
    Ok(unit)
}

/// Checks labelled rows: finite values named by their id, and one row per id.
pub(crate) fn check_labelled(ids: &[String], vectors: &[f32], dim: usize) -> Result<()> {
    check_rows(vectors, dim, |row| {
        ids.get(row)
            .map_or_else(|| format!("row {row}").into(), |id| id.as_str().into())
    })?;
    if vectors.len() / dim != ids.len() {
        return Err(Error::DimensionMismatch {
            what: format!("{} ids with {} values", ids.len(), vectors.len()),
            expected: ids.len() * dim,
            found: vectors.len(),
        });
    }
    Ok(())
}

/// Checks labelled rows and scales every row to unit length: the input of both indexes.
pub(crate) fn unit_rows(ids: &[String], mut vectors: Vec<f32>, dim: usize) -> Result<Vec<f32>> {
    check_labelled(ids, &vectors, dim)?;
    vectors.chunks_exact_mut(dim).for_each(|row| {
        normalize(row);
    });
    Ok(vectors)
}

/// Orders (row, score) pairs best first: higher score, then lower row (deterministic ties).
pub(crate) fn best_first(a: &(usize, f32), b: &(usize, f32)) -> Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// The `k` best (row, score) pairs of `scores`, best first, ties by lower row (a shorthand
/// for tests).
#[cfg(test)]
pub(crate) fn top_k(scores: impl IntoIterator<Item = (usize, f32)>, k: usize) -> Vec<(usize, f32)> {
    let mut top = super::scan::TopK::new(k);
    for (row, score) in scores {
        top.offer(row, score);
    }
    top.into_sorted()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_sum_for_odd_lengths() {
        for len in [0, 1, 7, 8, 16, 33, 40, 100, 384] {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-4, "len {len}");
            assert!((dot_portable(&a, &b) - naive).abs() < 1e-4, "len {len}");
        }
    }

    #[test]
    fn normalize_gives_unit_length_and_keeps_zero() {
        let mut v = vec![3.0, 4.0];
        assert_eq!(normalize(&mut v), 5.0);
        assert!((dot(&v, &v) - 1.0).abs() < 1e-6);
        let mut zero = vec![0.0; 3];
        normalize(&mut zero);
        assert_eq!(zero, vec![0.0; 3]);
    }

    #[test]
    fn top_k_is_sorted_with_row_ties() {
        let scores = vec![(0, 0.5), (1, 0.9), (2, 0.5), (3, 0.1), (4, 0.9), (5, 0.7)];
        assert_eq!(
            top_k(scores.clone(), 4),
            vec![(1, 0.9), (4, 0.9), (5, 0.7), (0, 0.5)]
        );
        assert_eq!(top_k(scores.clone(), 10).len(), 6);
        assert!(top_k(scores, 0).is_empty());
    }

    #[test]
    fn top_k_matches_full_sort_on_many_values() {
        let scores: Vec<(usize, f32)> = (0..1000)
            .map(|i| (i, ((i * 7919) % 1000) as f32 / 13.0))
            .collect();
        let mut sorted = scores.clone();
        sorted.sort_by(best_first);
        sorted.truncate(20);
        assert_eq!(top_k(scores, 20), sorted);
    }

    #[test]
    fn top_k_keeps_lower_rows_among_ties_past_the_floor() {
        // Few distinct scores, so rows tied with the k-th best keep arriving after the first
        // cuts: they must be kept or dropped by row exactly as a full sort does. (No NaN: the
        // indexes refuse non-finite rows and queries, and the top-k drops NaN scores.)
        let scores: Vec<(usize, f32)> = (0..5000)
            .map(|i| (i, ((i * 7919) % 11) as f32 / 4.0))
            .collect();
        for k in [1, 3, 20, 300, 499, 4999, 6000] {
            let mut sorted = scores.clone();
            sorted.sort_by(best_first);
            sorted.truncate(k);
            let got = top_k(scores.clone(), k);
            assert_eq!(got.len(), sorted.len(), "k {k}");
            for (a, b) in got.iter().zip(&sorted) {
                assert!(
                    a.0 == b.0 && a.1.total_cmp(&b.1).is_eq(),
                    "k {k}: {a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn bad_rows_are_named() {
        let err = check_rows(&[1.0, f32::NAN], 1, |row| format!("row {row}").into()).unwrap_err();
        assert!(err.to_string().contains("row 1"), "{err}");
        assert!(check_rows(&[1.0, 2.0, 3.0], 2, |_| "x".into()).is_err());
    }
}
