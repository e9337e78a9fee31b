//! Writes template replies for a JSON file of requests and reports their Distinct-2 (the
//! challenge's lexical-diversity metric: lowercase, whitespace split, distinct bigrams over
//! all bigrams).
//!
//! ```text
//! cargo run -p music-crs-generate --example template_replies -- requests.json [N_SHOWN]
//! ```
//!
//! The file is a JSON array of `{context, recommended, played}` objects: `context` a
//! `music_crs_core::TurnContext`, the other two lists of `music_crs_core::Track`.

use std::collections::HashSet;

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

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: template_replies REQUESTS.json [N_SHOWN]")?;
    let shown: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(5);
    let rows: Vec<RequestRow> = serde_json::from_str(&fs_err::read_to_string(&path)?)
        .with_context(|| format!("reading requests from {path}"))?;
    let requests: Vec<GenerationRequest> = rows
        .into_iter()
        .map(|row| GenerationRequest {
            context: row.context,
            recommended: row.recommended,
            played: row.played,
        })
        .collect();
    let replies = TemplateGenerator::default().generate_batch(&requests)?;

    let mut total = 0usize;
    let mut distinct = HashSet::new();
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
            distinct.insert((pair[0].clone(), pair[1].clone()));
        }
    }
    println!(
        "{} replies, mean {:.1} words, Distinct-2 {:.4}",
        replies.len(),
        words as f64 / replies.len().max(1) as f64,
        distinct.len() as f64 / total.max(1) as f64
    );
    for (request, reply) in requests.iter().zip(&replies).take(shown) {
        println!("\nuser: {}\nreply: {reply}", request.context.user_message);
    }
    Ok(())
}
