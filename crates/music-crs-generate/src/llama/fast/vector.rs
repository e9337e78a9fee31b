//! f32 kernels of attention (scores of keys, weighted sums of values) and dot products,
//! AVX2/FMA when the CPU has them.

/// `a . b` (equal lengths).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { x86::dot(a, b) };
    }
    dot_scalar(a, b)
}

/// Appends `scale * (query . key_t)` for `count` keys, key `t` at `keys[t * stride..]`.
pub(crate) fn scores(
    query: &[f32],
    keys: &[f32],
    stride: usize,
    count: usize,
    scale: f32,
    out: &mut Vec<f32>,
) {
    let dim = query.len();
    assert!(count == 0 || (count - 1) * stride + dim <= keys.len());
    #[cfg(target_arch = "x86_64")]
    if avx2() && dim.is_multiple_of(8) {
        // SAFETY: the CPU has AVX2 and FMA; the keys lie inside `keys` (checked above).
        return unsafe { x86::scores(query, keys, stride, count, scale, out) };
    }
    for t in 0..count {
        out.push(dot_scalar(query, &keys[t * stride..][..dim]) * scale);
    }
}

/// `out += sum_t weights[t] * value_t`, value `t` at `values[t * stride..]`.
pub(crate) fn weighted_sum(weights: &[f32], values: &[f32], stride: usize, out: &mut [f32]) {
    let dim = out.len();
    let count = weights.len();
    assert!(count == 0 || (count - 1) * stride + dim <= values.len());
    #[cfg(target_arch = "x86_64")]
    if avx2() && dim.is_multiple_of(8) {
        // SAFETY: the CPU has AVX2 and FMA; the values lie inside `values` (checked above).
        return unsafe { x86::weighted_sum(weights, values, stride, out) };
    }
    for (t, &w) in weights.iter().enumerate() {
        axpy_scalar(out, w, &values[t * stride..][..dim]);
    }
}

fn dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy_scalar(y: &mut [f32], alpha: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    static AVX2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVX2.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        // SAFETY: every load reads 8 values below n.
        unsafe {
            while i + 16 <= n {
                s0 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(a.as_ptr().add(i)),
                    _mm256_loadu_ps(b.as_ptr().add(i)),
                    s0,
                );
                s1 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(a.as_ptr().add(i + 8)),
                    _mm256_loadu_ps(b.as_ptr().add(i + 8)),
                    s1,
                );
                i += 16;
            }
            while i + 8 <= n {
                s0 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(a.as_ptr().add(i)),
                    _mm256_loadu_ps(b.as_ptr().add(i)),
                    s0,
                );
                i += 8;
            }
            let s = _mm256_add_ps(s0, s1);
            let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_movehdup_ps(s));
            let mut sum = _mm_cvtss_f32(s);
            while i < n {
                sum += a[i] * b[i];
                i += 1;
            }
            sum
        }
    }

    /// # Safety
    /// AVX2 and FMA; `query.len()` a multiple of 8; every key inside `keys`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn scores(
        query: &[f32],
        keys: &[f32],
        stride: usize,
        count: usize,
        scale: f32,
        out: &mut Vec<f32>,
    ) {
        let dim = query.len();
        let q = query.as_ptr();
        let k = keys.as_ptr();
        out.reserve(count);
        let mut t = 0;
        // SAFETY: the caller's contract.
        unsafe {
            while t + 4 <= count {
                let mut acc = [_mm256_setzero_ps(); 4];
                let mut d = 0;
                while d < dim {
                    let qv = _mm256_loadu_ps(q.add(d));
                    for (j, acc) in acc.iter_mut().enumerate() {
                        *acc =
                            _mm256_fmadd_ps(qv, _mm256_loadu_ps(k.add((t + j) * stride + d)), *acc);
                    }
                    d += 8;
                }
                // Four horizontal sums at once.
                let h = _mm256_hadd_ps(
                    _mm256_hadd_ps(acc[0], acc[1]),
                    _mm256_hadd_ps(acc[2], acc[3]),
                );
                let sums = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
                let mut four = [0f32; 4];
                _mm_storeu_ps(four.as_mut_ptr(), _mm_mul_ps(sums, _mm_set1_ps(scale)));
                out.extend_from_slice(&four);
                t += 4;
            }
            // The last keys through the same arithmetic (the last one repeated as filler),
            // so a key's score never depends on where a chunk of keys ends.
            if t < count {
                let mut acc = [_mm256_setzero_ps(); 4];
                let mut d = 0;
                while d < dim {
                    let qv = _mm256_loadu_ps(q.add(d));
                    for (j, acc) in acc.iter_mut().enumerate() {
                        let key = (t + j).min(count - 1);
                        *acc = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k.add(key * stride + d)), *acc);
                    }
                    d += 8;
                }
                let h = _mm256_hadd_ps(
                    _mm256_hadd_ps(acc[0], acc[1]),
                    _mm256_hadd_ps(acc[2], acc[3]),
                );
                let sums = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
                let mut four = [0f32; 4];
                _mm_storeu_ps(four.as_mut_ptr(), _mm_mul_ps(sums, _mm_set1_ps(scale)));
                out.extend_from_slice(&four[..count - t]);
            }
        }
    }

    /// # Safety
    /// AVX2 and FMA; `out.len()` a multiple of 8; every value inside `values`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weighted_sum(
        weights: &[f32],
        values: &[f32],
        stride: usize,
        out: &mut [f32],
    ) {
        let dim = out.len();
        let v = values.as_ptr();
        let mut start = 0;
        // SAFETY: the caller's contract.
        unsafe {
            // Columns in blocks of 32 kept in registers over all the values.
            while start < dim {
                let width = (dim - start).min(32) / 8;
                let mut acc = [_mm256_setzero_ps(); 4];
                for (j, acc) in acc.iter_mut().enumerate().take(width) {
                    *acc = _mm256_loadu_ps(out.as_ptr().add(start + 8 * j));
                }
                for (t, &w) in weights.iter().enumerate() {
                    let wv = _mm256_set1_ps(w);
                    let row = v.add(t * stride + start);
                    for (j, acc) in acc.iter_mut().enumerate().take(width) {
                        *acc = _mm256_fmadd_ps(wv, _mm256_loadu_ps(row.add(8 * j)), *acc);
                    }
                }
                for (j, acc) in acc.iter().enumerate().take(width) {
                    _mm256_storeu_ps(out.as_mut_ptr().add(start + 8 * j), *acc);
                }
                start += 8 * width;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_and_scalar_agree() {
        for n in [0, 1, 7, 8, 9, 16, 63, 64, 100] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 1.3).cos()).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot(&a, &b) as f64 - want).abs() < 1e-4, "{n}");
        }
    }

    #[test]
    fn a_score_does_not_depend_on_the_keys_beside_it() {
        let query: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
        let keys: Vec<f32> = (0..9 * 64).map(|i| (i as f32 * 0.013).cos()).collect();
        let mut all = Vec::new();
        scores(&query, &keys, 64, 9, 0.125, &mut all);
        for start in 0..9 {
            let mut part = Vec::new();
            scores(&query, &keys[start * 64..], 64, 9 - start, 0.125, &mut part);
            assert_eq!(part, all[start..]);
        }
    }

    #[test]
    fn attention_kernels_match_plain_loops() {
        for (dim, stride, count) in [
            (8, 8, 1),
            (64, 192, 7),
            (64, 64, 9),
            (40, 48, 4),
            (12, 12, 5),
        ] {
            let query: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.3).sin()).collect();
            let keys: Vec<f32> = (0..count * stride)
                .map(|i| (i as f32 * 0.11).cos())
                .collect();
            let mut got = Vec::new();
            scores(&query, &keys, stride, count, 0.5, &mut got);
            assert_eq!(got.len(), count);
            for (t, s) in got.iter().enumerate() {
                let want = 0.5 * dot_scalar(&query, &keys[t * stride..][..dim]);
                assert!((s - want).abs() < 1e-4, "{dim} {t}: {s} vs {want}");
            }
            let weights: Vec<f32> = (0..count).map(|t| 1.0 / (t + 1) as f32).collect();
            let mut out = vec![0.25f32; dim];
            weighted_sum(&weights, &keys, stride, &mut out);
            for (c, o) in out.iter().enumerate() {
                let want: f32 = 0.25
                    + (0..count)
                        .map(|t| weights[t] * keys[t * stride + c])
                        .sum::<f32>();
                assert!((o - want).abs() < 1e-4, "{dim} {c}: {o} vs {want}");
            }
        }
    }
}
