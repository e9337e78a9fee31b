//! A grounded, deterministic reply writer that needs no model: the offline default.
//!
//! Every reply names the recommended title and artist, adds a tag, era or album when the
//! catalog has one, echoes what the listener asked for, apologises when the track plainly
//! misses the request (another artist than the one named, another genre than the one asked
//! for), and invites the next turn. Phrasing is drawn from banks of variants with a random
//! generator seeded from the configured seed, the session id, the turn and the track, so a
//! reply never depends on the order of calls.

use music_crs_core::{GenerationRequest, Track};
use rand::{Rng, SeedableRng, seq::IndexedRandom};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::request_cues::{RequestCues, artist_matches, normalize_name, plainly_not_genre};
use crate::{Error, Generator, Result};

/// Default seed of [`TemplateParams`].
pub const DEFAULT_TEMPLATE_SEED: u64 = 2026;
/// Default share of replies that also name the runner-up track.
pub const DEFAULT_ALTERNATIVE_RATE: f64 = 0.35;
/// Default share of replies that open with a short exclamation.
pub const DEFAULT_OPENER_RATE: f64 = 0.5;

/// Settings of the [`TemplateGenerator`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateParams {
    /// Base seed, mixed with session id, turn and track per reply.
    pub seed: u64,
    /// Share of replies (0..=1) that also name the second recommended track.
    pub alternative_rate: f64,
    /// Share of replies (0..=1) that open with a short exclamation.
    pub opener_rate: f64,
}

impl Default for TemplateParams {
    fn default() -> Self {
        TemplateParams {
            seed: DEFAULT_TEMPLATE_SEED,
            alternative_rate: DEFAULT_ALTERNATIVE_RATE,
            opener_rate: DEFAULT_OPENER_RATE,
        }
    }
}

impl TemplateParams {
    /// Checks that the rates are within 0..=1.
    pub fn validate(&self) -> Result<()> {
        for (name, rate) in [
            ("alternative_rate", self.alternative_rate),
            ("opener_rate", self.opener_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(Error::InvalidParameter {
                    name,
                    reason: format!("{rate} is not within 0..=1"),
                });
            }
        }
        Ok(())
    }
}

/// The template generator. Cheap to build, `Send + Sync`, no model files.
#[derive(Debug, Clone, Default)]
pub struct TemplateGenerator {
    params: TemplateParams,
}

impl TemplateGenerator {
    /// A generator with these settings (validated).
    pub fn new(params: TemplateParams) -> Result<Self> {
        params.validate()?;
        Ok(TemplateGenerator { params })
    }

    /// The settings.
    pub fn params(&self) -> &TemplateParams {
        &self.params
    }

    /// The reply for one request (infallible: the template generator always has words).
    pub fn reply(&self, request: &GenerationRequest) -> String {
        let context = &request.context;
        let track = request.recommended.first();
        let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(
            self.params.seed,
            &[
                context.session_id.as_bytes(),
                &context.turn_number.to_le_bytes(),
                track.map_or(&[][..], |t| t.track_id.as_bytes()),
                context.user_message.as_bytes(),
            ],
        ));
        let cues = RequestCues::read(&context.user_message, request.played.last());
        let reply = match track {
            Some(track) => self.track_reply(&mut rng, track, request.recommended.get(1), &cues),
            None => no_track_reply(&mut rng, &cues),
        };
        let reply = reply.trim().to_string();
        if reply.is_empty() {
            // Unreachable with the banks below; the trait promises a non-empty reply.
            "Here is my recommendation. Want to hear more?".to_string()
        } else {
            reply
        }
    }

    fn track_reply(
        &self,
        rng: &mut ChaCha8Rng,
        track: &Track,
        runner_up: Option<&Track>,
        cues: &RequestCues,
    ) -> String {
        let slots = Slots::new(track, runner_up, cues, rng);
        let miss = miss_of(track, cues);
        let mut sentences: Vec<String> = Vec::new();
        match &miss {
            Some(Miss::Artist(name)) => {
                sentences.push(slots.fill(pick(rng, ARTIST_APOLOGIES), Some(name)));
            }
            Some(Miss::Genre(genre)) => {
                sentences.push(slots.fill(pick(rng, GENRE_APOLOGIES), Some(genre)));
            }
            None if rng.random_bool(self.params.opener_rate) => {
                sentences.push(pick(rng, OPENERS).to_string());
            }
            None => {}
        }
        // A miss already quotes the request; echoing it again would sound odd.
        let core_bank = if slots.echo.is_some() && miss.is_none() {
            ECHO_CORES
        } else {
            PLAIN_CORES
        };
        sentences.push(slots.fill(pick(rng, core_bank), None));
        if let Some(detail) = detail_sentence(rng, &slots) {
            sentences.push(detail);
        }
        if slots.alt_title.is_some() && rng.random_bool(self.params.alternative_rate) {
            sentences.push(slots.fill(pick(rng, ALTERNATIVES), None));
        }
        let invitations: Vec<&str> = INVITATIONS
            .iter()
            .copied()
            .filter(|t| slots.can_fill(t))
            .collect();
        sentences.push(slots.fill(pick(rng, &invitations), None));
        sentences.join(" ")
    }
}

impl Generator for TemplateGenerator {
    fn name(&self) -> &str {
        "template"
    }

    fn generate(&self, request: &GenerationRequest) -> Result<String> {
        Ok(self.reply(request))
    }
}

/// Why the track plainly misses the request.
enum Miss {
    Artist(String),
    Genre(String),
}

fn miss_of(track: &Track, cues: &RequestCues) -> Option<Miss> {
    if let Some(artist) = &cues.artist
        && !artist_matches(artist, track)
        && !normalize_name(&track.name()).contains(&normalize_name(artist))
    {
        return Some(Miss::Artist(artist.clone()));
    }
    match &cues.genre {
        Some(genre) if plainly_not_genre(genre, track) => Some(Miss::Genre(genre.clone())),
        _ => None,
    }
}

/// FNV-1a over the parts, finished with a splitmix64 step: stable across Rust releases
/// (unlike `DefaultHasher`), so replies are reproducible everywhere.
pub(crate) fn mix_seed(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        // Separator, so ("ab", "c") and ("a", "bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = hash.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn pick<'a>(rng: &mut ChaCha8Rng, bank: &[&'a str]) -> &'a str {
    bank.choose(rng).copied().unwrap_or_default()
}

/// Values a template may reference as `{name}`.
struct Slots {
    title: String,
    artist: String,
    /// "Adele's", "The Beatles'".
    artist_possessive: String,
    /// The first tag with its indefinite article ("an upbeat", "a jazz").
    a_tag: Option<String>,
    album: Option<String>,
    tag: Option<String>,
    tag2: Option<String>,
    year: Option<String>,
    decade: Option<String>,
    echo: Option<String>,
    alt_title: Option<String>,
    alt_artist: Option<String>,
}

impl Slots {
    fn new(
        track: &Track,
        runner_up: Option<&Track>,
        cues: &RequestCues,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let title = non_empty(track.name()).unwrap_or_else(|| "this track".to_string());
        let artist = non_empty(track.artist()).unwrap_or_else(|| "an artist I love".to_string());
        let mut tags = usable_tags(track);
        // Two distinct tags drawn from the first few (the catalog lists the strongest first).
        tags.truncate(6);
        let first = (!tags.is_empty()).then(|| tags.remove(rng.random_range(0..tags.len())));
        let second = (!tags.is_empty()).then(|| tags.remove(rng.random_range(0..tags.len())));
        let year = track.release_year();
        Slots {
            artist_possessive: possessive(&artist),
            a_tag: first.as_deref().map(with_article),
            title,
            artist,
            album: non_empty(track.album())
                .filter(|a| normalize_name(a) != normalize_name(&track.name())),
            tag: first,
            tag2: second,
            year: year.map(|y| y.to_string()),
            decade: year.map(|y| format!("{}s", y - y % 10)),
            echo: cues.echo.clone(),
            alt_title: runner_up.and_then(|t| non_empty(t.name())),
            alt_artist: runner_up.and_then(|t| non_empty(t.artist())),
        }
    }

    fn value(&self, name: &str) -> Option<&str> {
        match name {
            "title" => Some(&self.title),
            "artist" => Some(&self.artist),
            "album" => self.album.as_deref(),
            "tag" => self.tag.as_deref(),
            "tag2" => self.tag2.as_deref(),
            "year" => self.year.as_deref(),
            "decade" => self.decade.as_deref(),
            "echo" => self.echo.as_deref(),
            "artist_s" => Some(&self.artist_possessive),
            "a_tag" => self.a_tag.as_deref(),
            "alt_title" => self.alt_title.as_deref(),
            "alt_artist" => self
                .alt_artist
                .as_deref()
                .or(self.alt_title.as_ref().map(|_| "another artist")),
            _ => None,
        }
    }

    /// True when every `{name}` of the template has a value.
    fn can_fill(&self, template: &str) -> bool {
        placeholders(template).all(|name| name == "miss" || self.value(name).is_some())
    }

    /// The template with its `{name}`s replaced in one pass (so braces inside catalog text
    /// are never read as placeholders). `{miss}` is the artist or genre missed.
    fn fill(&self, template: &str, miss: Option<&str>) -> String {
        let mut out = String::with_capacity(template.len() + 64);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) => {
                    let name = &after[..close];
                    let value = if name == "miss" {
                        miss
                    } else {
                        self.value(name)
                    };
                    let value = value.unwrap_or_default();
                    if out.is_empty() && name == "echo" {
                        // The listener's phrase opens the sentence: capitalise it.
                        let mut chars = value.chars();
                        out.extend(chars.next().into_iter().flat_map(char::to_uppercase));
                        out.push_str(chars.as_str());
                    } else {
                        out.push_str(value);
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str(&rest[open..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }
}

fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

fn possessive(name: &str) -> String {
    if name.ends_with('s') || name.ends_with('S') {
        format!("{name}'")
    } else {
        format!("{name}'s")
    }
}

/// "an upbeat", "an 80s", "a jazz": the article by the first letter (good enough for tags).
fn with_article(word: &str) -> String {
    let vowel = word
        .chars()
        .next()
        .is_some_and(|c| "aeiouAEIOU8".contains(c));
    format!("{} {word}", if vowel { "an" } else { "a" })
}

fn non_empty(text: String) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// Crowd-sourced tags can hold slurs and crude words; a reply never repeats them.
const OFFENSIVE: &[&str] = &[
    "nigg", "fag", "retard", "nazi", "rape", "fuck", "shit", "cunt", "whore", "slut", "bitch",
    "porn", "tranny", "dyke", "kike", "spic", "chink", "gook", "wetback", "hitler",
];

/// Tags worth saying aloud: short, not the artist's own name, not personal bookmarks.
fn usable_tags(track: &Track) -> Vec<String> {
    let artist = normalize_name(&track.artist());
    let mut seen = Vec::new();
    track
        .tag_list
        .iter()
        .map(|tag| tag.trim())
        .filter(|tag| {
            let lower = tag.to_lowercase();
            let key = normalize_name(tag);
            let personal = [
                "favo",
                "seen live",
                "my ",
                "best",
                "love",
                "awesome",
                "check",
            ]
            .iter()
            .any(|word| lower.contains(word));
            let offensive = OFFENSIVE.iter().any(|word| lower.contains(word));
            let keep = !tag.is_empty()
                && tag.chars().count() <= 24
                && !key.is_empty()
                && key != artist
                && !personal
                && !offensive
                && !seen.contains(&key);
            if keep {
                seen.push(key);
            }
            keep
        })
        .map(str::to_string)
        .collect()
}

/// One sentence about the track's tags, era or album, when the catalog has any.
fn detail_sentence(rng: &mut ChaCha8Rng, slots: &Slots) -> Option<String> {
    let candidates: Vec<&str> = DETAILS
        .iter()
        .copied()
        .filter(|t| slots.can_fill(t))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    Some(slots.fill(pick(rng, &candidates), None))
}

fn no_track_reply(rng: &mut ChaCha8Rng, cues: &RequestCues) -> String {
    let slots = Slots {
        title: String::new(),
        artist: String::new(),
        artist_possessive: String::new(),
        a_tag: None,
        album: None,
        tag: None,
        tag2: None,
        year: None,
        decade: None,
        echo: cues.echo.clone(),
        alt_title: None,
        alt_artist: None,
    };
    let bank: Vec<&str> = NO_TRACK
        .iter()
        .copied()
        .filter(|t| slots.can_fill(t))
        .collect();
    slots.fill(pick(rng, &bank), None)
}

const OPENERS: &[&str] = &[
    "Good call!",
    "Nice one.",
    "Love this request.",
    "Oh, I have just the thing.",
    "Happy to help!",
    "You're in luck.",
    "I've got something for that.",
    "Fun request!",
    "Say no more.",
    "Coming right up.",
    "Ooh, good prompt.",
    "Sure thing!",
    "Absolutely.",
    "Got it.",
    "Right, let's do it.",
    "Alright!",
    "Here we go.",
    "Great idea.",
    "On it!",
    "With pleasure.",
    "Easy one.",
    "Count me in.",
    "Oh, this is a good one.",
    "Let's see...",
    "Nice, I like where this is going.",
    "Okay, here's a thought.",
    "Oh, fun.",
    "Love it.",
    "Let me see what fits.",
    "I think you'll like this.",
    "Good timing.",
    "Okay!",
    "Perfect, one moment.",
    "Brilliant.",
];

const ECHO_CORES: &[&str] = &[
    "For {echo}, I'd go with \"{title}\" by {artist}.",
    "Since you asked for {echo}, try \"{title}\" by {artist}.",
    "\"{title}\" by {artist} fits {echo} nicely.",
    "With {echo} in mind, I picked \"{title}\" by {artist}.",
    "You wanted {echo}, so here's {artist} with \"{title}\".",
    "My pick for {echo}: \"{title}\" by {artist}.",
    "If {echo} is what you're after, \"{title}\" by {artist} is a strong match.",
    "Going by {echo}, {artist_s} \"{title}\" feels right.",
    "\"{title}\" from {artist} answers the call for {echo}.",
    "Keeping {echo} front and center, here's \"{title}\" by {artist}.",
    "I found \"{title}\" by {artist} for {echo}.",
    "This one's for {echo}: \"{title}\" by {artist}.",
    "When it comes to {echo}, \"{title}\" by {artist} is hard to beat.",
    "You mentioned {echo}, so I lined up {artist_s} \"{title}\".",
    "Based on {echo}, I'm recommending \"{title}\" by {artist}.",
    "{artist_s} \"{title}\" should scratch that itch for {echo}.",
    "To match {echo}, listen to \"{title}\" by {artist}.",
    "Thinking about {echo}, \"{title}\" by {artist} came straight to mind.",
    "For your {echo} request, \"{title}\" by {artist} is the one.",
    "I'd answer {echo} with \"{title}\" by {artist}.",
    "Here's a pick for {echo}: {artist_s} \"{title}\".",
    "{echo}? Then \"{title}\" by {artist} is the move.",
    "\"{title}\" by {artist} was made for {echo}.",
    "Tuning into {echo}, I landed on \"{title}\" by {artist}.",
    "For {echo}, nothing beats {artist_s} \"{title}\" right now.",
    "I matched {echo} with \"{title}\" by {artist}.",
    "Your ask for {echo} led me to \"{title}\" by {artist}.",
    "Try {artist_s} \"{title}\" for {echo}.",
    "{echo} calls for \"{title}\" by {artist}.",
    "Leaning into {echo}, here's {artist} and \"{title}\".",
    "On the {echo} front, \"{title}\" by {artist} delivers.",
    "Picking up on {echo}, I chose \"{title}\" by {artist}.",
];

const PLAIN_CORES: &[&str] = &[
    "Try \"{title}\" by {artist}.",
    "Here's \"{title}\" by {artist}.",
    "I'd suggest \"{title}\" by {artist}.",
    "Next up: \"{title}\" by {artist}.",
    "How about \"{title}\" by {artist}?",
    "Give \"{title}\" by {artist} a spin.",
    "Let me play {artist_s} \"{title}\" for you.",
    "I picked \"{title}\" by {artist}.",
    "Queue up \"{title}\" from {artist}.",
    "Check out \"{title}\" by {artist}.",
    "You might enjoy \"{title}\" by {artist}.",
    "Take a listen to {artist_s} \"{title}\".",
    "I've lined up \"{title}\" by {artist}.",
    "My recommendation is \"{title}\" by {artist}.",
    "Have a listen to \"{title}\" from {artist}.",
    "\"{title}\" by {artist} is my pick.",
    "Spin \"{title}\" by {artist} next.",
    "Here comes {artist_s} \"{title}\".",
    "Let's go with \"{title}\" by {artist}.",
    "Press play on \"{title}\" by {artist}.",
    "I'd reach for {artist_s} \"{title}\".",
    "Now playing: \"{title}\" by {artist}.",
    "Try this: \"{title}\" from {artist}.",
    "{artist} has just the song: \"{title}\".",
];

const DETAILS: &[&str] = &[
    "It's tagged {tag}.",
    "Listeners file it under {tag}.",
    "Think {tag}.",
    "Expect {a_tag} flavour.",
    "It carries {a_tag} vibe.",
    "The {tag} side of it really comes through.",
    "Fans describe it as {tag}.",
    "It has that {tag} character.",
    "It blends {tag} and {tag2}.",
    "Listeners tag it {tag} and {tag2}.",
    "Expect {tag} with a touch of {tag2}.",
    "It sits somewhere between {tag} and {tag2}.",
    "It mixes {tag} with {tag2} touches.",
    "Tags like {tag} and {tag2} sum it up.",
    "It came out in {year}.",
    "It was released in {year}.",
    "It dates from {year}.",
    "A {decade} gem.",
    "Pure {decade} energy.",
    "It's from the album {album}.",
    "You'll find it on {album}.",
    "It appears on {album}.",
    "It's {a_tag} track from {year}.",
    "It's {tag} from {year}, off {album}.",
    "Released in {year}, it leans {tag}.",
    "Taken from {album}, it has {a_tag} feel.",
    "From {album} ({year}), with {a_tag} edge.",
    "A {decade} {tag} cut.",
    "It's a {year} release with {tag} and {tag2} tones.",
    "It comes from {album}, released in {year}.",
    "Tagged {tag}, it came out in {year}.",
    "Its tags read {tag} and {tag2}.",
    "The track leans {tag}.",
    "There's a strong {tag} streak in it.",
    "Out in {year} on {album}.",
    "It closes the gap between {tag} and {tag2}.",
    "Imagine {tag} meeting {tag2}.",
    "It's {a_tag} gem from the {decade}.",
    "{year} gave us this one, from {album}.",
    "A mix of {tag}, {tag2} and a great hook.",
    "Part of {album}, a {year} record.",
    "People call it {tag}.",
];

const ARTIST_APOLOGIES: &[&str] = &[
    "Sorry, I couldn't find a {miss} track this time.",
    "Apologies, this isn't by {miss}, but it's the closest I found.",
    "I'm sorry, nothing by {miss} came up, so here's something nearby.",
    "My apologies, the recommender didn't surface {miss} for this one.",
    "Sorry about that, I don't have {miss} lined up right now.",
    "Unfortunately it's not {miss}, I'm sorry.",
    "I couldn't match {miss} exactly, sorry.",
    "Sorry, {miss} isn't in my picks this time.",
];

const GENRE_APOLOGIES: &[&str] = &[
    "Sorry, this one isn't really {miss}, but it may still work.",
    "Apologies, it's not strictly {miss}.",
    "I should admit it's not a pure {miss} track, sorry.",
    "Sorry, my search missed the {miss} mark a little here.",
    "Fair warning, and apologies: it's not quite {miss}.",
];

const ALTERNATIVES: &[&str] = &[
    "If that misses, \"{alt_title}\" by {alt_artist} is another option.",
    "Another candidate: {alt_artist}'s \"{alt_title}\".",
    "I also considered \"{alt_title}\" by {alt_artist}.",
    "Runner-up: \"{alt_title}\" by {alt_artist}.",
    "\"{alt_title}\" by {alt_artist} is close behind, too.",
    "You could also try {alt_artist} with \"{alt_title}\".",
    "Plan B would be \"{alt_title}\" by {alt_artist}.",
];

const INVITATIONS: &[&str] = &[
    "Want more like this?",
    "Shall I find something similar?",
    "Should I keep this vibe going?",
    "Would you like a different mood next?",
    "Want me to switch genres, or stay here?",
    "Anything you'd like to change?",
    "Tell me if you want something more upbeat or more mellow.",
    "Shall I dig up more from {artist}?",
    "Want another track in this direction?",
    "Let me know how it lands!",
    "How does that sound?",
    "Should I go deeper or try something new?",
    "Any other artists you'd like me to explore?",
    "Want a few more picks for the playlist?",
    "Shall we keep building from here?",
    "Does this hit the mark?",
    "I can go older, newer, softer or louder, just say the word.",
    "Where should we go next?",
    "Want more {tag} picks?",
    "Fancy something in a similar style?",
    "What should we try after this?",
    "Would you like more from the {decade}?",
    "Let me know if you want something completely different.",
    "Happy to adjust if it's not quite right.",
    "More {artist}, or something fresh?",
    "Should I stay with {tag} or branch out?",
    "Want me to queue a few more?",
    "Should I keep digging in this direction?",
    "Up for another one?",
    "Need something faster or slower next?",
    "Want a deeper cut next time?",
    "Tell me what to change and I'll adapt.",
    "Want similar tracks from other artists?",
    "Should I go more mainstream or more obscure?",
    "Another {tag} track, maybe?",
    "Keep going with {artist}?",
    "Something from another era next?",
    "Shall I mix in a different genre?",
    "Your call: more of this or a change?",
    "Want the next one to be livelier or calmer?",
];

const NO_TRACK: &[&str] = &[
    "Sorry, I couldn't find a track for {echo} right now. Could you tell me an artist, a mood or an era to aim for?",
    "Apologies, nothing in the catalog matched {echo} this time. Can you describe it another way?",
    "I'm sorry, I came up empty on {echo}. Want to try a different artist or genre?",
    "Sorry, I couldn't find a good match this time. Could you tell me a bit more about what you'd like to hear?",
    "Apologies, I don't have a recommendation yet. Which artist, mood or era should I look for?",
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use music_crs_core::{Message, Role, TurnContext};

    use super::*;

    fn request(session: &str, turn: u32, message: &str, track: Track) -> GenerationRequest {
        let mut context = TurnContext::from_message(message);
        context.session_id = session.into();
        context.turn_number = turn;
        GenerationRequest {
            context,
            recommended: vec![track],
            played: vec![],
        }
    }

    fn jazz_track() -> Track {
        let mut track = Track::new("t1", "Peace Piece", "Bill Evans");
        track.tag_list = vec!["jazz".into(), "piano".into(), "calm".into()];
        track.album_name = vec!["Everybody Digs Bill Evans".into()];
        track.release_date = Some("1959-01-01".into());
        track
    }

    #[test]
    fn names_title_artist_and_a_detail_and_echoes_the_request() {
        let generator = TemplateGenerator::default();
        for turn in 1..=8 {
            let reply = generator.reply(&request(
                "s",
                turn,
                "I want something mellow for a rainy evening",
                jazz_track(),
            ));
            assert!(reply.contains("Peace Piece"), "{reply}");
            assert!(reply.contains("Bill Evans"), "{reply}");
            let detail = ["jazz", "piano", "calm", "1959", "1950s", "Everybody Digs"];
            assert!(detail.iter().any(|d| reply.contains(d)), "{reply}");
            assert!(
                reply.contains('?')
                    || reply.contains("Let me know")
                    || reply.contains("say the word")
                    || reply.contains("adjust"),
                "{reply}"
            );
            assert!(!reply.contains('{'), "{reply}");
        }
        let echoed = (1..=8)
            .filter(|&turn| {
                generator
                    .reply(&request(
                        "s",
                        turn,
                        "I want something mellow for a rainy evening",
                        jazz_track(),
                    ))
                    .contains("something mellow for a rainy evening")
            })
            .count();
        assert_eq!(echoed, 8);
    }

    #[test]
    fn deterministic_and_independent_of_call_order() {
        let generator = TemplateGenerator::default();
        let requests: Vec<GenerationRequest> = (1..=8)
            .map(|turn| request("s9", turn, "some upbeat rock", jazz_track()))
            .collect();
        let forward = generator.generate_batch(&requests).unwrap();
        let mut reversed: Vec<GenerationRequest> = requests.clone();
        reversed.reverse();
        let mut backward = generator.generate_batch(&reversed).unwrap();
        backward.reverse();
        assert_eq!(forward, backward);
        let distinct: HashSet<&String> = forward.iter().collect();
        assert!(distinct.len() >= 6, "{forward:?}");
        let other = TemplateGenerator::new(TemplateParams {
            seed: 7,
            ..TemplateParams::default()
        })
        .unwrap();
        assert_ne!(other.generate_batch(&requests).unwrap(), forward);
    }

    #[test]
    fn apologises_when_the_named_artist_differs() {
        let generator = TemplateGenerator::default();
        let apologies = ["sorry", "apologies", "unfortunately"];
        for turn in 1..=6 {
            let reply = generator.reply(&request(
                "s",
                turn,
                "Play something by Radiohead",
                jazz_track(),
            ));
            let lower = reply.to_lowercase();
            assert!(apologies.iter().any(|a| lower.contains(a)), "{reply}");
            assert!(
                reply.contains("Radiohead") && reply.contains("Peace Piece"),
                "{reply}"
            );
            let fine = generator.reply(&request(
                "s",
                turn,
                "Play something by Bill Evans",
                jazz_track(),
            ));
            let lower = fine.to_lowercase();
            assert!(!apologies.iter().any(|a| lower.contains(a)), "{fine}");
        }
        let wrong_genre = generator.reply(&request("s", 1, "I need heavy metal", jazz_track()));
        assert!(
            wrong_genre.to_lowercase().contains("sorry")
                || wrong_genre.to_lowercase().contains("apolog"),
            "{wrong_genre}"
        );
    }

    #[test]
    fn same_artist_request_checks_the_last_played_track() {
        let generator = TemplateGenerator::default();
        let mut req = request("s", 2, "More from the same artist please", jazz_track());
        req.context.history = vec![Message::new(1, Role::Music, "t0")];
        req.played = vec![Track::new("t0", "Halo", "Beyoncé")];
        let reply = generator.reply(&req).to_lowercase();
        assert!(
            reply.contains("beyoncé")
                && (reply.contains("sorry")
                    || reply.contains("apolog")
                    || reply.contains("unfortunately")),
            "{reply}"
        );
    }

    #[test]
    fn non_ascii_passes_through_untouched() {
        let generator = TemplateGenerator::default();
        let mut track = Track::new("t2", "Hoppípolla", "Sigur Rós");
        track.tag_list = vec!["post-rock".into(), "islandais".into()];
        track.album_name = vec!["Takk…".into()];
        for turn in 1..=8 {
            let reply =
                generator.reply(&request("s", turn, "静かな曲をお願いします", track.clone()));
            assert!(
                reply.contains("Hoppípolla") && reply.contains("Sigur Rós"),
                "{reply}"
            );
            assert!(reply.contains("静かな曲をお願いします"), "{reply}");
        }
    }

    #[test]
    fn never_empty_even_without_a_track_or_metadata() {
        let generator = TemplateGenerator::default();
        let mut empty = request("s", 1, "", Track::default());
        assert!(!generator.reply(&empty).is_empty());
        empty.recommended.clear();
        let reply = generator.reply(&empty);
        assert!(
            reply.to_lowercase().contains("sorry") || reply.contains("Apologies"),
            "{reply}"
        );
        empty.context.user_message = "jazz for studying".into();
        assert!(!generator.reply(&empty).is_empty());
    }

    #[test]
    fn braces_in_catalog_text_are_not_placeholders() {
        let generator = TemplateGenerator::default();
        let reply = generator.reply(&request(
            "s",
            1,
            "anything",
            Track::new("t", "{artist}", "X"),
        ));
        assert!(reply.contains("\"{artist}\""), "{reply}");
    }

    #[test]
    fn offensive_tags_are_never_repeated() {
        let generator = TemplateGenerator::default();
        let mut track = Track::new("t", "Song", "Band");
        track.tag_list = vec!["Faggot metal".into(), "shitgaze".into()];
        for turn in 1..=8 {
            let reply = generator
                .reply(&request("s", turn, "more", track.clone()))
                .to_lowercase();
            assert!(!reply.contains("fag") && !reply.contains("shit"), "{reply}");
        }
    }

    #[test]
    fn rates_are_validated() {
        let bad = TemplateParams {
            alternative_rate: 1.5,
            ..TemplateParams::default()
        };
        let err = TemplateGenerator::new(bad).unwrap_err().to_string();
        assert!(err.contains("alternative_rate"), "{err}");
    }
}
