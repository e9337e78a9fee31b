//! Replies per second of batched decoding (`LlamaGenerator::complete_batch`) against one
//! chat at a time (`complete`), on the same chats, with a GGUF `llama` model on CPU.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run --release -p music-crs-generate --features llama \
//!     --example generate_batch -- ../shared/models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf \
//!     [--batch 1,4,8] [--max-tokens 48] [--runs 2]
//! ```
//!
//! Every chat asks for a different kind of music; replies are greedy, the prefix cache is off
//! (each prompt is read whole, on both sides), and each figure is the best of `--runs`. The
//! batched replies are checked equal to the one-at-a-time ones.

use std::time::Instant;

use anyhow::{Context, bail};
use music_crs_generate::{ChatMessage, ChatRole, LlamaGenerator, LlamaParams, ModelSource};

const ASKS: [&str; 8] = [
    "some calm jazz piano for a rainy evening",
    "an upbeat funk track for cooking",
    "a melancholic indie song",
    "something from the 80s to dance to",
    "quiet ambient music for reading",
    "a classic rock anthem",
    "a latin track with a lot of percussion",
    "a soft acoustic folk song",
];

fn chat(ask: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(
            ChatRole::System,
            "You are a friendly music recommender. Reply in two sentences.",
        ),
        ChatMessage::new(ChatRole::User, format!("I would like {ask}.")),
    ]
}

fn main() -> anyhow::Result<()> {
    let usage = "usage: generate_batch MODEL.gguf [--batch 1,4,8] [--max-tokens 48] [--runs 2]";
    let mut args = std::env::args().skip(1);
    let spec = args.next().context(usage)?;
    let (mut batches, mut max_tokens, mut runs) = (vec![1, 4, 8], 48, 2);
    while let Some(flag) = args.next() {
        let value = args.next().context(usage)?;
        match flag.as_str() {
            "--batch" => {
                batches = value
                    .split(',')
                    .map(|v| v.trim().parse::<usize>())
                    .collect::<Result<_, _>>()?
            }
            "--max-tokens" => max_tokens = value.parse()?,
            "--runs" => runs = value.parse()?,
            _ => bail!("{usage}"),
        }
    }
    if batches.iter().any(|&b| b == 0 || b > ASKS.len()) || runs == 0 {
        bail!("batch sizes go from 1 to {}, runs from 1", ASKS.len());
    }
    let params = LlamaParams {
        max_new_tokens: max_tokens,
        prefix_cache_entries: 0,
        ..LlamaParams::greedy()
    };
    let generator = LlamaGenerator::load(&ModelSource::parse(&spec)?, params)?;
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    println!("threads {threads}, up to {max_tokens} new tokens per reply");
    println!("batch  one-at-a-time replies/s  batched replies/s  speed-up  tokens");
    for &size in &batches {
        let chats: Vec<(Vec<ChatMessage>, u64)> =
            ASKS[..size].iter().map(|ask| (chat(ask), 0)).collect();
        let (mut alone_best, mut batch_best) = (f64::MAX, f64::MAX);
        let mut tokens = 0;
        for _ in 0..runs {
            let started = Instant::now();
            let alone = chats
                .iter()
                .map(|(messages, seed)| generator.complete(messages, *seed))
                .collect::<Result<Vec<_>, _>>()?;
            alone_best = alone_best.min(started.elapsed().as_secs_f64());
            let started = Instant::now();
            let batched = generator.complete_batch(&chats)?;
            batch_best = batch_best.min(started.elapsed().as_secs_f64());
            for (a, b) in alone.iter().zip(&batched) {
                if a.text != b.text {
                    bail!("batched reply differs:\n{}\n{}", a.text, b.text);
                }
            }
            tokens = batched.iter().map(|c| c.generated_tokens).sum();
        }
        println!(
            "{size:>5}  {:>24.2}  {:>17.2}  {:>7.2}x  {tokens:>6}",
            size as f64 / alone_best,
            size as f64 / batch_best,
            alone_best / batch_best
        );
    }
    Ok(())
}
