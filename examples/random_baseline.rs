//! The floor of the challenge: 20 random catalog tracks per turn, template replies.
//!
//! ```sh
//! cargo run --release --example random_baseline
//! ```
//!
//! Reads the demo dataset (`data/demo`, written by `music-crs demo-data`), predicts every turn
//! of its test split and prints the official metrics.

use anyhow::Result;
use music_crs::config::{CrsConfig, RandomRetrieverConfig, RetrieverConfig};
use music_crs::core::LabeledTurn;
use music_crs::{RunData, build_crs};
use music_crs_metrics::{EvaluationParams, Evaluator, GroundTruth};

fn main() -> Result<()> {
    // Start from the default method (demo test split, BM25, templates) and swap the retriever.
    let mut config = CrsConfig {
        tid: "random".into(),
        ..CrsConfig::default()
    };
    config.retriever = RetrieverConfig::Random(RandomRetrieverConfig {
        seed: 7,
        ..Default::default()
    });
    config.validate()?;

    // Sessions, catalog and users; then every turn of the split, with its gold track.
    let data = RunData::load_for(&config)?;
    let labeled = data.labeled_turns()?;
    let turns = LabeledTurn::contexts(&labeled);

    // Retrieve 20 tracks per turn and write a reply about the first.
    let crs = build_crs(&config, &data)?;
    let predictions = crs.predict(&turns)?;

    // Score as the official evaluator does.
    let truth = GroundTruth::from_labeled_turns(&labeled)?;
    let params = EvaluationParams {
        catalog_size: data.catalog.len(),
        ..EvaluationParams::default()
    };
    let scores = Evaluator::new(params)?.evaluate(&truth, &predictions)?;
    println!("{}", scores.table());
    Ok(())
}
