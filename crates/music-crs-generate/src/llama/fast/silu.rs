//! The feed-forward gate, `silu(g) * u` with `silu(g) = g / (1 + e^-g)`, eight values at
//! a time.
//!
//! The exponential is defined here, not taken from the platform's libm, so a gate has the
//! same bits on every CPU and with every kernel: [`exp_reference`] is the algorithm of
//! glibc's `expf` (from Arm's optimized-routines: `e^x = 2^(k/32) * 2^(r/32)` with a
//! 32-entry table and a cubic in double precision), with the fused multiply-adds that glibc's
//! FMA build (`__expf_fma`, which x86-64 CPUs with AVX2 and FMA run) computes. On such a
//! machine with glibc it returns `f32::exp`'s bits for every input (a test compares a
//! sample, an ignored one all 2^32 inputs), so the replies are the ones the plain loop over
//! libm gave. The SIMD paths compute the same
//! operations lane by lane in double precision (IEEE operations, each rounded once), and
//! inputs beyond the table's range (|x| >= 88, NaN) take the reference.

use super::vector::Simd;

/// `2^(i/32)` as f64 bits, minus `i << 47` (the table's index bits, added back with the
/// exponent): entry `i` plus `k << 47` for `k = 32 m + i` is `2^(k/32)`.
const TABLE: [u64; 32] = [
    0x3ff0000000000000,
    0x3fefd9b0d3158574,
    0x3fefb5586cf9890f,
    0x3fef9301d0125b51,
    0x3fef72b83c7d517b,
    0x3fef54873168b9aa,
    0x3fef387a6e756238,
    0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715,
    0x3feef1a7373aa9cb,
    0x3feedea64c123422,
    0x3feece086061892d,
    0x3feebfdad5362a27,
    0x3feeb42b569d4f82,
    0x3feeab07dd485429,
    0x3feea47eb03a5585,
    0x3feea09e667f3bcd,
    0x3fee9f75e8ec5f74,
    0x3feea11473eb0187,
    0x3feea589994cce13,
    0x3feeace5422aa0db,
    0x3feeb737b0cdc5e5,
    0x3feec49182a3f090,
    0x3feed503b23e255d,
    0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47,
    0x3fef199bdd85529c,
    0x3fef3720dcef9069,
    0x3fef5818dcfba487,
    0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da,
    0x3fefd0765b6e4540,
];
/// `32 / ln 2`.
const INV_LN2_32: f64 = f64::from_bits(0x40471547652b82fe);
/// `1.5 * 2^52`: added to a double below 2^51 in magnitude, it rounds it to an integer,
/// held in the low bits.
const SHIFT: f64 = f64::from_bits(0x4338000000000000);
/// `2^(r/32) ~ 1 + C2 r + C1 r^2 + C0 r^3` for |r| <= 1/2.
const C0: f64 = f64::from_bits(0x3ebc6af84b912394);
const C1: f64 = f64::from_bits(0x3f2ebfce50fac4f3);
const C2: f64 = f64::from_bits(0x3f962e42ff0c52d6);
/// Bits 20..31 of an f32 from which the table's range ends: |x| >= 88 (and inf, NaN).
const BEYOND_TABLE: u32 = 0x42b;

/// `e^x` in single precision (see the module doc).
pub(crate) fn exp_reference(x: f32) -> f32 {
    let top = (x.to_bits() >> 20) & 0x7ff;
    if top >= BEYOND_TABLE {
        if x == f32::NEG_INFINITY {
            return 0.0;
        }
        if top >= 0x7f8 {
            return x + x;
        }
        if x > f32::from_bits(0x42b17217) {
            return f32::INFINITY;
        }
        if x < f32::from_bits(0xc2cff1b4) {
            return 0.0;
        }
        if x < f32::from_bits(0xc2ce8ecf) {
            // glibc's "may underflow" result: 0x1.4p-75 squared, the smallest subnormal.
            return f32::from_bits(1);
        }
    }
    let xd = x as f64;
    let shifted = INV_LN2_32.mul_add(xd, SHIFT);
    let k = shifted.to_bits();
    let kd = shifted - SHIFT;
    let r = INV_LN2_32.mul_add(xd, -kd);
    let scale = f64::from_bits(TABLE[(k % 32) as usize].wrapping_add(k << 47));
    let z = C0.mul_add(r, C1);
    let r2 = r * r;
    let y = C2.mul_add(r, 1.0);
    let y = z.mul_add(r2, y);
    (y * scale) as f32
}

/// One gate value: `g / (1 + e^-g) * u`, rounded as written.
fn gate_reference(g: f32, u: f32) -> f32 {
    g / (1.0 + exp_reference(-g)) * u
}

/// [`gated`] a value at a time, each by [`gate_reference`].
fn gated_reference(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = gate_reference(g, u);
    }
}

/// `out[i] = silu(gate[i]) * up[i]` (equal lengths), every value as [`gate_reference`]
/// computes it, with the widest kernel `simd` allows on this CPU.
pub(crate) fn gated(simd: Simd, gate: &[f32], up: &[f32], out: &mut [f32]) {
    assert!(gate.len() == out.len() && up.len() == out.len());
    #[cfg(target_arch = "x86_64")]
    match simd {
        Simd::Avx512 if Simd::Avx512.available() => {
            // SAFETY: the CPU has AVX-512F; equal lengths (checked).
            unsafe { x86::gated_512(gate, up, out) };
            return;
        }
        Simd::Avx512 | Simd::Avx2 if Simd::Avx2.available() => {
            // SAFETY: the CPU has AVX2 and FMA; equal lengths (checked).
            unsafe { x86::gated_256(gate, up, out) };
            return;
        }
        _ => {}
    }
    let _ = simd;
    gated_reference(gate, up, out);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{BEYOND_TABLE, C0, C1, C2, INV_LN2_32, SHIFT, TABLE, gated_reference};

    /// `e^x` of 8 values in the table's range, each as [`super::exp_reference`] computes it.
    #[target_feature(enable = "avx512f")]
    fn exp_8(x: __m256) -> __m256 {
        let xd = _mm512_cvtps_pd(x);
        let inv = _mm512_set1_pd(INV_LN2_32);
        let shift = _mm512_set1_pd(SHIFT);
        let shifted = _mm512_fmadd_pd(inv, xd, shift);
        let k = _mm512_castpd_si512(shifted);
        let kd = _mm512_sub_pd(shifted, shift);
        let r = _mm512_fmsub_pd(inv, xd, kd);
        // SAFETY: TABLE holds 32 entries: four registers of 8.
        let table: [__m512i; 4] =
            std::array::from_fn(|i| unsafe { _mm512_loadu_si512(TABLE[8 * i..].as_ptr().cast()) });
        // Entries 0..16 and 16..32 by the index's low four bits, then bit 4 chooses.
        let low = _mm512_permutex2var_epi64(table[0], k, table[1]);
        let high = _mm512_permutex2var_epi64(table[2], k, table[3]);
        let upper = _mm512_test_epi64_mask(k, _mm512_set1_epi64(16));
        let entry = _mm512_mask_blend_epi64(upper, low, high);
        let scale = _mm512_castsi512_pd(_mm512_add_epi64(entry, _mm512_slli_epi64::<47>(k)));
        let z = _mm512_fmadd_pd(_mm512_set1_pd(C0), r, _mm512_set1_pd(C1));
        let r2 = _mm512_mul_pd(r, r);
        let y = _mm512_fmadd_pd(_mm512_set1_pd(C2), r, _mm512_set1_pd(1.0));
        let y = _mm512_fmadd_pd(z, r2, y);
        _mm512_cvtpd_ps(_mm512_mul_pd(y, scale))
    }

    /// `e^x` of 4 values in the table's range, each as [`super::exp_reference`] computes it.
    #[target_feature(enable = "avx2,fma")]
    fn exp_4(x: __m128) -> __m128 {
        let xd = _mm256_cvtps_pd(x);
        let inv = _mm256_set1_pd(INV_LN2_32);
        let shift = _mm256_set1_pd(SHIFT);
        let shifted = _mm256_fmadd_pd(inv, xd, shift);
        let k = _mm256_castpd_si256(shifted);
        let kd = _mm256_sub_pd(shifted, shift);
        let r = _mm256_fmsub_pd(inv, xd, kd);
        let index = _mm256_and_si256(k, _mm256_set1_epi64x(31));
        // SAFETY: every index is below 32, inside TABLE.
        let entry = unsafe { _mm256_i64gather_epi64::<8>(TABLE.as_ptr().cast(), index) };
        let scale = _mm256_castsi256_pd(_mm256_add_epi64(entry, _mm256_slli_epi64::<47>(k)));
        let z = _mm256_fmadd_pd(_mm256_set1_pd(C0), r, _mm256_set1_pd(C1));
        let r2 = _mm256_mul_pd(r, r);
        let y = _mm256_fmadd_pd(_mm256_set1_pd(C2), r, _mm256_set1_pd(1.0));
        let y = _mm256_fmadd_pd(z, r2, y);
        _mm256_cvtpd_ps(_mm256_mul_pd(y, scale))
    }

    /// Whether any of `x`'s values lies beyond the table's range (|x| >= 88, inf, NaN).
    #[target_feature(enable = "avx2")]
    fn beyond_table(x: __m256) -> bool {
        let top = _mm256_and_si256(
            _mm256_srli_epi32::<20>(_mm256_castps_si256(x)),
            _mm256_set1_epi32(0x7ff),
        );
        let beyond = _mm256_cmpgt_epi32(top, _mm256_set1_epi32(BEYOND_TABLE as i32 - 1));
        _mm256_movemask_epi8(beyond) != 0
    }

    /// [`super::gated`] eight values at a time with `exp_8`, or by the reference for all
    /// eight when one lies beyond the table (rare: |g| >= 88), and for the last `len % 8`.
    ///
    /// # Safety
    /// AVX2 and FMA, and AVX-512F when `exp_8` is the 512-bit one; equal lengths.
    #[inline(always)]
    unsafe fn gated_with(
        gate: &[f32],
        up: &[f32],
        out: &mut [f32],
        exp_8: impl Fn(__m256) -> __m256,
    ) {
        let whole = out.len() / 8 * 8;
        for i in (0..whole).step_by(8) {
            // SAFETY: 8 values from i < whole in each slice (equal lengths); the caller's
            // features.
            unsafe {
                let g = _mm256_loadu_ps(gate.as_ptr().add(i));
                let minus = _mm256_sub_ps(_mm256_setzero_ps(), g);
                if beyond_table(minus) {
                    let eight = i..i + 8;
                    gated_reference(&gate[eight.clone()], &up[eight.clone()], &mut out[eight]);
                    continue;
                }
                let e = exp_8(minus);
                let u = _mm256_loadu_ps(up.as_ptr().add(i));
                let silu = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0), e));
                _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_mul_ps(silu, u));
            }
        }
        gated_reference(&gate[whole..], &up[whole..], &mut out[whole..]);
    }

    /// # Safety
    /// AVX-512F (and AVX2 and FMA, which every AVX-512 CPU has); equal lengths.
    #[target_feature(enable = "avx2,fma,avx512f")]
    pub(super) unsafe fn gated_512(gate: &[f32], up: &[f32], out: &mut [f32]) {
        // SAFETY: this function's features; equal lengths (the caller's contract).
        unsafe { gated_with(gate, up, out, |x| exp_8(x)) }
    }

    /// # Safety
    /// AVX2 and FMA; equal lengths.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gated_256(gate: &[f32], up: &[f32], out: &mut [f32]) {
        // SAFETY: this function's features; equal lengths (the caller's contract).
        unsafe {
            gated_with(gate, up, out, |x| {
                _mm256_set_m128(
                    exp_4(_mm256_extractf128_ps::<1>(x)),
                    exp_4(_mm256_castps256_ps128(x)),
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 65,537th f32 bit pattern (all exponents, both signs), the boundaries of the
    /// special cases and their neighbours, and values a gate meets.
    fn inputs() -> Vec<f32> {
        let mut values: Vec<f32> = (0..=u32::MAX / 257)
            .map(|i| f32::from_bits(i * 257))
            .collect();
        for bits in [
            0x42b17217u32, // the largest finite result's input
            0xc2cff1b4,    // below: 0
            0xc2ce8ecf,    // below: the smallest subnormal
            0x42b00000,    // 88: the table's end
            0xc2b00000,
        ] {
            for delta in -3i32..=3 {
                values.push(f32::from_bits(bits.wrapping_add_signed(delta)));
            }
        }
        values.extend([
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            f32::from_bits(1),
        ]);
        values.extend((-4000..4000).map(|i| i as f32 / 100.0));
        values
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn every_kernel_gives_the_references_bits() {
        let gate = inputs();
        // Ups of both signs and magnitudes, so the product's rounding is exercised too.
        let up: Vec<f32> = (0..gate.len())
            .map(|i| (i as f32 * 0.37).sin() * 3.0)
            .collect();
        let expected: Vec<f32> = gate
            .iter()
            .zip(&up)
            .map(|(&g, &u)| gate_reference(g, u))
            .collect();
        for simd in [Simd::Scalar, Simd::Avx2, Simd::Avx512] {
            if !simd.available() {
                eprintln!("{simd:?} missing: its gate is not compared");
                continue;
            }
            let mut out = vec![0f32; gate.len()];
            gated(simd, &gate, &up, &mut out);
            for (i, (&got, &want)) in out.iter().zip(&expected).enumerate() {
                assert!(
                    same(got, want),
                    "{simd:?}: gate {} up {}: {got} vs {want}",
                    gate[i],
                    up[i]
                );
            }
        }
    }

    #[test]
    fn the_reference_is_close_to_e_to_the_x() {
        for x in inputs() {
            let (got, want) = (exp_reference(x) as f64, (x as f64).exp());
            if x.is_nan() {
                assert!(got.is_nan());
            } else if want.is_infinite() || want > f32::MAX as f64 {
                assert_eq!(got, f64::INFINITY, "e^{x}");
            } else if want >= f32::MIN_POSITIVE as f64 {
                // Within one unit in the last place of an f32.
                let ulp = (want as f32).to_bits();
                let ulp = f32::from_bits(ulp + 1) as f64 - f32::from_bits(ulp) as f64;
                assert!((got - want).abs() <= ulp, "e^{x}: {got} vs {want}");
            } else {
                assert!(got <= 2.0 * f32::MIN_POSITIVE as f64, "e^{x}: {got}");
            }
        }
    }

    /// Whether `f32::exp` is glibc's FMA `expf` (the one the reference follows).
    fn libm_is_glibcs_fma_expf() -> bool {
        let fma = cfg!(target_arch = "x86_64") && Simd::Avx2.available();
        cfg!(target_env = "gnu") && cfg!(target_os = "linux") && fma
    }

    /// The replies the plain `g / (1 + (-g).exp()) * u` loop gave stay the same: glibc's
    /// FMA `expf` and the reference agree bit for bit.
    #[test]
    fn the_reference_is_glibcs_fma_expf() {
        if !libm_is_glibcs_fma_expf() {
            eprintln!("not glibc on an x86-64 CPU with FMA: libm's expf is not compared");
            return;
        }
        for x in inputs() {
            assert!(
                same(exp_reference(x), x.exp()),
                "e^{x}: {} vs {}",
                exp_reference(x),
                x.exp()
            );
        }
    }

    /// Every f32 (about a minute in release: `cargo test --release ... -- --ignored`). The
    /// sampled tests catch a wrong constant, index or special case; an operation rounded
    /// differently (a multiply-add split in two) changes about one result in 2^29, which
    /// only all the inputs show.
    #[test]
    #[ignore]
    fn every_input_gives_the_references_bits() {
        let glibc = libm_is_glibcs_fma_expf();
        let ones = vec![1f32; 1 << 16];
        let (mut gates, mut out) = (vec![0f32; 1 << 16], vec![0f32; 1 << 16]);
        for high in 0..1u32 << 16 {
            for (low, g) in gates.iter_mut().enumerate() {
                *g = f32::from_bits(high << 16 | low as u32);
            }
            for simd in [Simd::Avx2, Simd::Avx512]
                .into_iter()
                .filter(|s| s.available())
            {
                gated(simd, &gates, &ones, &mut out);
                for (&g, &got) in gates.iter().zip(&out) {
                    assert!(same(got, gate_reference(g, 1.0)), "{simd:?}: gate {g}");
                }
            }
            if glibc {
                for &g in &gates {
                    assert!(same(exp_reference(g), g.exp()), "e^{g}");
                }
            }
        }
    }
}
