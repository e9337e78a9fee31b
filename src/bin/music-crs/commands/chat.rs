//! `music-crs chat`: talk to the recommender, one message or a REPL.

use std::io::{BufRead, Write};

use anyhow::{Context, Result};
use clap::Args;
use music_crs::{Conversation, Crs, Reply, RunData};

use super::run::require_ranker_model;
use crate::args::DatasetArgs;

#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
    /// The listener's id (personalises replies when the users table knows it).
    #[arg(long, default_value = "")]
    pub(crate) user_id: String,
    /// One message, answered once (no REPL).
    #[arg(long)]
    pub(crate) query: Option<String>,
    /// Tracks shown per reply.
    #[arg(long, default_value_t = 5)]
    pub(crate) show: usize,
}

pub(crate) fn chat(args: ChatArgs) -> Result<i32> {
    let config = args.dataset.load_config()?;
    require_ranker_model(&config, &args.dataset)?;
    let dataset = RunData::load_catalog_and_users(&config.dataset)?;
    let crs = music_crs::build_crs(&config, &dataset)?;
    let mut conversation = Conversation::new("chat", args.user_id.clone());
    if let Some(query) = &args.query {
        let reply = conversation.say(&crs, query)?;
        print_reply(&crs, &reply, args.show);
        return Ok(0);
    }
    eprintln!(
        "music-crs chat ({} + {}, {} tracks). Type a message; an empty line or Ctrl-D quits.",
        crs.retriever_name(),
        crs.generator_name(),
        crs.catalog().len()
    );
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        eprint!("you> ");
        std::io::stderr().flush().ok();
        let Some(line) = lines.next() else { break };
        let line = line.context("reading stdin")?;
        let message = line.trim();
        if message.is_empty() {
            break;
        }
        match conversation.say(&crs, message) {
            Ok(reply) => print_reply(&crs, &reply, args.show),
            Err(err) => eprintln!("error: {err}"),
        }
    }
    Ok(0)
}

fn print_reply(crs: &Crs, reply: &Reply, show: usize) {
    for (rank, scored) in reply.tracks.iter().take(show).enumerate() {
        let Some(track) = crs.catalog().get(&scored.track_id) else {
            println!("{:>2}. {}", rank + 1, scored.track_id);
            continue;
        };
        let link = music_crs::spotify_link(&track.track_id)
            .map(|url| format!("  {url}"))
            .unwrap_or_default();
        println!(
            "{:>2}. {} — {}{link}",
            rank + 1,
            track.name(),
            track.artist()
        );
    }
    println!("crs> {}", reply.response);
}
