//! Dense retrieval with a sentence encoder and LLM replies, both run by Candle on the CPU:
//! all-MiniLM-L6-v2 embeds the catalog and each conversation, SmolLM2-135M-Instruct replies.
//! Both models come from `../shared/models`.
//!
//! ```sh
//! cargo run --release --features bert,llama --example bert_llama
//! ```

use anyhow::Result;
use music_crs::config::{CrsConfig, GeneratorConfig};
use music_crs::{RunData, build_crs};

const TURNS: usize = 8;

fn main() -> Result<()> {
    // The dense retriever of `demo_bert_template`, the generator of `demo_bm25_smollm2`.
    let mut config = CrsConfig::load("config/demo_bert_template.toml")?;
    let llm = CrsConfig::load("config/demo_bm25_smollm2.toml")?;
    config.generator = llm.generator;
    config.tid = "demo_bert_smollm2".into();
    assert!(matches!(config.generator, GeneratorConfig::Llama(_)));

    let data = RunData::load_for(&config)?;
    let mut turns = data.turns()?;
    turns.truncate(TURNS);

    // Encoding the catalog is the slow step (a few seconds for the demo's tracks).
    let crs = build_crs(&config, &data)?;
    for (turn, prediction) in turns.iter().zip(crs.predict(&turns)?) {
        println!(
            "[{} #{}] user: {}",
            turn.session_id, turn.turn_number, turn.user_message
        );
        println!("  tracks: {:?}", &prediction.predicted_track_ids[..3]);
        println!("  reply: {}\n", prediction.predicted_response);
    }
    Ok(())
}
