//! The `channels` and `ranked` retrievers end to end on the generated demo dataset: a small
//! ranker trained on the train split (through the library and through `music-crs
//! train-ranker`), applied to test turns, the predictions validated and scored, and the
//! error a missing model gives.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use music_crs::config::{ChannelsRetrieverConfig, RetrieverConfig, SplitKind};
use music_crs::core::LabeledTurn;
use music_crs::{CrsConfig, Error, RunData, build_crs};
use music_crs_metrics::{EvaluationParams, Evaluator, GroundTruth, PredictionFile, Validator};
use tempfile::TempDir;

use crate::common::{demo_config, demo_root, load_labeled, music_crs, text};

/// Test turns ranked in debug builds.
const LIMIT: usize = 240;

/// A small channel set and a short training (a few hundred turns, a dozen trees) so the test
/// stays fast in debug builds; the shipped configs use the full set.
const RANKED: &str = r#"
[retriever]
kind = "ranked"
model = "MODEL"
train_split = "train"

[retriever.features]
similarity_kinds = ["image-siglip2"]
user_kind = "cf-bpr"

[retriever.training]
trees = 12
learning_rate = 0.2
max_depth = 4
min_data_in_leaf = 10
negatives_per_query = 20
max_train_queries = 400
validation_fraction = 0.2

[[retriever.channels]]
name = "bm25"
depth = 40
channel = { kind = "bm25" }

[[retriever.channels]]
name = "continuity"
depth = 40
channel = { kind = "continuity" }

[[retriever.channels]]
name = "co_occurrence"
depth = 40
channel = { kind = "co_occurrence" }

[[retriever.channels]]
name = "image"
depth = 40
channel = { kind = "item_neighbours", embedding = "image-siglip2" }
"#;

/// The small ranked config over the demo test split, its model at `model`.
fn ranked_config(model: &Path) -> CrsConfig {
    let text = RANKED.replace("MODEL", &model.display().to_string());
    let mut config = CrsConfig::from_toml_str(
        &format!("tid = \"ranked\"\n[dataset]\npreset = \"demo-test\"\n{text}"),
        "ranked.toml",
    )
    .expect("the ranked config parses");
    config.dataset = demo_config("test", SplitKind::Full).dataset;
    config
}

/// A ranker trained once through the library, in a temporary directory.
fn trained() -> &'static (TempDir, CrsConfig) {
    static TRAINED: OnceLock<(TempDir, CrsConfig)> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        // The parent directory does not exist yet: training creates it.
        let config = ranked_config(&dir.path().join("models/ranker.json"));
        let data = RunData::load_for_training(&config).unwrap();
        assert!(data.retriever_inputs.split_sessions.len() > 100);
        let model = music_crs::train_ranker(&config, &data).unwrap();
        assert!(model.tree_count() >= 1);
        assert!(
            model.summary().candidate_recall > 0.3,
            "{:?}",
            model.summary()
        );
        (dir, config)
    })
}

fn scores(config: &CrsConfig, labeled: &[LabeledTurn], data: &RunData) -> [f64; 2] {
    let crs = build_crs(config, data).unwrap();
    let turns = &LabeledTurn::contexts(labeled);
    let predictions = crs.predict(turns).unwrap();
    let truth = GroundTruth::from_labeled_turns(labeled).unwrap();
    let file = PredictionFile::from_predictions(predictions.clone(), "ranked.json");
    let report = Validator::new()
        .with_ground_truth(&truth)
        .with_catalog(data.catalog.as_ref())
        .validate(&file);
    assert!(report.is_valid(), "{}: {report}", crs.retriever_name());
    for (prediction, turn) in predictions.iter().zip(turns) {
        assert_eq!(prediction.predicted_track_ids.len(), 20);
        assert!(
            prediction
                .predicted_track_ids
                .iter()
                .all(|id| !turn.played_track_ids.contains(id)),
            "{}: a played track was recommended at {} turn {}",
            crs.retriever_name(),
            turn.session_id,
            turn.turn_number
        );
    }
    let evaluation = Evaluator::new(EvaluationParams {
        catalog_size: data.catalog.len(),
        ..EvaluationParams::default()
    })
    .unwrap()
    .evaluate(&truth, &predictions)
    .unwrap();
    let at = |k| evaluation.macro_scores.ndcg(k).unwrap();
    [at(10), at(20)]
}

#[test]
fn trained_ranker_beats_bm25_and_fusion_is_valid() {
    let (_, config) = trained();
    let (data, mut turns) = load_labeled(config);
    turns.truncate(LIMIT);
    let ranked = scores(config, &turns, &data);

    let mut bm25 = config.clone();
    bm25.retriever = Default::default();
    bm25.retriever.set_exclude_played(true);
    let bm25 = scores(&bm25, &turns, &data);

    let mut fusion = config.clone();
    let RetrieverConfig::Ranked(table) = &config.retriever else {
        panic!("{:?}", config.retriever);
    };
    let mut channels = table.channels.clone();
    for channel in &mut channels {
        channel.depth = None;
    }
    fusion.retriever = RetrieverConfig::Channels(ChannelsRetrieverConfig {
        k: table.k,
        exclude_played: table.exclude_played,
        train_split: table.train_split.clone(),
        fusion: None,
        channels,
    });
    fusion.validate().unwrap();
    let fused = scores(&fusion, &turns, &data);
    eprintln!("nDCG@10/@20 ranked {ranked:?}, fusion {fused:?}, bm25 {bm25:?}");
    // On the demo data continuity alone is worth +0.05 nDCG@20 over BM25 (docs/RESULTS.md).
    assert!(
        ranked[1] > bm25[1] + 0.03,
        "ranked {ranked:?} vs bm25 {bm25:?}"
    );
    assert!(fused[1] > bm25[1], "fusion {fused:?} vs bm25 {bm25:?}");
}

#[test]
fn a_missing_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = ranked_config(&dir.path().join("absent.json"));
    let Err(err) = RunData::load_for_chat(&config) else {
        panic!("no model, no ranker");
    };
    assert!(matches!(err, Error::RankerModelMissing { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("absent.json") && message.contains("music-crs train-ranker"),
        "{message}"
    );
}

#[test]
fn a_model_of_other_channels_asks_to_retrain() {
    let (_, config) = trained();
    let mut other = config.clone();
    let RetrieverConfig::Ranked(ranked) = &mut other.retriever else {
        panic!("{:?}", other.retriever);
    };
    ranked.channels[0].depth = Some(25);
    let data = RunData::load_for_chat(&other).unwrap();
    let Err(err) = build_crs(&other, &data) else {
        panic!("a model of other channels was accepted");
    };
    let message = err.to_string();
    assert!(
        message.contains("retriever.model") && message.contains("train-ranker"),
        "{message}"
    );
}

#[test]
fn a_channel_changed_under_the_same_name_asks_to_retrain() {
    let (_, config) = trained();
    // Another kind under the same name and depth: names and depths alone cannot tell.
    let mut other = config.clone();
    let RetrieverConfig::Ranked(ranked) = &mut other.retriever else {
        panic!("{:?}", other.retriever);
    };
    ranked.channels[2].channel = music_crs_rank::ChannelConfig::PopularityPrior(
        music_crs_rank::PopularityPriorParams::default(),
    );
    let data = RunData::load_for_chat(&other).unwrap();
    let Err(err) = build_crs(&other, &data) else {
        panic!("a model trained with another kind of channel was accepted");
    };
    assert!(matches!(err, Error::RankerModelStale { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("channel \"co_occurrence\" changed kind from \"co_occurrence\"")
            && message.contains("popularity_prior")
            && message.contains("music-crs train-ranker"),
        "{message}"
    );

    // Another feature set.
    let mut other = config.clone();
    let RetrieverConfig::Ranked(ranked) = &mut other.retriever else {
        panic!("{:?}", other.retriever);
    };
    ranked.features.as_mut().unwrap().user_kind = None;
    let data = RunData::load_for_chat(&other).unwrap();
    let Err(err) = build_crs(&other, &data) else {
        panic!("a model trained with other features was accepted");
    };
    let message = err.to_string();
    assert!(
        message.contains("the feature set changed") && message.contains("user_sim:cf-bpr"),
        "{message}"
    );
}

#[test]
fn cli_trains_then_runs_the_ranker() {
    let dir = tempfile::tempdir().unwrap();
    let model: PathBuf = dir.path().join("exp/models/cli_ranked.json");
    // The demo preset's parts, read from the generated dataset through --data.
    let config_path = dir.path().join("cli_ranked.toml");
    let text_config = format!(
        "tid = \"cli_ranked\"\n[dataset]\npreset = \"demo-test\"\n{}",
        RANKED.replace("MODEL", "exp/models/cli_ranked.json")
    );
    std::fs::write(&config_path, text_config).unwrap();
    let config = config_path.to_str().unwrap();
    let root = demo_root().to_str().unwrap();

    let out = music_crs(
        dir.path(),
        &["--quiet", "run", "--config", config, "--data", root],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("music-crs train-ranker --config {config}"))
            && stderr.contains("exp/models/cli_ranked.json"),
        "{stderr}"
    );
    assert!(!model.exists());

    let out = music_crs(
        dir.path(),
        &[
            "--quiet",
            "train-ranker",
            "--config",
            config,
            "--data",
            root,
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("wrote ranker model"), "{stdout}");
    assert!(stdout.contains("validation nDCG@20"), "{stdout}");
    let saved = music_crs_rank::RankerModel::load(&model).unwrap();
    assert_eq!(saved.channels().len(), 4);
    // No temporary file is left beside the model.
    let beside: Vec<_> = std::fs::read_dir(model.parent().unwrap())
        .unwrap()
        .collect();
    assert_eq!(beside.len(), 1, "{beside:?}");

    let out = music_crs(
        dir.path(),
        &[
            "--quiet", "run", "--config", config, "--data", root, "--limit", "60",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("ndcg@20"), "{stdout}");
    // The model has no cross-validated estimate: `run` says how to get one.
    assert!(stdout.contains("train-ranker --folds"), "{stdout}");
    let predictions = dir.path().join("exp/inference/cli_ranked.json");
    let out = music_crs(dir.path(), &["validate", predictions.to_str().unwrap()]);
    assert!(
        text(&out.stdout).contains("60 rows, valid"),
        "{}",
        text(&out.stdout)
    );

    // A channel of another kind under the same name: `run` refuses the model and gives the
    // exact command that retrains it.
    let changed = dir.path().join("cli_ranked_changed.toml");
    std::fs::write(
        &changed,
        std::fs::read_to_string(&config_path).unwrap().replace(
            "channel = { kind = \"continuity\" }",
            "channel = { kind = \"popularity_prior\" }",
        ),
    )
    .unwrap();
    let changed = changed.to_str().unwrap();
    let out = music_crs(
        dir.path(),
        &["--quiet", "run", "--config", changed, "--data", root],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("channel \"continuity\" changed kind")
            && stderr.contains(&format!(
                "retrain it with `music-crs train-ranker --config {changed} --data {root}`"
            )),
        "{stderr}"
    );

    // A config of another kind is refused by train-ranker.
    let bm25 = dir.path().join("bm25.toml");
    std::fs::write(&bm25, "tid = \"bm25\"\n[dataset]\npreset = \"demo-test\"\n").unwrap();
    let out = music_crs(
        dir.path(),
        &[
            "train-ranker",
            "--config",
            bm25.to_str().unwrap(),
            "--data",
            root,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("kind = \"ranked\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn cross_validation_scores_every_session_once_and_is_stored_in_the_model() {
    use music_crs::cross_validation::{cross_validate, describe};
    use music_crs_metrics::stats::ResampleParams;

    let dir = tempfile::tempdir().unwrap();
    // Its own model file: the shared trained model stays as other tests expect it.
    let config = &ranked_config(&dir.path().join("models/cv_base.json"));
    let mut data = RunData::load_for_training(config).unwrap();
    // A smaller training set keeps the K trainings and the scoring of every turn fast.
    data.retriever_inputs.split_sessions.truncate(150);
    let turns: usize = data
        .retriever_inputs
        .split_sessions
        .iter()
        .map(|s| {
            s.labeled_turns()
                .unwrap()
                .iter()
                .filter(|t| t.gold_track_id.is_some())
                .count()
        })
        .sum();
    let mut model = music_crs::train_ranker(config, &data).unwrap();
    assert!(model.cross_validation().is_none());
    assert!(describe(&model).contains("--folds"));
    let folds_done = std::sync::Mutex::new(Vec::new());
    let resample = ResampleParams {
        resamples: 500,
        ..ResampleParams::default()
    };
    let cv = cross_validate(config, &data, &model, 3, &resample, &|k| {
        folds_done.lock().unwrap().push(k)
    })
    .unwrap();
    assert_eq!(*folds_done.lock().unwrap(), vec![0, 1, 2]);
    assert_eq!((cv.folds, cv.sessions, cv.turns), (3, 150, turns));
    for estimates in [&cv.out_of_fold, &cv.in_sample] {
        let metrics: Vec<&str> = estimates.iter().map(|f| f.metric.as_str()).collect();
        assert_eq!(metrics, ["ndcg@1", "ndcg@10", "ndcg@20"]);
        for f in estimates.iter() {
            assert!(f.low <= f.value && f.value <= f.high, "{f:?}");
        }
    }
    let out_of_fold = cv.out_of_fold("ndcg@20").unwrap().value;
    let in_sample = cv.in_sample("ndcg@20").unwrap().value;
    eprintln!("nDCG@20 out-of-fold {out_of_fold:.4}, in-sample {in_sample:.4}");
    assert!(out_of_fold > 0.0);
    // Sessions the model was trained on score higher than unseen ones: why a dev score used
    // for tuning is optimistic.
    assert!(in_sample > out_of_fold, "{in_sample} vs {out_of_fold}");

    // Stored with the model, read back and described for `run`.
    model.set_cross_validation(cv.clone());
    let path = dir.path().join("models/cv.json");
    model.save(&path).unwrap();
    let loaded = music_crs_rank::RankerModel::load(&path).unwrap();
    let stored = loaded.cross_validation().unwrap();
    assert_eq!(
        (stored.folds, stored.sessions, stored.turns),
        (3, 150, turns)
    );
    // JSON keeps the figures to the last bit or so (serde_json's default float parsing).
    for (a, b) in stored.out_of_fold.iter().zip(&cv.out_of_fold) {
        assert!(
            a.metric == b.metric && (a.value - b.value).abs() < 1e-12,
            "{a:?} {b:?}"
        );
    }
    let line = describe(&loaded);
    assert!(
        line.contains("out-of-fold") && line.contains("3 folds over 150 sessions"),
        "{line}"
    );

    // Too many folds, or one, is a clear error.
    for folds in [1, 151] {
        let err = cross_validate(config, &data, &model, folds, &resample, &|_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("--folds") && err.contains("2..=150"), "{err}");
    }
}
