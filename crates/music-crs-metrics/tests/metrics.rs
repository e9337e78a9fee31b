//! Integration tests of music-crs-metrics: parity with the official evaluator on the
//! shared fixture, properties of the metrics, and the errors bad input gets.

use std::collections::HashSet;

use music_crs_core::shared::shared_path;
use music_crs_core::{Message, Prediction, Role, Session};
use music_crs_metrics::{
    Error, EvaluationParams, Evaluator, GoldTurn, GroundTruth, MissingPredictions, PredictionFile,
    ProblemKind, Validator, evaluate,
};
use proptest::prelude::*;

// ---------------------------------------------------------------- parity

#[test]
fn fixture_scores_equal_the_official_evaluator() {
    let Some(dir) = shared_path("fixtures/evaluator") else {
        return;
    };
    let truth = GroundTruth::from_json_file(dir.join("ground_truth_100.json")).unwrap();
    let file = PredictionFile::from_json_file(dir.join("predictions_100.json")).unwrap();
    let report = Validator::new().with_ground_truth(&truth).validate(&file);
    assert!(report.is_valid(), "{report}");
    assert_eq!(report.rows(), 800);

    let evaluator = Evaluator::new(EvaluationParams::default()).unwrap();
    let scores = evaluator.evaluate(&truth, file.predictions()).unwrap();
    let expected_text = std::fs::read_to_string(dir.join("expected_scores_100.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&expected_text).unwrap();
    let figure = |key: &str| expected[key].as_f64().unwrap();
    let ours = [
        ("ndcg@1", scores.macro_scores.ndcg(1).unwrap()),
        ("ndcg@10", scores.macro_scores.ndcg(10).unwrap()),
        ("ndcg@20", scores.macro_scores.ndcg(20).unwrap()),
        ("catalog_diversity", scores.catalog_diversity),
        ("lexical_diversity", scores.lexical_diversity),
        ("total_catalog_size", scores.total_catalog_size as f64),
    ];
    for (key, value) in ours {
        assert!(
            (value - figure(key)).abs() <= 1e-9,
            "{key}: ours {value}, official {}",
            figure(key)
        );
    }
    assert_eq!(scores.rows, 800);
    assert_eq!(scores.per_turn.len(), 8);
    assert!(scores.per_turn.iter().all(|t| t.rows == 100));
    // Same summation order and number printing as Python: the file itself is identical.
    assert_eq!(scores.official_json(), expected_text);

    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("scores.json");
    scores.write_official_json(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected_text);
    // Only the renamed file is left behind.
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 1);

    // The one-call path gives the same scores.
    let evaluation = evaluator
        .evaluate_file(&truth, dir.join("predictions_100.json"), None)
        .unwrap();
    assert_eq!(evaluation.scores, scores);
    let table = scores.table().to_string();
    assert!(table.contains("ndcg@10") && table.contains("recall@20") && table.contains("macro"));
}

// ---------------------------------------------------------------- helpers

fn gold(session: &str, turn: u32, ids: &[&str]) -> GoldTurn {
    GoldTurn {
        session_id: session.to_owned(),
        user_id: "u".to_owned(),
        turn_number: turn,
        gold_track_ids: ids.iter().map(|s| s.to_string()).collect(),
    }
}

fn prediction(session: &str, turn: u32, ids: &[String], response: &str) -> Prediction {
    Prediction {
        session_id: session.to_owned(),
        user_id: "u".to_owned(),
        turn_number: turn,
        predicted_track_ids: ids.to_vec(),
        predicted_response: response.to_owned(),
    }
}

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn params(catalog_size: usize) -> EvaluationParams {
    EvaluationParams {
        catalog_size,
        ..EvaluationParams::default()
    }
}

// ---------------------------------------------------------------- official semantics

#[test]
fn first_row_of_a_turn_is_scored_and_unknown_turns_are_ignored() {
    let truth = GroundTruth::new(vec![gold("s", 1, &["g"])]).unwrap();
    let predictions = vec![
        prediction("s", 1, &strings(&["g", "a"]), "one two"),
        prediction("s", 1, &strings(&["b", "c"]), "three four"),
        prediction("other", 1, &strings(&["d", "e"]), "five six"),
    ];
    let scores = evaluate(&truth, &predictions, &params(100)).unwrap();
    assert_eq!(scores.macro_scores.ndcg(1), Some(1.0));
    // Only the scored row's ids and response count toward diversity.
    assert_eq!(scores.distinct_track_ids, 2);
    assert_eq!(scores.catalog_diversity, 0.02);
    assert_eq!(scores.lexical_diversity, 1.0);
}

#[test]
fn macro_mean_weights_turns_equally() {
    // Turn 1 has two sessions (hit, miss), turn 2 one session (hit).
    let truth = GroundTruth::new(vec![
        gold("a", 1, &["g"]),
        gold("b", 1, &["g"]),
        gold("a", 2, &["g"]),
    ])
    .unwrap();
    let predictions = vec![
        prediction("a", 1, &strings(&["g"]), ""),
        prediction("b", 1, &strings(&["x"]), ""),
        prediction("a", 2, &strings(&["g"]), ""),
    ];
    let scores = evaluate(&truth, &predictions, &params(10)).unwrap();
    assert_eq!(scores.per_turn[0].scores.ndcg(10), Some(0.5));
    assert_eq!(scores.per_turn[1].scores.ndcg(10), Some(1.0));
    assert_eq!(scores.macro_scores.ndcg(10), Some(0.75));
    assert!((scores.micro_scores.ndcg(10).unwrap() - 2.0 / 3.0).abs() < 1e-15);
    let hit = scores.macro_scores.at_k(10).unwrap();
    assert_eq!((hit.hit, hit.mrr, hit.recall), (0.75, 0.75, 0.75));
}

#[test]
fn ids_past_rank_twenty_count_for_catalog_diversity_only() {
    let truth = GroundTruth::new(vec![gold("s", 1, &["last"])]).unwrap();
    let mut ids: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
    ids.push("last".to_owned());
    let scores = evaluate(&truth, &[prediction("s", 1, &ids, "")], &params(42)).unwrap();
    assert_eq!(scores.macro_scores.ndcg(20), Some(0.0));
    assert_eq!(scores.distinct_track_ids, 21);
    assert_eq!(scores.catalog_diversity, 0.5);
}

#[test]
fn ground_truth_from_labeled_turns() {
    let session = Session {
        session_id: "s".into(),
        user_id: "u".into(),
        messages: vec![
            Message::new(1, Role::User, "calm jazz"),
            Message::new(1, Role::Music, "t1"),
            Message::new(1, Role::Assistant, "Try this."),
            Message::new(2, Role::User, "more"),
            Message::new(2, Role::Music, "t2"),
            Message::new(2, Role::Assistant, "And this."),
        ],
        ..Session::default()
    };
    let labeled = session.labeled_turns().unwrap();
    let truth = GroundTruth::from_labeled_turns(&labeled).unwrap();
    assert_eq!(truth.get("s", 2).unwrap().gold_track_ids, ["t2"]);

    let mut without_gold = labeled.clone();
    without_gold[1].gold_track_id = None;
    let err = GroundTruth::from_labeled_turns(&without_gold).unwrap_err();
    assert!(
        err.to_string()
            .contains("session s, turn 2: the turn context has no gold track id"),
        "{err}"
    );
}

// ---------------------------------------------------------------- properties

/// Distinct ids `t0`, `t1`, … in a shuffled order chosen by proptest.
fn distinct_ids(max: usize) -> impl Strategy<Value = Vec<String>> {
    (0..=max)
        .prop_flat_map(|n| Just((0..n).map(|i| format!("t{i}")).collect::<Vec<_>>()).prop_shuffle())
}

/// A ground truth of `sessions × turns` with one to three gold ids each, and prediction
/// rows (some missing gold, some empty) for every turn.
fn scenario() -> impl Strategy<Value = (Vec<GoldTurn>, Vec<Prediction>)> {
    prop::collection::vec(
        (
            prop::collection::vec("g[0-9]", 1..=3),
            distinct_ids(25),
            "[a-c ]{0,12}",
        ),
        1..40,
    )
    .prop_map(|rows| {
        let mut golds = Vec::new();
        let mut predictions = Vec::new();
        for (index, (mut gold_ids, mut ids, response)) in rows.into_iter().enumerate() {
            gold_ids.sort();
            gold_ids.dedup();
            // Mix gold ids into the list at a position chosen by the data.
            if let Some(first) = gold_ids.first()
                && index % 2 == 0
            {
                ids.insert(ids.len().min(index % 7), first.clone());
            }
            let session = format!("s{}", index / 8);
            let turn = (index % 8) as u32 + 1;
            golds.push(GoldTurn {
                session_id: session.clone(),
                user_id: String::new(),
                turn_number: turn,
                gold_track_ids: gold_ids,
            });
            predictions.push(prediction(&session, turn, &ids, &response));
        }
        (golds, predictions)
    })
}

proptest! {
    #[test]
    fn ideal_ranking_scores_one(gold_count in 1_usize..25, extra in 0_usize..10) {
        let gold_ids: Vec<String> = (0..gold_count).map(|i| format!("g{i}")).collect();
        let mut ids = gold_ids.clone();
        ids.extend((0..extra).map(|i| format!("x{i}")));
        let refs: Vec<&str> = gold_ids.iter().map(String::as_str).collect();
        let truth = GroundTruth::new(vec![gold("s", 1, &refs)]).unwrap();
        let scores = evaluate(&truth, &[prediction("s", 1, &ids, "")], &params(1000)).unwrap();
        for m in &scores.macro_scores.at {
            prop_assert!((m.ndcg - 1.0).abs() < 1e-12, "ndcg@{} = {}", m.k, m.ndcg);
            prop_assert_eq!(m.hit, 1.0);
            prop_assert_eq!(m.mrr, 1.0);
        }
        let recall_20 = scores.macro_scores.at_k(20).unwrap().recall;
        prop_assert_eq!(recall_20, gold_count.min(20) as f64 / gold_count as f64);
    }

    #[test]
    fn every_score_lies_in_zero_one((golds, predictions) in scenario()) {
        let truth = GroundTruth::new(golds).unwrap();
        let scores = evaluate(&truth, &predictions, &params(50)).unwrap();
        let mut all = vec![scores.catalog_diversity, scores.lexical_diversity];
        for ranking in std::iter::once(&scores.macro_scores)
            .chain(std::iter::once(&scores.micro_scores))
            .chain(scores.per_turn.iter().map(|t| &t.scores))
        {
            for m in &ranking.at {
                all.extend([m.ndcg, m.hit, m.mrr, m.recall]);
            }
        }
        for value in all {
            prop_assert!((0.0..=1.0).contains(&value), "{value} out of [0, 1]");
        }
    }

    #[test]
    fn shuffling_prediction_rows_changes_nothing(
        (golds, predictions) in scenario(),
        seed in any::<u64>(),
    ) {
        let truth = GroundTruth::new(golds).unwrap();
        let before = evaluate(&truth, &predictions, &params(50)).unwrap();
        let mut shuffled = predictions.clone();
        // A seeded Fisher–Yates shuffle (splitmix64 steps).
        let mut state = seed;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            shuffled.swap(i, ((z ^ (z >> 31)) % (i as u64 + 1)) as usize);
        }
        let after = evaluate(&truth, &shuffled, &params(50)).unwrap();
        prop_assert_eq!(before, after);
    }

    #[test]
    fn gold_past_rank_k_adds_nothing_at_k(
        (k, position) in (1_usize..20).prop_flat_map(|k| (Just(k), k..30)),
    ) {
        let ids: Vec<String> = (0..30).map(|i| format!("x{i}")).collect();
        let mut with_gold = ids.clone();
        with_gold[position] = "g".to_owned();
        let truth = GroundTruth::new(vec![gold("s", 1, &["g"])]).unwrap();
        let at_k = EvaluationParams { cutoffs: vec![k], ..params(100) };
        let with = evaluate(&truth, &[prediction("s", 1, &with_gold, "")], &at_k).unwrap();
        let without = evaluate(&truth, &[prediction("s", 1, &ids, "")], &at_k).unwrap();
        prop_assert_eq!(&with.macro_scores, &without.macro_scores);
        prop_assert_eq!(with.macro_scores.ndcg(k), Some(0.0));
        // One rank further and it counts.
        let at_position = EvaluationParams { cutoffs: vec![position + 1], ..params(100) };
        let counted = evaluate(&truth, &[prediction("s", 1, &with_gold, "")], &at_position).unwrap();
        prop_assert!(counted.macro_scores.ndcg(position + 1).unwrap() > 0.0);
    }
}

// ---------------------------------------------------------------- bad input

fn truth_two_turns() -> GroundTruth {
    GroundTruth::new(vec![gold("s1", 1, &["g"]), gold("s1", 2, &["g"])]).unwrap()
}

#[test]
fn empty_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.json");
    std::fs::write(&path, "  \n").unwrap();
    let err = PredictionFile::from_json_file(&path).unwrap_err();
    assert!(matches!(err, Error::EmptyJson { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("empty.json") && message.contains("empty"),
        "{message}"
    );
}

#[test]
fn truncated_file_names_line_and_column() {
    let text =
        "[\n  {\"session_id\": \"s1\",\n   \"turn_number\": 1,\n   \"predicted_track_ids\": [\"a\"";
    let err = PredictionFile::from_json_str(text, "cut.json").unwrap_err();
    let Error::Json {
        kind, line, column, ..
    } = &err
    else {
        panic!("unexpected {err}");
    };
    assert_eq!((*kind, *line), ("truncated", 4));
    assert!(*column > 0);
    let message = err.to_string();
    assert!(
        message.starts_with("cut.json: truncated JSON at line 4, column"),
        "{message}"
    );

    let err = PredictionFile::from_json_str("[1, 2,, 3]", "syntax.json").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("syntax.json: invalid JSON at line 1, column 7"),
        "{err}"
    );
}

#[test]
fn non_array_and_missing_files_are_named() {
    let err = PredictionFile::from_json_str("{\"a\": 1}", "obj.json").unwrap_err();
    assert_eq!(
        err.to_string(),
        "obj.json: expected a JSON array of rows, found an object"
    );
    let err = PredictionFile::from_json_file("/nonexistent/preds.json").unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert!(
        err.to_string().starts_with("/nonexistent/preds.json: "),
        "{err}"
    );
    let err = GroundTruth::from_json_file("/nonexistent/gt.json").unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/gt.json: "),
        "{err}"
    );
}

#[test]
fn every_row_problem_is_reported_with_its_place() {
    let many: Vec<String> = (0..21).map(|i| format!("\"t{i}\"")).collect();
    let text = format!(
        r#"[
        {{"session_id": "s1", "user_id": "u", "turn_number": 1, "predicted_track_ids": ["a", "b", "a"], "predicted_response": "x"}},
        {{"session_id": "s1", "user_id": "u", "turn_number": 1, "predicted_track_ids": [], "predicted_response": "x"}},
        {{"session_id": "s1", "user_id": "u", "turn_number": 9, "predicted_track_ids": [{}], "predicted_response": "x"}},
        {{"session_id": "s2", "turn_number": "2", "predicted_track_ids": ["a", 7], "predicted_response": null}},
        "not a row",
        {{"session_id": "s3", "user_id": "u", "turn_number": 1.5, "predicted_track_ids": "a", "predicted_response": "x"}},
        {{"session_id": "s1", "user_id": "u", "turn_number": 3, "predicted_track_ids": ["zz"], "predicted_response": "x"}}
    ]"#,
        many.join(", ")
    );
    let file = PredictionFile::from_json_str(&text, "bad.json").unwrap();
    assert_eq!(file.rows(), 7);
    let truth = GroundTruth::new(vec![
        gold("s1", 1, &["g"]),
        gold("s1", 2, &["g"]),
        gold("s1", 3, &["g"]),
    ])
    .unwrap();
    let catalog: HashSet<String> = ["a", "b"]
        .iter()
        .map(|s| s.to_string())
        .chain((0..21).map(|i| format!("t{i}")))
        .collect();
    let report = Validator::new()
        .with_ground_truth(&truth)
        .with_catalog(&catalog)
        .validate(&file);
    let text = report.to_string();
    let expect = [
        "row 1, session s1, turn 1: predicted_track_ids repeats \"a\" at rank 3 (first at rank 1)",
        "row 2, session s1, turn 1: second prediction for this turn (first in row 1, which is the one scored)",
        "row 3, session s1, turn 9: this turn is not in the ground truth",
        "row 3, session s1, turn 9: predicted_track_ids has 21 ids, at most 20 are allowed",
        "row 4, session s2: missing field user_id",
        "row 4, session s2: turn_number must be a non-negative integer, found the string \"2\"",
        "row 4, session s2: predicted_track_ids[1] must be a string, found an integer 7",
        "row 4, session s2: predicted_response must be a string, found null",
        "row 5: expected an object, found a string",
        "row 6, session s3: turn_number must be a non-negative integer, found a number 1.5",
        "row 6, session s3: predicted_track_ids must be an array of strings, found the string \"a\"",
        "row 7, session s1, turn 3: track id \"zz\" at rank 1 is not in the catalog",
        "session s1, turn 2: no prediction for this turn of the ground truth",
    ];
    for line in expect {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert_eq!(report.problems().len(), expect.len(), "{text}");
    assert!(!report.is_valid());
    assert!(!report.is_scorable());
    let counts = report.counts();
    assert_eq!(counts.malformed_rows, 3);
    assert_eq!(counts.duplicate_track_ids, 1);
    assert_eq!(counts.duplicate_rows, 1);
    assert_eq!(counts.unknown_turns, 1);
    assert_eq!(counts.too_many_track_ids, 1);
    assert_eq!(counts.unknown_track_ids, 1);
    assert_eq!(counts.missing_predictions, 1);
    assert_eq!(counts.total(), 9);
    assert!(
        text.starts_with("bad.json: 7 rows, 13 problem(s): 3 malformed rows"),
        "{text}"
    );
}

#[test]
fn a_malformed_row_with_a_readable_turn_is_not_also_missing() {
    let text = r#"[
        {"session_id": "s1", "user_id": "u", "turn_number": 1, "predicted_track_ids": ["g"], "predicted_response": 3},
        {"session_id": "s1", "user_id": "u", "turn_number": 2, "predicted_track_ids": ["g"], "predicted_response": ""}
    ]"#;
    let file = PredictionFile::from_json_str(text, "p.json").unwrap();
    let report = Validator::new()
        .with_ground_truth(&truth_two_turns())
        .validate(&file);
    assert_eq!(report.problems().len(), 1, "{report}");
    assert!(matches!(
        report.problems()[0].kind,
        ProblemKind::WrongType { .. }
    ));
    // But scoring has no usable row for turn 1, so it is refused with the full report...
    let err = Evaluator::default()
        .evaluate_prediction_file(&truth_two_turns(), &file, None)
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(
            "row 1, session s1, turn 1: predicted_response must be a string, found an integer 3"
        ),
        "{message}"
    );
    // ...or, for a partial run, scored 0.
    let lenient = Evaluator::new(EvaluationParams {
        missing: MissingPredictions::ScoreZero,
        ..EvaluationParams::default()
    })
    .unwrap();
    let evaluation = lenient
        .evaluate_prediction_file(&truth_two_turns(), &file, None)
        .unwrap();
    assert_eq!(evaluation.scores.missing_predictions, 1);
    assert_eq!(evaluation.scores.macro_scores.ndcg(1), Some(0.5));
    assert!(!evaluation.report.is_valid());
}

#[test]
fn evaluation_refuses_repeated_ids_and_missing_turns() {
    let truth = truth_two_turns();
    let repeated = vec![
        prediction("s1", 1, &strings(&["a", "a"]), ""),
        prediction("s1", 2, &strings(&["g"]), ""),
    ];
    let err = evaluate(&truth, &repeated, &params(10)).unwrap_err();
    assert!(matches!(err, Error::InvalidPredictions(_)));
    assert!(
        err.to_string()
            .contains("session s1, turn 1: predicted_track_ids repeats \"a\" at rank 2"),
        "{err}"
    );

    let partial = vec![prediction("s1", 2, &strings(&["g"]), "a b")];
    let err = evaluate(&truth, &partial, &params(10)).unwrap_err();
    assert!(
        err.to_string()
            .contains("session s1, turn 1: no prediction for this turn"),
        "{err}"
    );

    let lenient = EvaluationParams {
        missing: MissingPredictions::ScoreZero,
        ..params(10)
    };
    let scores = evaluate(&truth, &partial, &lenient).unwrap();
    assert_eq!(scores.missing_predictions, 1);
    assert_eq!(scores.macro_scores.ndcg(1), Some(0.5));
    assert!(
        scores
            .table()
            .to_string()
            .contains("1 ground-truth turns had no prediction")
    );
}

#[test]
fn invalid_params_are_refused() {
    for (params, field) in [
        (
            EvaluationParams {
                cutoffs: vec![],
                ..EvaluationParams::default()
            },
            "cutoffs",
        ),
        (
            EvaluationParams {
                cutoffs: vec![0, 1],
                ..EvaluationParams::default()
            },
            "cutoffs",
        ),
        (
            EvaluationParams {
                cutoffs: vec![10, 1],
                ..EvaluationParams::default()
            },
            "cutoffs",
        ),
        (
            EvaluationParams {
                catalog_size: 0,
                ..EvaluationParams::default()
            },
            "catalog_size",
        ),
    ] {
        let err = Evaluator::new(params).unwrap_err();
        assert!(
            matches!(err, Error::InvalidParams { field: f, .. } if f == field),
            "{err}"
        );
    }
}

#[test]
fn write_official_json_creates_folders_and_names_the_path_on_failure() {
    let truth = GroundTruth::new(vec![gold("s", 1, &["g"])]).unwrap();
    let scores = evaluate(
        &truth,
        &[prediction("s", 1, &strings(&["g"]), "")],
        &params(1),
    )
    .unwrap();
    // A regular file where a folder should be: no user (root included) can write below it.
    let out = tempfile::tempdir().unwrap();
    let blocker = out.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let err = scores
        .write_official_json(blocker.join("scores.json"))
        .unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");

    // A folder that does not exist yet is created.
    let fresh = out.path().join("exp/scores/dev.json");
    scores.write_official_json(&fresh).unwrap();
    assert_eq!(
        std::fs::read_to_string(&fresh).unwrap(),
        scores.official_json()
    );
}
