//! The `music-crs` binary: run, validate, evaluate and config errors, from a temporary
//! working directory so nothing is written into the repository.

use std::path::Path;

use crate::common::{demo_root, music_crs, text};

/// A config over the temporary demo dataset (absolute paths).
fn write_config(dir: &Path, tid: &str, extra: &str) -> std::path::PathBuf {
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

#[test]
fn run_then_validate_and_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "cli_bm25", "[retriever]\nkind = \"bm25\"\n");
    let config = config.to_str().unwrap();
    let out = music_crs(
        dir.path(),
        &["--quiet", "run", "--config", config, "--limit", "120"],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for needle in [
        "ndcg@1",
        "ndcg@10",
        "ndcg@20",
        "catalog diversity",
        "lexical diversity",
        "total wall time",
    ] {
        assert!(stdout.contains(needle), "{needle} missing from:\n{stdout}");
    }
    let predictions = dir.path().join("exp/inference/cli_bm25.json");
    let scores = dir.path().join("exp/scores/cli_bm25.json");
    assert!(predictions.is_file() && scores.is_file());
    let official: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&scores).unwrap()).unwrap();
    for key in [
        "ndcg@1",
        "ndcg@10",
        "ndcg@20",
        "catalog_diversity",
        "lexical_diversity",
        "total_catalog_size",
    ] {
        assert!(official.get(key).is_some(), "{key} missing from {official}");
    }

    let predictions = predictions.to_str().unwrap();
    let out = music_crs(dir.path(), &["validate", predictions]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("120 rows, valid"),
        "{}",
        text(&out.stdout)
    );

    let out = music_crs(
        dir.path(),
        &[
            "evaluate",
            "--predictions",
            predictions,
            "--config",
            config,
            "--output",
            "scores.json",
        ],
    );
    // The whole split is the ground truth: the 120 predicted turns do not cover it.
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("error"), "{}", text(&out.stderr));

    // With the run's own turns as ground truth (a JSON file), evaluation succeeds and matches.
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(predictions).unwrap()).unwrap();
    let data =
        music_crs::RunData::load(&music_crs::CrsConfig::load(config).unwrap().dataset).unwrap();
    let turns = data.turns().unwrap();
    let gold: Vec<serde_json::Value> = turns[..rows.len()]
        .iter()
        .map(|t| {
            serde_json::json!({"session_id": t.session_id, "user_id": t.user_id,
                "turn_number": t.turn_number, "ground_truth_track_id": t.gold_track_id})
        })
        .collect();
    std::fs::write(
        dir.path().join("gold.json"),
        serde_json::to_string(&gold).unwrap(),
    )
    .unwrap();
    let catalog_size = data.catalog.len().to_string();
    let out = music_crs(
        dir.path(),
        &[
            "evaluate",
            "--predictions",
            predictions,
            "--ground-truth",
            "gold.json",
            "--catalog-size",
            &catalog_size,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let evaluated = std::fs::read_to_string(dir.path().join("exp/scores/cli_bm25.json")).unwrap();
    assert_eq!(evaluated, std::fs::read_to_string(&scores).unwrap());
}

#[test]
fn validate_lists_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"[{"session_id": "s", "user_id": "u", "turn_number": 1, "predicted_track_ids": ["a", "a"], "predicted_response": "x"},
            {"session_id": "s", "user_id": "u", "turn_number": 2, "predicted_track_ids": ["b"]}]"#,
    )
    .unwrap();
    let out = music_crs(dir.path(), &["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("row 1"), "{stdout}");
    assert!(stdout.contains("row 2"), "{stdout}");
}

#[test]
fn config_errors_name_the_key_and_file_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "typo",
        "[retriever]\nkind = \"bm25\"\nexclude_playd = true\n",
    );
    let out = music_crs(dir.path(), &["run", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("exclude_playd") && stderr.contains("typo.toml"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = music_crs(
        dir.path(),
        &[
            "run",
            "--conversations",
            "./no/such/dir",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));

    let missing = write_config(dir.path(), "missing", "");
    let missing_text = std::fs::read_to_string(&missing)
        .unwrap()
        .replace("/conversations\"", "/nowhere\"");
    std::fs::write(&missing, missing_text).unwrap();
    let out = music_crs(dir.path(), &["run", "--config", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("nowhere"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn chat_answers_one_query() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "chat", "");
    let out = music_crs(
        dir.path(),
        &[
            "chat",
            "--config",
            config.to_str().unwrap(),
            "--query",
            "some upbeat pop please",
            "--show",
            "3",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(" 1. ") && stdout.contains(" 3. "),
        "{stdout}"
    );
    assert!(stdout.contains("crs> "), "{stdout}");
}

#[test]
fn sessions_counts_sessions_and_limit_counts_turns() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "cli_sessions", "");
    let config = config.to_str().unwrap();
    let rows = |extra: &[&str], tid: &str| {
        let mut args = vec!["--quiet", "run", "--config", config, "--tid", tid];
        args.extend_from_slice(extra);
        let out = music_crs(dir.path(), &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let file = dir.path().join(format!("exp/inference/{tid}.json"));
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let sessions: std::collections::HashSet<String> = rows
            .iter()
            .map(|row| row["session_id"].as_str().unwrap().to_string())
            .collect();
        (rows.len(), sessions.len())
    };
    // The demo sessions have 8 turns each.
    assert_eq!(rows(&["--sessions", "3"], "s3"), (24, 3));
    assert_eq!(rows(&["--limit", "3"], "l3"), (3, 1));
    assert_eq!(
        rows(&["--sessions", "3", "--limit", "20"], "s3l20"),
        (20, 3)
    );
}
