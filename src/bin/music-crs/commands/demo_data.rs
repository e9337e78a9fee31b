//! `music-crs demo-data`: regenerate the demo dataset (or a larger synthetic one).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

/// Bounds of the size flags: well above the challenge's (47,071 tracks, 15,199 train
/// sessions), well below sizes whose allocation would abort the process.
const MAX_TRACKS: u64 = 1_000_000;
const MAX_USERS: u64 = 1_000_000;
const MAX_SESSIONS: u64 = 200_000;

#[derive(Debug, Args)]
pub(crate) struct DemoDataArgs {
    /// Output directory.
    #[arg(long, default_value = music_crs::config::DEFAULT_DEMO_DIR)]
    pub(crate) out: PathBuf,
    /// Generator seed.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Start from the challenge's sizes (47,071 tracks, 15,199 train and 1,000 test
    /// sessions) with every embedding kind at its hub dimension; the size flags below still
    /// override each count.
    #[arg(long)]
    pub(crate) challenge_size: bool,
    /// Every embedding kind at its hub dimension (audio 512, image 768, cf-bpr 128, the three
    /// qwen3 kinds 1024) instead of the demo's 32 and 16.
    #[arg(long)]
    pub(crate) challenge_dims: bool,
    /// Catalog size [default: the demo's 3,000; at most 1,000,000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_TRACKS))]
    pub(crate) tracks: Option<u64>,
    /// Number of listeners [at most 1,000,000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_USERS))]
    pub(crate) users: Option<u64>,
    /// Sessions in the `train` split [at most 200,000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=MAX_SESSIONS))]
    pub(crate) train: Option<u64>,
    /// Sessions in the `test` split (e.g. 1,000 for a dev-sized split of 8,000 turns) [at
    /// most 200,000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=MAX_SESSIONS))]
    pub(crate) test: Option<u64>,
    /// Sessions in the `blind` split [at most 200,000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=MAX_SESSIONS))]
    pub(crate) blind: Option<u64>,
}

pub(crate) fn demo_data(args: DemoDataArgs) -> Result<i32> {
    let mut params = if args.challenge_size {
        music_crs_demo::DemoParams::challenge_size()
    } else {
        music_crs_demo::DemoParams::default()
    };
    params.challenge_dims |= args.challenge_dims;
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
            // The parsers bound every value far below usize::MAX.
            *field = value as usize;
        }
    }
    let demo = music_crs_demo::DemoDataset::generate(&params)?;
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
