//! A method config: any TOML text must parse and validate, or fail with a clear error. Only
//! the top-level parse entry point is called, so the target survives refactors of the config.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = music_crs::CrsConfig::from_toml_str(text, "fuzz.toml");
});
