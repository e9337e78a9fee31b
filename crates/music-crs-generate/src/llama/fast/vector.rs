//! f32 kernels of attention and dot products: AVX-512 or AVX2/FMA when the CPU has them,
//! else plain loops.
//!
//! Attention works on tiles: the queries of several rows and heads that share a kv head
//! against keys stored in blocks of [`KEY_BLOCK`] positions, dimension-major, so one
//! register holds one dimension of 16 (or 8) keys and its score lanes accumulate with a
//! broadcast query value: no horizontal sum per key, and each key is loaded once for all
//! the tile's queries. Values stay position-major; their weighted sums broadcast a weight
//! per (query, position). Every score and every output value is one chain of multiply-adds
//! in a fixed order (over dimensions, or over positions), so its bits never depend on the
//! tile it was computed in, nor on whether AVX-512, AVX2 or the plain loops computed it: the
//! loops fuse what the vector code fuses ([`f32::mul_add`]) and compute its exponential
//! ([`exp_lane`]), and every sum across a row (softmax denominators, dot products) goes to
//! 16 lanes reduced in one tree ([`reduce_lanes`]). So replies are the same on every CPU;
//! `MUSIC_CRS_SIMD` ([`Simd::allowed`]) caps the level to check it.

/// Positions per key block.
pub(crate) const KEY_BLOCK: usize = 16;

/// The environment variable that caps the kernels' instruction set ([`Simd::allowed`]).
pub(crate) const SIMD_VARIABLE: &str = "MUSIC_CRS_SIMD";

/// The instruction sets the kernels use, narrowest first (so `min` is the narrower).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Simd {
    Scalar,
    Avx2,
    Avx512,
}

impl Simd {
    /// The widest this CPU runs, at most the one `MUSIC_CRS_SIMD` allows ([`Simd::allowed`]).
    pub(crate) fn detect() -> Simd {
        static DETECTED: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
        *DETECTED.get_or_init(|| {
            let hardware = || {
                #[cfg(target_arch = "x86_64")]
                {
                    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                        if is_x86_feature_detected!("avx512f") {
                            return Simd::Avx512;
                        }
                        return Simd::Avx2;
                    }
                }
                Simd::Scalar
            };
            hardware().min(Simd::allowed())
        })
    }

    /// The widest instruction set the environment variable `MUSIC_CRS_SIMD` (`scalar`, `avx2`
    /// or `avx512`; unset or empty: any) lets the kernels use, this file's and the products'
    /// ([`super::q8::Kernel::detect`]). Every level gives the same bits, so the variable only
    /// trades speed: one machine can check what a narrower one computes. An unknown value is
    /// ignored with a warning.
    pub(crate) fn allowed() -> Simd {
        static ALLOWED: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
        *ALLOWED.get_or_init(|| {
            let Some(value) = std::env::var_os(SIMD_VARIABLE) else {
                return Simd::Avx512;
            };
            match value.to_string_lossy().trim().to_ascii_lowercase().as_str() {
                "scalar" => Simd::Scalar,
                "avx2" => Simd::Avx2,
                "avx512" | "" => Simd::Avx512,
                other => {
                    tracing::warn!(
                        "{SIMD_VARIABLE}={other:?} is none of scalar, avx2, avx512: ignored"
                    );
                    Simd::Avx512
                }
            }
        })
    }

    /// Whether this CPU runs these kernels (the dispatchers fall back to narrower ones).
    pub(crate) fn available(self) -> bool {
        match self {
            Simd::Scalar => true,
            Simd::Avx2 => Simd::detect() != Simd::Scalar,
            Simd::Avx512 => Simd::detect() == Simd::Avx512,
        }
    }
}

// The exponential of Cephes' `expf` (as in avx_mathfun and ggml): e^x = 2^n e^r with
// n = round(x / ln 2), |r| <= ln(2) / 2, e^r by a degree-7 polynomial; within 2 ulp of
// e^x for x <= 88, and 0 below -87.3 (where e^x is no longer a normal f32).
const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const EXP_MIN: f32 = -87.336_54;
const EXP_MAX: f32 = 88.0;
const P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// [`x86::exp_256`]'s and [`x86::exp_512`]'s exponential of one value, the same operations
/// in the same order (fused where they fuse), so a plain loop gets their bits.
fn exp_lane(x: f32) -> f32 {
    // `max` first, as `_mm*_max_ps(x, min)`: a NaN becomes the minimum (`clamp` would keep
    // the NaN).
    #[allow(clippy::manual_clamp)]
    let clamped = x.max(EXP_MIN).min(EXP_MAX);
    let n = (clamped * LOG2E).round_ties_even();
    let r = (-n).mul_add(LN2_HI, clamped);
    let r = (-n).mul_add(LN2_LO, r);
    let mut p = P[0];
    for &c in &P[1..] {
        p = p.mul_add(r, c);
    }
    let e = p.mul_add(r * r, r + 1.0);
    // 2^n from its exponent bits: n is in -126..=127 after the clamp, a normal number.
    let two_n = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if x < EXP_MIN { 0.0 } else { e * two_n }
}

/// Lanes of the sums every kernel here accumulates: element `i` of a sum goes to lane
/// `i % 16` (one AVX-512 register, or two AVX2 ones side by side, or an array).
const LANES: usize = 16;

/// The sum of 16 lanes, in one fixed tree (`_mm512_reduce_add_ps`'s): halves added
/// lane by lane (`j + j+8`, then `j + j+4`, then `j + j+2`), then the last two.
fn reduce_lanes(lanes: &[f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    let mut sums = *lanes;
    while width >= 2 {
        for j in 0..width {
            sums[j] += sums[j + width];
        }
        width /= 2;
    }
    sums[0] + sums[1]
}

/// `a . b` (equal lengths).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if Simd::detect() != Simd::Scalar {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { x86::dot(a, b) };
    }
    dot_scalar(a, b)
}

/// [`x86::dot`]'s sum in a plain loop: the products of whole groups of 8 fused into lane
/// `i % 16`, the lanes reduced, then the rest added one by one.
fn dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let grouped = n / 8 * 8;
    let mut lanes = [0f32; LANES];
    for (i, (&x, &y)) in a[..grouped].iter().zip(&b[..grouped]).enumerate() {
        lanes[i % LANES] = x.mul_add(y, lanes[i % LANES]);
    }
    let mut sum = reduce_lanes(&lanes);
    for (&x, &y) in a[grouped..n].iter().zip(&b[grouped..n]) {
        sum += x * y;
    }
    sum
}

/// Scores of `n = queries.len() / dim` queries (query `q` at `queries[q * dim..]`) against
/// `blocks` key blocks (block `b` at `keys[b * block_stride..]`, `dim x KEY_BLOCK`: dimension
/// `d` of the block's position `j` at `d * KEY_BLOCK + j`):
/// `out[q * out_stride + b * KEY_BLOCK + j] = scale * (query_q . key_bj)`, the dot product
/// summed over `d` in order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn block_scores(
    simd: Simd,
    queries: &[f32],
    dim: usize,
    keys: &[f32],
    block_stride: usize,
    blocks: usize,
    scale: f32,
    out: &mut [f32],
    out_stride: usize,
) {
    let n = queries.len() / dim;
    if n == 0 || blocks == 0 {
        return;
    }
    assert_eq!(queries.len(), n * dim);
    assert!((blocks - 1) * block_stride + dim * KEY_BLOCK <= keys.len());
    assert!(out_stride >= blocks * KEY_BLOCK);
    assert!((n - 1) * out_stride + blocks * KEY_BLOCK <= out.len());
    match simd {
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 if Simd::Avx512.available() => {
            // SAFETY: the CPU has AVX-512F; every read and write lies inside the slices
            // (checked above).
            unsafe {
                x86::block_scores_512(
                    queries,
                    dim,
                    keys,
                    block_stride,
                    blocks,
                    scale,
                    out,
                    out_stride,
                )
            }
        }
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 | Simd::Avx2 if Simd::Avx2.available() => {
            // SAFETY: the CPU has AVX2 and FMA; the bounds are checked above.
            unsafe {
                x86::block_scores_256(
                    queries,
                    dim,
                    keys,
                    block_stride,
                    blocks,
                    scale,
                    out,
                    out_stride,
                )
            }
        }
        _ => {
            for (q, query) in queries.chunks_exact(dim).enumerate() {
                for b in 0..blocks {
                    let block = &keys[b * block_stride..][..dim * KEY_BLOCK];
                    let mut sums = [0f32; KEY_BLOCK];
                    for (&x, lanes) in query.iter().zip(block.chunks_exact(KEY_BLOCK)) {
                        for (s, &k) in sums.iter_mut().zip(lanes) {
                            *s = x.mul_add(k, *s);
                        }
                    }
                    let row = &mut out[q * out_stride + b * KEY_BLOCK..][..KEY_BLOCK];
                    for (o, s) in row.iter_mut().zip(sums) {
                        *o = s * scale;
                    }
                }
            }
        }
    }
}

/// Softmax numerators in place: `scores[..visible]` become `exp(score - max)` (the max over
/// them), the rest zero; returns their sum, the denominator.
pub(crate) fn softmax_numerators(simd: Simd, scores: &mut [f32], visible: usize) -> f32 {
    assert!(0 < visible && visible <= scores.len());
    let sum = match simd {
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 if Simd::Avx512.available() => {
            // SAFETY: the CPU has AVX-512F; `visible` is inside `scores` (checked above).
            unsafe { x86::softmax_numerators_512(&mut scores[..visible]) }
        }
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 | Simd::Avx2 if Simd::Avx2.available() => {
            // SAFETY: the CPU has AVX2 and FMA.
            unsafe { x86::softmax_numerators_256(&mut scores[..visible]) }
        }
        _ => {
            let seen = &mut scores[..visible];
            let max = seen.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
            let mut lanes = [0f32; LANES];
            for (i, s) in seen.iter_mut().enumerate() {
                *s = exp_lane(*s - max);
                lanes[i % LANES] += *s;
            }
            reduce_lanes(&lanes)
        }
    };
    scores[visible..].fill(0.0);
    sum
}

/// `out[q * dim + c] += sum over t < count of weights[q * weight_stride + t] *
/// values[t * value_stride + c]` for `n = out.len() / dim` rows of weights, each sum a chain
/// over `t` in order (continuing from `out`'s value).
#[allow(clippy::too_many_arguments)]
pub(crate) fn weighted_sums(
    simd: Simd,
    weights: &[f32],
    weight_stride: usize,
    count: usize,
    values: &[f32],
    value_stride: usize,
    out: &mut [f32],
    dim: usize,
) {
    let n = out.len() / dim;
    if n == 0 || count == 0 {
        return;
    }
    assert_eq!(out.len(), n * dim);
    assert!(count <= weight_stride && (n - 1) * weight_stride + count <= weights.len());
    assert!((count - 1) * value_stride + dim <= values.len());
    match simd {
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 if Simd::Avx512.available() && dim.is_multiple_of(16) => {
            // SAFETY: the CPU has AVX-512F; the bounds are checked above.
            unsafe {
                x86::weighted_sums_512(
                    weights,
                    weight_stride,
                    count,
                    values,
                    value_stride,
                    out,
                    dim,
                )
            }
        }
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 | Simd::Avx2 if Simd::Avx2.available() && dim.is_multiple_of(8) => {
            // SAFETY: the CPU has AVX2 and FMA; the bounds are checked above.
            unsafe {
                x86::weighted_sums_256(
                    weights,
                    weight_stride,
                    count,
                    values,
                    value_stride,
                    out,
                    dim,
                )
            }
        }
        _ => {
            for (q, row) in out.chunks_exact_mut(dim).enumerate() {
                for t in 0..count {
                    let w = weights[q * weight_stride + t];
                    for (o, &v) in row.iter_mut().zip(&values[t * value_stride..][..dim]) {
                        *o = w.mul_add(v, *o);
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{EXP_MAX, EXP_MIN, KEY_BLOCK, LANES, LN2_HI, LN2_LO, LOG2E, P, reduce_lanes};

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
            let mut lanes = [0f32; LANES];
            _mm256_storeu_ps(lanes.as_mut_ptr(), s0);
            _mm256_storeu_ps(lanes.as_mut_ptr().add(8), s1);
            let mut sum = reduce_lanes(&lanes);
            while i < n {
                sum += a[i] * b[i];
                i += 1;
            }
            sum
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn exp_512(x: __m512) -> __m512 {
        let clamped = _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(EXP_MIN)),
            _mm512_set1_ps(EXP_MAX),
        );
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(clamped, _mm512_set1_ps(LOG2E)),
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), clamped);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
        let mut p = _mm512_set1_ps(P[0]);
        for &c in &P[1..] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let e = _mm512_fmadd_ps(
            p,
            _mm512_mul_ps(r, r),
            _mm512_add_ps(r, _mm512_set1_ps(1.0)),
        );
        let e = _mm512_scalef_ps(e, n);
        let underflow = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(EXP_MIN));
        _mm512_mask_mov_ps(e, underflow, _mm512_setzero_ps())
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn exp_256(x: __m256) -> __m256 {
        let clamped = _mm256_min_ps(
            _mm256_max_ps(x, _mm256_set1_ps(EXP_MIN)),
            _mm256_set1_ps(EXP_MAX),
        );
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(clamped, _mm256_set1_ps(LOG2E)),
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), clamped);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
        let mut p = _mm256_set1_ps(P[0]);
        for &c in &P[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let e = _mm256_fmadd_ps(
            p,
            _mm256_mul_ps(r, r),
            _mm256_add_ps(r, _mm256_set1_ps(1.0)),
        );
        // 2^n from its exponent bits (n >= -126 after the clamp: a normal number).
        let two_n = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        )));
        let e = _mm256_mul_ps(e, two_n);
        let underflow = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(EXP_MIN));
        _mm256_blendv_ps(e, _mm256_setzero_ps(), underflow)
    }

    /// Query rows per score tile (AVX-512: `ROWS x 4` accumulators of 16 lanes).
    const SCORE_QUERIES_512: usize = 6;
    /// Key blocks per AVX-512 score tile: four chains per query hide the FMA latency when
    /// there are few queries (decoding).
    const SCORE_BLOCKS_512: usize = 4;
    /// Query rows per AVX2 score tile (two registers per block).
    const SCORE_QUERIES_256: usize = 6;

    /// One tile: `NQ` queries by `NB` key blocks, in registers over all dimensions.
    ///
    /// # Safety
    /// AVX-512F; `NQ` queries at `q` (stride `dim`), `NB` blocks at `k` (stride
    /// `block_stride`), `NQ` output rows of `NB * KEY_BLOCK` at `out` (stride `out_stride`).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn score_tile_512<const NQ: usize, const NB: usize>(
        q: *const f32,
        dim: usize,
        k: *const f32,
        block_stride: usize,
        scale: f32,
        out: *mut f32,
        out_stride: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); NB]; NQ];
        // SAFETY: the caller's contract.
        unsafe {
            for d in 0..dim {
                let mut key = [_mm512_setzero_ps(); NB];
                for (b, key) in key.iter_mut().enumerate() {
                    *key = _mm512_loadu_ps(k.add(b * block_stride + d * KEY_BLOCK));
                }
                for (i, acc) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*q.add(i * dim + d));
                    for (acc, &key) in acc.iter_mut().zip(&key) {
                        *acc = _mm512_fmadd_ps(x, key, *acc);
                    }
                }
            }
            let scale = _mm512_set1_ps(scale);
            for (i, acc) in acc.iter().enumerate() {
                for (b, &acc) in acc.iter().enumerate() {
                    _mm512_storeu_ps(
                        out.add(i * out_stride + b * KEY_BLOCK),
                        _mm512_mul_ps(acc, scale),
                    );
                }
            }
        }
    }

    /// # Safety
    /// AVX-512F; the bounds `super::block_scores` checks.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn block_scores_512(
        queries: &[f32],
        dim: usize,
        keys: &[f32],
        block_stride: usize,
        blocks: usize,
        scale: f32,
        out: &mut [f32],
        out_stride: usize,
    ) {
        let n = queries.len() / dim;
        let (q, k, o) = (queries.as_ptr(), keys.as_ptr(), out.as_mut_ptr());
        let mut b = 0;
        while b < blocks {
            let many = blocks - b >= SCORE_BLOCKS_512;
            let mut i = 0;
            while i < n {
                let rows = (n - i).min(SCORE_QUERIES_512);
                // SAFETY: queries i..i + rows and blocks b.. (4 or 1) are in bounds.
                unsafe {
                    let (q, k, o) = (
                        q.add(i * dim),
                        k.add(b * block_stride),
                        o.add(i * out_stride + b * KEY_BLOCK),
                    );
                    macro_rules! tile {
                        ($nb:literal, $($r:literal)+) => {
                            match rows {
                                $($r => score_tile_512::<$r, $nb>(
                                    q, dim, k, block_stride, scale, o, out_stride,
                                ),)+
                                _ => unreachable!(),
                            }
                        };
                    }
                    if many {
                        tile!(4, 1 2 3 4 5 6);
                    } else {
                        tile!(1, 1 2 3 4 5 6);
                    }
                }
                i += rows;
            }
            b += if many { SCORE_BLOCKS_512 } else { 1 };
        }
    }

    /// One AVX2 tile: `NQ` queries by one key block (two registers).
    ///
    /// # Safety
    /// AVX2 and FMA; as [`score_tile_512`] with one block.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn score_tile_256<const NQ: usize>(
        q: *const f32,
        dim: usize,
        k: *const f32,
        scale: f32,
        out: *mut f32,
        out_stride: usize,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; NQ];
        // SAFETY: the caller's contract.
        unsafe {
            for d in 0..dim {
                let low = _mm256_loadu_ps(k.add(d * KEY_BLOCK));
                let high = _mm256_loadu_ps(k.add(d * KEY_BLOCK + 8));
                for (i, acc) in acc.iter_mut().enumerate() {
                    let x = _mm256_set1_ps(*q.add(i * dim + d));
                    acc[0] = _mm256_fmadd_ps(x, low, acc[0]);
                    acc[1] = _mm256_fmadd_ps(x, high, acc[1]);
                }
            }
            let scale = _mm256_set1_ps(scale);
            for (i, acc) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.add(i * out_stride), _mm256_mul_ps(acc[0], scale));
                _mm256_storeu_ps(out.add(i * out_stride + 8), _mm256_mul_ps(acc[1], scale));
            }
        }
    }

    /// # Safety
    /// AVX2 and FMA; the bounds `super::block_scores` checks.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn block_scores_256(
        queries: &[f32],
        dim: usize,
        keys: &[f32],
        block_stride: usize,
        blocks: usize,
        scale: f32,
        out: &mut [f32],
        out_stride: usize,
    ) {
        let n = queries.len() / dim;
        let (q, k, o) = (queries.as_ptr(), keys.as_ptr(), out.as_mut_ptr());
        for b in 0..blocks {
            let mut i = 0;
            while i < n {
                let rows = (n - i).min(SCORE_QUERIES_256);
                // SAFETY: queries i..i + rows and block b are in bounds.
                unsafe {
                    let (q, k, o) = (
                        q.add(i * dim),
                        k.add(b * block_stride),
                        o.add(i * out_stride + b * KEY_BLOCK),
                    );
                    match rows {
                        1 => score_tile_256::<1>(q, dim, k, scale, o, out_stride),
                        2 => score_tile_256::<2>(q, dim, k, scale, o, out_stride),
                        3 => score_tile_256::<3>(q, dim, k, scale, o, out_stride),
                        4 => score_tile_256::<4>(q, dim, k, scale, o, out_stride),
                        5 => score_tile_256::<5>(q, dim, k, scale, o, out_stride),
                        6 => score_tile_256::<6>(q, dim, k, scale, o, out_stride),
                        _ => unreachable!(),
                    }
                }
                i += rows;
            }
        }
    }

    /// # Safety
    /// AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn softmax_numerators_512(scores: &mut [f32]) -> f32 {
        let n = scores.len();
        let p = scores.as_mut_ptr();
        let full = n / 16 * 16;
        let tail: __mmask16 = ((1u32 << (n - full)) - 1) as __mmask16;
        // SAFETY: full loads below `full`, the tail masked to `n`.
        unsafe {
            let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
            let mut i = 0;
            while i < full {
                max = _mm512_max_ps(max, _mm512_loadu_ps(p.add(i)));
                i += 16;
            }
            let last = _mm512_mask_loadu_ps(_mm512_set1_ps(f32::NEG_INFINITY), tail, p.add(full));
            let max = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_max_ps(max, last)));
            let mut sum = _mm512_setzero_ps();
            let mut i = 0;
            while i < full {
                let e = exp_512(_mm512_sub_ps(_mm512_loadu_ps(p.add(i)), max));
                _mm512_storeu_ps(p.add(i), e);
                sum = _mm512_add_ps(sum, e);
                i += 16;
            }
            if tail != 0 {
                let e = _mm512_maskz_mov_ps(tail, exp_512(_mm512_sub_ps(last, max)));
                _mm512_mask_storeu_ps(p.add(full), tail, e);
                sum = _mm512_add_ps(sum, e);
            }
            let mut lanes = [0f32; LANES];
            _mm512_storeu_ps(lanes.as_mut_ptr(), sum);
            reduce_lanes(&lanes)
        }
    }

    /// # Safety
    /// AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn softmax_numerators_256(scores: &mut [f32]) -> f32 {
        let n = scores.len();
        let full = n / LANES * LANES;
        let mut last = [f32::NEG_INFINITY; LANES];
        last[..n - full].copy_from_slice(&scores[full..]);
        let p = scores.as_mut_ptr();
        // SAFETY: full loads below `full`; the tail goes through `last`.
        unsafe {
            let mut max = _mm256_max_ps(
                _mm256_loadu_ps(last.as_ptr()),
                _mm256_loadu_ps(last.as_ptr().add(8)),
            );
            let mut i = 0;
            while i < full {
                max = _mm256_max_ps(max, _mm256_loadu_ps(p.add(i)));
                max = _mm256_max_ps(max, _mm256_loadu_ps(p.add(i + 8)));
                i += LANES;
            }
            let max = _mm_max_ps(_mm256_castps256_ps128(max), _mm256_extractf128_ps(max, 1));
            let max = _mm_max_ps(max, _mm_movehl_ps(max, max));
            let max = _mm_max_ss(max, _mm_movehdup_ps(max));
            let max = _mm256_set1_ps(_mm_cvtss_f32(max));
            // Lanes 0-7 and 8-15 of the 16 that AVX-512 (and the plain loop) sum in.
            let (mut low, mut high) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut i = 0;
            while i < full {
                let e = exp_256(_mm256_sub_ps(_mm256_loadu_ps(p.add(i)), max));
                _mm256_storeu_ps(p.add(i), e);
                low = _mm256_add_ps(low, e);
                let e = exp_256(_mm256_sub_ps(_mm256_loadu_ps(p.add(i + 8)), max));
                _mm256_storeu_ps(p.add(i + 8), e);
                high = _mm256_add_ps(high, e);
                i += LANES;
            }
            if full < n {
                // -inf - max underflows to exactly 0, which adds nothing.
                let e = exp_256(_mm256_sub_ps(_mm256_loadu_ps(last.as_ptr()), max));
                _mm256_storeu_ps(last.as_mut_ptr(), e);
                low = _mm256_add_ps(low, e);
                let e = exp_256(_mm256_sub_ps(_mm256_loadu_ps(last.as_ptr().add(8)), max));
                _mm256_storeu_ps(last.as_mut_ptr().add(8), e);
                high = _mm256_add_ps(high, e);
            }
            scores[full..].copy_from_slice(&last[..n - full]);
            let mut lanes = [0f32; LANES];
            _mm256_storeu_ps(lanes.as_mut_ptr(), low);
            _mm256_storeu_ps(lanes.as_mut_ptr().add(8), high);
            reduce_lanes(&lanes)
        }
    }

    /// Weight rows per AVX-512 weighted-sum tile.
    const SUM_ROWS_512: usize = 6;
    /// Weight rows per AVX2 weighted-sum tile.
    const SUM_ROWS_256: usize = 6;
    /// Positions per pass over the values: they stay in L1 for every tile of weight rows.
    const SUM_POSITIONS: usize = 128;

    /// `NQ` weight rows by `NC` registers of output columns, over `count` positions.
    ///
    /// # Safety
    /// AVX-512F; `NQ` weight rows of `count` at `w` (stride `weight_stride`), `count` value
    /// rows of `NC * 16` at `v` (stride `value_stride`), `NQ` output rows at `out` (stride
    /// `dim`).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn sum_tile_512<const NQ: usize, const NC: usize>(
        w: *const f32,
        weight_stride: usize,
        count: usize,
        v: *const f32,
        value_stride: usize,
        out: *mut f32,
        dim: usize,
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); NC]; NQ];
            for (i, acc) in acc.iter_mut().enumerate() {
                for (c, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm512_loadu_ps(out.add(i * dim + 16 * c));
                }
            }
            for t in 0..count {
                let mut value = [_mm512_setzero_ps(); NC];
                for (c, value) in value.iter_mut().enumerate() {
                    *value = _mm512_loadu_ps(v.add(t * value_stride + 16 * c));
                }
                for (i, acc) in acc.iter_mut().enumerate() {
                    let weight = _mm512_set1_ps(*w.add(i * weight_stride + t));
                    for (acc, &value) in acc.iter_mut().zip(&value) {
                        *acc = _mm512_fmadd_ps(weight, value, *acc);
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                for (c, &acc) in acc.iter().enumerate() {
                    _mm512_storeu_ps(out.add(i * dim + 16 * c), acc);
                }
            }
        }
    }

    /// # Safety
    /// AVX-512F; `dim` a multiple of 16; the bounds `super::weighted_sums` checks.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn weighted_sums_512(
        weights: &[f32],
        weight_stride: usize,
        count: usize,
        values: &[f32],
        value_stride: usize,
        out: &mut [f32],
        dim: usize,
    ) {
        let n = out.len() / dim;
        let (w, v, o) = (weights.as_ptr(), values.as_ptr(), out.as_mut_ptr());
        for start in (0..count).step_by(SUM_POSITIONS) {
            let positions = (count - start).min(SUM_POSITIONS);
            for column in (0..dim).step_by(64) {
                let registers = (dim - column).min(64) / 16;
                let mut i = 0;
                while i < n {
                    let rows = (n - i).min(SUM_ROWS_512);
                    // SAFETY: rows i..i + rows, positions start..start + positions and
                    // columns column..column + 16 * registers are in bounds.
                    unsafe {
                        let (w, v, o) = (
                            w.add(i * weight_stride + start),
                            v.add(start * value_stride + column),
                            o.add(i * dim + column),
                        );
                        macro_rules! tile {
                            ($($r:literal)+) => {
                                match (rows, registers) {
                                    $(
                                        ($r, 4) => sum_tile_512::<$r, 4>(w, weight_stride, positions, v, value_stride, o, dim),
                                        ($r, 3) => sum_tile_512::<$r, 3>(w, weight_stride, positions, v, value_stride, o, dim),
                                        ($r, 2) => sum_tile_512::<$r, 2>(w, weight_stride, positions, v, value_stride, o, dim),
                                        ($r, 1) => sum_tile_512::<$r, 1>(w, weight_stride, positions, v, value_stride, o, dim),
                                    )+
                                    _ => unreachable!(),
                                }
                            };
                        }
                        tile!(1 2 3 4 5 6);
                    }
                    i += rows;
                }
            }
        }
    }

    /// As [`sum_tile_512`] with registers of 8 columns.
    ///
    /// # Safety
    /// AVX2 and FMA; as [`sum_tile_512`].
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn sum_tile_256<const NQ: usize, const NC: usize>(
        w: *const f32,
        weight_stride: usize,
        count: usize,
        v: *const f32,
        value_stride: usize,
        out: *mut f32,
        dim: usize,
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); NC]; NQ];
            for (i, acc) in acc.iter_mut().enumerate() {
                for (c, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_loadu_ps(out.add(i * dim + 8 * c));
                }
            }
            for t in 0..count {
                let mut value = [_mm256_setzero_ps(); NC];
                for (c, value) in value.iter_mut().enumerate() {
                    *value = _mm256_loadu_ps(v.add(t * value_stride + 8 * c));
                }
                for (i, acc) in acc.iter_mut().enumerate() {
                    let weight = _mm256_set1_ps(*w.add(i * weight_stride + t));
                    for (acc, &value) in acc.iter_mut().zip(&value) {
                        *acc = _mm256_fmadd_ps(weight, value, *acc);
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                for (c, &acc) in acc.iter().enumerate() {
                    _mm256_storeu_ps(out.add(i * dim + 8 * c), acc);
                }
            }
        }
    }

    /// # Safety
    /// AVX2 and FMA; `dim` a multiple of 8; the bounds `super::weighted_sums` checks.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weighted_sums_256(
        weights: &[f32],
        weight_stride: usize,
        count: usize,
        values: &[f32],
        value_stride: usize,
        out: &mut [f32],
        dim: usize,
    ) {
        let n = out.len() / dim;
        let (w, v, o) = (weights.as_ptr(), values.as_ptr(), out.as_mut_ptr());
        for start in (0..count).step_by(SUM_POSITIONS) {
            let positions = (count - start).min(SUM_POSITIONS);
            for column in (0..dim).step_by(16) {
                let registers = (dim - column).min(16) / 8;
                let mut i = 0;
                while i < n {
                    let rows = (n - i).min(SUM_ROWS_256);
                    // SAFETY: as in `weighted_sums_512`.
                    unsafe {
                        let (w, v, o) = (
                            w.add(i * weight_stride + start),
                            v.add(start * value_stride + column),
                            o.add(i * dim + column),
                        );
                        macro_rules! tile {
                            ($($r:literal)+) => {
                                match (rows, registers) {
                                    $(
                                        ($r, 2) => sum_tile_256::<$r, 2>(w, weight_stride, positions, v, value_stride, o, dim),
                                        ($r, 1) => sum_tile_256::<$r, 1>(w, weight_stride, positions, v, value_stride, o, dim),
                                    )+
                                    _ => unreachable!(),
                                }
                            };
                        }
                        tile!(1 2 3 4 5 6);
                    }
                    i += rows;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn random(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    const EVERY: [Simd; 3] = [Simd::Avx512, Simd::Avx2, Simd::Scalar];

    #[test]
    fn simd_and_scalar_agree() {
        for n in [0, 1, 7, 8, 9, 16, 63, 64, 100] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 1.3).cos()).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot(&a, &b) as f64 - want).abs() < 1e-4, "{n}");
        }
    }

    /// The AVX2 and AVX-512 exponentials of `inputs` (a multiple of 16 values), each level
    /// the CPU has.
    #[cfg(target_arch = "x86_64")]
    fn vector_exps(inputs: &[f32]) -> Vec<(Simd, Vec<f32>)> {
        use std::arch::x86_64::*;
        let mut results = Vec::new();
        if Simd::Avx2.available() {
            let mut got = vec![0f32; inputs.len()];
            for (x, out) in inputs.chunks_exact(8).zip(got.chunks_exact_mut(8)) {
                // SAFETY: the CPU has AVX2 and FMA; 8 values each.
                unsafe {
                    _mm256_storeu_ps(out.as_mut_ptr(), x86::exp_256(_mm256_loadu_ps(x.as_ptr())))
                };
            }
            results.push((Simd::Avx2, got));
        }
        if Simd::Avx512.available() {
            let mut got = vec![0f32; inputs.len()];
            for (x, out) in inputs.chunks_exact(16).zip(got.chunks_exact_mut(16)) {
                // SAFETY: the CPU has AVX-512F; 16 values each.
                unsafe {
                    _mm512_storeu_ps(out.as_mut_ptr(), x86::exp_512(_mm512_loadu_ps(x.as_ptr())))
                };
            }
            results.push((Simd::Avx512, got));
        }
        results
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn simd_exp_is_within_two_ulp() {
        let mut inputs: Vec<f32> = (0..20_000).map(|i| -87.3 + i as f32 * 0.0087).collect();
        inputs.extend(random(4096, 7).iter().map(|r| r * 10.0));
        inputs.extend([0.0, -0.0, 1e-8, -1e-8, 88.0, -87.33]);
        inputs.truncate(inputs.len() / 16 * 16);
        let check = |got: &[f32], inputs: &[f32]| {
            for (&x, &e) in inputs.iter().zip(got) {
                let want = (x as f64).exp();
                let error = ((e as f64 - want) / want).abs();
                assert!(error < 2.5e-7, "exp({x}) = {e}, want {want}: {error}");
            }
        };
        for (_, got) in vector_exps(&inputs) {
            check(&got, &inputs);
        }
    }

    /// Keys of `positions` (`[position][dim]`) as blocks, padded with zeros.
    fn blocked(keys: &[f32], dim: usize) -> Vec<f32> {
        let positions = keys.len() / dim;
        let mut out = vec![0f32; positions.div_ceil(KEY_BLOCK) * KEY_BLOCK * dim];
        for (t, key) in keys.chunks_exact(dim).enumerate() {
            let block = &mut out[t / KEY_BLOCK * KEY_BLOCK * dim..];
            for (d, &k) in key.iter().enumerate() {
                block[d * KEY_BLOCK + t % KEY_BLOCK] = k;
            }
        }
        out
    }

    #[test]
    fn attention_kernels_match_plain_loops() {
        for (dim, n, positions) in [
            (64, 3, 37),
            (64, 13, 90),
            (16, 1, 16),
            (8, 7, 5),
            (5, 4, 33),
        ] {
            let queries = random(n * dim, 1);
            let keys = random(positions * dim, 2);
            let values = random(positions * dim, 3);
            let blocks = positions.div_ceil(KEY_BLOCK);
            let stride = blocks * KEY_BLOCK + 3;
            for simd in EVERY.into_iter().filter(|s| s.available()) {
                let mut scores = vec![f32::NAN; n * stride];
                let keys_blocked = blocked(&keys, dim);
                let block_stride = KEY_BLOCK * dim;
                block_scores(
                    simd,
                    &queries,
                    dim,
                    &keys_blocked,
                    block_stride,
                    blocks,
                    0.25,
                    &mut scores,
                    stride,
                );
                for q in 0..n {
                    let query = &queries[q * dim..][..dim];
                    for t in 0..positions {
                        let want = 0.25 * dot_scalar(query, &keys[t * dim..][..dim]);
                        let got = scores[q * stride + t];
                        assert!((got - want).abs() < 1e-5, "{simd:?} {dim} {q} {t}");
                    }
                }
                // Each row its own visible length, as the causal mask gives.
                let mut sums = Vec::new();
                for q in 0..n {
                    let visible = positions - (q % positions.min(4));
                    let row = &mut scores[q * stride..][..stride];
                    let plain: Vec<f32> = row[..visible].to_vec();
                    let max = plain.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
                    let sum = softmax_numerators(simd, row, visible);
                    let want: f32 = plain.iter().map(|s| (s - max).exp()).sum();
                    assert!((sum - want).abs() < 1e-5 * want, "{simd:?} {sum} vs {want}");
                    for (t, &e) in row.iter().enumerate() {
                        let want = if t < visible {
                            (plain[t] - max).exp()
                        } else {
                            0.0
                        };
                        assert!((e - want).abs() < 1e-6, "{simd:?} {t}: {e} vs {want}");
                    }
                    sums.push(sum);
                }
                let start = random(n * dim, 4);
                let mut out = start.clone();
                weighted_sums(
                    simd, &scores, stride, positions, &values, dim, &mut out, dim,
                );
                for q in 0..n {
                    for c in 0..dim {
                        let want = start[q * dim + c]
                            + (0..positions)
                                .map(|t| scores[q * stride + t] * values[t * dim + c])
                                .sum::<f32>();
                        let got = out[q * dim + c];
                        assert!((got - want).abs() < 1e-4, "{simd:?} {dim} {q} {c}");
                    }
                }
            }
        }
    }

    /// Bits of a slice, for comparisons that a tolerance would blur.
    fn bits(values: &[f32]) -> Vec<u32> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn every_level_gives_the_same_bits() {
        // What makes replies the same on every CPU (and under MUSIC_CRS_SIMD): each kernel's
        // bits at every level the CPU has, the plain loops included, are the widest one's.
        let levels: Vec<Simd> = EVERY.into_iter().filter(|s| s.available()).collect();
        let same = |what: &str, results: Vec<Vec<f32>>| {
            for (level, result) in levels.iter().zip(&results).skip(1) {
                assert_eq!(
                    bits(result),
                    bits(&results[0]),
                    "{what}: {level:?} against {:?}",
                    levels[0]
                );
            }
        };
        for n in [1, 7, 8, 9, 15, 16, 17, 24, 31, 64, 100, 577] {
            let (a, b) = (random(n, 11), random(n, 12));
            let dots = levels
                .iter()
                .map(|&simd| {
                    vec![if simd == Simd::Scalar {
                        dot_scalar(&a, &b)
                    } else {
                        dot(&a, &b)
                    }]
                })
                .collect();
            same(&format!("dot of {n}"), dots);
            // Scores of both signs and spreads, so exponents and sums vary.
            let scores: Vec<f32> = random(n + 5, 13).iter().map(|s| s * 30.0).collect();
            for visible in [1, n.div_ceil(2), n] {
                let numerators = levels
                    .iter()
                    .map(|&simd| {
                        let mut row = scores.clone();
                        let sum = softmax_numerators(simd, &mut row, visible);
                        row.push(sum);
                        row
                    })
                    .collect();
                same(&format!("softmax of {visible} in {}", n + 5), numerators);
            }
        }
        for (dim, n, positions) in [
            (64, 9, 70),
            (64, 1, 300),
            (16, 4, 33),
            (8, 3, 17),
            (5, 2, 21),
        ] {
            let queries = random(n * dim, 14);
            let keys = blocked(&random(positions * dim, 15), dim);
            let values = random(positions * dim, 16);
            let blocks = positions.div_ceil(KEY_BLOCK);
            let stride = blocks * KEY_BLOCK;
            let (scores, sums): (Vec<_>, Vec<_>) = levels
                .iter()
                .map(|&simd| {
                    let mut scores = vec![0f32; n * stride];
                    let bs = KEY_BLOCK * dim;
                    block_scores(
                        simd,
                        &queries,
                        dim,
                        &keys,
                        bs,
                        blocks,
                        0.125,
                        &mut scores,
                        stride,
                    );
                    let mut out = random(n * dim, 17);
                    weighted_sums(
                        simd, &scores, stride, positions, &values, dim, &mut out, dim,
                    );
                    (scores, out)
                })
                .unzip();
            same(&format!("scores at dim {dim}"), scores);
            same(&format!("weighted sums at dim {dim}"), sums);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_plain_exponential_is_the_vector_ones() {
        let mut inputs: Vec<f32> = (0..40_000).map(|i| -90.0 + i as f32 * 0.0045).collect();
        inputs.extend(random(4096, 18).iter().map(|r| r * 100.0));
        inputs.extend([
            0.0,
            -0.0,
            1e-30,
            -1e-30,
            88.0,
            88.5,
            -87.336_54,
            -87.34,
            f32::NAN,
        ]);
        inputs.extend([
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            -f32::MAX,
        ]);
        inputs.resize(inputs.len().next_multiple_of(16), 1.0);
        let plain: Vec<f32> = inputs.iter().map(|&x| exp_lane(x)).collect();
        for (level, got) in vector_exps(&inputs) {
            assert_eq!(bits(&got), bits(&plain), "{level:?}");
        }
    }

    #[test]
    fn lanes_reduce_in_the_tree_of_avx512() {
        // Values whose sum depends on the order: only the stated tree gives this bit pattern.
        let lanes: [f32; LANES] =
            std::array::from_fn(|j| 1.0 + (j as f32) * 1e-7 * if j % 3 == 0 { -1e7 } else { 1.0 });
        let v8: Vec<f32> = (0..8).map(|j| lanes[j] + lanes[j + 8]).collect();
        let v4: Vec<f32> = (0..4).map(|j| v8[j] + v8[j + 4]).collect();
        let want = (v4[0] + v4[2]) + (v4[1] + v4[3]);
        assert_eq!(reduce_lanes(&lanes).to_bits(), want.to_bits());
        #[cfg(target_arch = "x86_64")]
        if Simd::Avx512.available() {
            use std::arch::x86_64::*;
            // SAFETY: the CPU has AVX-512F.
            let intrinsic = unsafe { _mm512_reduce_add_ps(_mm512_loadu_ps(lanes.as_ptr())) };
            assert_eq!(reduce_lanes(&lanes).to_bits(), intrinsic.to_bits());
        }
    }

    #[test]
    fn results_do_not_depend_on_the_tile() {
        // A query's scores and sums are the same alone, among others, and from any first
        // block or position (as chunks of the cache and row tiles cut them).
        let (dim, n, positions) = (64, 11, 150);
        let queries = random(n * dim, 5);
        let keys = blocked(&random(positions * dim, 6), dim);
        let values = random(positions * dim, 7);
        let blocks = positions.div_ceil(KEY_BLOCK);
        let stride = blocks * KEY_BLOCK;
        for simd in EVERY.into_iter().filter(|s| s.available()) {
            let mut all = vec![0f32; n * stride];
            let bs = KEY_BLOCK * dim;
            block_scores(
                simd, &queries, dim, &keys, bs, blocks, 0.125, &mut all, stride,
            );
            for q in 0..n {
                let mut alone = vec![0f32; stride];
                let query = &queries[q * dim..][..dim];
                // Blocks in two calls, split after block 3.
                block_scores(simd, query, dim, &keys, bs, 3, 0.125, &mut alone, stride);
                let rest = &keys[3 * bs..];
                let tail = &mut alone[3 * KEY_BLOCK..];
                block_scores(simd, query, dim, rest, bs, blocks - 3, 0.125, tail, stride);
                assert_eq!(alone, all[q * stride..][..stride], "{simd:?} {q}");
            }
            for q in 0..n {
                softmax_numerators(simd, &mut all[q * stride..][..stride], positions - q);
            }
            let mut together = vec![0f32; n * dim];
            weighted_sums(
                simd,
                &all,
                stride,
                positions,
                &values,
                dim,
                &mut together,
                dim,
            );
            for q in 0..n {
                let mut alone = vec![0f32; dim];
                let weights = &all[q * stride..][..stride];
                // Positions in two calls, split at 37.
                weighted_sums(simd, weights, stride, 37, &values, dim, &mut alone, dim);
                let rest = &values[37 * dim..];
                let (count, w) = (positions - 37, &weights[37..]);
                weighted_sums(simd, w, stride - 37, count, rest, dim, &mut alone, dim);
                assert_eq!(alone, together[q * dim..][..dim], "{simd:?} {q}");
            }
        }
    }
}
