//! A saved BM25 index: any bytes load or fail with a clear error; a loaded index answers.
//!
//! The header's payload length and FNV-1a checksum (bytes 12..28) are rewritten to match the
//! payload before loading, so mutated payloads reach the decoder instead of all stopping at
//! the checksum (the header checks themselves are unit-tested in the crate).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use music_crs_retrieval::Bm25Index;

const HEADER_LEN: usize = 28;

/// 64-bit FNV-1a, as the index file's checksum.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fuzz_target!(|input: &[u8]| {
    let mut bytes = input.to_vec();
    if bytes.len() >= HEADER_LEN {
        let payload_len = (bytes.len() - HEADER_LEN) as u64;
        bytes[12..20].copy_from_slice(&payload_len.to_le_bytes());
        let sum = fnv1a(&bytes[HEADER_LEN..]);
        bytes[20..28].copy_from_slice(&sum.to_le_bytes());
    }
    if let Ok(index) = Bm25Index::from_saved_bytes(&bytes, Path::new("fuzz/bm25.index")) {
        let _ = index.search("flo rida good", 5);
    }
});
