//! A scripted conversation with the default recommender (BM25 + templates over the demo
//! catalog): each reply is recorded, so later turns see the earlier ones.
//!
//! ```sh
//! cargo run --release --example chat
//! ```
//!
//! For an interactive session use the binary: `cargo run --release -- chat`.

use anyhow::Result;
use music_crs::config::CrsConfig;
use music_crs::{Conversation, RunData, build_crs, spotify_link};

fn main() -> Result<()> {
    let config = CrsConfig::default();
    // Chat needs no conversations split: just the catalog and the users.
    let data = RunData::load_for_chat(&config)?;
    let crs = build_crs(&config, &data)?;

    // An artist from the catalog, so the first request has something to find.
    let artist = data
        .catalog
        .tracks()
        .first()
        .map(|t| t.artist())
        .unwrap_or_default();
    let messages = [
        format!("I'd love to hear something by {artist}"),
        "nice, something more upbeat now".to_string(),
        "perfect, one last calm song for the evening".to_string(),
    ];

    let mut conversation = Conversation::new("example", "");
    for message in &messages {
        let reply = conversation.say(&crs, message)?;
        println!("you> {message}");
        for scored in reply.tracks.iter().take(3) {
            if let Some(track) = crs.catalog().get(&scored.track_id) {
                let link = spotify_link(&track.track_id).unwrap_or_default();
                println!("   {} — {} {link}", track.name(), track.artist());
            }
        }
        println!("crs> {}\n", reply.response);
    }
    println!("{} messages in the history", conversation.messages().len());
    Ok(())
}
