//! A grounded, deterministic reply writer that needs no model: the offline default.
//!
//! Every reply names the recommended title and artist, adds a tag, era or album when the
//! catalog has one, echoes what the listener asked for, apologises when the track plainly
//! misses the request (another artist than the one named, another genre than the one asked
//! for), and invites the next turn. Each sentence comes from a small phrase grammar
//! (`template/phrases.rs`): independent choices of wording, of how the track is introduced and
//! of which catalog facts are told multiply into many phrasings without padding. Choices are
//! drawn with a random generator seeded from the configured seed, the session id, the turn,
//! the track and the message, so a reply never depends on the order of calls.

use music_crs_core::{GenerationRequest, Track};
use rand::{Rng, SeedableRng, seq::IndexedRandom};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::request_cues::{
    CueKind, Echo, RequestCues, artist_matches, is_genre_tag, normalize_name, plainly_not_genre,
};
use crate::{Error, Generator, Result};

mod grammar;
mod phrases;
#[cfg(test)]
mod real_samples;

/// Default seed of [`TemplateParams`].
pub const DEFAULT_TEMPLATE_SEED: u64 = 2026;
/// Default share of replies that also name the runner-up track.
pub const DEFAULT_ALTERNATIVE_RATE: f64 = 0.15;
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
        let last_played = request.played.last();
        let cues = RequestCues::read(&context.user_message, &request.played);
        let reply = match track {
            Some(track) => self.track_reply(
                &mut rng,
                track,
                request.recommended.get(1),
                last_played,
                &cues,
            ),
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
        last_played: Option<&Track>,
        cues: &RequestCues,
    ) -> String {
        let mut slots = Slots::for_track(track, runner_up, last_played, cues, rng);
        let miss = miss_of(track, cues);
        let mut sentences: Vec<String> = Vec::new();
        match &miss {
            Some(miss) => {
                let (name, bank) = match miss {
                    Miss::Artist(name) => (name, phrases::ARTIST_APOLOGIES),
                    Miss::Genre(name) => (name, phrases::GENRE_APOLOGIES),
                };
                slots.a_miss = Some(with_article(name));
                slots.miss = Some(name.clone());
                // The apology already quotes the request; echoing it again would sound odd.
                slots.echo = EchoSlots::default();
                sentences.extend(slots.say(rng, bank));
            }
            None if rng.random_bool(self.params.opener_rate) => {
                sentences.extend(slots.say(rng, phrases::OPENERS));
            }
            None => {}
        }
        // The core names the track; when the listener's request is known it must echo it.
        let echoes = slots.echo.any();
        let fits = |pattern: &&str| pattern.contains("{echo") == echoes;
        let fused = rng.random_bool(FUSED_CORE_RATE);
        let core = if fused {
            slots.say_where(rng, phrases::FUSED_CORES, fits)
        } else {
            None
        };
        let fused = core.is_some();
        let core = core.or_else(|| {
            if echoes {
                slots.say_where(rng, phrases::ECHO_CORES, fits)
            } else {
                slots.say(rng, phrases::PLAIN_CORES)
            }
        });
        // PLAIN_CORES always fill (title and artist always have a value).
        let core = core.unwrap_or_else(|| format!("Try \"{}\" by {}.", slots.title, slots.artist));
        slots.forget_mentioned(&core);
        sentences.push(core);

        let mut facts: Vec<String> = Vec::new();
        if !fused || rng.random_bool(0.3) {
            facts.extend(slots.say(rng, phrases::DETAILS));
        }
        if (slots.asked_genre.is_some() || slots.asked_artist.is_some()) && rng.random_bool(0.5) {
            facts.extend(slots.say(rng, phrases::CONFIRMATIONS));
        }
        if slots.prev_title.is_some() && rng.random_bool(FOLLOW_UP_RATE) {
            facts.extend(slots.say(rng, phrases::FOLLOW_UPS));
        }
        // The facts come in either order, so no two-sentence run is fixed.
        if facts.len() > 1 && rng.random_bool(0.5) {
            facts.reverse();
        }
        sentences.extend(facts);
        if slots.alt_title.is_some() && rng.random_bool(self.params.alternative_rate) {
            sentences.extend(slots.say(rng, phrases::ALTERNATIVES));
        }
        sentences.extend(slots.say(rng, phrases::INVITATIONS));
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

/// Share of replies whose first sentence already carries a tag, year or album.
const FUSED_CORE_RATE: f64 = 0.3;
/// Share of replies (when a track was played before) that tie the pick to it.
const FOLLOW_UP_RATE: f64 = 0.15;

/// Why the track plainly misses the request.
enum Miss {
    Artist(String),
    Genre(String),
}

fn miss_of(track: &Track, cues: &RequestCues) -> Option<Miss> {
    if let Some(artist) = &cues.artist {
        let wanted = normalize_name(artist);
        // "Another one from <album>" names the album, not an artist; the title may hold a
        // featured artist.
        let named_elsewhere = [track.name(), track.album()]
            .iter()
            .any(|text| !wanted.is_empty() && normalize_name(text).contains(&wanted));
        if !artist_matches(artist, track) && !named_elsewhere {
            return Some(Miss::Artist(artist.clone()));
        }
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

/// Values a pattern may reference as `{name}`; `None` when the catalog or request lacks it.
#[derive(Default)]
struct Slots {
    title: String,
    artist: String,
    /// "Adele's", "The Beatles'"; `None` when the artist is unknown.
    artist_possessive: Option<String>,
    /// "the Adele", or the name itself when it starts with "The".
    the_artist: Option<String>,
    album: Option<String>,
    /// Usable tags not yet said, strongest first after a seeded shuffle of the top few.
    tags: Vec<String>,
    /// The first tag with its indefinite article ("an upbeat", "a jazz").
    a_tag: Option<String>,
    /// The second tag with its article.
    a_tag2: Option<String>,
    year: Option<String>,
    decade: Option<String>,
    echo: EchoSlots,
    miss: Option<String>,
    a_miss: Option<String>,
    asked_genre: Option<String>,
    asked_artist: Option<String>,
    prev_title: Option<String>,
    alt_title: Option<String>,
    alt_artist: Option<String>,
    alt_artist_possessive: Option<String>,
}

/// The request as the patterns may echo it: one generic noun phrase and one slot per kind, so
/// each kind is echoed with a grammar that suits it ("some chill jazz", "keeping it mellow",
/// "for a workout", "back to the 80s", "more Adele").
#[derive(Default)]
struct EchoSlots {
    /// "something mellow", "chill jazz", "music for a workout", "80s music".
    phrase: Option<String>,
    genre: Option<String>,
    mood: Option<String>,
    activity: Option<String>,
    era: Option<String>,
    artist: Option<String>,
}

impl EchoSlots {
    /// The slots of `echo`; an artist request is echoed only when the track is by that
    /// artist, and then with the catalog's spelling (`track_artist`).
    fn of(echo: Option<&Echo>, track_artist: Option<&str>) -> Self {
        let Some(echo) = echo else {
            return EchoSlots::default();
        };
        let bare = |kind: CueKind| echo.bare.clone().filter(|_| echo.kind == kind);
        EchoSlots {
            phrase: echo.phrase.clone(),
            genre: bare(CueKind::Genre),
            mood: bare(CueKind::Mood),
            activity: bare(CueKind::Activity),
            era: bare(CueKind::Era),
            artist: bare(CueKind::Artist).and(track_artist.map(str::to_string)),
        }
    }

    fn any(&self) -> bool {
        [
            &self.phrase,
            &self.genre,
            &self.mood,
            &self.activity,
            &self.era,
            &self.artist,
        ]
        .iter()
        .any(|slot| slot.is_some())
    }
}

/// The names [`Slots`] answers besides `title` and `artist` (used by a test of the banks).
#[cfg(test)]
const SLOT_NAMES: &[&str] = &[
    "artist_s",
    "the_artist",
    "album",
    "tag",
    "tag2",
    "a_tag",
    "a_tag2",
    "year",
    "decade",
    "echo",
    "echo_genre",
    "echo_mood",
    "echo_activity",
    "echo_era",
    "echo_artist",
    "style",
    "style2",
    "miss",
    "a_miss",
    "asked_genre",
    "asked_artist",
    "prev_title",
    "alt_title",
    "alt_artist",
    "alt_artist_s",
];

impl grammar::Values for Slots {
    fn value(&self, name: &str) -> Option<&str> {
        match name {
            "title" => Some(&self.title),
            "artist" => Some(&self.artist),
            "artist_s" => self.artist_possessive.as_deref(),
            "the_artist" => self.the_artist.as_deref(),
            "album" => self.album.as_deref(),
            "tag" => self.tags.first().map(String::as_str),
            "tag2" => self.tags.get(1).map(String::as_str),
            "a_tag" => self.a_tag.as_deref(),
            "a_tag2" => self.a_tag2.as_deref(),
            "year" => self.year.as_deref(),
            "decade" => self.decade.as_deref(),
            "echo" => self.echo.phrase.as_deref(),
            "echo_genre" => self.echo.genre.as_deref(),
            "echo_mood" => self.echo.mood.as_deref(),
            "echo_activity" => self.echo.activity.as_deref(),
            "echo_era" => self.echo.era.as_deref(),
            "echo_artist" => self.echo.artist.as_deref(),
            "style" => self.styles().next(),
            "style2" => self.styles().nth(1),
            "miss" => self.miss.as_deref(),
            "a_miss" => self.a_miss.as_deref(),
            "asked_genre" => self.asked_genre.as_deref(),
            "asked_artist" => self.asked_artist.as_deref(),
            "prev_title" => self.prev_title.as_deref(),
            "alt_title" => self.alt_title.as_deref(),
            "alt_artist" => self.alt_artist.as_deref(),
            "alt_artist_s" => self.alt_artist_possessive.as_deref(),
            _ => None,
        }
    }

    fn pattern(&self, name: &str) -> Option<&'static str> {
        match name {
            "track" => Some(phrases::TRACK),
            "track_bare" => Some(phrases::TRACK_BARE),
            "alt_track" => Some(phrases::ALT_TRACK),
            _ => None,
        }
    }

    fn capitalise(&self, name: &str) -> bool {
        // Made by the template or typed by the listener; catalog names keep their case.
        matches!(
            name,
            "echo" | "echo_genre" | "echo_mood" | "echo_activity" | "echo_era" | "the_artist"
        )
    }
}

impl Slots {
    fn for_track(
        track: &Track,
        runner_up: Option<&Track>,
        last_played: Option<&Track>,
        cues: &RequestCues,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let title = non_empty(track.name());
        let artist = non_empty(track.artist());
        let mut tags = usable_tags(track);
        // Tags drawn in a seeded order from the first few (the catalog lists the strongest first).
        tags.truncate(6);
        let mut drawn = Vec::with_capacity(tags.len());
        while !tags.is_empty() {
            drawn.push(tags.remove(rng.random_range(0..tags.len())));
        }
        let year = track.release_year();
        let asked_genre = cues.genre.clone().filter(|genre| {
            let wanted = normalize_name(genre);
            track
                .tag_list
                .iter()
                .any(|tag| normalize_name(tag) == wanted)
        });
        let asked_artist = cues
            .artist
            .as_ref()
            .filter(|name| artist_matches(name, track))
            .and(artist.clone());
        let alt_title = runner_up.and_then(|t| non_empty(t.name()));
        let alt_artist = alt_title
            .as_ref()
            .and(runner_up.and_then(|t| non_empty(t.artist())));
        let mut slots = Slots {
            artist_possessive: artist.as_deref().map(possessive),
            the_artist: artist.as_deref().map(|name| {
                if name.to_lowercase().starts_with("the ") {
                    name.to_string()
                } else {
                    format!("the {name}")
                }
            }),
            title: title.unwrap_or_else(|| "this track".to_string()),
            artist: artist.unwrap_or_else(|| "an artist I love".to_string()),
            album: non_empty(track.album())
                .filter(|a| normalize_name(a) != normalize_name(&track.name())),
            tags: drawn,
            year: year.map(|y| y.to_string()),
            decade: year.map(|y| format!("{}s", y - y % 10)),
            echo: EchoSlots::of(cues.echo.as_ref(), asked_artist.as_deref()),
            asked_genre,
            asked_artist,
            prev_title: last_played
                .and_then(|t| non_empty(t.name()))
                .filter(|prev| normalize_name(prev) != normalize_name(&track.name())),
            alt_artist_possessive: alt_artist.as_deref().map(possessive),
            alt_title,
            alt_artist,
            ..Slots::default()
        };
        slots.refresh_article();
        slots
    }

    /// The tags not yet said that name a genre or style.
    fn styles(&self) -> impl Iterator<Item = &str> {
        self.tags
            .iter()
            .map(String::as_str)
            .filter(|tag| is_genre_tag(tag))
    }

    fn refresh_article(&mut self) {
        self.a_tag = self.tags.first().map(|tag| with_article(tag));
        self.a_tag2 = self.tags.get(1).map(|tag| with_article(tag));
    }

    /// One expansion of a random pattern of `bank` that can be filled; `None` when none can.
    fn say(&self, rng: &mut ChaCha8Rng, bank: &[&str]) -> Option<String> {
        self.say_where(rng, bank, |_| true)
    }

    /// As [`Slots::say`], among the patterns `keep` accepts.
    fn say_where(
        &self,
        rng: &mut ChaCha8Rng,
        bank: &[&str],
        keep: impl Fn(&&str) -> bool,
    ) -> Option<String> {
        let open: Vec<&str> = bank
            .iter()
            .copied()
            .filter(|pattern| keep(pattern) && grammar::variant_count(pattern, self) > 0.0)
            .collect();
        let pattern = open.choose(rng)?;
        grammar::expand(pattern, self, rng)
    }

    /// Drops the facts `sentence` already states, so later sentences add new ones.
    fn forget_mentioned(&mut self, sentence: &str) {
        if self.album.as_deref().is_some_and(|a| sentence.contains(a)) {
            self.album = None;
        }
        if self.year.as_deref().is_some_and(|y| sentence.contains(y))
            || self.decade.as_deref().is_some_and(|d| sentence.contains(d))
        {
            self.year = None;
            self.decade = None;
        }
        let before = self.tags.len();
        // The title itself may contain a tag word; only tags outside the title count.
        let said = sentence.replace(&self.title, "");
        self.tags.retain(|tag| !said.contains(tag.as_str()));
        if self.tags.len() != before {
            self.refresh_article();
        }
    }
}

fn possessive(name: &str) -> String {
    if name.ends_with('s') || name.ends_with('S') {
        format!("{name}'")
    } else {
        format!("{name}'s")
    }
}

/// "an upbeat", "an 80s", "a jazz", "an r&b": the article by the first sound, roughly.
fn with_article(word: &str) -> String {
    let lower = word.to_lowercase();
    // Spelled-out letters ("r&b" is "ar and bee") and a "you" sound ("uk garage").
    let vowel = if lower.starts_with("r&") || lower.starts_with("mc") {
        true
    } else if ["uk", "uni", "eu", "use", "one"]
        .iter()
        .any(|w| lower.starts_with(w))
    {
        false
    } else {
        word.chars()
            .next()
            .is_some_and(|c| "aeiouAEIOU8".contains(c))
    };
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

/// "1990s", "90s", "'80s": era tags, which the release year says better.
fn is_era_tag(tag: &str) -> bool {
    let digits = tag.trim_start_matches('\'').trim_end_matches('s');
    (digits.len() == 2 || digits.len() == 4)
        && digits.chars().all(|c| c.is_ascii_digit())
        && digits.ends_with('0')
}

/// Tags worth saying aloud: short, not the artist's own name, not personal bookmarks, not
/// an era when the release year is known.
fn usable_tags(track: &Track) -> Vec<String> {
    let artist = normalize_name(&track.artist());
    let has_year = track.release_year().is_some();
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
                && !(has_year && is_era_tag(tag))
                && !seen.contains(&key);
            if keep {
                seen.push(key);
            }
            keep
        })
        .map(str::to_string)
        .collect()
}

fn no_track_reply(rng: &mut ChaCha8Rng, cues: &RequestCues) -> String {
    let slots = Slots {
        echo: EchoSlots::of(cues.echo.as_ref(), None),
        ..Slots::default()
    };
    slots
        .say(rng, phrases::NO_TRACK)
        .unwrap_or_else(|| "Sorry, I couldn't find a match. What would you like to hear?".into())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use music_crs_core::{Message, Role, TurnContext};

    use super::*;

    /// Pooled Distinct-2 of [`varied_requests`] over three seeds measured 0.2422 when the
    /// phrase grammar was written; the bound leaves room for wording changes, not for banks
    /// that shrink back to a few fixed sentences.
    const MIN_SMALL_VOCABULARY_DISTINCT_2: f64 = 0.22;

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

    /// True when the reply ends by inviting the next turn: a question or an explicit offer.
    fn invites(reply: &str) -> bool {
        let lower = reply.to_lowercase();
        let last = lower
            .trim_end_matches(['.', '!'])
            .rsplit(['.', '!'])
            .next()
            .unwrap_or_default();
        lower.ends_with('?')
            || [
                "let me know",
                "tell me",
                "say the word",
                "your call",
                "up to you",
                "happy to",
                "glad to",
                "i can",
            ]
            .iter()
            .any(|offer| last.contains(offer))
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
            assert!(invites(&reply), "{reply}");
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
                    .to_lowercase()
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
            // A message with no genre, mood, era, activity or artist the cue lexicons know
            // is not echoed (it once was, verbatim, like any run of unknown words).
            assert!(!reply.contains("静かな曲をお願いします"), "{reply}");
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

    /// A small, demo-like catalog: few words, so variety must come from the phrasing.
    fn varied_tracks() -> Vec<Track> {
        let titles = [
            "Lost Mirror",
            "Under the Naïve Morning",
            "Fire",
            "The Café",
            "Window",
        ];
        let artists = [
            "Ines Vance",
            "The Electric Skylines",
            "Björn & the Tides",
            "DJ Zoë",
        ];
        let tags = [
            "indie rock",
            "dreamy",
            "synth",
            "1990s",
            "jazz",
            "piano",
            "melancholic",
        ];
        let mut tracks = Vec::new();
        for (i, title) in titles.iter().enumerate() {
            for (j, artist) in artists.iter().enumerate() {
                let mut track = Track::new(format!("t{i}{j}"), *title, *artist);
                track.tag_list = tags
                    .iter()
                    .cycle()
                    .skip(i + j)
                    .take((i + j) % 5)
                    .map(|t| t.to_string())
                    .collect();
                if (i + j) % 3 != 0 {
                    track.album_name = vec![format!("{} Sessions", titles[(i + 1) % 5])];
                }
                if (i + j) % 4 != 1 {
                    track.release_date = Some(format!("{}-03-01", 1961 + 7 * (i + j)));
                }
                tracks.push(track);
            }
        }
        tracks
    }

    const MESSAGES: &[&str] = &[
        "I'm looking for some melancholic indie rock. Any ideas?",
        "Play something by Ines Vance.",
        "Nice, DJ Zoë never disappoints. Can we go somewhere more dreamy?",
        "Got any jazz from the 1960s?",
        "Another one like that?",
        "Give me something upbeat for a long run, maybe pop.",
        "",
        "静かな曲をお願いします",
    ];

    fn varied_requests() -> Vec<GenerationRequest> {
        let tracks = varied_tracks();
        let mut requests = Vec::new();
        for (n, track) in tracks.iter().enumerate() {
            for (m, message) in MESSAGES.iter().enumerate() {
                let mut req = request(&format!("s{n}"), m as u32 + 1, message, track.clone());
                req.recommended
                    .push(tracks[(n + m + 1) % tracks.len()].clone());
                if m > 0 {
                    req.played = vec![tracks[(n + 3 * m) % tracks.len()].clone()];
                }
                requests.push(req);
            }
        }
        requests
    }

    #[test]
    fn every_reply_is_grounded_across_seeds_and_requests() {
        let requests = varied_requests();
        for seed in 0..6 {
            let generator = TemplateGenerator::new(TemplateParams {
                seed,
                alternative_rate: 0.5,
                opener_rate: 0.5,
            })
            .unwrap();
            for req in &requests {
                let reply = generator.reply(req);
                let track = &req.recommended[0];
                assert!(
                    reply.contains(&format!("\"{}\"", track.name()))
                        && reply.contains(&track.artist()),
                    "{reply}"
                );
                assert!(invites(&reply), "{reply}");
                assert!(!reply.contains(['{', '}', '[', ']', '|']), "{reply}");
                assert!(!reply.contains("  ") && !reply.contains(" ."), "{reply}");
                let no_ellipsis = reply.replace("...", "");
                assert!(
                    !reply.contains(" ,") && !no_ellipsis.contains(".."),
                    "{reply}"
                );
                // Every year or decade said is the track's own (an era tag such as "1990s"
                // is dropped when the release year is known, and may be said otherwise).
                let year = track.release_year().map(|y| y.to_string());
                for word in reply.split(|c: char| !c.is_ascii_digit()) {
                    // Numbers echoed from the message are the listener's, not claims.
                    if word.len() == 4 && !req.context.user_message.contains(word) {
                        let own = match year.as_deref() {
                            Some(y) => y[..3] == word[..3],
                            None => track.tag_list.iter().any(|t| t.contains(word)),
                        };
                        assert!(own, "{word} is not the track's: {reply}");
                    }
                }
                // Albums are all "... Sessions" here, and only the recommended one is named.
                if track.album_name.is_empty() {
                    assert!(!reply.contains("Sessions"), "{reply}");
                }
            }
        }
    }

    #[test]
    fn a_genre_miss_is_always_owned_and_a_match_never_is() {
        let apologies = ["sorry", "apolog", "unfortunately"];
        let mut confirmed = 0;
        for seed in 0..40 {
            let generator = TemplateGenerator::new(TemplateParams {
                seed,
                ..TemplateParams::default()
            })
            .unwrap();
            let miss = generator.reply(&request(
                "s",
                3,
                "Switch it up, some heavy metal?",
                jazz_track(),
            ));
            let lower = miss.to_lowercase();
            assert!(apologies.iter().any(|a| lower.contains(a)), "{miss}");
            assert!(
                lower.contains("metal") && miss.contains("Peace Piece"),
                "{miss}"
            );
            let hit = generator.reply(&request("s", 3, "Switch it up, some jazz?", jazz_track()));
            let lower = hit.to_lowercase();
            assert!(!apologies.iter().any(|a| lower.contains(a)), "{hit}");
            confirmed += usize::from(lower.contains("jazz"));
        }
        // The requested genre is echoed or confirmed in every matching reply.
        assert_eq!(confirmed, 40);
    }

    #[test]
    fn same_seed_same_reply_other_seed_other_reply() {
        let requests = varied_requests();
        let first = TemplateGenerator::default()
            .generate_batch(&requests)
            .unwrap();
        let again = TemplateGenerator::new(TemplateParams::default())
            .unwrap()
            .generate_batch(&requests)
            .unwrap();
        assert_eq!(first, again);
        let other = TemplateGenerator::new(TemplateParams {
            seed: 99,
            ..TemplateParams::default()
        })
        .unwrap()
        .generate_batch(&requests)
        .unwrap();
        let changed = first.iter().zip(&other).filter(|(a, b)| a != b).count();
        assert!(
            changed * 10 >= requests.len() * 9,
            "{changed} of {}",
            requests.len()
        );
    }

    /// Distinct-2 as the challenge computes it (lowercase, whitespace split, pooled).
    fn distinct_2(replies: &[String]) -> f64 {
        let mut total = 0;
        let mut distinct = HashSet::new();
        for reply in replies {
            let words: Vec<String> = reply
                .to_lowercase()
                .split_whitespace()
                .map(String::from)
                .collect();
            for pair in words.windows(2) {
                total += 1;
                distinct.insert((pair[0].clone(), pair[1].clone()));
            }
        }
        distinct.len() as f64 / total.max(1) as f64
    }

    #[test]
    fn phrasing_is_varied_over_a_small_vocabulary() {
        // 20 tracks x 8 messages over a handful of words; 3 seeds give 480 replies whose
        // bigrams can only differ through the phrasing.
        let requests = varied_requests();
        let mut replies = Vec::new();
        for seed in 0..3 {
            let generator = TemplateGenerator::new(TemplateParams {
                seed,
                ..TemplateParams::default()
            })
            .unwrap();
            replies.extend(generator.generate_batch(&requests).unwrap());
        }
        let score = distinct_2(&replies);
        println!("Distinct-2 over {} replies: {score:.4}", replies.len());
        assert!(
            score >= MIN_SMALL_VOCABULARY_DISTINCT_2,
            "Distinct-2 {score:.4}"
        );
    }

    #[test]
    fn every_bank_pattern_is_well_formed_and_uses_known_slots() {
        let some = |v: &str| Some(v.to_string());
        let slots = Slots {
            title: "T".into(),
            artist: "A".into(),
            artist_possessive: some("A's"),
            the_artist: some("the A"),
            album: some("Al"),
            a_tag: some("an x"),
            a_tag2: some("a y"),
            year: some("1999"),
            decade: some("1990s"),
            echo: EchoSlots {
                phrase: some("e"),
                genre: some("g"),
                mood: some("m"),
                activity: some("a"),
                era: some("80s"),
                artist: some("A"),
            },
            tags: vec!["jazz".into(), "funk".into()],
            miss: some("m"),
            a_miss: some("an m"),
            asked_genre: some("g"),
            asked_artist: some("A"),
            prev_title: some("P"),
            alt_title: some("AT"),
            alt_artist: some("AA"),
            alt_artist_possessive: some("AA's"),
        };
        use grammar::Values;
        for name in SLOT_NAMES {
            assert!(slots.value(name).is_some(), "{name} has no value");
        }
        let banks = phrases::ALL_BANKS;
        for pattern in banks.iter().flat_map(|bank| bank.iter()) {
            let (names, balanced) = grammar::slot_names(pattern);
            assert!(balanced, "{pattern}");
            for name in names {
                let known = name == "title"
                    || name == "artist"
                    || slots.pattern(name).is_some()
                    || SLOT_NAMES.contains(&name);
                assert!(known, "unknown slot {name} in {pattern}");
            }
        }
        // Every core names the track (`echo_artist` is only ever the track's own artist, in
        // the catalog's spelling).
        for pattern in phrases::ECHO_CORES
            .iter()
            .chain(phrases::PLAIN_CORES)
            .chain(phrases::FUSED_CORES)
        {
            let names = pattern.contains("{track")
                || (pattern.contains("{title}") && pattern.contains("{echo_artist}"));
            assert!(names, "{pattern}");
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
