//! A ranker model file: any text loads or fails with a clear error.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use music_crs_rank::RankerModel;

fuzz_target!(|text: &str| {
    let _ = RankerModel::from_json_str(text, Path::new("fuzz/ranker.json"));
});
