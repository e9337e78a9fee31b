//! Regenerates the committed demo dataset.
//!
//! ```text
//! cargo run -p music-crs-demo --example make_demo -- data/demo [--seed N] [--tracks N]
//!     [--users N] [--train N] [--test N] [--blind N]
//! ```
//!
//! Without options it writes exactly what `data/demo/` holds (seed 2026, the default sizes).
//! The same parameters always produce byte-identical tables.

use std::path::PathBuf;
use std::time::Instant;

use music_crs_demo::{DemoDataset, DemoParams};

fn usage() -> String {
    "usage: make_demo OUT_DIR [--seed N] [--tracks N] [--users N] [--train N] [--test N] \
     [--blind N]"
        .to_string()
}

fn parse_args() -> Result<(PathBuf, DemoParams), String> {
    let mut args = std::env::args().skip(1);
    let mut out = None;
    let mut params = DemoParams::default();
    while let Some(arg) = args.next() {
        if !arg.starts_with("--") {
            if out.replace(PathBuf::from(&arg)).is_some() {
                return Err(format!("more than one output directory given\n{}", usage()));
            }
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{arg} needs a value\n{}", usage()))?;
        let number = |v: &str| -> Result<usize, String> {
            v.parse()
                .map_err(|_| format!("{arg}: {v:?} is not a whole number"))
        };
        match arg.as_str() {
            "--seed" => {
                params.seed = value
                    .parse()
                    .map_err(|_| format!("--seed: {value:?} is not a whole number"))?
            }
            "--tracks" => params.num_tracks = number(&value)?,
            "--users" => params.num_users = number(&value)?,
            "--train" => params.num_train_sessions = number(&value)?,
            "--test" => params.num_test_sessions = number(&value)?,
            "--blind" => params.num_blind_sessions = number(&value)?,
            _ => return Err(format!("unknown option {arg}\n{}", usage())),
        }
    }
    let out = out.ok_or_else(usage)?;
    Ok((out, params))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (out, params) = parse_args()?;

    let started = Instant::now();
    let demo = DemoDataset::generate(&params)?;
    let generated = started.elapsed();
    let files = demo.write(&out)?;
    let written = started.elapsed() - generated;

    let stats = demo.continuity();
    println!(
        "generated {} tracks, {} users, {} train / {} test / {} blind sessions in {:.2?}; \
         wrote {} files in {:.2?}",
        demo.tracks.len(),
        demo.users.len(),
        demo.train.len(),
        demo.test.len(),
        demo.blind.len(),
        generated,
        files.len(),
        written
    );
    println!(
        "continuity over {} transitions: same artist {:.1}%, same album {:.1}%, \
         shared tag when the artist changes {:.1}%, same genre when the artist changes {:.1}%",
        stats.transitions,
        100.0 * stats.same_artist_rate(),
        100.0 * stats.same_album_rate(),
        100.0 * stats.shared_tag_rate_when_artist_changes(),
        100.0 * stats.same_genre_rate_when_artist_changes()
    );
    for file in &files {
        let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        println!("{:>10}  {}", size, file.display());
    }
    Ok(())
}
