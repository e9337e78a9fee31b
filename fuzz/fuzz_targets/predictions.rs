//! A prediction file: any text must parse into rows and problems, or a clear error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use music_crs_metrics::PredictionFile;

fuzz_target!(|text: &str| {
    let _ = PredictionFile::from_json_str(text, "fuzz.json");
});
