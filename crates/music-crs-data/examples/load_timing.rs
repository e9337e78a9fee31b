//! Times loading a 50,000-track catalog and 1,000 sessions from local parquet.
//!
//! The input is built from the real samples in `shared/fixtures/talkplay/`: their rows are
//! repeated with suffixed ids until the sizes are reached, and written as hub-layout shards
//! into a temporary directory. Then each load runs several times and the best and median
//! wall times are printed.
//!
//! ```text
//! cargo run --release -p music-crs-data --example load_timing -- [TRACKS] [SESSIONS] [RUNS]
//! ```

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use music_crs_data::{Loader, PartSpec, SplitKind, turn_contexts};
use polars::prelude::*;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let tracks: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(50_000);
    let sessions: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(7);

    let Some(shared) = music_crs_core::shared::shared_dir() else {
        bail!("shared/ not found; set MUSIC_CRS_SHARED_DIR to the folder holding fixtures/");
    };
    let fixtures = shared.join("fixtures/talkplay");
    let dir = tempfile::tempdir()?;
    let tracks_dir = dir.path().join("tracks");
    let sessions_dir = dir.path().join("conversations");
    // Two shards each, to include the shard joining in the timing.
    write_repeated(
        &fixtures.join("tracks-sample.parquet"),
        "track_id",
        tracks,
        &tracks_dir,
        "all_tracks",
    )?;
    write_repeated(
        &fixtures.join("conversations-test-sample.parquet"),
        "session_id",
        sessions,
        &sessions_dir,
        "test",
    )?;

    let loader = Loader::default();
    let track_part = PartSpec::new(tracks_dir.to_string_lossy(), "all_tracks");
    let session_part = PartSpec::new(sessions_dir.to_string_lossy(), "test");
    let mut catalog_times = Vec::new();
    let mut session_times = Vec::new();
    let mut total_times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let catalog = loader.load_catalog(&track_part)?;
        let catalog_time = start.elapsed();
        let loaded = loader.load_sessions(&session_part)?;
        let turns = turn_contexts(&loaded, SplitKind::Full)?;
        let total = start.elapsed();
        anyhow::ensure!(catalog.len() == tracks && loaded.len() == sessions);
        anyhow::ensure!(turns.len() == sessions * 8);
        catalog_times.push(catalog_time);
        session_times.push(total - catalog_time);
        total_times.push(total);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{tracks} tracks + {sessions} sessions ({} turns), {runs} runs, {threads} threads",
        sessions * 8
    );
    report("catalog", &mut catalog_times);
    report("sessions + turn contexts", &mut session_times);
    report("total", &mut total_times);
    Ok(())
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let best = times[0];
    let median = times[times.len() / 2];
    println!("{what:>26}: best {best:>10.1?}  median {median:>10.1?}");
}

/// Repeats the rows of `sample` until `rows`, suffixing `id_column` with the copy number,
/// and writes two shards of `split` under `dir/data/`.
fn write_repeated(
    sample: &Path,
    id_column: &str,
    rows: usize,
    dir: &Path,
    split: &str,
) -> anyhow::Result<()> {
    let df = ParquetReader::new(File::open(sample).with_context(|| sample.display().to_string())?)
        .finish()?;
    let mut copies = Vec::new();
    let mut have = 0;
    let mut copy = 0;
    while have < rows {
        let mut part = df.slice(0, (rows - have).min(df.height()));
        let ids: Vec<String> = part
            .column(id_column)?
            .str()?
            .iter()
            .map(|id| format!("{}-{copy}", id.unwrap_or_default()))
            .collect();
        part.replace(id_column, Column::new(id_column.into(), ids))?;
        have += part.height();
        copies.push(part);
        copy += 1;
    }
    let mut copies = copies.into_iter();
    let mut all = copies.next().context("no rows")?;
    for part in copies {
        all.vstack_mut(&part)?;
    }
    all.rechunk_mut();
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let half = all.height() / 2;
    for (index, (offset, len)) in [(0, half), (half, all.height() - half)]
        .into_iter()
        .enumerate()
    {
        let mut shard = all.slice(offset as i64, len);
        let path = data.join(format!("{split}-{index:05}-of-00002.parquet"));
        ParquetWriter::new(File::create(&path)?).finish(&mut shard)?;
    }
    Ok(())
}
