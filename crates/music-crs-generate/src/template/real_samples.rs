//! The template replies over the real sample conversations of `shared/fixtures/talkplay/`:
//! a reply never echoes a word of the listener's message that is only part of a track or
//! album title.

use std::collections::HashSet;

use music_crs_core::shared::shared_path;
use music_crs_core::{GenerationRequest, Track};
use music_crs_data::{Loader, PartSpec};

use super::{TemplateGenerator, mix_seed, phrases};
use crate::request_cues::{ACTIVITIES, ERAS, GENRES, MOODS};

/// Lowercase words of three letters or more (digits count as letters).
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
}

/// The spans of `text` between double quotes (straight or curly): titles, as listeners and
/// the dataset's assistant write them.
fn quoted(text: &str) -> Vec<&str> {
    let mut spans = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find(['"', '\u{201c}']) {
        let after = &rest[open + rest[open..].chars().next().map_or(1, char::len_utf8)..];
        let Some(close) = after.find(['"', '\u{201d}']) else {
            break;
        };
        spans.push(&after[..close]);
        rest = &after[close + after[close..].chars().next().map_or(1, char::len_utf8)..];
    }
    spans
}

/// Every word the phrase banks write themselves (slot names excluded).
fn template_words() -> HashSet<String> {
    let banks = phrases::ALL_BANKS;
    let mut vocabulary = HashSet::new();
    for pattern in banks.iter().flat_map(|bank| bank.iter()) {
        let mut text = String::new();
        let mut in_slot = false;
        for c in pattern.chars() {
            match c {
                '{' => in_slot = true,
                '}' => {
                    in_slot = false;
                    text.push(' ');
                }
                _ if !in_slot => text.push(c),
                _ => {}
            }
        }
        vocabulary.extend(words(&text));
    }
    vocabulary
}

/// Words a request may legitimately be echoed with: genres, moods, activities, eras.
fn request_words() -> HashSet<String> {
    let mut vocabulary = HashSet::new();
    for term in MOODS.iter().chain(GENRES).chain(ERAS) {
        vocabulary.extend(words(term));
    }
    for (key, phrase) in ACTIVITIES {
        vocabulary.extend(words(key).chain(words(phrase)));
    }
    vocabulary
}

/// What a reply may say about a track: its title, artist, album, tags and year.
fn facts(track: &Track) -> impl Iterator<Item = String> {
    let mut text = format!("{} {} {}", track.name(), track.artist(), track.album());
    for tag in &track.tag_list {
        text.push(' ');
        text.push_str(tag);
    }
    if let Some(year) = track.release_year() {
        text.push_str(&format!(" {year} {}s", year - year % 10));
    }
    words(&text).collect::<Vec<_>>().into_iter()
}

/// Words of `reply` taken from `message` that are not facts the reply may state (`said`).
fn echoes(reply: &str, message: &str, said: &HashSet<String>) -> Vec<String> {
    let message: HashSet<String> = words(message).collect();
    words(reply)
        .filter(|w| message.contains(w) && !said.contains(w))
        .collect()
}

#[test]
fn the_echo_check_sees_an_echoed_title() {
    let said: HashSet<String> = facts(&Track::new("t", "Halo", "Beyonc\u{e9}")).collect();
    let message = "Loved \"Midnight Mirror\", more like that";
    let bad = "You wanted Midnight Mirror, so here's \"Halo\" by Beyonc\u{e9}.";
    assert_eq!(echoes(bad, message, &said), ["midnight", "mirror"]);
    let good = "Here's \"Halo\" by Beyonc\u{e9}. More like this?";
    assert!(
        echoes(good, message, &said)
            .iter()
            .all(|w| w == "more" || w == "like")
    );
    assert_eq!(quoted(message), ["Midnight Mirror"]);
}

#[test]
fn replies_to_real_conversations_never_echo_title_words() {
    let Some(conversations) = shared_path("fixtures/talkplay/conversations-test-sample.parquet")
    else {
        return;
    };
    let Some(tracks) = shared_path("fixtures/talkplay/tracks-sample.parquet") else {
        return;
    };
    let loader = Loader::default();
    let sessions = loader
        .load_sessions(&PartSpec::new(conversations.display().to_string(), "test"))
        .expect("the sample conversations load");
    let catalog = loader
        .load_tracks(&PartSpec::new(tracks.display().to_string(), "all_tracks"))
        .expect("the sample catalog loads");
    assert!(sessions.len() > 200 && catalog.len() > 2000);

    let contexts: Vec<_> = sessions
        .iter()
        .map(|session| session.turn_contexts().expect("the sample turns are valid"))
        .collect();
    let template = template_words();
    let requests = request_words();
    let mut artists = HashSet::new();
    for track in &catalog {
        artists.extend(track.artist_name.iter().flat_map(|a| words(a)));
    }
    // Per session, the words that are only part of a title: quoted in its messages (listeners
    // and the dataset's assistant quote titles; the sessions' own tracks are not in the sample
    // catalog), never written outside quotes, and not words the templates, the request
    // lexicons or an artist's name use.
    let title_words: Vec<HashSet<String>> = contexts
        .iter()
        .map(|turns| {
            let mut quoted_words = HashSet::new();
            let mut unquoted_words = HashSet::new();
            let last = turns.last().expect("a session has turns");
            let messages = last.history.iter().map(|m| m.content.as_str());
            for text in messages.chain([last.user_message.as_str()]) {
                let spans = quoted(text);
                let mut outside = text.to_string();
                for span in &spans {
                    quoted_words.extend(words(span));
                    outside = outside.replace(span, " ");
                }
                unquoted_words.extend(words(&outside));
            }
            quoted_words.retain(|w| {
                !unquoted_words.contains(w)
                    && !template.contains(w)
                    && !requests.contains(w)
                    && !artists.contains(w)
            });
            quoted_words
        })
        .collect();
    let total: usize = title_words.iter().map(HashSet::len).sum();
    assert!(total > 500, "{total} title words");

    let generator = TemplateGenerator::default();
    let mut replies = 0;
    let mut echoed_requests = 0;
    let mut failures = Vec::new();
    for (turns, titles) in contexts.iter().zip(&title_words) {
        let mut played: Vec<Track> = Vec::new();
        for turn in turns {
            let pick = mix_seed(0, &[turn.session_id.as_bytes(), &[turn.turn_number as u8]]);
            let first = pick as usize % catalog.len();
            let recommended = vec![
                catalog[first].clone(),
                catalog[(first + 1) % catalog.len()].clone(),
            ];
            let request = GenerationRequest {
                context: turn.clone(),
                recommended: recommended.clone(),
                played: played.clone(),
            };
            let reply = generator.reply(&request);
            replies += 1;
            let said: HashSet<String> = recommended.iter().chain(&played).flat_map(facts).collect();
            let echoed = echoes(&reply, &turn.user_message, &said);
            if echoed.iter().any(|w| requests.contains(w)) {
                echoed_requests += 1;
            }
            let bad: Vec<&String> = echoed.iter().filter(|w| titles.contains(*w)).collect();
            if !bad.is_empty() {
                failures.push(format!(
                    "{bad:?}\n  message: {}\n  reply:   {reply}",
                    turn.user_message
                ));
            }
            played.push(recommended[0].clone());
        }
    }
    assert!(replies > 2000, "{replies} replies");
    // The check is not vacuous: real requests are echoed.
    assert!(
        echoed_requests * 10 > replies,
        "{echoed_requests} of {replies} replies echo a request"
    );
    assert!(
        failures.is_empty(),
        "{} of {replies} replies echo title words:\n{}",
        failures.len(),
        failures[..failures.len().min(15)].join("\n")
    );
}
