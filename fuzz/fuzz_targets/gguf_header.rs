//! A GGUF file's header and its hyperparameters: any bytes are read and checked, or
//! fail with an error naming the file and field; nothing is allocated from unchecked counts.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use music_crs_generate::model_check::GgufHeader;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(header) = GgufHeader::from_bytes(bytes, Path::new("fuzz/model.gguf")) {
        let _ = header.model_shape();
    }
});
