//! The real blind-set samples of `../shared`: one valid prediction per row.

use std::collections::HashSet;

use music_crs::CrsConfig;
use music_crs::build_crs;
use music_crs::config::SplitKind;
use music_crs::output::coverage_problems;
use music_crs_core::shared::shared_path;
use music_crs_metrics::{PredictionFile, Validator};

use crate::common::{load, read_shared_samples};

fn blind_sample_config(file: &str) -> Option<CrsConfig> {
    let mut config = CrsConfig::default();
    read_shared_samples(&mut config, file, SplitKind::Blind)?;
    Some(config)
}

fn check_blind_sample(file: &str, anonymous_rows: bool) {
    let Some(config) = blind_sample_config(file) else {
        return;
    };
    let (data, turns) = load(&config);
    assert_eq!(data.sessions.len(), 80);
    assert_eq!(turns.len(), 80);
    let crs = build_crs(&config, &data).unwrap();
    let predictions = crs.predict(&turns).unwrap();
    let problems = coverage_problems(&predictions, &turns);
    assert!(problems.is_empty(), "{problems:#?}");
    let sessions: HashSet<_> = predictions.iter().map(|p| p.session_id.as_str()).collect();
    assert_eq!(sessions.len(), 80);
    // Blind B rows without a user id (and no profile) are predicted like the others.
    let anonymous = predictions.iter().filter(|p| p.user_id.is_empty()).count();
    assert_eq!(
        anonymous > 0,
        anonymous_rows,
        "{anonymous} rows without user id"
    );
    for (prediction, turn) in predictions.iter().zip(&turns) {
        assert_eq!(prediction.user_id, turn.user_id);
        assert!((1..=8).contains(&prediction.turn_number));
        assert_eq!(prediction.predicted_track_ids.len(), 20);
        assert!(!prediction.predicted_response.is_empty());
    }
    let file = PredictionFile::from_predictions(predictions, file);
    let report = Validator::new()
        .with_catalog(data.catalog.as_ref())
        .validate(&file);
    assert!(report.is_valid(), "{report}");
}

#[test]
fn blind_b_sample_without_users_gets_one_valid_prediction_per_row() {
    check_blind_sample("blind-b-sample.parquet", true);
}

#[test]
fn blind_a_sample_gets_one_valid_prediction_per_row() {
    check_blind_sample("blind-a-sample.parquet", false);
}

#[test]
fn shipped_sample_configs_point_at_the_shared_files() {
    for (config, file) in [
        (
            "config/sample_blind_a_bm25_template.toml",
            "blind-a-sample.parquet",
        ),
        (
            "config/sample_blind_b_bm25_template.toml",
            "blind-b-sample.parquet",
        ),
    ] {
        let config = CrsConfig::load(config).unwrap();
        let spec = config.dataset.to_spec().unwrap();
        assert!(spec.conversations.source.ends_with(file));
        assert_eq!(spec.split_kind, SplitKind::Blind);
        // The relative paths resolve from the repository root, where tests run.
        if shared_path(&format!("fixtures/talkplay/{file}")).is_some() {
            let (_, turns) = load(&config);
            assert_eq!(turns.len(), 80);
        }
    }
}
