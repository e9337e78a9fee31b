//! Writes one `POST /v1/recommend` body per turn of a config's conversations split, as JSON
//! lines: the requests `scripts/serve-bench.sh` replays against `music-crs serve`.
//!
//! ```sh
//! cargo run --release --features serve --example serve_requests -- config/bm25_template.toml > requests.jsonl
//! ```

use std::io::Write;

use anyhow::{Context, Result};
use music_crs::RunData;
use music_crs::config::CrsConfig;
use music_crs::serve::RecommendRequest;

fn main() -> Result<()> {
    let config = match std::env::args().nth(1) {
        Some(path) => CrsConfig::load(&path).with_context(|| format!("loading {path}"))?,
        None => CrsConfig::default(),
    };
    let data = RunData::load(&config.dataset)?;
    let turns = data.turns()?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for turn in &turns {
        serde_json::to_writer(&mut out, &RecommendRequest::from_turn(turn, Some(10)))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    eprintln!("{} requests", turns.len());
    Ok(())
}
