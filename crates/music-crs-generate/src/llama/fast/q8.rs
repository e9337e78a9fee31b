//! Q8_0 matrix products: weights in blocks of 32 signed bytes with one scale, activations
//! quantized the same way per row (as ggml and candle do), one integer dot product per block
//! scaled by the two blocks' scales.
//!
//! Three kernels compute the same integers: AVX-512 VNNI (`vpdpbusd` on 512-bit registers,
//! two weight rows' blocks per register), AVX2 (`vpmaddubsw` with the sign trick, as candle's
//! `vec_dot_q8_0_q8_0`) and a scalar reference; the fastest the CPU has is chosen at run
//! time. Both SIMD kernels work on tiles of activation rows by weight rows, so each weight
//! block loaded serves several activation rows (prompt reading) and each activation block
//! several weight rows (decoding), and both give the same bits: each 256-bit half of a VNNI
//! register does, lane by lane, what the AVX2 kernel does (a run's replies do not depend on
//! which of the two the CPU has). Scales are converted from f16 once, at load.
//!
//! VNNI multiplies unsigned by signed bytes, so Q8_0 weights are stored offset by 128
//! (`w + 128`, unsigned) and each group of 4 activations carries `-128 * sum(x)`, the term
//! that offset adds to its lane, as the lane's starting value: each lane holds the exact
//! `sum(w * x)` of its 4 values, as in the AVX2 kernel.

use half::f16;

use super::team;

/// Values per Q8_0 block.
pub(crate) const BLOCK: usize = 32;

/// Weight rows per tile of the SIMD kernels (the VNNI kernel holds two per register); a
/// thread's range of weight rows is a multiple of it.
const TILE_N: usize = 8;
/// Weight rows per tile of the AVX2 kernel (its 16 registers hold 4 x 4 accumulators).
const TILE_N_AVX2: usize = 4;
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

    /// A matrix quantized from f32 rows (`values.len() == rows * cols`).
    pub(crate) fn quantize(rows: usize, cols: usize, values: &[f32]) -> Self {
        let q = Q8Rows::quantize(values, rows, cols);
        Q8Matrix {
            rows,
            cols,
            offset_quants: q.quants.iter().map(|&v| (v as i16 + 128) as u8).collect(),
            scales: q.scales,
        }
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
    /// `-128 * sum(quants)` of each group of 4 quants (8 per block): the VNNI kernel starts
    /// each lane's sum there, which cancels the weights' +128 offset lane by lane (so every
    /// lane's integer equals the AVX2 kernel's). Empty where the CPU lacks that kernel (the
    /// only reader; a kernel runs only where the CPU has it).
    lane_offsets: Vec<i32>,
    /// `scale * sum(quants)` per block: the Q4_1 kernel's term for the weights' minimum.
    block_sums: Vec<f32>,
}

impl Q8Rows {
    /// Quantizes `rows` rows of `cols` values (`x.len() == rows * cols`).
    pub(crate) fn quantize(x: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(x.len(), rows * cols);
        assert!(cols.is_multiple_of(BLOCK));
        let blocks = rows * cols / BLOCK;
        let mut quants = vec![0i8; rows * cols];
        let mut scales = Vec::with_capacity(blocks);
        let mut lane_offsets = Vec::with_capacity(blocks * BLOCK / 4);
        let mut block_sums = Vec::with_capacity(blocks);
        #[cfg(target_arch = "x86_64")]
        let simd = Kernel::detect() != Kernel::Scalar;
        #[cfg(not(target_arch = "x86_64"))]
        let simd = false;
        let vnni = Kernel::detect() == Kernel::Vnni;
        for (xs, qs) in x.chunks_exact(BLOCK).zip(quants.chunks_exact_mut(BLOCK)) {
            let (scale, sum) = if simd {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU has AVX2 (Kernel::detect); both blocks hold 32 values.
                unsafe {
                    x86::quantize_block(xs, qs)
                }
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!()
            } else {
                quantize_block(xs, qs)
            };
            scales.push(scale);
            if vnni {
                lane_offsets.extend(
                    qs.chunks_exact(4)
                        .map(|lane| -128 * lane.iter().map(|&q| q as i32).sum::<i32>()),
                );
            }
            block_sums.push(scale * sum as f32);
        }
        Q8Rows {
            rows,
            cols,
            quants,
            scales,
            lane_offsets,
            block_sums,
        }
    }
}

/// One block: its f16-rounded scale and the sum of its quants (ties round to even, as
/// ggml's SIMD quantizers do).
fn quantize_block(xs: &[f32], qs: &mut [i8]) -> (f32, i32) {
    let amax = xs.iter().fold(0f32, |m, &v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut sum = 0i32;
    for (q, &v) in qs.iter_mut().zip(xs) {
        *q = (v * id).round_ties_even() as i8;
        sum += *q as i32;
    }
    (f16::from_f32(d).to_f32(), sum)
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
                    && is_x86_feature_detected!("avx512bw")
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
/// kernel, over threads ([`team`]) when the product is large enough to pay for them.
pub(crate) fn matmul<W: Weights>(x: &Q8Rows, w: &W, out: &mut [f32]) {
    matmul_with(Kernel::detect(), x, w, out);
}

/// Multiply-adds below which a product runs on the calling thread (decoding's q/k/v,
/// output and down products of a small model: waking rayon's threads would cost more).
const PARALLEL_WORK: usize = 1 << 20;

/// The same for a thread whose products go to the spinning team ([`team`]), whose jobs
/// start at once.
const TEAM_WORK: usize = 1 << 16;

/// [`matmul`] with a given kernel (which the CPU must run).
pub(crate) fn matmul_with<W: Weights>(kernel: Kernel, x: &Q8Rows, w: &W, out: &mut [f32]) {
    let (rows, cols) = (w.rows(), w.cols());
    assert_eq!(x.cols, cols);
    assert_eq!(out.len(), x.rows * rows);
    let here = team::here();
    let work = x.rows * rows * cols;
    let smallest = if here.spinning() {
        TEAM_WORK
    } else {
        PARALLEL_WORK
    };
    if here.threads() <= 1 || work < smallest || rows < 2 * TILE_N {
        columns(kernel, x, w, 0..rows, OutPtr(out.as_mut_ptr()));
        return;
    }
    // Contiguous ranges of weight rows (whole tiles): one per thread for decoding's small
    // products on rayon, a few per thread for prompt reading's and on the team (a thread
    // slowed down by another process, or late to start, then holds up less).
    let per_thread = if work >= PARALLEL_WORK << 4 || here.spinning() {
        4
    } else {
        1
    };
    let pieces = (here.threads() * per_thread).min(rows / TILE_N);
    let per_piece = rows.div_ceil(pieces).next_multiple_of(TILE_N);
    let ptr = OutPtr(out.as_mut_ptr());
    here.for_each_piece(rows.div_ceil(per_piece), &|piece| {
        let start = piece * per_piece;
        let end = (start + per_piece).min(rows);
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
fn columns<W: Weights>(
    kernel: Kernel,
    x: &Q8Rows,
    w: &W,
    range: std::ops::Range<usize>,
    out: OutPtr,
) {
    let ld = w.rows();
    match kernel {
        Kernel::Scalar => {
            for i in 0..x.rows {
                for j in range.clone() {
                    // SAFETY: i < x.rows and j < w.rows: inside the checked output.
                    unsafe { *out.0.add(i * ld + j) = w.dot_scalar(x, i, j) };
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 | Kernel::Vnni => {
            let vnni = kernel == Kernel::Vnni;
            let tile_n = if vnni { TILE_N } else { TILE_N_AVX2 };
            let mut j = range.start;
            while j < range.end {
                let rn = (range.end - j).min(tile_n);
                let mut i = 0;
                while i < x.rows {
                    let rm = if x.rows - i >= TILE_M { TILE_M } else { 1 };
                    // SAFETY: the tile lies inside x, w and out; the caller checked the
                    // CPU features of `kernel`.
                    unsafe { w.tile(vnni, rm, rn, x, i, j, out.0, ld) };
                    i += rm;
                }
                j += rn;
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("SIMD kernels are x86-64 only"),
    }
}

/// A weight matrix the kernels multiply.
pub(crate) trait Weights: Sync {
    fn rows(&self) -> usize;
    fn cols(&self) -> usize;
    /// The reference: `x_i . w_j` one block at a time, integer sums, scaled as ggml does.
    fn dot_scalar(&self, x: &Q8Rows, i: usize, j: usize) -> f32;
    /// One SIMD tile (see `x86::tile`).
    ///
    /// # Safety
    /// As `x86::tile`.
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile(
        &self,
        vnni: bool,
        rm: usize,
        rn: usize,
        x: &Q8Rows,
        i0: usize,
        j0: usize,
        out: *mut f32,
        ld: usize,
    );
}

impl Weights for Q8Matrix {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn dot_scalar(&self, x: &Q8Rows, i: usize, j: usize) -> f32 {
        let blocks = self.cols / BLOCK;
        let mut acc = 0f32;
        for b in 0..blocks {
            let xq = &x.quants[i * x.cols + b * BLOCK..][..BLOCK];
            let wq = &self.offset_quants[j * self.cols + b * BLOCK..][..BLOCK];
            let sum: i32 = xq
                .iter()
                .zip(wq)
                .map(|(&a, &c)| a as i32 * (c as i32 - 128))
                .sum();
            acc += x.scales[i * blocks + b] * self.scales[j * blocks + b] * sum as f32;
        }
        acc
    }

    #[cfg(target_arch = "x86_64")]
    unsafe fn tile(
        &self,
        vnni: bool,
        rm: usize,
        rn: usize,
        x: &Q8Rows,
        i0: usize,
        j0: usize,
        out: *mut f32,
        ld: usize,
    ) {
        // SAFETY: forwarded.
        unsafe { x86::tile(vnni, rm, rn, x, i0, self, j0, out, ld) }
    }
}

/// A `rows` x `cols` weight matrix of GGUF Q4_1 blocks, as stored (half the bytes of
/// Q8_0: decoding reads every weight once per token): `w = scale * q + min`, `q` in 0..16.
#[derive(Clone)]
pub(crate) struct Q4Matrix {
    rows: usize,
    cols: usize,
    /// 16 bytes per block: values `t` in the low and `t + 16` in the high nibble of byte `t`.
    nibbles: Vec<u8>,
    scales: Vec<f32>,
    /// The minimums block by block (`[block][row]`): a tile's epilogue reads the minimums of
    /// its consecutive rows together.
    mins_by_block: Vec<f32>,
}

impl Q4Matrix {
    /// A matrix from GGUF Q4_1 blocks (20 bytes: f16 scale, f16 minimum, 16 bytes).
    pub(crate) fn from_ggml_blocks(rows: usize, cols: usize, bytes: &[u8]) -> Option<Self> {
        if !cols.is_multiple_of(BLOCK) || bytes.len() != rows * cols / BLOCK * 20 {
            return None;
        }
        let blocks = rows * cols / BLOCK;
        let row_blocks = cols / BLOCK;
        let mut matrix = Q4Matrix {
            rows,
            cols,
            nibbles: Vec::with_capacity(blocks * 16),
            scales: Vec::with_capacity(blocks),
            mins_by_block: vec![0.0; blocks],
        };
        for (index, block) in bytes.chunks_exact(20).enumerate() {
            matrix
                .scales
                .push(f16::from_le_bytes([block[0], block[1]]).to_f32());
            let (row, b) = (index / row_blocks, index % row_blocks);
            matrix.mins_by_block[b * rows + row] =
                f16::from_le_bytes([block[2], block[3]]).to_f32();
            matrix.nibbles.extend_from_slice(&block[4..]);
        }
        Some(matrix)
    }

    /// Rows stacked: every matrix must have the same number of columns.
    pub(crate) fn stacked(parts: &[Q4Matrix]) -> Self {
        let cols = parts[0].cols;
        assert!(parts.iter().all(|part| part.cols == cols));
        Q4Matrix {
            rows: parts.iter().map(|part| part.rows).sum(),
            cols,
            nibbles: parts
                .iter()
                .flat_map(|p| p.nibbles.iter().copied())
                .collect(),
            scales: parts
                .iter()
                .flat_map(|p| p.scales.iter().copied())
                .collect(),
            mins_by_block: (0..cols / BLOCK)
                .flat_map(|b| {
                    parts
                        .iter()
                        .flat_map(move |p| p.mins_by_block[b * p.rows..][..p.rows].iter().copied())
                })
                .collect(),
        }
    }

    fn min(&self, row: usize, b: usize) -> f32 {
        self.mins_by_block[b * self.rows + row]
    }

    fn quant(&self, row: usize, col: usize) -> u8 {
        let (b, t) = (col / BLOCK, col % BLOCK);
        let byte = self.nibbles[(row * self.cols / BLOCK + b) * 16 + t % 16];
        if t < 16 { byte & 0x0F } else { byte >> 4 }
    }

    /// Row `row` dequantized into `out` (`cols` values), as ggml dequantizes Q4_1.
    pub(crate) fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let blocks = self.cols / BLOCK;
        for (c, y) in out.iter_mut().enumerate() {
            let b = row * blocks + c / BLOCK;
            *y = self.quant(row, c) as f32 * self.scales[b] + self.min(row, c / BLOCK);
        }
    }

    /// Bytes held (nibbles, scales and minimums).
    pub(crate) fn bytes(&self) -> usize {
        self.nibbles.len() + 4 * (self.scales.len() + self.mins_by_block.len())
    }
}

impl Weights for Q4Matrix {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn dot_scalar(&self, x: &Q8Rows, i: usize, j: usize) -> f32 {
        let blocks = self.cols / BLOCK;
        let mut acc = 0f32;
        for b in 0..blocks {
            let xq = &x.quants[i * x.cols + b * BLOCK..][..BLOCK];
            let sum: i32 = xq
                .iter()
                .enumerate()
                .map(|(t, &a)| a as i32 * self.quant(j, b * BLOCK + t) as i32)
                .sum();
            let (xb, wb) = (i * blocks + b, j * blocks + b);
            acc += x.scales[xb] * self.scales[wb] * sum as f32 + self.min(j, b) * x.block_sums[xb];
        }
        acc
    }

    #[cfg(target_arch = "x86_64")]
    unsafe fn tile(
        &self,
        vnni: bool,
        rm: usize,
        rn: usize,
        x: &Q8Rows,
        i0: usize,
        j0: usize,
        out: *mut f32,
        ld: usize,
    ) {
        // SAFETY: forwarded.
        unsafe { x86::tile(vnni, rm, rn, x, i0, self, j0, out, ld) }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use half::f16;

    use super::{BLOCK, Q4Matrix, Q8Matrix, Q8Rows, Weights};

    /// [`super::quantize_block`] with AVX2.
    ///
    /// # Safety
    /// AVX2; `xs` and `qs` hold 32 values.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn quantize_block(xs: &[f32], qs: &mut [i8]) -> (f32, i32) {
        assert!(xs.len() == BLOCK && qs.len() == BLOCK);
        // SAFETY: 32 values each (checked).
        unsafe {
            let p = xs.as_ptr();
            let v = [
                _mm256_loadu_ps(p),
                _mm256_loadu_ps(p.add(8)),
                _mm256_loadu_ps(p.add(16)),
                _mm256_loadu_ps(p.add(24)),
            ];
            let sign = _mm256_set1_ps(-0.0);
            let mut max = _mm256_andnot_ps(sign, v[0]);
            for value in &v[1..] {
                max = _mm256_max_ps(max, _mm256_andnot_ps(sign, *value));
            }
            let m4 = _mm_max_ps(_mm256_castps256_ps128(max), _mm256_extractf128_ps(max, 1));
            let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            let m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            let amax = _mm_cvtss_f32(m4);
            let d = amax / 127.0;
            let id = _mm256_set1_ps(if d != 0.0 { 1.0 / d } else { 0.0 });
            let round = |x: __m256| {
                _mm256_cvtps_epi32(_mm256_round_ps(
                    _mm256_mul_ps(x, id),
                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
                ))
            };
            let (i0, i1, i2, i3) = (round(v[0]), round(v[1]), round(v[2]), round(v[3]));
            let total = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
            let t4 = _mm_add_epi32(
                _mm256_castsi256_si128(total),
                _mm256_extracti128_si256(total, 1),
            );
            let t4 = _mm_hadd_epi32(t4, t4);
            let t4 = _mm_hadd_epi32(t4, t4);
            let sum = _mm_cvtsi128_si32(t4);
            // Pack to bytes; the packs interleave 128-bit lanes, the permute restores order.
            let packed = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
            let ordered =
                _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256(qs.as_mut_ptr() as *mut __m256i, ordered);
            (f16::from_f32(d).to_f32(), sum)
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

    /// What the SIMD tiles need of a weight format. Both kernels compute, lane by lane, the
    /// same integer sums and the same float steps, so they give the same bits: the 512-bit
    /// one holds block `b` of two weight rows in one register (the first row in the low
    /// 256 bits), each half doing exactly what the AVX2 kernel does for its row.
    pub(super) trait SimdWeights: Weights {
        /// Weights stored offset by 128 (Q8_0): each VNNI lane's sum starts at its
        /// activations' `-128 * sum(x)`, which cancels the offset.
        const OFFSET: bool;
        fn blocks_per_row(&self) -> usize {
            self.cols() / BLOCK
        }
        /// The scale of block `index` (row-major).
        ///
        /// # Safety
        /// The block lies inside the matrix.
        unsafe fn scale(&self, index: usize) -> f32;
        /// Block `b` of `row`: 32 bytes for the AVX2 dot.
        ///
        /// # Safety
        /// AVX2; the block lies inside the matrix.
        unsafe fn block(&self, row: usize, b: usize) -> __m256i;
        /// The AVX2 integer dot of a weight block and an activation block: eight partial
        /// sums.
        ///
        /// # Safety
        /// AVX2.
        unsafe fn dot(w: __m256i, x: __m256i) -> __m256i;
        /// Block `b` of rows `first` (low half) and `second` (high half), as unsigned bytes
        /// for `vpdpbusd`.
        ///
        /// # Safety
        /// AVX-512 F/BW; both blocks lie inside the matrix.
        unsafe fn pair(&self, first: usize, second: usize, b: usize) -> __m512i;
        /// What is added to the sums over blocks of activation row `i` and weight rows
        /// `j0..j0 + n` (`n` at most 8), in its first `n` values.
        ///
        /// # Safety
        /// AVX2 and FMA; the rows lie inside `x` and the matrix.
        unsafe fn extras(&self, x: &Q8Rows, i: usize, j0: usize, n: usize) -> [f32; 8];
    }

    impl SimdWeights for Q8Matrix {
        const OFFSET: bool = true;

        #[inline(always)]
        unsafe fn scale(&self, index: usize) -> f32 {
            // SAFETY: inside the matrix (the caller's contract).
            unsafe { *self.scales.get_unchecked(index) }
        }

        #[inline(always)]
        unsafe fn block(&self, row: usize, b: usize) -> __m256i {
            // SAFETY: inside the matrix (the caller's contract).
            unsafe { _mm256_loadu_si256(self.block_ptr(row, b) as *const __m256i) }
        }

        // candle's and ggml's AVX2 dot: |w| by x carrying w's sign, pairs summed to i16
        // (at most 2 * 128 * 127, no saturation), then to i32.
        #[inline(always)]
        unsafe fn dot(w: __m256i, x: __m256i) -> __m256i {
            // SAFETY: AVX2 (the caller's contract).
            unsafe {
                let signed = _mm256_xor_si256(w, _mm256_set1_epi8(-128));
                let pairs = _mm256_maddubs_epi16(
                    _mm256_sign_epi8(signed, signed),
                    _mm256_sign_epi8(x, signed),
                );
                _mm256_madd_epi16(pairs, _mm256_set1_epi16(1))
            }
        }

        #[inline(always)]
        unsafe fn pair(&self, first: usize, second: usize, b: usize) -> __m512i {
            // SAFETY: inside the matrix (the caller's contract).
            unsafe {
                let low = _mm256_loadu_si256(self.block_ptr(first, b) as *const __m256i);
                let high = _mm256_loadu_si256(self.block_ptr(second, b) as *const __m256i);
                _mm512_inserti64x4::<1>(_mm512_castsi256_si512(low), high)
            }
        }

        #[inline(always)]
        unsafe fn extras(&self, _: &Q8Rows, _: usize, _: usize, _: usize) -> [f32; 8] {
            [0.0; 8]
        }
    }

    impl Q8Matrix {
        /// # Safety
        /// Row `row`, block `b` lie inside the matrix.
        #[inline(always)]
        unsafe fn block_ptr(&self, row: usize, b: usize) -> *const u8 {
            // SAFETY: the caller's contract.
            unsafe { self.offset_quants.as_ptr().add(row * self.cols + b * BLOCK) }
        }
    }

    impl SimdWeights for Q4Matrix {
        // Nibbles (0..16) are unsigned: both instructions take them as they are.
        const OFFSET: bool = false;

        #[inline(always)]
        unsafe fn scale(&self, index: usize) -> f32 {
            // SAFETY: inside the matrix (the caller's contract).
            unsafe { *self.scales.get_unchecked(index) }
        }

        #[inline(always)]
        unsafe fn block(&self, row: usize, b: usize) -> __m256i {
            // SAFETY: inside the matrix (the caller's contract).
            unsafe {
                let raw = _mm_loadu_si128(self.block_ptr(row, b) as *const __m128i);
                let low = _mm_set1_epi8(0x0F);
                _mm256_set_m128i(
                    _mm_and_si128(_mm_srli_epi16(raw, 4), low),
                    _mm_and_si128(raw, low),
                )
            }
        }

        #[inline(always)]
        unsafe fn dot(w: __m256i, x: __m256i) -> __m256i {
            // SAFETY: AVX2 (the caller's contract).
            unsafe { _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)) }
        }

        #[inline(always)]
        unsafe fn pair(&self, first: usize, second: usize, b: usize) -> __m512i {
            // SAFETY: inside the matrix (the caller's contract).
            unsafe {
                // 128-bit lanes [first, first, second, second]; lanes 1 and 3 take the high
                // nibbles (values 16..32 of their block).
                let first = _mm512_broadcast_i32x4(_mm_loadu_si128(
                    self.block_ptr(first, b) as *const __m128i
                ));
                let both = _mm512_mask_broadcast_i32x4(
                    first,
                    0xFF00,
                    _mm_loadu_si128(self.block_ptr(second, b) as *const __m128i),
                );
                let shifted = _mm512_mask_srli_epi16(both, 0xFF00_FF00, both, 4);
                _mm512_and_si512(shifted, _mm512_set1_epi8(0x0F))
            }
        }

        /// The minimums' terms, `sum_b min_jb * scale_ib * sum(x_ib)`, of `n` weight rows at
        /// once, one per lane, each summed in one fixed order whatever `n` is: 8 partial sums
        /// (blocks by their number modulo 8), added as a tree, then the last blocks one by one.
        #[inline(always)]
        unsafe fn extras(&self, x: &Q8Rows, i: usize, j0: usize, n: usize) -> [f32; 8] {
            let blocks = self.cols / BLOCK;
            let whole = blocks / 8 * 8;
            // SAFETY: row i of x holds `blocks` sums; lanes below n read rows j0.. of each
            // block's minimums, inside the matrix (the caller's contract).
            unsafe {
                let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes);
                let mins = |b: usize| {
                    _mm256_maskload_ps(self.mins_by_block.as_ptr().add(b * self.rows + j0), mask)
                };
                let sums = x.block_sums.as_ptr().add(i * blocks);
                let mut partial = [_mm256_setzero_ps(); 8];
                for b in 0..whole {
                    partial[b % 8] =
                        _mm256_fmadd_ps(mins(b), _mm256_set1_ps(*sums.add(b)), partial[b % 8]);
                }
                let [p0, p1, p2, p3, p4, p5, p6, p7] = partial;
                let mut total = _mm256_add_ps(
                    _mm256_add_ps(_mm256_add_ps(p0, p4), _mm256_add_ps(p2, p6)),
                    _mm256_add_ps(_mm256_add_ps(p1, p5), _mm256_add_ps(p3, p7)),
                );
                for b in whole..blocks {
                    total =
                        _mm256_add_ps(total, _mm256_mul_ps(mins(b), _mm256_set1_ps(*sums.add(b))));
                }
                let mut out = [0f32; 8];
                _mm256_storeu_ps(out.as_mut_ptr(), total);
                out
            }
        }
    }

    impl Q4Matrix {
        /// # Safety
        /// Row `row`, block `b` lie inside the matrix.
        #[inline(always)]
        unsafe fn block_ptr(&self, row: usize, b: usize) -> *const u8 {
            // SAFETY: the caller's contract.
            unsafe {
                self.nibbles
                    .as_ptr()
                    .add((row * self.cols / BLOCK + b) * 16)
            }
        }
    }

    /// One tile of `rm` activation rows from `i0` by `rn` weight rows from `j0`.
    ///
    /// # Safety
    /// The tile must lie inside `x`, `w` and `out` (`ld` columns), and the CPU must have
    /// AVX2 and FMA (and AVX-512 F/BW/VNNI when `vnni`).
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile<W: SimdWeights>(
        vnni: bool,
        rm: usize,
        rn: usize,
        x: &Q8Rows,
        i0: usize,
        w: &W,
        j0: usize,
        out: *mut f32,
        ld: usize,
    ) {
        /// Calls `$kernel` with the tile shape as constants: 4 or 1 activation rows by each
        /// weight-row count listed (up to the kernel's tile width, [`super::TILE_N`] or
        /// [`super::TILE_N_AVX2`]).
        macro_rules! dispatch {
            ($kernel:ident, $($rn:literal)*) => {
                match (rm, rn) {
                    $(
                        (4, $rn) => $kernel::<W, 4, $rn>(x, i0, w, j0, out, ld),
                        (1, $rn) => $kernel::<W, 1, $rn>(x, i0, w, j0, out, ld),
                    )*
                    (rm, rn) => unreachable!("tile {rm}x{rn}"),
                }
            };
        }
        // SAFETY: forwarded from the caller.
        unsafe {
            if vnni {
                dispatch!(tile_vnni, 8 7 6 5 4 3 2 1)
            } else {
                dispatch!(tile_avx2, 4 3 2 1)
            }
        }
    }

    /// The AVX2 tile: per block, each weight block loaded serves `RM` activation rows and
    /// each activation block `RN` weight rows; one float accumulator of 8 lanes per pair.
    // Rows and columns index several arrays at once (loops over constant bounds, unrolled).
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile_avx2<W: SimdWeights, const RM: usize, const RN: usize>(
        x: &Q8Rows,
        i0: usize,
        w: &W,
        j0: usize,
        out: *mut f32,
        ld: usize,
    ) {
        let blocks = w.blocks_per_row();
        let mut acc = [[_mm256_setzero_ps(); RN]; RM];
        let xq = x.quants.as_ptr();
        for b in 0..blocks {
            let mut wvs = [_mm256_setzero_si256(); RN];
            let mut wss = [_mm256_setzero_ps(); RN];
            for j in 0..RN {
                // SAFETY: row j0 + j, block b lie inside w.
                unsafe {
                    wvs[j] = w.block(j0 + j, b);
                    wss[j] = _mm256_set1_ps(w.scale((j0 + j) * blocks + b));
                }
            }
            for i in 0..RM {
                let row = i0 + i;
                // SAFETY: row, block b lie inside x.
                let (xv, xs) = unsafe {
                    (
                        _mm256_loadu_si256(xq.add(row * x.cols + b * BLOCK) as *const __m256i),
                        _mm256_set1_ps(*x.scales.get_unchecked(row * blocks + b)),
                    )
                };
                for j in 0..RN {
                    // SAFETY: AVX2 (this function's features).
                    let dot = unsafe { W::dot(wvs[j], xv) };
                    acc[i][j] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(dot),
                        _mm256_mul_ps(xs, wss[j]),
                        acc[i][j],
                    );
                }
            }
        }
        for i in 0..RM {
            // SAFETY: inside x, w and the output (the caller's contract).
            unsafe {
                let extras = w.extras(x, i0 + i, j0, RN);
                for j in 0..RN {
                    *out.add((i0 + i) * ld + j0 + j) = hsum(acc[i][j]) + extras[j];
                }
            }
        }
    }

    /// The AVX-512 VNNI tile: [`tile_avx2`]'s sums with two weight rows per register, so
    /// each `vpdpbusd`, convert, multiply and FMA does the work of two. An odd last row is
    /// paired with itself and its copy dropped.
    // Rows and columns index several arrays at once (loops over constant bounds, unrolled).
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vnni")]
    unsafe fn tile_vnni<W: SimdWeights, const RM: usize, const RN: usize>(
        x: &Q8Rows,
        i0: usize,
        w: &W,
        j0: usize,
        out: *mut f32,
        ld: usize,
    ) {
        let blocks = w.blocks_per_row();
        let pairs = RN.div_ceil(2);
        // Only the first `pairs` entries of each row are used.
        let mut acc = [[_mm512_setzero_ps(); RN]; RM];
        let xq = x.quants.as_ptr();
        for b in 0..blocks {
            let mut wvs = [_mm512_setzero_si512(); RN];
            let mut wss = [_mm512_setzero_ps(); RN];
            for p in 0..pairs {
                let first = j0 + 2 * p;
                let second = if 2 * p + 1 < RN { first + 1 } else { first };
                // SAFETY: rows first and second, block b lie inside w.
                unsafe {
                    wvs[p] = w.pair(first, second, b);
                    wss[p] = _mm512_mask_broadcastss_ps(
                        _mm512_set1_ps(w.scale(first * blocks + b)),
                        0xFF00,
                        _mm_set_ss(w.scale(second * blocks + b)),
                    );
                }
            }
            for i in 0..RM {
                let row = i0 + i;
                let index = row * blocks + b;
                // SAFETY: row, block b lie inside x.
                let (xv, xs, start) = unsafe {
                    (
                        _mm512_broadcast_i64x4(_mm256_loadu_si256(
                            xq.add(row * x.cols + b * BLOCK) as *const __m256i,
                        )),
                        _mm512_set1_ps(*x.scales.get_unchecked(index)),
                        if W::OFFSET {
                            _mm512_broadcast_i64x4(_mm256_loadu_si256(
                                x.lane_offsets.as_ptr().add(index * 8) as *const __m256i,
                            ))
                        } else {
                            _mm512_setzero_si512()
                        },
                    )
                };
                for p in 0..pairs {
                    let dot = _mm512_dpbusd_epi32(start, wvs[p], xv);
                    acc[i][p] = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(dot),
                        _mm512_mul_ps(xs, wss[p]),
                        acc[i][p],
                    );
                }
            }
        }
        for i in 0..RM {
            // SAFETY: inside x and w (the caller's contract).
            let extras = unsafe { w.extras(x, i0 + i, j0, RN) };
            for p in 0..pairs {
                let j = j0 + 2 * p;
                let low = _mm512_castps512_ps256(acc[i][p]);
                let high =
                    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(acc[i][p])));
                // SAFETY: inside x, w and the output (the caller's contract).
                unsafe {
                    *out.add((i0 + i) * ld + j) = hsum(low) + extras[2 * p];
                    if 2 * p + 1 < RN {
                        *out.add((i0 + i) * ld + j + 1) = hsum(high) + extras[2 * p + 1];
                    }
                }
            }
        }
    }
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

    /// GGUF Q4_1 blocks of random nibbles, scales and minimums.
    fn random_q4_blocks(rows: usize, cols: usize, seed: u64) -> Vec<u8> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut bytes = Vec::new();
        for _ in 0..rows * cols / BLOCK {
            bytes.extend(f16::from_f32(rng.random_range(0.001f32..0.05)).to_le_bytes());
            bytes.extend(f16::from_f32(rng.random_range(-0.4f32..0.0)).to_le_bytes());
            bytes.extend((0..BLOCK / 2).map(|_| rng.random::<u8>()));
        }
        bytes
    }

    /// The plain definition: dequantized weights times dequantized activations, in f64.
    fn reference(x: &Q8Rows, w: &dyn Fn(usize, &mut [f32]), rows: usize) -> Vec<f64> {
        let mut out = Vec::new();
        let mut row = vec![0f32; x.cols];
        for i in 0..x.rows {
            for j in 0..rows {
                w(j, &mut row);
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
    fn every_kernel_matches_the_reference_and_both_simd_kernels_give_the_same_bits() {
        if !Kernel::Vnni.available() {
            eprintln!("AVX-512 VNNI missing: the SIMD kernels' bits are not compared");
        }
        // Rows not multiples of the tiles (odd weight rows: a VNNI row paired with itself;
        // 1..9 activation rows: tiles of 4 and of 1), columns not multiples of 256, one block
        // per row and many.
        for (m, n, k) in [
            (1, 1, 32),
            (1, 13, 576),
            (5, 9, 96),
            (9, 17, 64),
            (4, 8, 1536),
            (3, 7, 96),
            (9, 13, 576),
            (5, 8, 1536),
            (2, 5, 32),
        ] {
            let w = Q8Matrix::from_ggml_blocks(n, k, &random_blocks(n, k, 7)).unwrap();
            let w4 = Q4Matrix::from_ggml_blocks(n, k, &random_q4_blocks(n, k, 8)).unwrap();
            let x = Q8Rows::quantize(&random(m * k, 3), m, k);
            let expected = reference(&x, &|j, row| w.dequantize_row(j, row), n);
            let expected4 = reference(&x, &|j, row| w4.dequantize_row(j, row), n);
            let mut simd_bits = Vec::new();
            for kernel in [Kernel::Scalar, Kernel::Avx2, Kernel::Vnni] {
                if !kernel.available() {
                    continue;
                }
                let mut out = vec![0f32; m * n];
                let mut out4 = vec![0f32; m * n];
                matmul_with(kernel, &x, &w, &mut out);
                matmul_with(kernel, &x, &w4, &mut out4);
                for (got, want) in out.iter().zip(&expected).chain(out4.iter().zip(&expected4)) {
                    assert!(
                        (*got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "{kernel:?} {m}x{n}x{k}: {got} vs {want}"
                    );
                }
                if kernel != Kernel::Scalar {
                    let bits: Vec<u32> = out.iter().chain(&out4).map(|v| v.to_bits()).collect();
                    simd_bits.push((kernel, bits));
                }
            }
            if let [(_, avx2), (_, vnni)] = &simd_bits[..] {
                assert_eq!(avx2, vnni, "AVX2 vs VNNI, {m}x{n}x{k} (Q8_0 then Q4_1)");
            }
        }
    }

    #[test]
    fn q4_minimum_terms_are_summed_in_their_documented_order() {
        // All nibbles 0: each product is its minimums' term alone, which both SIMD kernels
        // sum as 8 partial sums (blocks modulo 8) added as a tree, then the last blocks.
        let in_order = |mins: &[f32], sums: &[f32]| {
            let whole = mins.len() / 8 * 8;
            let mut partial = [0f32; 8];
            for b in 0..whole {
                partial[b % 8] = mins[b].mul_add(sums[b], partial[b % 8]);
            }
            let p = partial;
            let mut total = ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
            for b in whole..mins.len() {
                total += mins[b] * sums[b];
            }
            total
        };
        for (m, n, k) in [(5, 11, 576), (1, 3, 96), (4, 9, 1536), (2, 8, 32 * 13)] {
            let mut bytes = random_q4_blocks(n, k, 31);
            for block in bytes.chunks_exact_mut(20) {
                block[4..].fill(0);
            }
            let w = Q4Matrix::from_ggml_blocks(n, k, &bytes).unwrap();
            let x = Q8Rows::quantize(&random(m * k, 32), m, k);
            let blocks = k / BLOCK;
            for kernel in [Kernel::Avx2, Kernel::Vnni] {
                if !kernel.available() {
                    continue;
                }
                let mut out = vec![0f32; m * n];
                matmul_with(kernel, &x, &w, &mut out);
                for i in 0..m {
                    for j in 0..n {
                        let mins: Vec<f32> = (0..blocks).map(|b| w.min(j, b)).collect();
                        let want = in_order(&mins, &x.block_sums[i * blocks..][..blocks]);
                        assert_eq!(
                            out[i * n + j].to_bits(),
                            want.to_bits(),
                            "{kernel:?} {i} {j}"
                        );
                    }
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
        let w4 = Q4Matrix::from_ggml_blocks(n, k, &random_q4_blocks(n, k, 12)).unwrap();
        columns(Kernel::detect(), &x, &w4, 0..n, OutPtr(single.as_mut_ptr()));
        pool.install(|| matmul(&x, &w4, &mut threaded));
        assert_eq!(single, threaded);
    }

    #[test]
    fn simd_and_scalar_quantization_agree() {
        let x = random(32 * 50, 9);
        let mut simd = vec![0i8; x.len()];
        let mut scalar = vec![0i8; x.len()];
        for ((xs, a), b) in x
            .chunks_exact(BLOCK)
            .zip(simd.chunks_exact_mut(BLOCK))
            .zip(scalar.chunks_exact_mut(BLOCK))
        {
            let want = quantize_block(xs, b);
            #[cfg(target_arch = "x86_64")]
            if Kernel::Avx2.available() {
                // SAFETY: the CPU has AVX2.
                assert_eq!(unsafe { x86::quantize_block(xs, a) }, want);
                continue;
            }
            a.copy_from_slice(b);
        }
        assert_eq!(simd, scalar);
    }

    #[test]
    fn activations_quantize_as_ggml_does() {
        let x: Vec<f32> = (0..64).map(|i| (i as f32 - 20.0) * 0.37).collect();
        let q = Q8Rows::quantize(&x, 2, 32);
        // Block 0: max |x| is 20 * 0.37, so its quant is -127.
        assert_eq!(q.quants[0], -127);
        assert_eq!(q.scales[0], f16::from_f32(20.0 * 0.37 / 127.0).to_f32());
        let sum: i32 = q.quants[..32].iter().map(|&v| v as i32).sum();
        let lanes: Vec<i32> = q.quants[..32]
            .chunks(4)
            .map(|lane| -128 * lane.iter().map(|&v| v as i32).sum::<i32>())
            .collect();
        if Kernel::Vnni.available() {
            assert_eq!(q.lane_offsets[..8], lanes);
            assert_eq!(q.lane_offsets[..8].iter().sum::<i32>(), -128 * sum);
        } else {
            assert!(q.lane_offsets.is_empty());
        }
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
