//! The default method (BM25 + templates) end to end on the demo test and blind splits.

use music_crs::config::{RetrieverKind, SplitKind};
use music_crs::output::{coverage_problems, read_predictions, write_predictions};
use music_crs::{Conversation, build_crs};
use music_crs_metrics::{EvaluationParams, Evaluator, GroundTruth, PredictionFile, Validator};

use crate::common::{demo_config, load, load_labeled};
use music_crs::core::LabeledTurn;

/// Turns predicted in debug builds (the release binary runs the whole split).
const LIMIT: usize = 400;

fn scores_of(kind: RetrieverKind) -> music_crs_metrics::Scores {
    let mut config = demo_config("test", SplitKind::Full);
    config.retriever = config.retriever.switched_to(kind);
    let (data, mut labeled) = load_labeled(&config);
    labeled.truncate(LIMIT);
    let turns = LabeledTurn::contexts(&labeled);
    let crs = build_crs(&config, &data).unwrap();
    let predictions = crs.predict(&turns).unwrap();
    let truth = GroundTruth::from_labeled_turns(&labeled).unwrap();
    let params = EvaluationParams {
        catalog_size: data.catalog.len(),
        ..EvaluationParams::default()
    };
    Evaluator::new(params)
        .unwrap()
        .evaluate(&truth, &predictions)
        .unwrap()
}

#[test]
fn bm25_template_on_demo_test_writes_a_valid_scored_file() {
    let config = demo_config("test", SplitKind::Full);
    let (data, mut labeled) = load_labeled(&config);
    assert!(
        labeled.len() > LIMIT,
        "the demo test split has {} turns",
        labeled.len()
    );
    labeled.truncate(LIMIT);
    let turns = LabeledTurn::contexts(&labeled);
    let crs = build_crs(&config, &data).unwrap();
    assert_eq!(crs.retriever_name(), "bm25");
    let predictions = crs.predict(&turns).unwrap();
    assert_eq!(predictions.len(), LIMIT);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exp/inference/bm25_template.json");
    write_predictions(&path, &predictions).unwrap();
    assert_eq!(read_predictions(&path).unwrap(), predictions);

    let file = PredictionFile::from_json_file(&path).unwrap();
    let truth = GroundTruth::from_labeled_turns(&labeled).unwrap();
    let report = Validator::new()
        .with_ground_truth(&truth)
        .with_catalog(data.catalog.as_ref())
        .validate(&file);
    assert!(report.is_valid(), "{report}");
    for (prediction, turn) in predictions.iter().zip(&turns) {
        assert_eq!(prediction.session_id, turn.session_id);
        assert_eq!(prediction.turn_number, turn.turn_number);
        assert_eq!(prediction.predicted_track_ids.len(), 20);
        assert!(!prediction.predicted_response.trim().is_empty());
        // The reply is grounded on the first track: it names its title.
        let first = data
            .catalog
            .get(&prediction.predicted_track_ids[0])
            .unwrap();
        assert!(
            prediction.predicted_response.contains(&first.name()),
            "{:?} does not mention {:?}",
            prediction.predicted_response,
            first.name()
        );
    }
    let scores = Evaluator::new(EvaluationParams {
        catalog_size: data.catalog.len(),
        ..EvaluationParams::default()
    })
    .unwrap()
    .evaluate(&truth, file.predictions())
    .unwrap();
    for k in [1, 10, 20] {
        let ndcg = scores.macro_scores.ndcg(k).unwrap();
        assert!((0.0..=1.0).contains(&ndcg), "ndcg@{k} {ndcg}");
    }
    assert!(scores.catalog_diversity > 0.0 && scores.catalog_diversity <= 1.0);
    assert!(scores.lexical_diversity > 0.0 && scores.lexical_diversity <= 1.0);
}

#[test]
fn bm25_beats_random_and_popularity_on_demo() {
    let bm25 = scores_of(RetrieverKind::Bm25)
        .macro_scores
        .ndcg(20)
        .unwrap();
    let random = scores_of(RetrieverKind::Random)
        .macro_scores
        .ndcg(20)
        .unwrap();
    let popularity = scores_of(RetrieverKind::Popularity)
        .macro_scores
        .ndcg(20)
        .unwrap();
    assert!(bm25 > random, "bm25 {bm25} vs random {random}");
    assert!(bm25 > popularity, "bm25 {bm25} vs popularity {popularity}");
}

#[test]
fn predictions_are_deterministic_across_runs() {
    let config = demo_config("test", SplitKind::Full);
    let (data, mut turns) = load(&config);
    turns.truncate(64);
    let first = build_crs(&config, &data).unwrap().predict(&turns).unwrap();
    turns.reverse();
    let mut second = build_crs(&config, &data).unwrap().predict(&turns).unwrap();
    second.reverse();
    assert_eq!(first, second);
}

#[test]
fn demo_blind_split_gets_one_prediction_per_row() {
    let config = demo_config("blind", SplitKind::Blind);
    let (data, labeled) = load_labeled(&config);
    assert_eq!(labeled.len(), data.sessions.len());
    assert!(labeled.iter().all(|t| t.gold_track_id.is_none()));
    let turns = LabeledTurn::contexts(&labeled);
    let crs = build_crs(&config, &data).unwrap();
    let predictions = crs.predict(&turns).unwrap();
    assert!(coverage_problems(&predictions, &turns).is_empty());
    for (prediction, session) in predictions.iter().zip(&data.sessions) {
        let last_turn = session
            .messages
            .iter()
            .map(|m| m.turn_number)
            .max()
            .unwrap();
        assert_eq!(prediction.turn_number, last_turn);
    }
}

#[test]
fn exclude_played_never_recommends_a_played_track() {
    let mut config = demo_config("test", SplitKind::Full);
    config.retriever.set_exclude_played(true);
    let (data, mut turns) = load(&config);
    turns.truncate(200);
    let crs = build_crs(&config, &data).unwrap();
    let predictions = crs.predict(&turns).unwrap();
    for (prediction, turn) in predictions.iter().zip(&turns) {
        assert_eq!(prediction.predicted_track_ids.len(), 20);
        for played in &turn.played_track_ids {
            assert!(!prediction.predicted_track_ids.contains(played));
        }
    }
}

#[test]
fn chat_keeps_the_conversation_across_turns() {
    let config = demo_config("test", SplitKind::Full);
    let data = music_crs::RunData::load_catalog_and_users(&config.dataset).unwrap();
    let crs = build_crs(&config, &data).unwrap();
    let artist = data.catalog.tracks()[0].artist();
    let mut conversation = Conversation::new("chat", "");
    let first = conversation
        .say(&crs, &format!("play something by {artist}"))
        .unwrap();
    assert_eq!(
        crs.catalog()
            .get(&first.tracks[0].track_id)
            .unwrap()
            .artist(),
        artist
    );
    let second = conversation.say(&crs, "another one please").unwrap();
    assert_eq!(conversation.messages().len(), 6);
    assert_eq!(conversation.next_turn_number(), 3);
    assert!(!second.response.is_empty());
}
