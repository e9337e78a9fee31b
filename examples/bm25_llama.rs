//! The official baseline's recipe with a small local model: BM25 retrieval and replies from
//! SmolLM2-135M-Instruct (GGUF, from `../shared/models`), on a few demo turns.
//!
//! ```sh
//! cargo run --release --features llama --example bm25_llama
//! ```

use anyhow::Result;
use music_crs::config::CrsConfig;
use music_crs::{RunData, build_crs};

/// Turns answered: an LLM reply takes a fraction of a second on a CPU.
const TURNS: usize = 8;

fn main() -> Result<()> {
    // BM25 over track, artist, album and release date; SmolLM2 with greedy decoding.
    let config = CrsConfig::load("config/demo_bm25_smollm2.toml")?;
    let data = RunData::load_for(&config)?;
    let mut turns = data.turns()?;
    turns.truncate(TURNS);

    // Loading the model happens here, once; replies then run in parallel over turns.
    let crs = build_crs(&config, &data)?;
    let predictions = crs.predict(&turns)?;

    for (turn, prediction) in turns.iter().zip(&predictions) {
        let first = crs.catalog().get(&prediction.predicted_track_ids[0]);
        println!("session {} turn {}", turn.session_id, turn.turn_number);
        println!("  user: {}", turn.user_message);
        if let Some(track) = first {
            println!("  top track: {} by {}", track.name(), track.artist());
        }
        println!("  reply: {}\n", prediction.predicted_response);
    }
    Ok(())
}
