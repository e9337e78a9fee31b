//! Q8_0 matrix products: weights in blocks of 32 signed bytes with one scale, activations
//! quantized the same way per row (as ggml and candle do), one integer dot product per block
//! scaled by the two blocks' scales.
//!
//! Three kernels compute the same integers: AVX-512 VNNI (`vpdpbusd` on 256-bit lanes),
//! AVX2 (`vpmaddubsw` with the sign trick, as candle's `vec_dot_q8_0_q8_0`) and a scalar
//! reference; the fastest the CPU has is chosen at run time. Both SIMD kernels work on tiles
//! of activation rows by weight rows, so each weight block loaded serves several activation
//! rows (prompt reading) and each activation block several weight rows (decoding). Scales
//! are converted from f16 once, at load.
//!
//! VNNI multiplies unsigned by signed bytes, so weights are stored offset by 128 (`w + 128`,
//! unsigned) and each activation block carries `-128 * sum(x)`, the term that offset adds,
//! as the starting value of its integer sum: the result is the exact `sum(w * x)`.

use half::f16;

/// Values per Q8_0 block.
pub(crate) const BLOCK: usize = 32;

/// Weight rows per tile of the SIMD kernels.
const TILE_N: usize = 4;
/// Activation rows per tile of the SIMD kernels.
const TILE_M: usize = 4;

/// A `rows` x `cols` weight matrix of Q8_0 blocks (`cols` a multiple of [`BLOCK`]).
#[derive(Clone)]
pub(crate) struct Q8Matrix {
    rows: usize,
    cols: usize,
    /// Row-major quants, each stored as `w + 128`.
    offset_quants: Vec<u8>,
    /// One scale per block, row-major (`rows * cols / BLOCK`).
    scales: Vec<f32>,
}

impl Q8Matrix {
    /// A matrix from GGUF Q8_0 blocks (34 bytes: an f16 scale, then 32 signed quants).
    pub(crate) fn from_ggml_blocks(rows: usize, cols: usize, bytes: &[u8]) -> Option<Self> {
        if !cols.is_multiple_of(BLOCK) || bytes.len() != rows * cols / BLOCK * 34 {
            return None;
        }
        let mut offset_quants = Vec::with_capacity(rows * cols);
        let mut scales = Vec::with_capacity(rows * cols / BLOCK);
        for block in bytes.chunks_exact(34) {
            scales.push(f16::from_le_bytes([block[0], block[1]]).to_f32());
            offset_quants.extend(block[2..].iter().map(|&q| (q as i8 as i16 + 128) as u8));
        }
        Some(Q8Matrix {
            rows,
            cols,
            offset_quants,
            scales,
        })
    }

    /// Rows stacked: every matrix must have the same number of columns.
    pub(crate) fn stacked(parts: &[Q8Matrix]) -> Self {
        let cols = parts[0].cols;
        assert!(parts.iter().all(|part| part.cols == cols));
        Q8Matrix {
            rows: parts.iter().map(|part| part.rows).sum(),
            cols,
            offset_quants: parts
                .iter()
                .flat_map(|part| part.offset_quants.iter().copied())
                .collect(),
            scales: parts
                .iter()
                .flat_map(|part| part.scales.iter().copied())
                .collect(),
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// Row `row` dequantized into `out` (`cols` values), as ggml dequantizes Q8_0.
    pub(crate) fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let blocks = self.cols / BLOCK;
        for (b, chunk) in out.chunks_exact_mut(BLOCK).enumerate() {
            let scale = self.scales[row * blocks + b];
            let quants = &self.offset_quants[row * self.cols + b * BLOCK..][..BLOCK];
            for (y, &q) in chunk.iter_mut().zip(quants) {
                *y = (q as i16 - 128) as f32 * scale;
            }
        }
    }

    /// Bytes held (quants and scales).
    pub(crate) fn bytes(&self) -> usize {
        self.offset_quants.len() + 4 * self.scales.len()
    }
}

/// Activation rows quantized to Q8_0 as ggml's `quantize_row_q8_0` does (scale
/// `max|x| / 127` rounded to f16; quants `round(x / scale)` with the unrounded scale).
pub(crate) struct Q8Rows {
    rows: usize,
    cols: usize,
    quants: Vec<i8>,
    scales: Vec<f32>,
    /// `-128 * sum(quants)` per block: cancels the weights' +128 offset in the VNNI kernel.
    offset_terms: Vec<i32>,
}

impl Q8Rows {
    /// Quantizes `rows` rows of `cols` values (`x.len() == rows * cols`).
    pub(crate) fn quantize(x: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(x.len(), rows * cols);
        assert!(cols.is_multiple_of(BLOCK));
        let blocks = rows * cols / BLOCK;
        let mut quants = vec![0i8; rows * cols];
        let mut scales = Vec::with_capacity(blocks);
        let mut offset_terms = Vec::with_capacity(blocks);
        for (xs, qs) in x.chunks_exact(BLOCK).zip(quants.chunks_exact_mut(BLOCK)) {
            let amax = xs.iter().fold(0f32, |m, &v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            scales.push(f16::from_f32(d).to_f32());
            let mut sum = 0i32;
            for (q, &v) in qs.iter_mut().zip(xs) {
                *q = (v * id).round() as i8;
                sum += *q as i32;
            }
            offset_terms.push(-128 * sum);
        }
        Q8Rows {
            rows,
            cols,
            quants,
            scales,
            offset_terms,
        }
    }
}

/// The kernels, fastest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    Vnni,
    Avx2,
    Scalar,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub(crate) fn detect() -> Kernel {
        static DETECTED: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *DETECTED.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
                if avx2
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vnni")
                {
                    return Kernel::Vnni;
                }
                if avx2 {
                    return Kernel::Avx2;
                }
            }
            Kernel::Scalar
        })
    }

    /// Whether this CPU runs the kernel.
    #[cfg(test)]
    pub(crate) fn available(self) -> bool {
        match self {
            Kernel::Scalar => true,
            Kernel::Avx2 => Kernel::detect() != Kernel::Scalar,
            Kernel::Vnni => Kernel::detect() == Kernel::Vnni,
        }
    }
}

/// `out[i * w.rows() + j] = x_i . w_j` for the rows of `x` and of `w`, with the fastest
/// kernel, over `rayon`'s threads when the product is large enough to pay for them.
pub(crate) fn matmul(x: &Q8Rows, w: &Q8Matrix, out: &mut [f32]) {
    matmul_with(Kernel::detect(), x, w, out);
}

/// Multiply-adds below which a product runs on the calling thread.
const PARALLEL_WORK: usize = 1 << 18;

/// [`matmul`] with a given kernel (which the CPU must run).
pub(crate) fn matmul_with(kernel: Kernel, x: &Q8Rows, w: &Q8Matrix, out: &mut [f32]) {
    assert_eq!(x.cols, w.cols);
    assert_eq!(out.len(), x.rows * w.rows);
    let threads = rayon::current_num_threads();
    let work = x.rows * w.rows * w.cols;
    if threads <= 1 || work < PARALLEL_WORK || w.rows < 2 * TILE_N {
        columns(kernel, x, w, 0..w.rows, OutPtr(out.as_mut_ptr()));
        return;
    }
    // Contiguous ranges of weight rows (whole tiles), a few per thread.
    let pieces = (threads * 2).min(w.rows / TILE_N);
    let per_piece = w.rows.div_ceil(pieces).next_multiple_of(TILE_N);
    let ptr = OutPtr(out.as_mut_ptr());
    use rayon::prelude::*;
    (0..w.rows.div_ceil(per_piece))
        .into_par_iter()
        .for_each(|piece| {
            let start = piece * per_piece;
            let end = (start + per_piece).min(w.rows);
            columns(kernel, x, w, start..end, ptr);
        });
}

/// The output buffer, shared by threads that write disjoint columns.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: each thread writes only the columns of its own range of weight rows.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Output columns `range` (weight rows) for every activation row.
fn columns(kernel: Kernel, x: &Q8Rows, w: &Q8Matrix, range: std::ops::Range<usize>, out: OutPtr) {
    let ld = w.rows;
    match kernel {
        Kernel::Scalar => {
            for i in 0..x.rows {
                for j in range.clone() {
                    // SAFETY: i < x.rows and j < w.rows: inside the checked output.
                    unsafe { *out.0.add(i * ld + j) = dot_scalar(x, i, w, j) };
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 | Kernel::Vnni => {
            let vnni = kernel == Kernel::Vnni;
            let mut j = range.start;
            while j < range.end {
                let rn = (range.end - j).min(TILE_N);
                let mut i = 0;
                while i < x.rows {
                    let rm = if x.rows - i >= TILE_M { TILE_M } else { 1 };
                    // SAFETY: the tile lies inside x, w and out; the caller checked the
                    // CPU features of `kernel`.
                    unsafe { x86::tile(vnni, rm, rn, x, i, w, j, out.0, ld) };
                    i += rm;
                }
                j += rn;
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("SIMD kernels are x86-64 only"),
    }
}

/// The reference: one block at a time, integer sums, scaled as ggml does.
fn dot_scalar(x: &Q8Rows, i: usize, w: &Q8Matrix, j: usize) -> f32 {
    let blocks = w.cols / BLOCK;
    let mut acc = 0f32;
    for b in 0..blocks {
        let xq = &x.quants[i * x.cols + b * BLOCK..][..BLOCK];
        let wq = &w.offset_quants[j * w.cols + b * BLOCK..][..BLOCK];
        let sum: i32 = xq
            .iter()
            .zip(wq)
            .map(|(&a, &c)| a as i32 * (c as i32 - 128))
            .sum();
        acc += x.scales[i * blocks + b] * w.scales[j * blocks + b] * sum as f32;
    }
    acc
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{BLOCK, Q8Matrix, Q8Rows};

    /// One tile of `rm` activation rows from `i0` by `rn` weight rows from `j0`.
    ///
    /// # Safety
    /// The tile must lie inside `x`, `w` and `out` (`ld` columns), and the CPU must have
    /// AVX2 and FMA (and AVX-512 F/VL/VNNI when `vnni`).
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile(
        vnni: bool,
        rm: usize,
        rn: usize,
        x: &Q8Rows,
        i0: usize,
        w: &Q8Matrix,
        j0: usize,
        out: *mut f32,
        ld: usize,
    ) {
        macro_rules! dispatch {
            ($kernel:ident) => {
                match (rm, rn) {
                    (4, 4) => $kernel::<4, 4>(x, i0, w, j0, out, ld),
                    (4, 3) => $kernel::<4, 3>(x, i0, w, j0, out, ld),
                    (4, 2) => $kernel::<4, 2>(x, i0, w, j0, out, ld),
                    (4, 1) => $kernel::<4, 1>(x, i0, w, j0, out, ld),
                    (1, 4) => $kernel::<1, 4>(x, i0, w, j0, out, ld),
                    (1, 3) => $kernel::<1, 3>(x, i0, w, j0, out, ld),
                    (1, 2) => $kernel::<1, 2>(x, i0, w, j0, out, ld),
                    (1, 1) => $kernel::<1, 1>(x, i0, w, j0, out, ld),
                    _ => unreachable!("tile {rm}x{rn}"),
                }
            };
        }
        // SAFETY: forwarded from the caller.
        unsafe {
            if vnni {
                dispatch!(tile_vnni)
            } else {
                dispatch!(tile_avx2)
            }
        }
    }

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        unsafe {
            let sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
            let sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
            _mm_cvtss_f32(sum)
        }
    }

    macro_rules! tile_kernel {
        ($name:ident, $features:literal, |$xv:ident, $xo:ident, $wv:ident| $dot:expr) => {
            #[target_feature(enable = $features)]
            unsafe fn $name<const RM: usize, const RN: usize>(
                x: &Q8Rows,
                i0: usize,
                w: &Q8Matrix,
                j0: usize,
                out: *mut f32,
                ld: usize,
            ) {
                let blocks = w.cols / BLOCK;
                let mut acc = [[_mm256_setzero_ps(); RN]; RM];
                let wq = w.offset_quants.as_ptr();
                let xq = x.quants.as_ptr();
                for b in 0..blocks {
                    let mut wvs = [_mm256_setzero_si256(); RN];
                    let mut wss = [_mm256_setzero_ps(); RN];
                    for j in 0..RN {
                        // SAFETY: row j0 + j, block b lie inside w.
                        unsafe {
                            wvs[j] = _mm256_loadu_si256(
                                wq.add((j0 + j) * w.cols + b * BLOCK) as *const __m256i
                            );
                            wss[j] = _mm256_set1_ps(*w.scales.get_unchecked((j0 + j) * blocks + b));
                        }
                    }
                    for i in 0..RM {
                        let row = i0 + i;
                        // SAFETY: row, block b lie inside x.
                        let ($xv, xs, $xo) = unsafe {
                            (
                                _mm256_loadu_si256(
                                    xq.add(row * x.cols + b * BLOCK) as *const __m256i
                                ),
                                _mm256_set1_ps(*x.scales.get_unchecked(row * blocks + b)),
                                *x.offset_terms.get_unchecked(row * blocks + b),
                            )
                        };
                        for j in 0..RN {
                            let $wv = wvs[j];
                            let dot: __m256i = $dot;
                            acc[i][j] = _mm256_fmadd_ps(
                                _mm256_cvtepi32_ps(dot),
                                _mm256_mul_ps(xs, wss[j]),
                                acc[i][j],
                            );
                        }
                    }
                }
                for i in 0..RM {
                    for j in 0..RN {
                        // SAFETY: inside the output (the caller's contract).
                        unsafe { *out.add((i0 + i) * ld + j0 + j) = hsum(acc[i][j]) };
                    }
                }
            }
        };
    }

    // Unsigned (w + 128) by signed x, from -128 * sum(x) in lane 0: exactly sum(w * x).
    tile_kernel!(
        tile_vnni,
        "avx2,fma,avx512f,avx512vl,avx512vnni",
        |xv, xo, wv| { _mm256_dpbusd_epi32(_mm256_setr_epi32(xo, 0, 0, 0, 0, 0, 0, 0), wv, xv) }
    );

    // candle's and ggml's AVX2 dot: |w| by x carrying w's sign, pairs summed to i16
    // (at most 2 * 128 * 127, no saturation), then to i32.
    tile_kernel!(tile_avx2, "avx2,fma", |xv, xo, wv| {
        let _ = xo;
        let signed = _mm256_xor_si256(wv, _mm256_set1_epi8(-128));
        let pairs = _mm256_maddubs_epi16(
            _mm256_sign_epi8(signed, signed),
            _mm256_sign_epi8(xv, signed),
        );
        _mm256_madd_epi16(pairs, _mm256_set1_epi16(1))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..len).map(|_| rng.random_range(-2.0f32..2.0)).collect()
    }

    /// GGUF Q8_0 blocks of random quants (including -128) and scales.
    fn random_blocks(rows: usize, cols: usize, seed: u64) -> Vec<u8> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut bytes = Vec::new();
        for _ in 0..rows * cols / BLOCK {
            bytes.extend(f16::from_f32(rng.random_range(0.001f32..0.05)).to_le_bytes());
            bytes.extend((0..BLOCK).map(|_| rng.random::<u8>()));
        }
        bytes
    }

    /// The plain definition: dequantized weights times dequantized activations, in f64.
    fn reference(x: &Q8Rows, w: &Q8Matrix) -> Vec<f64> {
        let mut out = Vec::new();
        let mut row = vec![0f32; w.cols];
        for i in 0..x.rows {
            for j in 0..w.rows {
                w.dequantize_row(j, &mut row);
                let mut sum = 0f64;
                for (c, &wv) in row.iter().enumerate() {
                    let xv =
                        x.quants[i * x.cols + c] as f64 * x.scales[(i * x.cols + c) / BLOCK] as f64;
                    sum += xv * wv as f64;
                }
                out.push(sum);
            }
        }
        out
    }

    #[test]
    fn every_kernel_matches_the_reference_on_odd_shapes() {
        // Rows not multiples of the tiles, columns not multiples of 256.
        for (m, n, k) in [
            (1, 1, 32),
            (1, 13, 576),
            (5, 9, 96),
            (9, 17, 64),
            (4, 8, 1536),
        ] {
            let w = Q8Matrix::from_ggml_blocks(n, k, &random_blocks(n, k, 7)).unwrap();
            let x = Q8Rows::quantize(&random(m * k, 3), m, k);
            let expected = reference(&x, &w);
            for kernel in [Kernel::Scalar, Kernel::Avx2, Kernel::Vnni] {
                if !kernel.available() {
                    continue;
                }
                let mut out = vec![0f32; m * n];
                matmul_with(kernel, &x, &w, &mut out);
                for (got, want) in out.iter().zip(&expected) {
                    assert!(
                        (*got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "{kernel:?} {m}x{n}x{k}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn threaded_products_equal_the_single_thread_ones() {
        let (m, n, k) = (7, 200, 576);
        let w = Q8Matrix::from_ggml_blocks(n, k, &random_blocks(n, k, 11)).unwrap();
        let x = Q8Rows::quantize(&random(m * k, 5), m, k);
        let mut single = vec![0f32; m * n];
        columns(Kernel::detect(), &x, &w, 0..n, OutPtr(single.as_mut_ptr()));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let mut threaded = vec![0f32; m * n];
        pool.install(|| matmul(&x, &w, &mut threaded));
        assert_eq!(single, threaded);
    }

    #[test]
    fn activations_quantize_as_ggml_does() {
        let x: Vec<f32> = (0..64).map(|i| (i as f32 - 20.0) * 0.37).collect();
        let q = Q8Rows::quantize(&x, 2, 32);
        // Block 0: max |x| is 20 * 0.37, so its quant is -127.
        assert_eq!(q.quants[0], -127);
        assert_eq!(q.scales[0], f16::from_f32(20.0 * 0.37 / 127.0).to_f32());
        let sum: i32 = q.quants[..32].iter().map(|&v| v as i32).sum();
        assert_eq!(q.offset_terms[0], -128 * sum);
        // A zero block has scale 0 and zero quants.
        let zero = Q8Rows::quantize(&[0.0; 32], 1, 32);
        assert!(zero.quants.iter().all(|&v| v == 0) && zero.scales[0] == 0.0);
    }

    #[test]
    fn stacking_and_dequantizing_keep_the_rows() {
        let a = Q8Matrix::from_ggml_blocks(2, 64, &random_blocks(2, 64, 1)).unwrap();
        let b = Q8Matrix::from_ggml_blocks(3, 64, &random_blocks(3, 64, 2)).unwrap();
        let s = Q8Matrix::stacked(&[a.clone(), b.clone()]);
        assert_eq!((s.rows(), s.cols()), (5, 64));
        let (mut r1, mut r2) = (vec![0f32; 64], vec![0f32; 64]);
        s.dequantize_row(3, &mut r1);
        b.dequantize_row(1, &mut r2);
        assert_eq!(r1, r2);
        assert!(Q8Matrix::from_ggml_blocks(2, 48, &[]).is_none());
    }
}
