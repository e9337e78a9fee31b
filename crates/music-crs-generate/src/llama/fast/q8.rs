//! Q8_0 matrix products: weights in blocks of 32 signed bytes with one scale, activations
//! quantized the same way per row (as ggml and candle do), one integer dot product per block
//! scaled by the two blocks' scales.
//!
//! Three kernels compute the same numbers: AVX-512 VNNI (`vpdpbusd` on 512-bit registers),
//! AVX2 (`vpmaddubsw` with the sign trick, as candle's `vec_dot_q8_0_q8_0`) and a scalar
//! reference; the fastest the CPU has is chosen at run time, and weights are laid out for it
//! at load ([`Layout`]). Every kernel computes a product the reference's way: block by
//! block, the block's exact integer dot product, converted to `f32` once and multiplied by
//! the product of the two scales into one running sum (a fused multiply-add, blocks in
//! order), Q4_1's minimums' terms summed apart ([`minimum_terms_in_order`]) and added at the
//! end. Integer sums are exact in any order, so how a kernel splits a block among registers
//! cannot change a bit: products, and so replies, are the same on every CPU.
//!
//! Both SIMD kernels work on tiles of activation rows by weight rows over weights in groups
//! of 16 rows, one register holding the same 4 bytes of a block of 16 rows (VNNI) or 8
//! (AVX2): a block of 16 rows is a few plain loads, each weight block loaded serves several
//! activation rows (prompt reading, batched decoding) and each activation lane several weight
//! rows. Scales are converted from f16 once, at load.
//!
//! VNNI multiplies unsigned by signed bytes, so Q8_0 weights are stored offset by 128
//! (`w + 128`, unsigned) and each activation block carries `-128 * sum(x)`, the term that
//! offset adds to its dot product, as the block's starting value: the integer is the exact
//! `sum(w * x)`, as in the AVX2 kernel.

use half::f16;

use super::team;
use super::vector::Simd;

/// Values per Q8_0 block.
pub(crate) const BLOCK: usize = 32;

/// A thread's range of weight rows is a multiple of this and of the kernel's tile width.
const TILE_N: usize = 8;
/// Activation rows per tile of the VNNI kernel: each weight register loaded (and its
/// nibbles split) serves all of them. On a Zen 4 EPYC (whose 512-bit units run each
/// instruction in two halves) four made 200 demo turns ~7% faster than two (23.2 s against
/// 25.2 s batched, three rounds in turns); with one group a tile, on Zen 5, four read
/// prompts no faster than two.
const TILE_M_GROUPS: usize = 4;
/// Groups of 16 weight rows per tile of the VNNI kernel: each activation broadcast serves
/// two registers of weights. With the minimums laid out as the scales, tiles of 2 x 32
/// multiplied a small model's matrices held in cache 1.2x-1.7x faster than tiles of 2 x 16
/// (Zen 5).
const TILE_N_GROUPS: usize = 2;
/// Activation rows per tile of the AVX2 kernel (8 weight rows a tile): two read prompts
/// ~10% faster than one.
const TILE_M_AVX2_GROUPS: usize = 2;
/// Weight rows per group of [`Layout::Groups`]: one 512-bit register holds one lane (4
/// values) of a block of each of them.
pub(crate) const GROUP: usize = 16;

/// How a weight matrix lays out its quants and scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Row by row, block by block, as GGUF stores them (for the scalar kernel).
    Rows,
    /// Groups of [`GROUP`] rows (the last padded with zero rows), block by block: each 64
    /// bytes hold the same 4 bytes of one block of every row of the group, and the group's
    /// scales of a block are consecutive. The SIMD kernels multiply one lane of activations
    /// by 16 (VNNI) or 8 (AVX2) weight rows at once: a block of 16 rows is 8 plain loads (4
    /// for Q4_1), no rows merged into registers.
    Groups,
}

impl Layout {
    /// The layout `kernel` reads fastest.
    pub(crate) fn for_kernel(kernel: Kernel) -> Self {
        match kernel {
            Kernel::Vnni | Kernel::Avx2 => Layout::Groups,
            Kernel::Scalar => Layout::Rows,
        }
    }

    /// Rows stored for `rows` rows.
    fn padded(self, rows: usize) -> usize {
        match self {
            Layout::Rows => rows,
            Layout::Groups => rows.next_multiple_of(GROUP),
        }
    }

    /// Where byte `t` of block `b` of `row` lies, for `blocks` blocks a row of `block_bytes`
    /// bytes each.
    #[inline(always)]
    fn byte_index(
        self,
        blocks: usize,
        block_bytes: usize,
        row: usize,
        b: usize,
        t: usize,
    ) -> usize {
        match self {
            Layout::Rows => (row * blocks + b) * block_bytes + t,
            Layout::Groups => {
                let lane = (row / GROUP * blocks + b) * (block_bytes / 4) + t / 4;
                lane * 4 * GROUP + row % GROUP * 4 + t % 4
            }
        }
    }

    /// Block `b` of `row` in `bytes`, for `blocks` blocks a row of `N` bytes: one copy in
    /// rows, one copy a lane (4 bytes) in groups.
    #[inline(always)]
    fn read_block<const N: usize>(
        self,
        bytes: &[u8],
        blocks: usize,
        row: usize,
        b: usize,
    ) -> [u8; N] {
        let mut block = [0u8; N];
        for (lane, values) in self
            .lanes::<N>(blocks, row, b)
            .zip(block.chunks_exact_mut(4))
        {
            values.copy_from_slice(&bytes[lane]);
        }
        block
    }

    /// Writes `block` as block `b` of `row` into `bytes` (as [`Layout::read_block`] reads).
    fn write_block<const N: usize>(
        self,
        bytes: &mut [u8],
        blocks: usize,
        row: usize,
        b: usize,
        block: &[u8; N],
    ) {
        for (lane, values) in self.lanes::<N>(blocks, row, b).zip(block.chunks_exact(4)) {
            bytes[lane].copy_from_slice(values);
        }
    }

    /// The byte ranges of block `b` of `row`'s lanes (4 bytes each, in order): consecutive in
    /// rows, a group's lane apart in groups.
    #[inline(always)]
    fn lanes<const N: usize>(
        self,
        blocks: usize,
        row: usize,
        b: usize,
    ) -> impl Iterator<Item = std::ops::Range<usize>> {
        (0..N / 4).map(move |lane| {
            let first = self.byte_index(blocks, N, row, b, 4 * lane);
            first..first + 4
        })
    }

    /// Where the scale of block `b` of `row` lies, for `blocks` blocks a row.
    #[inline(always)]
    fn scale_index(self, blocks: usize, row: usize, b: usize) -> usize {
        match self {
            Layout::Rows => row * blocks + b,
            Layout::Groups => (row / GROUP * blocks + b) * GROUP + row % GROUP,
        }
    }
}

/// A `rows` x `cols` weight matrix of Q8_0 blocks (`cols` a multiple of [`BLOCK`]).
#[derive(Clone)]
pub(crate) struct Q8Matrix {
    rows: usize,
    cols: usize,
    layout: Layout,
    /// Quants stored as `w + 128`, where [`Layout::byte_index`] says.
    offset_quants: Vec<u8>,
    /// One scale per block, where [`Layout::scale_index`] says.
    scales: Vec<f32>,
}

impl Q8Matrix {
    /// A matrix from GGUF Q8_0 blocks (34 bytes: an f16 scale, then 32 signed quants), laid
    /// out for this CPU's fastest kernel.
    pub(crate) fn from_ggml_blocks(rows: usize, cols: usize, bytes: &[u8]) -> Option<Self> {
        Self::from_ggml_blocks_laid_out(rows, cols, bytes, Layout::for_kernel(Kernel::detect()))
    }

    /// [`Q8Matrix::from_ggml_blocks`] in a given layout.
    pub(crate) fn from_ggml_blocks_laid_out(
        rows: usize,
        cols: usize,
        bytes: &[u8],
        layout: Layout,
    ) -> Option<Self> {
        if !cols.is_multiple_of(BLOCK) || bytes.len() != rows * cols / BLOCK * 34 {
            return None;
        }
        let row_blocks = cols / BLOCK;
        let mut matrix = Q8Matrix::zeroed(rows, cols, layout);
        let mut quants = [0u8; BLOCK];
        for (index, block) in bytes.chunks_exact(34).enumerate() {
            for (offset, &q) in quants.iter_mut().zip(&block[2..]) {
                *offset = (q as i8 as i16 + 128) as u8;
            }
            let scale = f16::from_le_bytes([block[0], block[1]]).to_f32();
            matrix.set_block(index / row_blocks, index % row_blocks, scale, &quants);
        }
        Some(matrix)
    }

    /// A matrix quantized from f32 rows (`values.len() == rows * cols`), laid out for this
    /// CPU's fastest kernel.
    pub(crate) fn quantize(rows: usize, cols: usize, values: &[f32]) -> Self {
        let q = Q8Rows::quantize(values, rows, cols);
        let mut matrix = Q8Matrix::zeroed(rows, cols, Layout::for_kernel(Kernel::detect()));
        let mut quants = [0u8; BLOCK];
        for (index, block) in q.quants.chunks_exact(BLOCK).enumerate() {
            for (offset, &v) in quants.iter_mut().zip(block) {
                *offset = (v as i16 + 128) as u8;
            }
            let (row, b) = (index / (cols / BLOCK), index % (cols / BLOCK));
            matrix.set_block(row, b, q.scales[index], &quants);
        }
        matrix
    }

    /// A matrix of zero blocks (padding rows stay so).
    fn zeroed(rows: usize, cols: usize, layout: Layout) -> Self {
        let padded = layout.padded(rows);
        Q8Matrix {
            rows,
            cols,
            layout,
            offset_quants: vec![0; padded * cols],
            scales: vec![0.0; padded * cols / BLOCK],
        }
    }

    fn set_block(&mut self, row: usize, b: usize, scale: f32, offset_quants: &[u8; BLOCK]) {
        let blocks = self.cols / BLOCK;
        self.layout
            .write_block(&mut self.offset_quants, blocks, row, b, offset_quants);
        let index = self.scale_index(row, b);
        self.scales[index] = scale;
    }

    /// Block `b` of `row`'s quants, stored as `w + 128`.
    fn offset_block(&self, row: usize, b: usize) -> [u8; BLOCK] {
        let blocks = self.cols / BLOCK;
        self.layout.read_block(&self.offset_quants, blocks, row, b)
    }

    #[inline(always)]
    fn scale_index(&self, row: usize, b: usize) -> usize {
        self.layout.scale_index(self.cols / BLOCK, row, b)
    }

    /// Rows stacked: every matrix must have the same number of columns and layout.
    pub(crate) fn stacked(parts: &[Q8Matrix]) -> Self {
        let (cols, layout) = (parts[0].cols, parts[0].layout);
        assert!(parts.iter().all(|p| p.cols == cols && p.layout == layout));
        let mut matrix = Q8Matrix::zeroed(parts.iter().map(|p| p.rows).sum(), cols, layout);
        let mut row = 0;
        for part in parts {
            for r in 0..part.rows {
                for b in 0..cols / BLOCK {
                    let scale = part.scales[part.scale_index(r, b)];
                    matrix.set_block(row, b, scale, &part.offset_block(r, b));
                }
                row += 1;
            }
        }
        matrix
    }

    /// Row `row` dequantized into `out` (`cols` values), as ggml dequantizes Q8_0.
    pub(crate) fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        for (b, chunk) in out.chunks_exact_mut(BLOCK).enumerate() {
            let scale = self.scales[self.scale_index(row, b)];
            for (y, q) in chunk.iter_mut().zip(self.offset_block(row, b)) {
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
#[derive(Default)]
pub(crate) struct Q8Rows {
    rows: usize,
    cols: usize,
    quants: Vec<i8>,
    scales: Vec<f32>,
    /// `-128 * sum(quants)` per block: the VNNI kernel starts a block's dot product there,
    /// which cancels the Q8_0 weights' +128 offset (so the integer equals the other kernels').
    offsets: Vec<i32>,
    /// `scale * sum(quants)` per block: the Q4_1 kernel's term for the weights' minimum.
    block_sums: Vec<f32>,
}

impl Q8Rows {
    /// Quantizes `rows` rows of `cols` values (`x.len() == rows * cols`).
    pub(crate) fn quantize(x: &[f32], rows: usize, cols: usize) -> Self {
        let mut quantized = Q8Rows::default();
        quantized.quantize_from(x, rows, cols);
        quantized
    }

    /// [`Q8Rows::quantize`] into this value's buffers, which keep their memory (a forward
    /// pass quantizes a few inputs of the same sizes in every layer).
    pub(crate) fn quantize_from(&mut self, x: &[f32], rows: usize, cols: usize) {
        assert_eq!(x.len(), rows * cols);
        assert!(cols.is_multiple_of(BLOCK));
        let blocks = rows * cols / BLOCK;
        self.rows = rows;
        self.cols = cols;
        // Every quant is written below: only new length needs filling.
        self.quants.resize(rows * cols, 0);
        self.scales.clear();
        self.offsets.clear();
        self.block_sums.clear();
        self.scales.reserve(blocks);
        self.offsets.reserve(blocks);
        self.block_sums.reserve(blocks);
        #[cfg(target_arch = "x86_64")]
        let simd = Kernel::detect() != Kernel::Scalar;
        #[cfg(not(target_arch = "x86_64"))]
        let simd = false;
        for (xs, qs) in x
            .chunks_exact(BLOCK)
            .zip(self.quants.chunks_exact_mut(BLOCK))
        {
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
            self.scales.push(scale);
            self.offsets.push(-128 * sum);
            self.block_sums.push(scale * sum as f32);
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

/// The reference's sum over a product's blocks: `block(b)` gives block `b`'s exact integer
/// dot product and the product of its two scales; each integer is converted once and
/// scaled into one running sum by a fused multiply-add, blocks in order. Every kernel sums
/// this way, lane by lane of its registers.
fn scaled_block_sums(blocks: usize, block: impl Fn(usize) -> (i32, f32)) -> f32 {
    (0..blocks).fold(0f32, |acc, b| {
        let (sum, scales) = block(b);
        (sum as f32).mul_add(scales, acc)
    })
}

/// Q4_1's minimums' terms, `sum_b min_b * s_b` with `term(b) = (min_b, s_b)`, in the order
/// every kernel sums them: 8 partial sums (blocks by their number modulo 8, fused
/// multiply-adds), added as a tree, then the last blocks one by one. Kept apart from
/// [`scaled_block_sums`], so the SIMD kernels sum them in registers of their own.
fn minimum_terms_in_order(blocks: usize, term: impl Fn(usize) -> (f32, f32)) -> f32 {
    let whole = blocks / 8 * 8;
    let mut partial = [0f32; 8];
    for b in 0..whole {
        let (min, sum) = term(b);
        partial[b % 8] = min.mul_add(sum, partial[b % 8]);
    }
    let p = partial;
    let mut total = ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
    for b in whole..blocks {
        let (min, sum) = term(b);
        total += min * sum;
    }
    total
}

/// The kernels, fastest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    Vnni,
    Avx2,
    Scalar,
}

impl Kernel {
    /// The fastest kernel this CPU runs at the instruction set the attention kernels use
    /// ([`Simd::detect`], so `MUSIC_CRS_SIMD` caps both in one place): VNNI needs AVX-512
    /// with its byte and VNNI extensions as well.
    pub(crate) fn detect() -> Kernel {
        static DETECTED: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *DETECTED.get_or_init(|| match Simd::detect() {
            Simd::Avx512 if avx512_vnni() => Kernel::Vnni,
            Simd::Avx512 | Simd::Avx2 => Kernel::Avx2,
            Simd::Scalar => Kernel::Scalar,
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

/// Whether the CPU has AVX-512's byte instructions and VNNI (`vpdpbusd`).
fn avx512_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
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
    let tile_n = w.tile_shape(kernel).1.max(TILE_N);
    let work = x.rows * rows * cols;
    let smallest = if here.spinning() {
        TEAM_WORK
    } else {
        PARALLEL_WORK
    };
    if here.threads() <= 1 || work < smallest || rows < 2 * tile_n {
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
    let pieces = (here.threads() * per_thread).min(rows / tile_n);
    let per_piece = rows.div_ceil(pieces).next_multiple_of(tile_n);
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
        // The SIMD kernels read weights in groups; weights in rows take the reference.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 | Kernel::Vnni if w.layout() == Layout::Groups => {
            let vnni = kernel == Kernel::Vnni;
            let (tile_m, tile_n) = w.tile_shape(kernel);
            let mut j = range.start;
            while j < range.end {
                let rn = (range.end - j).min(tile_n);
                let mut i = 0;
                while i < x.rows {
                    let rm = (x.rows - i).min(tile_m);
                    // SAFETY: the tile lies inside x, w and out; the caller checked the
                    // CPU features of `kernel`.
                    unsafe { w.tile(vnni, i == 0, rm, rn, x, i, j, out.0, ld) };
                    i += rm;
                }
                j += rn;
            }
        }
        _ => {
            for i in 0..x.rows {
                for j in range.clone() {
                    // SAFETY: i < x.rows and j < w.rows: inside the checked output.
                    unsafe { *out.0.add(i * ld + j) = w.dot_scalar(x, i, j) };
                }
            }
        }
    }
}

/// A weight matrix the kernels multiply.
pub(crate) trait Weights: Sync {
    fn rows(&self) -> usize;
    fn cols(&self) -> usize;
    fn layout(&self) -> Layout;
    /// Activation rows and weight rows per tile of `kernel` on this matrix.
    fn tile_shape(&self, kernel: Kernel) -> (usize, usize) {
        match (kernel, self.layout()) {
            (Kernel::Vnni, Layout::Groups) => (TILE_M_GROUPS, TILE_N_GROUPS * GROUP),
            (Kernel::Avx2, Layout::Groups) => (TILE_M_AVX2_GROUPS, GROUP / 2),
            _ => (1, 1),
        }
    }
    /// The reference: `x_i . w_j` as every kernel computes it ([`scaled_block_sums`]).
    fn dot_scalar(&self, x: &Q8Rows, i: usize, j: usize) -> f32;
    /// One SIMD tile (see `x86::tile_laid_out`).
    ///
    /// # Safety
    /// As `x86::tile_laid_out`.
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile(
        &self,
        vnni: bool,
        ahead: bool,
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

    fn layout(&self) -> Layout {
        self.layout
    }

    fn dot_scalar(&self, x: &Q8Rows, i: usize, j: usize) -> f32 {
        let blocks = self.cols / BLOCK;
        scaled_block_sums(blocks, |b| {
            let xq = &x.quants[i * x.cols + b * BLOCK..][..BLOCK];
            let sum: i32 = xq
                .iter()
                .zip(self.offset_block(j, b))
                .map(|(&a, c)| a as i32 * (c as i32 - 128))
                .sum();
            (
                sum,
                x.scales[i * blocks + b] * self.scales[self.scale_index(j, b)],
            )
        })
    }

    #[cfg(target_arch = "x86_64")]
    unsafe fn tile(
        &self,
        vnni: bool,
        ahead: bool,
        rm: usize,
        rn: usize,
        x: &Q8Rows,
        i0: usize,
        j0: usize,
        out: *mut f32,
        ld: usize,
    ) {
        // SAFETY: forwarded.
        unsafe { x86::tile_laid_out(vnni, ahead, rm, rn, x, i0, self, j0, out, ld) }
    }
}

/// A `rows` x `cols` weight matrix of GGUF Q4_1 blocks, as stored (half the bytes of
/// Q8_0: decoding reads every weight once per token): `w = scale * q + min`, `q` in 0..16.
#[derive(Clone)]
pub(crate) struct Q4Matrix {
    rows: usize,
    cols: usize,
    layout: Layout,
    /// 16 bytes per block: values `t` in the low and `t + 16` in the high nibble of byte `t`;
    /// where each byte lies is [`Layout::byte_index`].
    nibbles: Vec<u8>,
    /// One scale per block, where [`Q4Matrix::scale_index`] says.
    scales: Vec<f32>,
    /// One minimum per block, laid out as the scales: a tile's epilogue reads the minimums
    /// of a block of its consecutive rows together.
    mins: Vec<f32>,
}

impl Q4Matrix {
    /// A matrix from GGUF Q4_1 blocks (20 bytes: f16 scale, f16 minimum, 16 bytes), laid out
    /// for this CPU's fastest kernel.
    pub(crate) fn from_ggml_blocks(rows: usize, cols: usize, bytes: &[u8]) -> Option<Self> {
        Self::from_ggml_blocks_laid_out(rows, cols, bytes, Layout::for_kernel(Kernel::detect()))
    }

    /// [`Q4Matrix::from_ggml_blocks`] in a given layout.
    pub(crate) fn from_ggml_blocks_laid_out(
        rows: usize,
        cols: usize,
        bytes: &[u8],
        layout: Layout,
    ) -> Option<Self> {
        if !cols.is_multiple_of(BLOCK) || bytes.len() != rows * cols / BLOCK * 20 {
            return None;
        }
        let row_blocks = cols / BLOCK;
        let mut matrix = Q4Matrix::zeroed(rows, cols, layout);
        for (index, block) in bytes.chunks_exact(20).enumerate() {
            let (row, b) = (index / row_blocks, index % row_blocks);
            let scale = f16::from_le_bytes([block[0], block[1]]).to_f32();
            let min = f16::from_le_bytes([block[2], block[3]]).to_f32();
            let nibbles = block[4..].try_into().expect("blocks of 20 bytes");
            matrix.set_block(row, b, scale, min, nibbles);
        }
        Some(matrix)
    }

    /// A matrix of zero blocks (padding rows stay so).
    fn zeroed(rows: usize, cols: usize, layout: Layout) -> Self {
        let padded = layout.padded(rows);
        Q4Matrix {
            rows,
            cols,
            layout,
            nibbles: vec![0; padded * cols / BLOCK * 16],
            scales: vec![0.0; padded * cols / BLOCK],
            mins: vec![0.0; padded * cols / BLOCK],
        }
    }

    fn set_block(&mut self, row: usize, b: usize, scale: f32, min: f32, nibbles: &[u8; 16]) {
        let blocks = self.cols / BLOCK;
        self.layout
            .write_block(&mut self.nibbles, blocks, row, b, nibbles);
        let index = self.scale_index(row, b);
        self.scales[index] = scale;
        self.mins[index] = min;
    }

    /// Where the scale of block `b` of `row` lies in `scales`.
    #[inline(always)]
    fn scale_index(&self, row: usize, b: usize) -> usize {
        self.layout.scale_index(self.cols / BLOCK, row, b)
    }

    /// Rows stacked: every matrix must have the same number of columns and layout.
    pub(crate) fn stacked(parts: &[Q4Matrix]) -> Self {
        let (cols, layout) = (parts[0].cols, parts[0].layout);
        assert!(parts.iter().all(|p| p.cols == cols && p.layout == layout));
        let mut matrix = Q4Matrix::zeroed(parts.iter().map(|p| p.rows).sum(), cols, layout);
        let mut row = 0;
        for part in parts {
            for r in 0..part.rows {
                for b in 0..cols / BLOCK {
                    let (scale, min) = (part.scale(r, b), part.min(r, b));
                    matrix.set_block(row, b, scale, min, &part.nibble_block(r, b));
                }
                row += 1;
            }
        }
        matrix
    }

    fn min(&self, row: usize, b: usize) -> f32 {
        self.mins[self.scale_index(row, b)]
    }

    fn scale(&self, row: usize, b: usize) -> f32 {
        self.scales[self.scale_index(row, b)]
    }

    /// Block `b` of `row`'s 16 bytes of nibbles.
    fn nibble_block(&self, row: usize, b: usize) -> [u8; 16] {
        let blocks = self.cols / BLOCK;
        self.layout.read_block(&self.nibbles, blocks, row, b)
    }

    /// Block `b` of `row`'s 32 quants (0..16), in order: the low nibbles, then the high.
    fn quants(&self, row: usize, b: usize) -> [u8; BLOCK] {
        let bytes = self.nibble_block(row, b);
        std::array::from_fn(|t| {
            let byte = bytes[t % 16];
            if t < 16 { byte & 0x0F } else { byte >> 4 }
        })
    }

    /// Row `row` dequantized into `out` (`cols` values), as ggml dequantizes Q4_1.
    pub(crate) fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        for (b, chunk) in out.chunks_exact_mut(BLOCK).enumerate() {
            let (scale, min) = (self.scale(row, b), self.min(row, b));
            for (y, q) in chunk.iter_mut().zip(self.quants(row, b)) {
                *y = q as f32 * scale + min;
            }
        }
    }

    /// Bytes held (nibbles, scales and minimums).
    pub(crate) fn bytes(&self) -> usize {
        self.nibbles.len() + 4 * (self.scales.len() + self.mins.len())
    }
}

impl Weights for Q4Matrix {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn layout(&self) -> Layout {
        self.layout
    }

    fn dot_scalar(&self, x: &Q8Rows, i: usize, j: usize) -> f32 {
        let blocks = self.cols / BLOCK;
        let products = scaled_block_sums(blocks, |b| {
            let xq = &x.quants[i * x.cols + b * BLOCK..][..BLOCK];
            let sum: i32 = xq
                .iter()
                .zip(self.quants(j, b))
                .map(|(&a, q)| a as i32 * q as i32)
                .sum();
            (sum, x.scales[i * blocks + b] * self.scale(j, b))
        });
        products
            + minimum_terms_in_order(blocks, |b| (self.min(j, b), x.block_sums[i * blocks + b]))
    }

    #[cfg(target_arch = "x86_64")]
    unsafe fn tile(
        &self,
        vnni: bool,
        ahead: bool,
        rm: usize,
        rn: usize,
        x: &Q8Rows,
        i0: usize,
        j0: usize,
        out: *mut f32,
        ld: usize,
    ) {
        // SAFETY: forwarded.
        unsafe { x86::tile_laid_out(vnni, ahead, rm, rn, x, i0, self, j0, out, ld) }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use half::f16;

    use super::{BLOCK, GROUP, Layout, Q4Matrix, Q8Matrix, Q8Rows, Weights};

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

    /// What the tiles need of a weight format: [`tile_groups_of`], a register holding one
    /// lane (4 bytes) of a block of 16 weight rows (AVX-512 VNNI, [`Wide`]) or of 8 (AVX2,
    /// [`Narrow`]), computes each row's product as the reference does
    /// ([`super::scaled_block_sums`]).
    pub(super) trait SimdWeights: Weights {
        /// Weights stored offset by 128 (Q8_0): a block's `vpdpbusd` sums start at its
        /// activations' `-128 * sum(x)`, which cancels the offset.
        const OFFSET: bool;
        fn blocks_per_row(&self) -> usize {
            self.cols() / BLOCK
        }
        /// Every scale, where [`Layout::scale_index`] says.
        fn scale_slice(&self) -> &[f32];
        /// Q4_1's minimums, laid out as the scales; none for Q8_0.
        fn minimums(&self) -> Option<&[f32]>;
        /// The AVX2 integer dot of a weight block and an activation block: eight partial
        /// sums.
        ///
        /// # Safety
        /// AVX2.
        unsafe fn dot(w: __m256i, x: __m256i) -> __m256i;
        /// Lanes `g` and `g + 4` (values `4g..4g + 4` and `16 + 4g..16 + 4g + 4`) of block `b`
        /// of the `S::ROWS` rows from `j0` (weights in groups; `j0` starts a group, or its
        /// second half for 8 rows), as unsigned bytes.
        ///
        /// # Safety
        /// The width's features; the rows' block lies inside the matrix.
        unsafe fn lanes<S: Width>(&self, j0: usize, b: usize, g: usize) -> [S::I; 2];
        /// Asks the cache for block `b` of the group of row `j` (its lanes, scales and
        /// minimums), so that the tile after this one finds its weights there. Any `j`:
        /// past the matrix, nothing is read.
        fn prefetch(&self, j: usize, b: usize);
    }

    /// Asks the cache for the `lines` cache lines from element `first` of `values`.
    /// Prefetching reads nothing and never faults, so `first` may lie past the end
    /// (wrapping address arithmetic: no pointer past the buffer is formed by `add`).
    #[inline(always)]
    fn prefetch_lines<T>(values: &[T], first: usize, lines: usize) {
        let start = values.as_ptr().wrapping_add(first) as *const i8;
        for line in 0..lines {
            // SAFETY: a prefetch of any address is safe; SSE is part of x86_64.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(64 * line)) };
        }
    }

    /// Where byte `t` of block `b` of row `j0` lies in a grouped matrix of `blocks` blocks a
    /// row of `block_bytes` bytes (no branch on the layout).
    #[inline(always)]
    fn group_byte(blocks: usize, block_bytes: usize, j0: usize, b: usize, t: usize) -> usize {
        Layout::Groups.byte_index(blocks, block_bytes, j0, b, t)
    }

    impl SimdWeights for Q8Matrix {
        const OFFSET: bool = true;

        fn scale_slice(&self) -> &[f32] {
            &self.scales
        }

        fn minimums(&self) -> Option<&[f32]> {
            None
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
        unsafe fn lanes<S: Width>(&self, j0: usize, b: usize, g: usize) -> [S::I; 2] {
            // SAFETY: inside the matrix (the caller's contract): one lane of the rows is
            // 4 * S::ROWS consecutive bytes.
            unsafe {
                let blocks = self.blocks_per_row();
                let lane = |l: usize| {
                    let first = group_byte(blocks, BLOCK, j0, b, 4 * l);
                    S::load_bytes(self.offset_quants.as_ptr().add(first))
                };
                [lane(g), lane(g + 4)]
            }
        }

        #[inline(always)]
        fn prefetch(&self, j: usize, b: usize) {
            let (blocks, first) = (self.blocks_per_row(), j / GROUP * GROUP);
            prefetch_lines(
                &self.offset_quants,
                group_byte(blocks, BLOCK, first, b, 0),
                8,
            );
            prefetch_lines(
                &self.scales,
                Layout::Groups.scale_index(blocks, first, b),
                1,
            );
        }
    }

    impl SimdWeights for Q4Matrix {
        // Nibbles (0..16) are unsigned as they are.
        const OFFSET: bool = false;

        fn scale_slice(&self) -> &[f32] {
            &self.scales
        }

        fn minimums(&self) -> Option<&[f32]> {
            Some(&self.mins)
        }

        // `maddubs` takes the nibbles as they are.
        #[inline(always)]
        unsafe fn dot(w: __m256i, x: __m256i) -> __m256i {
            // SAFETY: AVX2 (the caller's contract).
            unsafe { _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)) }
        }

        #[inline(always)]
        unsafe fn lanes<S: Width>(&self, j0: usize, b: usize, g: usize) -> [S::I; 2] {
            // SAFETY: inside the matrix (the caller's contract): bytes 4g..4g + 4 of the
            // block of each of the rows, whose low nibbles are lane g and high nibbles lane
            // g + 4.
            unsafe {
                let first = group_byte(self.blocks_per_row(), 16, j0, b, 4 * g);
                S::nibbles(S::load_bytes(self.nibbles.as_ptr().add(first)))
            }
        }

        #[inline(always)]
        fn prefetch(&self, j: usize, b: usize) {
            let (blocks, first) = (self.blocks_per_row(), j / GROUP * GROUP);
            prefetch_lines(&self.nibbles, group_byte(blocks, 16, first, b, 0), 4);
            let scale = Layout::Groups.scale_index(blocks, first, b);
            prefetch_lines(&self.scales, scale, 1);
            prefetch_lines(&self.mins, scale, 1);
        }
    }

    /// One register width of the tiles: its vectors and the few operations the tiles use.
    /// A register holds `ROWS` floats, or one lane (4 bytes) of `ROWS` weight rows.
    pub(super) trait Width {
        const ROWS: usize;
        /// Whether a block's integer sums start at the activations' offset
        /// ([`SimdWeights::OFFSET`]).
        const STARTS: bool;
        type F: Copy;
        type I: Copy;
        unsafe fn zero() -> Self::F;
        unsafe fn splat(value: f32) -> Self::F;
        unsafe fn load(first: *const f32) -> Self::F;
        /// The first `n` values from `first` (nothing beyond is read), zeros beyond.
        unsafe fn load_first(first: *const f32, n: usize) -> Self::F;
        /// The first `n` values of `v` to `first`.
        unsafe fn store_first(first: *mut f32, v: Self::F, n: usize);
        unsafe fn add(a: Self::F, b: Self::F) -> Self::F;
        unsafe fn mul(a: Self::F, b: Self::F) -> Self::F;
        /// `a * b + c`, rounded once.
        unsafe fn fmadd(a: Self::F, b: Self::F, c: Self::F) -> Self::F;
        unsafe fn convert(v: Self::I) -> Self::F;
        unsafe fn load_bytes(first: *const u8) -> Self::I;
        /// The low and the high nibble of every byte.
        unsafe fn nibbles(raw: Self::I) -> [Self::I; 2];
        unsafe fn splat_int(value: i32) -> Self::I;
        unsafe fn add_int(a: Self::I, b: Self::I) -> Self::I;
        /// `sums` plus the integer dot products of one lane of `ROWS` weight rows with the
        /// same 4 activations.
        unsafe fn add_lane<W: SimdWeights>(
            sums: Self::I,
            weights: Self::I,
            activations: i32,
        ) -> Self::I;
    }

    /// AVX-512 F/BW/VNNI: 16 rows a register, `vpdpbusd` for the lane sums.
    pub(super) struct Wide;

    impl Width for Wide {
        const ROWS: usize = GROUP;
        const STARTS: bool = true;
        type F = __m512;
        type I = __m512i;

        // SAFETY (every method): AVX-512 F/BW/VNNI, and for pointers the values read or
        // written lie inside their buffers (the callers' contract).
        #[inline(always)]
        unsafe fn zero() -> __m512 {
            unsafe { _mm512_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn splat(value: f32) -> __m512 {
            unsafe { _mm512_set1_ps(value) }
        }
        #[inline(always)]
        unsafe fn load(first: *const f32) -> __m512 {
            unsafe { _mm512_loadu_ps(first) }
        }
        #[inline(always)]
        unsafe fn load_first(first: *const f32, n: usize) -> __m512 {
            let mask: __mmask16 = if n >= GROUP { !0 } else { (1 << n) - 1 };
            unsafe { _mm512_maskz_loadu_ps(mask, first) }
        }
        #[inline(always)]
        unsafe fn store_first(first: *mut f32, v: __m512, n: usize) {
            let mask: __mmask16 = if n >= GROUP { !0 } else { (1 << n) - 1 };
            unsafe { _mm512_mask_storeu_ps(first, mask, v) }
        }
        #[inline(always)]
        unsafe fn add(a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_add_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn mul(a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_mul_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn fmadd(a: __m512, b: __m512, c: __m512) -> __m512 {
            unsafe { _mm512_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        unsafe fn convert(v: __m512i) -> __m512 {
            unsafe { _mm512_cvtepi32_ps(v) }
        }
        #[inline(always)]
        unsafe fn load_bytes(first: *const u8) -> __m512i {
            unsafe { _mm512_loadu_si512(first as *const _) }
        }
        #[inline(always)]
        unsafe fn nibbles(raw: __m512i) -> [__m512i; 2] {
            unsafe {
                let low = _mm512_set1_epi8(0x0F);
                [
                    _mm512_and_si512(raw, low),
                    _mm512_and_si512(_mm512_srli_epi16(raw, 4), low),
                ]
            }
        }
        #[inline(always)]
        unsafe fn splat_int(value: i32) -> __m512i {
            unsafe { _mm512_set1_epi32(value) }
        }
        #[inline(always)]
        unsafe fn add_int(a: __m512i, b: __m512i) -> __m512i {
            unsafe { _mm512_add_epi32(a, b) }
        }
        #[inline(always)]
        unsafe fn add_lane<W: SimdWeights>(
            sums: __m512i,
            weights: __m512i,
            activations: i32,
        ) -> __m512i {
            unsafe { _mm512_dpbusd_epi32(sums, weights, _mm512_set1_epi32(activations)) }
        }
    }

    /// AVX2: 8 rows a register, the format's AVX2 dot for the lane sums (Q8_0's sign trick
    /// needs no start).
    pub(super) struct Narrow;

    impl Width for Narrow {
        const ROWS: usize = GROUP / 2;
        const STARTS: bool = false;
        type F = __m256;
        type I = __m256i;

        // SAFETY (every method): AVX2 and FMA, and for pointers the values read or written
        // lie inside their buffers (the callers' contract).
        #[inline(always)]
        unsafe fn zero() -> __m256 {
            unsafe { _mm256_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn splat(value: f32) -> __m256 {
            unsafe { _mm256_set1_ps(value) }
        }
        #[inline(always)]
        unsafe fn load(first: *const f32) -> __m256 {
            unsafe { _mm256_loadu_ps(first) }
        }
        #[inline(always)]
        unsafe fn load_first(first: *const f32, n: usize) -> __m256 {
            unsafe {
                if n >= 8 {
                    _mm256_loadu_ps(first)
                } else {
                    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes);
                    _mm256_maskload_ps(first, mask)
                }
            }
        }
        #[inline(always)]
        unsafe fn store_first(first: *mut f32, v: __m256, n: usize) {
            unsafe {
                if n >= 8 {
                    _mm256_storeu_ps(first, v)
                } else {
                    let mut values = [0f32; 8];
                    _mm256_storeu_ps(values.as_mut_ptr(), v);
                    std::ptr::copy_nonoverlapping(values.as_ptr(), first, n);
                }
            }
        }
        #[inline(always)]
        unsafe fn add(a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_add_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn mul(a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_mul_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn fmadd(a: __m256, b: __m256, c: __m256) -> __m256 {
            unsafe { _mm256_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        unsafe fn convert(v: __m256i) -> __m256 {
            unsafe { _mm256_cvtepi32_ps(v) }
        }
        #[inline(always)]
        unsafe fn load_bytes(first: *const u8) -> __m256i {
            unsafe { _mm256_loadu_si256(first as *const _) }
        }
        #[inline(always)]
        unsafe fn nibbles(raw: __m256i) -> [__m256i; 2] {
            unsafe {
                let low = _mm256_set1_epi8(0x0F);
                [
                    _mm256_and_si256(raw, low),
                    _mm256_and_si256(_mm256_srli_epi16(raw, 4), low),
                ]
            }
        }
        #[inline(always)]
        unsafe fn splat_int(value: i32) -> __m256i {
            unsafe { _mm256_set1_epi32(value) }
        }
        #[inline(always)]
        unsafe fn add_int(a: __m256i, b: __m256i) -> __m256i {
            unsafe { _mm256_add_epi32(a, b) }
        }
        #[inline(always)]
        unsafe fn add_lane<W: SimdWeights>(
            sums: __m256i,
            weights: __m256i,
            activations: i32,
        ) -> __m256i {
            unsafe { _mm256_add_epi32(sums, W::dot(weights, _mm256_set1_epi32(activations))) }
        }
    }

    /// The minimums' terms, `sum_b min_jb * scale_ib * sum(x_ib)`, of activation row `i` and
    /// weight rows `j0..j0 + n` (`n` at most `S::ROWS`), one per lane (zeros beyond `n`), in
    /// the order of [`super::minimum_terms_in_order`] whatever `n` and the width; none for
    /// formats without minimums.
    ///
    /// # Safety
    /// The width's features; the rows lie inside `x` and the matrix.
    #[inline(always)]
    unsafe fn minimum_terms<S: Width, W: SimdWeights>(
        w: &W,
        x: &Q8Rows,
        i: usize,
        j0: usize,
        n: usize,
    ) -> Option<S::F> {
        let blocks = w.blocks_per_row();
        let whole = blocks / 8 * 8;
        // SAFETY: row i of x holds `blocks` sums; lanes below n read rows j0.. of each
        // block's minimums, inside the matrix (the caller's contract).
        unsafe {
            let minimums = w.minimums()?;
            let mins = |b: usize| {
                S::load_first(
                    minimums
                        .as_ptr()
                        .add(Layout::Groups.scale_index(blocks, j0, b)),
                    n,
                )
            };
            let sums = x.block_sums.as_ptr().add(i * blocks);
            let mut partial = [S::zero(); 8];
            // Eight blocks a round, each to its partial sum by a constant index, so the sums
            // stay in registers (indexed by `b % 8` they went through memory).
            for round in (0..whole).step_by(8) {
                for (k, partial) in partial.iter_mut().enumerate() {
                    let b = round + k;
                    *partial = S::fmadd(mins(b), S::splat(*sums.add(b)), *partial);
                }
            }
            let [p0, p1, p2, p3, p4, p5, p6, p7] = partial;
            let mut total = S::add(
                S::add(S::add(p0, p4), S::add(p2, p6)),
                S::add(S::add(p1, p5), S::add(p3, p7)),
            );
            for b in whole..blocks {
                total = S::add(total, S::mul(mins(b), S::splat(*sums.add(b))));
            }
            Some(total)
        }
    }

    /// One tile of `rm` activation rows from `i0` (at most the kernel's tile height) by `rn`
    /// weight rows from `j0` (at most a register's rows), with the VNNI kernel or AVX2's, of
    /// weights in groups.
    ///
    /// # Safety
    /// The tile must lie inside `x`, `w` and `out` (`ld` columns), `w` must be laid out in
    /// groups, and the CPU must have AVX2 and FMA, and AVX-512 F/BW/VNNI when `vnni`.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile_laid_out<W: SimdWeights>(
        vnni: bool,
        ahead: bool,
        rm: usize,
        rn: usize,
        x: &Q8Rows,
        i0: usize,
        w: &W,
        j0: usize,
        out: *mut f32,
        ld: usize,
    ) {
        debug_assert_eq!(w.layout(), Layout::Groups);
        // SAFETY: forwarded from the caller.
        unsafe {
            match (vnni, rm, rn > GROUP) {
                (true, 4, true) => tile_groups_wide::<W, 4, 2>(ahead, rn, x, i0, w, j0, out, ld),
                (true, 3, true) => tile_groups_wide::<W, 3, 2>(ahead, rn, x, i0, w, j0, out, ld),
                (true, 4, false) => tile_groups_wide::<W, 4, 1>(ahead, rn, x, i0, w, j0, out, ld),
                (true, 3, false) => tile_groups_wide::<W, 3, 1>(ahead, rn, x, i0, w, j0, out, ld),
                (true, 2, true) => tile_groups_wide::<W, 2, 2>(ahead, rn, x, i0, w, j0, out, ld),
                (true, 1, true) => tile_groups_wide::<W, 1, 2>(ahead, rn, x, i0, w, j0, out, ld),
                (true, 2, false) => tile_groups_wide::<W, 2, 1>(ahead, rn, x, i0, w, j0, out, ld),
                (true, 1, false) => tile_groups_wide::<W, 1, 1>(ahead, rn, x, i0, w, j0, out, ld),
                (false, 2, false) => {
                    tile_groups_narrow::<W, 2, 1>(ahead, rn, x, i0, w, j0, out, ld)
                }
                (false, 1, false) => {
                    tile_groups_narrow::<W, 1, 1>(ahead, rn, x, i0, w, j0, out, ld)
                }
                (vnni, rm, _) => unreachable!("{rm} x {rn} tile, VNNI {vnni}"),
            }
        }
    }

    /// [`tile_groups_of`] with AVX-512 VNNI.
    #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vnni")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_groups_wide<W: SimdWeights, const RM: usize, const RN: usize>(
        ahead: bool,
        rn: usize,
        x: &Q8Rows,
        i0: usize,
        w: &W,
        j0: usize,
        out: *mut f32,
        ld: usize,
    ) {
        // SAFETY: forwarded; this function's features are the width's.
        unsafe {
            if ahead {
                tile_groups_of::<Wide, W, RM, RN, true>(rn, x, i0, w, j0, out, ld)
            } else {
                tile_groups_of::<Wide, W, RM, RN, false>(rn, x, i0, w, j0, out, ld)
            }
        }
    }

    /// [`tile_groups_of`] with AVX2.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_groups_narrow<W: SimdWeights, const RM: usize, const RN: usize>(
        ahead: bool,
        rn: usize,
        x: &Q8Rows,
        i0: usize,
        w: &W,
        j0: usize,
        out: *mut f32,
        ld: usize,
    ) {
        // SAFETY: forwarded; this function's features are the width's.
        unsafe {
            if ahead {
                tile_groups_of::<Narrow, W, RM, RN, true>(rn, x, i0, w, j0, out, ld)
            } else {
                tile_groups_of::<Narrow, W, RM, RN, false>(rn, x, i0, w, j0, out, ld)
            }
        }
    }

    /// A tile of weights in groups ([`Layout::Groups`]): `RM` activation rows from `i0` by
    /// `rn` weight rows (up to `RN * S::ROWS`, padding beyond) from `j0`, `RN` registers of
    /// `S::ROWS` rows each. Lane `l` of a block (values `4l..4l + 4`) of `S::ROWS` weight
    /// rows sits in one register, multiplied by the same 4 activations in every row and
    /// added to the row's integer sums (two registers a row and register of weights, for
    /// shorter dependency chains: lanes 0, 4, 2, 6 to one, the others to the other); a
    /// block's two are added, converted and scaled into the row's one float sum, as
    /// [`super::scaled_block_sums`] does for each weight row. Each activation broadcast
    /// serves `RN` registers of weights and each register of weights `RM` rows. Inlined
    /// into a function with the width's features.
    ///
    /// # Safety
    /// As [`tile_laid_out`], with the width's features; the `RN` groups from `j0` exist.
    // Rows and lanes index several arrays at once (loops over constant bounds, unrolled).
    #[allow(clippy::needless_range_loop)]
    #[inline(always)]
    unsafe fn tile_groups_of<
        S: Width,
        W: SimdWeights,
        const RM: usize,
        const RN: usize,
        const AHEAD: bool,
    >(
        rn: usize,
        x: &Q8Rows,
        i0: usize,
        w: &W,
        j0: usize,
        out: *mut f32,
        ld: usize,
    ) {
        debug_assert!(j0.is_multiple_of(S::ROWS) && rn <= RN * S::ROWS);
        let blocks = w.blocks_per_row();
        // SAFETY: the rows' blocks and rows i0.. of x lie inside w and x, the output tile
        // inside `out`, and the caller has the width's features (the caller's contract).
        unsafe {
            let mut acc = [[S::zero(); RN]; RM];
            for b in 0..blocks {
                if AHEAD {
                    // The next tile's weights, a block at a time (hardware prefetching
                    // alone leaves the first pass over a tile waiting for memory).
                    for next in (j0 + RN * S::ROWS..j0 + 2 * RN * S::ROWS).step_by(GROUP) {
                        w.prefetch(next, b);
                    }
                }
                let scales: [S::F; RN] = std::array::from_fn(|n| {
                    let first = Layout::Groups.scale_index(blocks, j0 + n * S::ROWS, b);
                    S::load(w.scale_slice().as_ptr().add(first))
                });
                let mut sums = [[[S::splat_int(0); 2]; RN]; RM];
                let mut xs = [std::ptr::null::<i8>(); RM];
                for i in 0..RM {
                    let index = (i0 + i) * blocks + b;
                    xs[i] = x.quants.as_ptr().add((i0 + i) * x.cols + b * BLOCK);
                    if S::STARTS && W::OFFSET {
                        let start = S::splat_int(*x.offsets.get_unchecked(index));
                        for n in 0..RN {
                            sums[i][n][0] = start;
                        }
                    }
                }
                for g in 0..4 {
                    let weights: [[S::I; 2]; RN] =
                        std::array::from_fn(|n| w.lanes::<S>(j0 + n * S::ROWS, b, g));
                    for half in 0..2 {
                        let l = g + 4 * half;
                        for i in 0..RM {
                            let activations = (xs[i].add(4 * l) as *const i32).read_unaligned();
                            for n in 0..RN {
                                sums[i][n][g % 2] = S::add_lane::<W>(
                                    sums[i][n][g % 2],
                                    weights[n][half],
                                    activations,
                                );
                            }
                        }
                    }
                }
                for i in 0..RM {
                    let scale = S::splat(*x.scales.get_unchecked((i0 + i) * blocks + b));
                    for n in 0..RN {
                        let sum = S::convert(S::add_int(sums[i][n][0], sums[i][n][1]));
                        acc[i][n] = S::fmadd(sum, S::mul(scale, scales[n]), acc[i][n]);
                    }
                }
            }
            for i in 0..RM {
                for n in 0..RN {
                    let first = n * S::ROWS;
                    if first >= rn {
                        break;
                    }
                    let count = (rn - first).min(S::ROWS);
                    let total = match minimum_terms::<S, W>(w, x, i0 + i, j0 + first, count) {
                        Some(extras) => S::add(acc[i][n], extras),
                        None => acc[i][n],
                    };
                    S::store_first(out.add((i0 + i) * ld + j0 + first), total, count);
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
    fn every_kernel_on_every_layout_gives_the_scalar_references_bits() {
        if !Kernel::Vnni.available() {
            eprintln!("AVX-512 VNNI missing: the SIMD kernels' bits are not compared");
        }
        // Rows not multiples of the tiles (groups of 16 weight rows, the last padded, two a
        // VNNI tile: 17 and 33 rows end in a part of a group; 1..9 activation rows: VNNI
        // tiles of 4, 3, 2 and 1, AVX2's of 2 and 1), columns not multiples of 256, one block
        // per row and many.
        for (m, n, k) in [
            (5, 40, 576),
            (6, 33, 96),
            (7, 20, 64),
            (3, 33, 96),
            (2, 16, 64),
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
            let (q8_blocks, q4_blocks) = (random_blocks(n, k, 7), random_q4_blocks(n, k, 8));
            let laid_out = |layout| {
                (
                    Q8Matrix::from_ggml_blocks_laid_out(n, k, &q8_blocks, layout).unwrap(),
                    Q4Matrix::from_ggml_blocks_laid_out(n, k, &q4_blocks, layout).unwrap(),
                )
            };
            let x = Q8Rows::quantize(&random(m * k, 3), m, k);
            let (rows8, rows4) = laid_out(Layout::Rows);
            let expected = reference(&x, &|j, row| rows8.dequantize_row(j, row), n);
            let expected4 = reference(&x, &|j, row| rows4.dequantize_row(j, row), n);
            let mut all_bits = Vec::new();
            // The SIMD kernels read groups (weights in rows take the scalar reference).
            for (kernel, layout) in [
                (Kernel::Scalar, Layout::Rows),
                (Kernel::Scalar, Layout::Groups),
                (Kernel::Avx2, Layout::Rows),
                (Kernel::Avx2, Layout::Groups),
                (Kernel::Vnni, Layout::Groups),
            ] {
                if !kernel.available() {
                    continue;
                }
                let (w, w4) = laid_out(layout);
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
                let bits: Vec<u32> = out.iter().chain(&out4).map(|v| v.to_bits()).collect();
                all_bits.push((kernel, layout, bits));
            }
            for (kernel, layout, bits) in &all_bits[1..] {
                assert_eq!(
                    &all_bits[0].2, bits,
                    "scalar on rows vs {kernel:?} on {layout:?}, {m}x{n}x{k} (Q8_0 then Q4_1)"
                );
            }
        }
    }

    #[test]
    fn q4_minimum_terms_are_summed_in_their_documented_order() {
        // All nibbles 0: each product is its minimums' term alone, which every kernel sums
        // as 8 partial sums (blocks modulo 8) added as a tree, then the last blocks.
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
            let x = Q8Rows::quantize(&random(m * k, 32), m, k);
            let blocks = k / BLOCK;
            for kernel in [Kernel::Scalar, Kernel::Avx2, Kernel::Vnni] {
                if !kernel.available() {
                    continue;
                }
                let layout = Layout::for_kernel(kernel);
                let w = Q4Matrix::from_ggml_blocks_laid_out(n, k, &bytes, layout).unwrap();
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
            // Unread where no SIMD kernel exists (the copy below is then the whole check).
            #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
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
        let sums: Vec<i32> = q
            .quants
            .chunks(32)
            .map(|b| b.iter().map(|&v| v as i32).sum())
            .collect();
        assert_eq!(q.offsets, [-128 * sums[0], -128 * sums[1]]);
        assert_eq!(
            q.block_sums,
            [q.scales[0] * sums[0] as f32, q.scales[1] * sums[1] as f32]
        );
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

    #[test]
    fn matrices_stack_and_dequantize_alike_in_both_layouts() {
        q4_and_q8_alike(
            Q4Matrix::from_ggml_blocks_laid_out,
            Q4Matrix::stacked,
            |w, r, out| w.dequantize_row(r, out),
        );
        let q8 = |rows, cols, _: &[u8], layout| {
            let bytes = random_blocks(rows, cols, rows as u64);
            Q8Matrix::from_ggml_blocks_laid_out(rows, cols, &bytes, layout)
        };
        q4_and_q8_alike(q8, Q8Matrix::stacked, |w, r, out| w.dequantize_row(r, out));
    }

    /// Parts whose rows are not multiples of a group (stacking moves rows across groups),
    /// stacked in both layouts, dequantize as they did apart; the same bytes dequantize
    /// alike in both layouts.
    fn q4_and_q8_alike<M: Weights>(
        from_blocks: impl Fn(usize, usize, &[u8], Layout) -> Option<M>,
        stacked: impl Fn(&[M]) -> M,
        dequantize_row: impl Fn(&M, usize, &mut [f32]),
    ) {
        let sizes = [17, 5, 16];
        for layout in [Layout::Rows, Layout::Groups] {
            let parts: Vec<M> = sizes
                .iter()
                .enumerate()
                .map(|(seed, &rows)| {
                    let bytes = random_q4_blocks(rows, 96, seed as u64 + 40);
                    from_blocks(rows, 96, &bytes, layout).unwrap()
                })
                .collect();
            let stacked = stacked(&parts);
            assert_eq!((stacked.rows(), stacked.cols()), (38, 96), "{layout:?}");
            let (mut got, mut want) = (vec![0f32; 96], vec![0f32; 96]);
            let mut row = 0;
            for part in &parts {
                for r in 0..part.rows() {
                    dequantize_row(&stacked, row, &mut got);
                    dequantize_row(part, r, &mut want);
                    assert_eq!(got, want, "{layout:?} row {row}");
                    row += 1;
                }
            }
            // The same bytes in the other layout dequantize alike.
            let bytes = random_q4_blocks(17, 96, 40);
            let other = match layout {
                Layout::Rows => Layout::Groups,
                Layout::Groups => Layout::Rows,
            };
            let a = from_blocks(17, 96, &bytes, other).unwrap();
            for r in 0..17 {
                dequantize_row(&a, r, &mut got);
                dequantize_row(&parts[0], r, &mut want);
                assert_eq!(got, want, "{layout:?} vs {other:?} row {r}");
            }
        }
    }
}
