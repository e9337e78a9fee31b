//! Times greedy chat replies of a GGUF or safetensors chat model on CPU, on the same chat as the
//! llama.cpp peer (`shared/bench/llama_cpp_peer.py`), and prints one JSON line per setting
//! plus the reply.
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release -p music-crs-generate --features llama \
//!     --example generate_speed -- ../shared/models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf
//! ```
//!
//! The model argument is a `.gguf` file, a model directory, or `hub:owner/name` (with the
//! `hub` feature). Options: `--max-tokens N` (128), `--runs N` (3), `--prefix-cache N` (the
//! [`LlamaParams::prefix_cache_entries`] default; 0 turns prefix reuse off).
//!
//! Tokens/s counts the generated tokens over the whole call, prompt included, as the peer
//! does. Two figures are printed, each the best and the median of `--runs` calls:
//! - `cold`: the prefix cache emptied before every call, so the whole prompt is read;
//! - `warm`: the same chat again right after, so the saved prefix (system message and the
//!   first user message) is reused and only the rest of the prompt is read.
//!
//! The peer times its call after a warm-up call on the same chat, and llama-cpp-python keeps
//! the KV state of its previous prompt and reuses the longest matching prefix, so the peer's
//! figure is a warm one that reuses the whole prompt but its last token; ours reuses only up
//! to a message boundary. Before the timed calls, one call on a separate generator warms the
//! page cache and allocator. The 1-, 5- and 15-minute load averages are printed beside every
//! figure (other work on the machine slows both sides).

use std::time::Instant;

use anyhow::Context;
use music_crs_generate::llama::Completion;
use music_crs_generate::{ChatMessage, ChatRole, LlamaGenerator, LlamaParams, ModelSource};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let spec = args.next().context(
        "usage: generate_speed MODEL [--max-tokens N] [--runs N] [--prefix-cache ENTRIES]",
    )?;
    let mut max_tokens = 128;
    let mut runs: usize = 3;
    let mut prefix_cache_entries = LlamaParams::default().prefix_cache_entries;
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--max-tokens" => max_tokens = value.parse()?,
            "--runs" => runs = value.parse()?,
            "--prefix-cache" => prefix_cache_entries = value.parse()?,
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    let runs = runs.max(1);

    // Greedy, like the peer's temperature 0.
    let params = LlamaParams {
        max_new_tokens: max_tokens,
        prefix_cache_entries,
        ..LlamaParams::greedy()
    };
    let source = ModelSource::parse(&spec)?;
    let load_started = Instant::now();
    let generator = LlamaGenerator::load(&source, params)?;
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
    // Warm-up on another generator (its own cache): the first call pays for page faults and
    // allocator growth.
    let warm_up = LlamaGenerator::load(
        &source,
        LlamaParams {
            max_new_tokens: 8,
            ..LlamaParams::greedy()
        },
    )?;
    warm_up.complete(&chat, 0)?;
    drop(warm_up);

    let mut cold = Vec::with_capacity(runs);
    let mut warm = Vec::with_capacity(runs);
    for _ in 0..runs {
        generator.clear_prefix_cache();
        cold.push(generator.complete(&chat, 0)?);
        warm.push(generator.complete(&chat, 0)?);
    }
    let identical = cold.iter().chain(&warm).all(|c| c.text == cold[0].text);
    for (setting, completions) in [("cold", &cold), ("warm", &warm)] {
        println!(
            "{}",
            summary(setting, completions, &spec, load_seconds, identical)?
        );
    }
    println!("{}", cold[0].text);
    Ok(())
}

/// One JSON line: the best and median call of a setting.
fn summary(
    setting: &str,
    completions: &[Completion],
    spec: &str,
    load_seconds: f64,
    identical: bool,
) -> anyhow::Result<serde_json::Value> {
    let mut sorted: Vec<&Completion> = completions.iter().collect();
    sorted.sort_by(|a, b| b.tokens_per_second().total_cmp(&a.tokens_per_second()));
    let best = sorted.first().context("no run")?;
    let median = sorted[sorted.len() / 2];
    let round = |x: f64, digits: i32| {
        let scale = 10f64.powi(digits);
        (x * scale).round() / scale
    };
    Ok(serde_json::json!({
        "tool": "music-crs-generate (candle)",
        "setting": setting,
        "threads": candle_core::utils::get_num_threads(),
        "model": spec,
        "load_seconds": round(load_seconds, 3),
        "runs": completions.len(),
        "prompt_tokens": best.prompt_tokens,
        "reused_prompt_tokens": best.reused_prompt_tokens,
        "completion_tokens": best.generated_tokens,
        "prompt_seconds": round(best.prompt_seconds, 3),
        "seconds": round(best.prompt_seconds + best.generation_seconds, 3),
        "tokens_per_s": round(best.tokens_per_second(), 1),
        "median_tokens_per_s": round(median.tokens_per_second(), 1),
        "decode_tokens_per_s": round(
            best.generated_tokens as f64 / best.generation_seconds.max(1e-9),
            1
        ),
        "replies_identical": identical,
        "load_average": load_average(),
    }))
}

/// The 1-, 5- and 15-minute load averages (Linux), or null.
fn load_average() -> Option<Vec<f64>> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace()
        .take(3)
        .map(|field| field.parse().ok())
        .collect()
}
