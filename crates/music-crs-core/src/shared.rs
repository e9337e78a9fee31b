//! Locating the `shared/` folder of real fixtures and models that lies beside the project
//! root on developer machines and in CI (never committed).
//!
//! Tests call [`shared_path`]: on a fresh clone without `shared/` they skip with a printed
//! reason; with `MUSIC_CRS_REQUIRE_SHARED=1` (set by `.ci/run`) they fail instead.

use std::path::PathBuf;

/// The environment variable that turns a missing `shared/` into a test failure.
pub const REQUIRE_SHARED_ENV: &str = "MUSIC_CRS_REQUIRE_SHARED";
/// The environment variable that points at `shared/` explicitly.
pub const SHARED_DIR_ENV: &str = "MUSIC_CRS_SHARED_DIR";

/// The `shared/` folder: `$MUSIC_CRS_SHARED_DIR`, or the first `shared/` found beside the
/// current directory or one of its ancestors.
pub fn shared_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(SHARED_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .map(|dir| dir.join("shared"))
        .find(|candidate| candidate.join("fixtures").is_dir())
}

/// The path of `relative` inside `shared/`, or `None` (after printing why) when it is absent.
///
/// # Panics
///
/// When the file is absent and `MUSIC_CRS_REQUIRE_SHARED=1`: CI must run every test.
pub fn shared_path(relative: &str) -> Option<PathBuf> {
    let found = shared_dir()
        .map(|dir| dir.join(relative))
        .filter(|path| path.exists());
    if found.is_none() {
        let reason = format!(
            "shared/{relative} not found beside the project root (set {SHARED_DIR_ENV} to point at it)"
        );
        if std::env::var(REQUIRE_SHARED_ENV).is_ok_and(|v| v == "1") {
            panic!("{reason}; {REQUIRE_SHARED_ENV}=1 requires it");
        }
        eprintln!("skipping: {reason}");
    }
    found
}
