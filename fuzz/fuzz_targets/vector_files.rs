//! A vector file (embedding cache, exact index) and a saved HNSW index: any bytes load or
//! fail with a clear error, and an HNSW index that loads answers a search.
//!
//! The trailing checksum (the last 8 bytes) is rewritten to match the rest before loading, so
//! mutated bodies reach the parsers instead of all stopping at the checksum (the checksum
//! check itself is unit-tested in the crate).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use music_crs_retrieval::dense::{HnswIndex, VectorFile, VectorIndex};

const PRIME: u64 = 0x0000_0100_0000_01b3;

/// The framed files' checksum: FNV-1a-style over 8-byte little-endian words, seeded with the
/// length, the last incomplete word hashed byte by byte.
fn checksum(bytes: &[u8]) -> u64 {
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    let hash = words.fold(0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64, |hash, word| {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        (hash ^ u64::from_le_bytes(w)).wrapping_mul(PRIME)
    });
    tail.iter()
        .fold(hash, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

fuzz_target!(|input: &[u8]| {
    let mut bytes = input.to_vec();
    if bytes.len() >= 20 {
        let body = bytes.len() - 8;
        let sum = checksum(&bytes[..body]);
        bytes[body..].copy_from_slice(&sum.to_le_bytes());
    }
    let _ = VectorFile::from_bytes(bytes.clone(), Path::new("fuzz/vectors.bin"));
    if let Ok(index) = HnswIndex::from_bytes(&bytes, Path::new("fuzz/index.hnsw")) {
        let query = vec![0.5f32; index.dim()];
        for hit in index.search(&query, 5).expect("a query of the index's dimension") {
            assert!(hit.row < index.len());
        }
    }
});
