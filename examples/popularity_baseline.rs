//! The same 20 tracks for everyone: those the train split recommends most often.
//!
//! ```sh
//! cargo run --release --example popularity_baseline
//! ```

use anyhow::Result;
use music_crs::config::CrsConfig;
use music_crs::core::LabeledTurn;
use music_crs::{RunData, build_crs};
use music_crs_metrics::{EvaluationParams, Evaluator, GroundTruth};

fn main() -> Result<()> {
    // `config/popularity.toml` counts the music messages of the demo train split.
    let config = CrsConfig::load("config/popularity.toml")?;
    let data = RunData::load_for(&config)?;
    let labeled = data.labeled_turns()?;
    let turns = LabeledTurn::contexts(&labeled);

    let crs = build_crs(&config, &data)?;
    let predictions = crs.predict(&turns)?;

    // Every turn gets the same list, so catalog diversity is 20 / catalog size.
    let truth = GroundTruth::from_labeled_turns(&labeled)?;
    let params = EvaluationParams {
        catalog_size: data.catalog.len(),
        ..EvaluationParams::default()
    };
    let scores = Evaluator::new(params)?.evaluate(&truth, &predictions)?;
    println!("{}", scores.table());
    Ok(())
}
