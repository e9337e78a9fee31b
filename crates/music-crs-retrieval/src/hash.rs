//! Non-cryptographic hashes: Fx for the term dictionary (keys are not adversarial, and Fx is
//! much faster than SipHash on short keys) and FNV-1a for file checksums and per-turn random
//! seeds (a fixed algorithm, stable across Rust versions, unlike `DefaultHasher`).

use std::hash::Hasher;

pub(crate) use rustc_hash::FxBuildHasher;

/// 64-bit FNV-1a over `bytes`, continuing from `state` (start with [`FNV_OFFSET`]).
pub(crate) fn fnv1a(state: u64, bytes: &[u8]) -> u64 {
    let mut hasher = fnv::FnvHasher::with_key(state);
    hasher.write(bytes);
    hasher.finish()
}

/// The FNV-1a 64 offset basis.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
        // Chaining equals hashing the concatenation.
        assert_eq!(
            fnv1a(fnv1a(FNV_OFFSET, b"foo"), b"bar"),
            fnv1a(FNV_OFFSET, b"foobar")
        );
    }
}
