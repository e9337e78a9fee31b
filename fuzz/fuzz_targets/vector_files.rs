//! A vector file (embedding cache, exact index) and an HNSW index manifest: any bytes load
//! or fail with a clear error.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use music_crs_retrieval::dense::{VectorFile, check_manifest_bytes};

fuzz_target!(|bytes: &[u8]| {
    let _ = VectorFile::from_bytes(bytes.to_vec(), Path::new("fuzz/vectors.bin"));
    let _ = check_manifest_bytes(bytes.to_vec(), Path::new("fuzz/index.manifest"));
});
