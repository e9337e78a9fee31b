//! Small sampling helpers on top of the seeded ChaCha generator.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub(crate) type DemoRng = ChaCha8Rng;

/// A version-4-shaped UUID string drawn from the seeded generator (deterministic per seed).
pub(crate) fn uuid(rng: &mut DemoRng) -> String {
    let mut bytes: [u8; 16] = rng.random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// One element of a non-empty slice, uniformly.
pub(crate) fn pick<'a, T>(rng: &mut DemoRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// One word of a non-empty word list, uniformly.
pub(crate) fn word(rng: &mut DemoRng, words: &[&'static str]) -> &'static str {
    words[rng.random_range(0..words.len())]
}

/// An index drawn in proportion to `weights` (all non-negative, not all zero).
pub(crate) fn weighted_index(rng: &mut DemoRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut target = rng.random::<f64>() * total;
    for (index, &weight) in weights.iter().enumerate() {
        if target < weight {
            return index;
        }
        target -= weight;
    }
    weights.len() - 1
}

/// A standard normal draw (Box-Muller), so the crate needs no distribution dependency.
pub(crate) fn normal(rng: &mut DemoRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A random unit vector of `dim` dimensions.
pub(crate) fn unit_vector(rng: &mut DemoRng, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| normal(rng) as f32).collect();
    normalize(&mut v);
    v
}

/// Scales `v` to unit length (a zero vector stays zero).
pub(crate) fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Cumulative weights for repeated sampling from one pool by binary search.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cumulative {
    items: Vec<usize>,
    cumulative: Vec<f64>,
}

impl Cumulative {
    pub(crate) fn new(items: Vec<usize>, weight: impl Fn(usize) -> f64) -> Self {
        let mut total = 0.0;
        let cumulative = items
            .iter()
            .map(|&item| {
                total += weight(item);
                total
            })
            .collect();
        Cumulative { items, cumulative }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn sample(&self, rng: &mut DemoRng) -> Option<usize> {
        let total = *self.cumulative.last()?;
        let target = rng.random::<f64>() * total;
        let position = self.cumulative.partition_point(|&c| c <= target);
        self.items.get(position.min(self.items.len() - 1)).copied()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn uuids_have_the_canonical_shape() {
        let mut rng = DemoRng::seed_from_u64(1);
        let id = uuid(&mut rng);
        assert_eq!(id.len(), 36);
        let parts: Vec<_> = id.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, uuid(&mut rng));
    }

    #[test]
    fn cumulative_sampling_follows_weights() {
        let mut rng = DemoRng::seed_from_u64(2);
        let pool = Cumulative::new(vec![10, 20], |item| if item == 10 { 9.0 } else { 1.0 });
        let draws = (0..10_000)
            .filter(|_| pool.sample(&mut rng) == Some(10))
            .count();
        assert!((8_700..9_300).contains(&draws), "{draws}");
        assert_eq!(Cumulative::default().sample(&mut rng), None);
    }
}
