//! Floating-point helpers that reproduce how the official Python evaluator adds numbers
//! and prints them, so our figures match it to the last bit rather than "nearly".

/// Mean with Kahan-compensated summation, the way pandas' `groupby(...).mean()` adds
/// the values of one group; 0 for no values.
pub(crate) fn kahan_mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut sum = 0.0_f64;
    let mut compensation = 0.0_f64;
    let mut count = 0_usize;
    for value in values {
        let y = value - compensation;
        let t = sum + y;
        compensation = t - sum - y;
        sum = t;
        count += 1;
    }
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// Mean adding left to right, as numpy reduces along a non-contiguous axis; pandas'
/// `DataFrame.mean()` over the per-turn table (stored column-major) does so. 0 for no
/// values.
pub(crate) fn sequential_mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut sum = 0.0_f64;
    let mut count = 0_usize;
    for value in values {
        sum += value;
        count += 1;
    }
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// `value` written as Python's `repr(float)` writes it (shortest round-trip digits,
/// scientific notation below 1e-4 and from 1e16), which is what `json.dump` emits.
pub(crate) fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as Python's repr.
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let point = exponent + 1; // digits are 0.d1d2… × 10^point
    if point <= -4 || point > 16 {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{sign}{first}{fraction}e{exponent_sign}{:02}",
            exponent.abs()
        )
    } else if point <= 0 {
        format!(
            "{sign}0.{}{digits}",
            "0".repeat(point.unsigned_abs() as usize)
        )
    } else {
        let point = point as usize;
        if point >= digits.len() {
            format!("{sign}{digits}{}.0", "0".repeat(point - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..point], &digits[point..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_repr_matches_known_outputs() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.03625, "0.03625"),
            (0.1557913578931608, "0.1557913578931608"),
            (9.146331921717178e-05, "9.146331921717178e-05"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123.5, "123.5"),
            (1.5e300, "1.5e+300"),
            (-2.5e-7, "-2.5e-07"),
        ];
        for (value, expected) in cases {
            assert_eq!(python_float_repr(value), expected, "{value:e}");
        }
    }

    #[test]
    fn sequential_mean_adds_in_order() {
        // The fixture's per-turn nDCG@1: numpy's pairwise order would give
        // 0.036250000000000004, the official (left-to-right) figure is 0.03625.
        let turns = [0.02, 0.03, 0.05, 0.03, 0.06, 0.02, 0.03, 0.05];
        assert_eq!(sequential_mean(turns), 0.03625);
        assert_eq!(sequential_mean(std::iter::empty()), 0.0);
    }

    #[test]
    fn kahan_mean_recovers_lost_low_bits() {
        // Naive summation loses the small terms next to 1e16; compensation keeps them.
        let values = [1e16, 1.0, 1.0, 1.0, 1.0, -1e16];
        assert_eq!(kahan_mean(values) * 6.0, 4.0);
        assert_eq!(kahan_mean(std::iter::empty()), 0.0);
    }
}
