//! Shared fixtures: a demo dataset generated once per test run into a temporary directory
//! (the same generator and parameters as `music-crs demo-data`, so the tests do not depend
//! on the state of `data/demo`).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use music_crs::config::{PartOverride, SplitKind, local_dataset};
use music_crs::core::{LabeledTurn, TurnContext};
use music_crs::{CrsConfig, RunData};
use music_crs_core::shared::shared_path;
use music_crs_demo::{DemoDataset, DemoParams};
use tempfile::TempDir;

/// The demo dataset's root, generated the first time a test asks for it.
pub fn demo_root() -> &'static Path {
    static DEMO: OnceLock<TempDir> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        DemoDataset::generate(&DemoParams::default())
            .and_then(|demo| demo.write(dir.path()))
            .expect("the demo dataset is written");
        dir
    })
    .path()
}

/// The default method over the demo dataset's `split`.
pub fn demo_config(split: &str, kind: SplitKind) -> CrsConfig {
    CrsConfig {
        dataset: local_dataset(demo_root(), split, kind),
        ..CrsConfig::default()
    }
}

/// Loads a config's data and its turns to predict with their labels (the gold tracks).
pub fn load_labeled(config: &CrsConfig) -> (RunData, Vec<LabeledTurn>) {
    let data = RunData::load_for(config).expect("the dataset loads");
    let turns = data.labeled_turns().expect("the turns to predict");
    (data, turns)
}

/// Loads a config's data and its turns to predict.
pub fn load(config: &CrsConfig) -> (RunData, Vec<TurnContext>) {
    let data = RunData::load_for(config).expect("the dataset loads");
    let turns = data.turns().expect("the turns to predict");
    (data, turns)
}

/// Runs the `music-crs` binary in `cwd` (quiet logs) and returns its output.
pub fn music_crs(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_music-crs"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

/// Runs `music-crs args` in `cwd` and checks it fails with exit code 2 and an error that
/// contains `needle`.
pub fn expect_error(cwd: &Path, args: &[&str], needle: &str) {
    let out = music_crs(cwd, args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: {needle:?} missing from {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
}

/// Lossy UTF-8 of a process's stdout or stderr.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Points `config` at a conversations file of `shared/fixtures/talkplay/` (its `test` split,
/// read as `kind`) and the shared catalog sample, leaving the other parts as they are;
/// `None` (skip) when `shared/` is absent.
pub fn read_shared_samples(
    config: &mut CrsConfig,
    conversations_file: &str,
    kind: SplitKind,
) -> Option<()> {
    let conversations = shared_path(&format!("fixtures/talkplay/{conversations_file}"))?;
    let tracks = shared_path("fixtures/talkplay/tracks-sample.parquet")?;
    config.dataset.preset = None;
    config.dataset.split_kind = Some(kind);
    config.dataset.conversations = PartOverride {
        source: Some(conversations.display().to_string()),
        split: Some("test".into()),
    };
    config.dataset.tracks = PartOverride {
        source: Some(tracks.display().to_string()),
        split: Some("all_tracks".into()),
    };
    Some(())
}

/// A config file `<tid>.toml` in `dir` over the temporary demo dataset (absolute paths), with
/// `extra` TOML appended.
pub fn write_config(dir: &Path, tid: &str, extra: &str) -> std::path::PathBuf {
    let root = demo_root().display().to_string();
    let path = dir.join(format!("{tid}.toml"));
    let config = format!(
        r#"tid = "{tid}"
[dataset]
split_kind = "full"
[dataset.conversations]
source = "{root}/conversations"
split = "test"
[dataset.tracks]
source = "{root}/tracks"
split = "all_tracks"
[dataset.users]
source = "{root}/users"
split = "all_users"
{extra}"#
    );
    std::fs::write(&path, config).unwrap();
    path
}
