//! Results are never lost or misleading: scores never replace predictions, `evaluate`
//! validates first and caps long problem lists, an error prints each cause once, and colours
//! follow `--color`.

use std::path::Path;
use std::process::Command;

use crate::common::write_config;
use crate::common::{expect_error, music_crs, text};

fn rows_of(path: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn run_writes_scores_beside_its_output_never_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "t", "");
    let config = config.to_str().unwrap();
    let run = |output: &str| {
        let out = music_crs(
            dir.path(),
            &[
                "--quiet", "run", "--config", config, "--limit", "16", "--output", output,
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };

    // An output in the scores folder keeps its predictions; the scores go beside it.
    let stdout = run("exp/scores/t.json");
    let predictions = rows_of(&dir.path().join("exp/scores/t.json"));
    assert_eq!(predictions.len(), 16, "{stdout}");
    assert!(predictions[0].get("predicted_track_ids").is_some());
    let scores = rows_of_object(&dir.path().join("exp/scores/t.scores.json"));
    assert!(scores.get("ndcg@20").is_some(), "{scores}");

    // An output elsewhere: its scores follow it, another run's scores are left alone.
    let others = dir.path().join("exp/scores/t.json");
    let before = std::fs::read(&others).unwrap();
    let elsewhere = dir.path().join("elsewhere/out.json");
    let stdout = run(elsewhere.to_str().unwrap());
    assert!(
        stdout.contains(&format!(
            "wrote scores to {}",
            dir.path().join("elsewhere/out.scores.json").display()
        )),
        "{stdout}"
    );
    assert_eq!(std::fs::read(&others).unwrap(), before);
    assert_eq!(rows_of(&elsewhere).len(), 16);

    // The default layout is unchanged.
    run("exp/inference/x.json");
    assert!(dir.path().join("exp/scores/x.json").is_file());
}

fn rows_of_object(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn gold(sessions: &[&str]) -> String {
    let rows: Vec<serde_json::Value> = sessions
        .iter()
        .flat_map(|s| {
            (1..=8).map(move |t| {
                serde_json::json!({"session_id": s, "user_id": "u", "turn_number": t,
                    "ground_truth_track_id": format!("{s}-{t}")})
            })
        })
        .collect();
    serde_json::to_string(&rows).unwrap()
}

fn prediction(session: &str, turn: u32) -> serde_json::Value {
    serde_json::json!({"session_id": session, "user_id": "u", "turn_number": turn,
        "predicted_track_ids": [format!("{session}-{turn}"), "other"],
        "predicted_response": "a reply"})
}

#[test]
fn evaluate_validates_first_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gold.json"), gold(&["s1"])).unwrap();
    let mut rows: Vec<serde_json::Value> = (1..=8).map(|t| prediction("s1", t)).collect();
    rows.push(prediction("s1", 1));
    rows.push(serde_json::json!({"session_id": "s1", "turn_number": 2}));
    rows.push(serde_json::json!(7));
    rows.push(serde_json::json!({"session_id": "s1", "turn_number": "x",
        "predicted_track_ids": [], "predicted_response": "", "user_id": "u"}));
    std::fs::write(
        dir.path().join("mine.json"),
        serde_json::to_string(&rows).unwrap(),
    )
    .unwrap();
    let out = music_crs(
        dir.path(),
        &["evaluate", "-p", "mine.json", "--ground-truth", "gold.json"],
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    for needle in [
        "mine.json: 12 rows",
        "3 malformed rows, 2 duplicate rows",
        "row 9, session s1, turn 1: second prediction for this turn",
        "row 11: expected an object, found an integer",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }
    assert!(
        stderr.contains("mine.json cannot be scored") && !stderr.contains("predictions cannot"),
        "{stderr}"
    );

    // A duplicate row alone is scored (the first row counts) but reported, exit 1.
    rows.truncate(9);
    std::fs::write(
        dir.path().join("mine.json"),
        serde_json::to_string(&rows).unwrap(),
    )
    .unwrap();
    let out = music_crs(
        dir.path(),
        &["evaluate", "-p", "mine.json", "--ground-truth", "gold.json"],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("1 duplicate rows") && stdout.contains("ndcg@20"),
        "{stdout}"
    );
}

#[test]
fn evaluate_against_the_wrong_split_caps_the_list_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let gold_sessions: Vec<String> = (0..100).map(|i| format!("g{i}")).collect();
    let gold_sessions: Vec<&str> = gold_sessions.iter().map(String::as_str).collect();
    std::fs::write(dir.path().join("gold.json"), gold(&gold_sessions)).unwrap();
    let rows: Vec<serde_json::Value> = (0..100)
        .flat_map(|i| (1..=8).map(move |t| prediction(&format!("p{i}"), t)))
        .collect();
    std::fs::write(
        dir.path().join("other_split.json"),
        serde_json::to_string(&rows).unwrap(),
    )
    .unwrap();
    let out = music_crs(
        dir.path(),
        &[
            "evaluate",
            "-p",
            "other_split.json",
            "--ground-truth",
            "gold.json",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(!out.status.success());
    let lines = stdout.lines().count() + text(&out.stderr).lines().count();
    assert!(lines < 40, "{lines} lines:\n{stdout}");
    for needle in [
        "other_split.json: 800 rows, 1600 problem(s)",
        "800 turns not in the ground truth, 800 missing predictions",
        "... and 1580 more problem(s)",
        "music-crs validate other_split.json",
        "another split",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }
}

#[test]
fn a_missing_file_is_named_once_with_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gold.json"), gold(&["s1"])).unwrap();
    let out = music_crs(
        dir.path(),
        &["evaluate", "-p", "nope.json", "--ground-truth", "gold.json"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.matches("nope.json").count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    expect_error(
        dir.path(),
        &["run", "--model", "hub:o/n@../../../somewhere"],
        "invalid hub revision \"../../../somewhere\"",
    );
}

#[test]
fn colours_only_when_asked_or_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "c", "");
    let config = config.to_str().unwrap();
    let stderr = |extra: &[&str], no_color: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_music-crs"));
        command
            .args(extra)
            .args(["run", "--config", config, "--limit", "2"])
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR");
        if no_color {
            command.env("NO_COLOR", "1");
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    const ESCAPE: char = '\u{1b}';
    // Stderr is a pipe here: plain text unless forced.
    let plain = stderr(&[], false);
    assert!(
        plain.contains("INFO") && !plain.contains(ESCAPE),
        "{plain:?}"
    );
    assert!(stderr(&["--color", "always"], false).contains(ESCAPE));
    assert!(
        stderr(&["--color=always"], true).contains(ESCAPE),
        "always beats NO_COLOR"
    );
    assert!(!stderr(&["--color", "never"], false).contains(ESCAPE));
}
