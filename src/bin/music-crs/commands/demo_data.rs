//! `music-crs demo-data`: regenerate the demo dataset (or a larger synthetic one).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct DemoDataArgs {
    /// Output directory.
    #[arg(long, default_value = music_crs::config::DEFAULT_DEMO_DIR)]
    pub(crate) out: PathBuf,
    /// Generator seed.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Catalog size [default: the demo's 3,000].
    #[arg(long)]
    pub(crate) tracks: Option<usize>,
    /// Number of listeners.
    #[arg(long)]
    pub(crate) users: Option<usize>,
    /// Sessions in the `train` split.
    #[arg(long)]
    pub(crate) train: Option<usize>,
    /// Sessions in the `test` split (e.g. 1,000 for a dev-sized split of 8,000 turns).
    #[arg(long)]
    pub(crate) test: Option<usize>,
    /// Sessions in the `blind` split.
    #[arg(long)]
    pub(crate) blind: Option<usize>,
}

pub(crate) fn demo_data(args: DemoDataArgs) -> Result<i32> {
    let mut params = music_crs_data::demo::DemoParams::default();
    if let Some(seed) = args.seed {
        params.seed = seed;
    }
    // Larger sizes make challenge-scale synthetic data for timing (the demo ships the defaults).
    for (value, field) in [
        (args.tracks, &mut params.num_tracks),
        (args.users, &mut params.num_users),
        (args.train, &mut params.num_train_sessions),
        (args.test, &mut params.num_test_sessions),
        (args.blind, &mut params.num_blind_sessions),
    ] {
        if let Some(value) = value {
            *field = value;
        }
    }
    let demo = music_crs_data::demo::DemoDataset::generate(&params)?;
    let files = demo
        .write(&args.out)
        .with_context(|| format!("writing the demo dataset to {}", args.out.display()))?;
    println!(
        "wrote {} tracks, {} users, {} train / {} test / {} blind sessions (seed {}):",
        demo.tracks.len(),
        demo.users.len(),
        demo.train.len(),
        demo.test.len(),
        demo.blind.len(),
        params.seed
    );
    for file in files {
        println!("  {}", file.display());
    }
    Ok(0)
}
