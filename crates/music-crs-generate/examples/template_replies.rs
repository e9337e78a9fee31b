//! Writes template replies for a JSON file of requests, or reads the replies of a prediction
//! file, and reports their Distinct-2 (the challenge's lexical-diversity metric: lowercase,
//! whitespace split, distinct bigrams over all bigrams of all replies) with the bigrams
//! repeated most, which are what holds the score down.
//!
//! ```text
//! cargo run -p music-crs-generate --example template_replies -- requests.json [N_SHOWN]
//! cargo run -p music-crs-generate --example template_replies -- \
//!     --predictions exp/inference/bm25_template.json [N_SHOWN]
//! ```
//!
//! A requests file is a JSON array of `{context, recommended, played}` objects: `context` a
//! `music_crs_core::TurnContext`, the other two lists of `music_crs_core::Track`. A prediction
//! file is what `music-crs run` writes (`predicted_response` is read).

use std::collections::HashMap;

use anyhow::Context;
use music_crs_core::{GenerationRequest, Track, TurnContext};
use music_crs_generate::{Generator, TemplateGenerator};
use serde::Deserialize;

#[derive(Deserialize)]
struct RequestRow {
    context: TurnContext,
    #[serde(default)]
    recommended: Vec<Track>,
    #[serde(default)]
    played: Vec<Track>,
}

#[derive(Deserialize)]
struct PredictionRow {
    predicted_response: String,
}

const USAGE: &str = "usage: template_replies [--predictions] FILE.json [N_SHOWN]";

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let predictions = args.first().is_some_and(|a| a == "--predictions");
    if predictions {
        args.remove(0);
    }
    let path = args.first().context(USAGE)?.clone();
    let shown: usize = args
        .get(1)
        .map(|n| n.parse())
        .transpose()
        .context(USAGE)?
        .unwrap_or(5);
    let text = fs_err::read_to_string(&path)?;
    let (messages, replies): (Vec<String>, Vec<String>) = if predictions {
        let rows: Vec<PredictionRow> = serde_json::from_str(&text)
            .with_context(|| format!("reading predictions from {path}"))?;
        rows.into_iter()
            .map(|row| (String::new(), row.predicted_response))
            .unzip()
    } else {
        let rows: Vec<RequestRow> =
            serde_json::from_str(&text).with_context(|| format!("reading requests from {path}"))?;
        let requests: Vec<GenerationRequest> = rows
            .into_iter()
            .map(|row| GenerationRequest {
                context: row.context,
                recommended: row.recommended,
                played: row.played,
            })
            .collect();
        let replies = TemplateGenerator::default().generate_batch(&requests)?;
        let messages = requests
            .into_iter()
            .map(|r| r.context.user_message)
            .collect();
        (messages, replies)
    };

    let mut total = 0usize;
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    let mut words = 0usize;
    for reply in &replies {
        let tokens: Vec<String> = reply
            .to_lowercase()
            .split_whitespace()
            .map(String::from)
            .collect();
        words += tokens.len();
        for pair in tokens.windows(2) {
            total += 1;
            *counts
                .entry((pair[0].clone(), pair[1].clone()))
                .or_default() += 1;
        }
    }
    println!(
        "{} replies, mean {:.1} words, {total} bigrams, {} distinct, Distinct-2 {:.4}",
        replies.len(),
        words as f64 / replies.len().max(1) as f64,
        counts.len(),
        counts.len() as f64 / total.max(1) as f64
    );
    let mut repeated: Vec<(&(String, String), &usize)> = counts.iter().collect();
    repeated.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    println!("\nmost repeated bigrams:");
    for ((first, second), count) in repeated.iter().take(shown.max(20)) {
        println!("{count:6}  {first} {second}");
    }
    for (message, reply) in messages.iter().zip(&replies).take(shown) {
        if message.is_empty() {
            println!("\nreply: {reply}");
        } else {
            println!("\nuser: {message}\nreply: {reply}");
        }
    }
    Ok(())
}
