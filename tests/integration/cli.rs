//! The `music-crs` binary: run, validate, evaluate and config errors, from a temporary
//! working directory so nothing is written into the repository.

use std::path::Path;

use crate::common::{expect_error, music_crs, text, write_config};

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
    let turns = data.labeled_turns().unwrap();
    let gold: Vec<serde_json::Value> = turns[..rows.len()]
        .iter()
        .map(|t| {
            serde_json::json!({"session_id": t.context.session_id, "user_id": t.context.user_id,
                "turn_number": t.context.turn_number, "ground_truth_track_id": t.gold_track_id})
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

    // Naming the dataset instead of its catalog size gives the same catalog diversity.
    let out = music_crs(
        dir.path(),
        &[
            "evaluate",
            "--predictions",
            predictions,
            "--ground-truth",
            "gold.json",
            "--config",
            config,
            "--output",
            "by_dataset.json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let by_dataset = std::fs::read_to_string(dir.path().join("by_dataset.json")).unwrap();
    assert_eq!(by_dataset, std::fs::read_to_string(&scores).unwrap());
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

/// Writes a judge-score file giving `score` to every turn of a prediction file.
fn judge_file(dir: &Path, predictions: &Path, score: f64) -> std::path::PathBuf {
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(predictions).unwrap()).unwrap();
    let judged: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({"session_id": r["session_id"], "turn_number": r["turn_number"],
                "score": score})
        })
        .collect();
    let path = dir.join("judge.json");
    std::fs::write(&path, serde_json::to_string(&judged).unwrap()).unwrap();
    path
}

#[test]
fn scores_come_with_per_turn_tables_and_the_composite() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "turns_bm25", "[retriever]\nkind = \"bm25\"\n");
    let out = music_crs(
        dir.path(),
        &["--quiet", "run", "--config", config.to_str().unwrap()],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("the 0.3 judge part needs --judge-scores"),
        "{stdout}"
    );

    // The per-turn CSV: one line per test turn, columns pandas reads, values that average
    // (per turn, then over turns) to the official figure.
    let csv = std::fs::read_to_string(dir.path().join("exp/scores/turns_bm25.turns.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "session_id,turn_number,user_id,gold_rank,ndcg@1,ndcg@10,ndcg@20,hit@1,hit@10,hit@20"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 1600);
    let mut per_turn = std::collections::BTreeMap::<u32, (f64, usize)>::new();
    for row in &rows {
        let entry = per_turn.entry(row[1].parse().unwrap()).or_default();
        entry.0 += row[6].parse::<f64>().unwrap();
        entry.1 += 1;
        // A rank within 20 means a hit at 20, an empty rank a miss.
        assert_eq!(
            row[3].parse::<usize>().is_ok_and(|r| r <= 20),
            row[9] == "1"
        );
    }
    let macro_ndcg: f64 = per_turn
        .values()
        .map(|(sum, n)| sum / *n as f64)
        .sum::<f64>()
        / per_turn.len() as f64;
    let official: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("exp/scores/turns_bm25.json")).unwrap(),
    )
    .unwrap();
    assert!((official["ndcg@20"].as_f64().unwrap() - macro_ndcg).abs() < 1e-12);
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("exp/scores/turns_bm25.turns.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1600);

    // With judge scores the composite is complete: 3 of 5 adds 0.3 × 0.5.
    let predictions = dir.path().join("exp/inference/turns_bm25.json");
    let judge = judge_file(dir.path(), &predictions, 3.0);
    let out = music_crs(
        dir.path(),
        &[
            "evaluate",
            "--predictions",
            predictions.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--judge-scores",
            judge.to_str().unwrap(),
            "--output",
            "judged/scores.json",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let known = 0.5 * official["ndcg@20"].as_f64().unwrap()
        + 0.1 * official["catalog_diversity"].as_f64().unwrap()
        + 0.1 * official["lexical_diversity"].as_f64().unwrap();
    assert!(
        stdout.contains(&format!("= {:.4}", known + 0.15)),
        "{known}: {stdout}"
    );
    assert!(dir.path().join("judged/scores.turns.csv").is_file());

    // A judge file that misses turns, or a score file aimed at the predictions, is refused.
    std::fs::write(
        &judge,
        r#"[{"session_id": "x", "turn_number": 1, "score": 4}]"#,
    )
    .unwrap();
    let predictions = predictions.to_str().unwrap();
    let config = config.to_str().unwrap();
    let judge = judge.to_str().unwrap();
    expect_error(
        dir.path(),
        &[
            "evaluate",
            "-p",
            predictions,
            "--config",
            config,
            "--judge-scores",
            judge,
        ],
        "no judge score",
    );
    let before = std::fs::read(predictions).unwrap();
    expect_error(
        dir.path(),
        &[
            "evaluate",
            "-p",
            predictions,
            "--config",
            config,
            "--output",
            predictions,
        ],
        "is an input file",
    );
    assert_eq!(std::fs::read(predictions).unwrap(), before);
}

#[test]
fn compare_reports_intervals_tests_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = Vec::new();
    for (tid, kind) in [("cmp_random", "random"), ("cmp_bm25", "bm25")] {
        let config = write_config(
            dir.path(),
            tid,
            &format!("[retriever]\nkind = \"{kind}\"\n"),
        );
        let out = music_crs(
            dir.path(),
            &["--quiet", "run", "--config", config.to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        configs.push(config);
    }
    let random = configs[0].to_str().unwrap();
    // Methods named by config (their prediction files) and by file; the ground truth from
    // the config's split.
    let out = music_crs(
        dir.path(),
        &[
            "--quiet",
            "compare",
            random,
            "exp/inference/cmp_bm25.json",
            "exp/inference/cmp_random.json",
            "--names",
            "random,bm25,again",
            "--config",
            random,
            "--resamples",
            "2000",
            "--diversity-resamples",
            "200",
            "--format",
            "json",
            "--output",
            "cmp/compare.json",
            "--plot",
            "cmp/compare.svg",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("cmp/compare.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["sessions"], 200);
    assert_eq!(report["turns"], 1600);
    let tests = report["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 6);
    for test in tests {
        let real = !test["within_noise"].as_bool().unwrap();
        match (
            test["method"].as_str().unwrap(),
            test["metric"].as_str().unwrap(),
        ) {
            // The same file as the baseline: no difference at all.
            ("again", _) => {
                assert_eq!(test["difference"], 0.0);
                assert_eq!(test["p_permutation"], 1.0);
                assert!(!real);
            }
            // BM25 beats random by far more than the noise at nDCG@10 and @20.
            ("bm25", "ndcg@10" | "ndcg@20") => assert!(real, "{test}"),
            _ => {}
        }
    }
    let svg = std::fs::read_to_string(dir.path().join("cmp/compare.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("nDCG@20 per turn"),
        "{}",
        &svg[..200]
    );
    for label in [
        "random",
        "bm25",
        "again",
        "Catalog diversity",
        "gold track rank (missed: ",
    ] {
        assert!(svg.contains(label), "{label} missing from the chart");
    }

    // Markdown, CSV and a PNG chart, the two files against the config's split.
    let quick = |extra: &[&str]| {
        let mut args = vec![
            "--quiet",
            "compare",
            "exp/inference/cmp_random.json",
            "exp/inference/cmp_bm25.json",
            "--config",
            random,
            "--resamples",
            "500",
            "--diversity-resamples",
            "50",
        ];
        args.extend_from_slice(extra);
        music_crs(dir.path(), &args)
    };
    let out = quick(&[
        "--baseline",
        "cmp_bm25",
        "--format",
        "markdown",
        "--plot",
        "chart.png",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("| cmp_random "), "{stdout}");
    assert!(stdout.contains("Paired tests against cmp_bm25"), "{stdout}");
    let png = std::fs::read(dir.path().join("chart.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let out = quick(&["--format", "csv"]);
    let csv = text(&out.stdout);
    assert!(
        csv.starts_with("kind,method,baseline,metric,value,low,high"),
        "{csv}"
    );
    // Blind-set size: the first 10 sessions, 80 turns.
    let out = quick(&["--sessions", "10"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("on 80 turns of 10 sessions"),
        "{}",
        text(&out.stdout)
    );
    // 2 methods × 5 figures, then 3 tests.
    assert_eq!(csv.lines().count(), 1 + 10 + 3, "{csv}");

    // Bad requests: an unknown baseline, a plot format we cannot draw, a missing file.
    for (args, needle) in [
        (vec!["--baseline", "nope"], "neither a method name"),
        (vec!["--plot", "chart.gif"], ".svg or .png"),
    ] {
        let mut all = vec![
            "compare",
            "exp/inference/cmp_random.json",
            "--config",
            random,
        ];
        all.extend(args);
        expect_error(dir.path(), &all, needle);
    }
    expect_error(
        dir.path(),
        &["compare", "missing.json", "--config", random],
        "missing.json",
    );
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

#[test]
fn a_closed_pipe_or_an_absurd_size_ends_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"[{"session_id": "s", "user_id": "u", "turn_number": 1, "predicted_track_ids": ["a", "a"], "predicted_response": "x"}]"#,
    )
    .unwrap();
    // `music-crs validate bad.json | head` with a reader that is already gone.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_music-crs"))
        .args(["validate", bad.to_str().unwrap()])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Sizes that would overflow or exhaust memory are refused before any work.
    for (flag, value) in [
        ("--tracks", "18446744073709551615"),
        ("--users", "4000000000"),
        ("--train", "1000000"),
        ("--tracks", "0"),
    ] {
        let out = music_crs(dir.path(), &["demo-data", "--out", "demo", flag, value]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(
            stderr.contains(flag) && !stderr.contains("panicked"),
            "{stderr}"
        );
        assert!(!dir.path().join("demo").exists());
    }
}

#[test]
fn export_writes_every_track_for_opensearch_and_qdrant() {
    let dir = tempfile::tempdir().unwrap();
    let data = crate::common::demo_root().to_str().unwrap();
    let out = music_crs(
        dir.path(),
        &[
            "--quiet",
            "export",
            "--format",
            "opensearch",
            "--data",
            data,
            "--out",
            "os",
            "--per-file",
            "1000",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bulk: Vec<_> = std::fs::read_dir(dir.path().join("os"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    let lines: usize = bulk
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap().lines().count())
        .sum();
    // The demo catalog has 3,000 tracks: an action and a document line each, 1,000 per file.
    assert_eq!((bulk.len(), lines), (3, 6_000));
    assert!(dir.path().join("os/index.json").is_file());

    let out = music_crs(
        dir.path(),
        &[
            "--quiet",
            "export",
            "--format",
            "qdrant",
            "--data",
            data,
            "--out",
            "qd",
            "--kinds",
            "cf-bpr,image-siglip2",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let collection: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("qd/collection.json")).unwrap())
            .unwrap();
    let kinds: Vec<&String> = collection["vectors"].as_object().unwrap().keys().collect();
    assert_eq!(kinds, ["cf-bpr", "image-siglip2"]);

    let out = music_crs(
        dir.path(),
        &[
            "export", "--format", "qdrant", "--data", data, "--out", "bad", "--kinds", "nope",
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));
    assert!(!dir.path().join("bad/collection.json").exists());
}

#[test]
fn a_gpu_device_needs_its_feature_and_a_candle_model() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "gpu", "");
    let config = config.to_str().unwrap();
    expect_error(
        dir.path(),
        &["run", "--config", config, "--device", "tpu"],
        "\"tpu\" is not a device: use cpu, cuda, cuda:N, metal or metal:N",
    );
    // BM25 and template replies run no Candle model: the option is refused, not ignored.
    expect_error(
        dir.path(),
        &["run", "--config", config, "--device", "cuda"],
        "--device cuda:0 applies to the llama generator and the bert retriever",
    );
    // A Llama config on a GPU this build lacks (CI never builds `cuda`): the feature is
    // named, with the command that rebuilds with it, before any model file is read.
    #[cfg(feature = "llama")]
    {
        let llama = write_config(
            dir.path(),
            "gpu_llama",
            "[generator]\nkind = \"llama\"\nmodel = { source = \"gguf\", path = \"none.gguf\" }\n",
        );
        let out = music_crs(
            dir.path(),
            &[
                "run",
                "--config",
                llama.to_str().unwrap(),
                "--device",
                "cuda:1",
                "--limit",
                "1",
            ],
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("device cuda:1 needs the `cuda` feature"),
            "{stderr}"
        );
        assert!(
            stderr.contains("built without the `cuda` feature; rebuild and rerun with:"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
