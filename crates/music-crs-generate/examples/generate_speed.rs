//! Times one greedy chat reply of a Llama-architecture model on CPU, on the same chat as the
//! llama.cpp peer (`shared/bench/llama_cpp_peer.py`), and prints one JSON line plus the reply.
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release -p music-crs-generate --features llama \
//!     --example generate_speed -- ../shared/models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf
//! ```
//!
//! The model argument is a `.gguf` file, a model directory, or `hub:owner/name` (with the
//! `hub` feature). Tokens/s counts the generated tokens over the whole call, prompt included,
//! as the peer does; the best of `--runs` runs is reported after one warm-up call.

use std::time::Instant;

use anyhow::Context;
use music_crs_generate::llama::Completion;
use music_crs_generate::{ChatMessage, ChatRole, LlamaGenerator, LlamaParams, ModelSource};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let spec = args
        .next()
        .context("usage: generate_speed MODEL [--max-tokens N] [--runs N]")?;
    let mut max_tokens = 128;
    let mut runs = 3;
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--max-tokens" => max_tokens = value.parse()?,
            "--runs" => runs = value.parse()?,
            other => anyhow::bail!("unknown option {other}"),
        }
    }

    // Greedy, like the peer's temperature 0.
    let params = LlamaParams {
        max_new_tokens: max_tokens,
        ..LlamaParams::greedy()
    };
    let load_started = Instant::now();
    let generator = LlamaGenerator::load(&ModelSource::parse(&spec)?, params)?;
    let load_seconds = load_started.elapsed().as_secs_f64();

    // The peer's chat, message for message.
    let chat = [
        ChatMessage::new(
            ChatRole::System,
            "You are a friendly music recommender. Reply in two sentences.",
        ),
        ChatMessage::new(
            ChatRole::User,
            "I want something mellow for a rainy evening, maybe some jazz piano.",
        ),
        ChatMessage::new(
            ChatRole::User,
            "Recommended track: 'Peace Piece' by Bill Evans, album Everybody Digs Bill Evans, \
             tags: jazz, piano, calm. Explain why it fits.",
        ),
    ];
    // Warm-up: the first call pays for page faults and allocator growth.
    let warm = LlamaGenerator::load(
        &ModelSource::parse(&spec)?,
        LlamaParams {
            max_new_tokens: 8,
            ..LlamaParams::greedy()
        },
    )?;
    warm.complete(&chat, 0)?;
    drop(warm);

    let mut best: Option<Completion> = None;
    for _ in 0..runs.max(1) {
        let completion = generator.complete(&chat, 0)?;
        if best
            .as_ref()
            .is_none_or(|b| completion.tokens_per_second() > b.tokens_per_second())
        {
            best = Some(completion);
        }
    }
    let best = best.context("no run")?;
    println!(
        "{}",
        serde_json::json!({
            "tool": "music-crs-generate (candle)",
            "threads": candle_core::utils::get_num_threads(),
            "model": spec,
            "load_seconds": (load_seconds * 1000.0).round() / 1000.0,
            "prompt_tokens": best.prompt_tokens,
            "completion_tokens": best.generated_tokens,
            "prompt_seconds": (best.prompt_seconds * 1000.0).round() / 1000.0,
            "seconds": ((best.prompt_seconds + best.generation_seconds) * 1000.0).round() / 1000.0,
            "tokens_per_s": (best.tokens_per_second() * 10.0).round() / 10.0,
            "decode_tokens_per_s": (best.generated_tokens as f64 / best.generation_seconds.max(1e-9) * 10.0).round() / 10.0,
        })
    );
    println!("{}", best.text);
    Ok(())
}
