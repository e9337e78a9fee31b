//! A saved BM25 index: any bytes load or fail with a clear error; a loaded index answers.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use music_crs_retrieval::Bm25Index;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(index) = Bm25Index::from_saved_bytes(bytes, Path::new("fuzz/bm25.index")) {
        let _ = index.search("flo rida good", 5);
    }
});
