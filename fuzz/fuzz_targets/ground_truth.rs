//! A ground-truth file: any text must parse, or fail with a clear error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use music_crs_metrics::GroundTruth;

fuzz_target!(|text: &str| {
    let _ = GroundTruth::from_json_str(text, "fuzz.json");
});
