//! Checks of a written reply: empty, or degenerate (a small model stuck repeating itself).
//!
//! A run reports how many replies each check caught, and which turns, rather than hiding
//! them: a model that answers a tenth of the turns with nothing, or with the same phrase over
//! and over, should show in the run's summary and not only as a lower lexical diversity.
//!
//! # Definitions
//!
//! The reply is read as lowercase tokens: a run of letters and digits (apostrophes inside a
//! word included: `you're`) is one token, and every other character that is not white space
//! (`!`, `.`, an emoji) is a token of its own.
//!
//! - **Empty**: the reply has no character other than white space.
//! - **Degenerate**, either of:
//!   - *a loop*: some unit of `p` tokens (1 ≤ `p` ≤ [`MAX_LOOP_UNIT`]) repeated back to back
//!     at least [`MIN_LOOP_REPEATS`] times, the repeated stretch spanning at least
//!     [`MIN_LOOP_TOKENS`] tokens (a trailing partial unit counts toward the span). So a
//!     phrase of 3 or more tokens needs 3 repeats, a single word needs 9 (`the the the ...`)
//!     and two words 5 (`so good so good ...`): three tokens back to back is language, nine is
//!     a loop.
//!   - *a dominant phrase*: one phrase of [`MIN_PHRASE_TOKENS`] to [`MAX_PHRASE_TOKENS`]
//!     tokens occurring at least [`MIN_PHRASE_REPEATS`] times (occurrences counted without
//!     overlap) and covering at least [`MIN_PHRASE_SHARE`] of the reply's tokens, back to
//!     back or not (`Here is a song for you: A. Here is a song for you: B. ...`).
//!
//! Both rules need the same words in the same order several times over; a grounded reply
//! that names a track twice, or says "very very good", passes.
//!
//! ```
//! use music_crs_generate::reply_check::{check_reply, ReplyCheck};
//!
//! assert_eq!(check_reply("  "), ReplyCheck::Empty);
//! assert_eq!(check_reply("Try \"Blue in Green\" by Miles Davis: soft piano for a rainy night."), ReplyCheck::Ok);
//! let looping = check_reply("I hope you enjoy it! I hope you enjoy it! I hope you enjoy it! I hope");
//! assert!(matches!(looping, ReplyCheck::Degenerate(_)));
//! ```

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest unit, in tokens, looked for by the loop rule.
pub const MAX_LOOP_UNIT: usize = 16;
/// Fewest back-to-back repeats of a unit that make a loop.
pub const MIN_LOOP_REPEATS: usize = 3;
/// Fewest tokens a loop spans (so that one or two short words said thrice are not a loop).
pub const MIN_LOOP_TOKENS: usize = 9;
/// Shortest phrase, in tokens, of the dominant-phrase rule.
pub const MIN_PHRASE_TOKENS: usize = 3;
/// Longest phrase, in tokens, of the dominant-phrase rule.
pub const MAX_PHRASE_TOKENS: usize = 8;
/// Fewest occurrences of a dominant phrase.
pub const MIN_PHRASE_REPEATS: usize = 3;
/// Least share of the reply's tokens a dominant phrase covers.
pub const MIN_PHRASE_SHARE: f64 = 0.5;

/// What the check found in one reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReplyCheck {
    /// Neither empty nor degenerate.
    #[default]
    Ok,
    /// Nothing but white space.
    Empty,
    /// A loop or a dominant phrase (see the [module docs](self)).
    Degenerate(Repetition),
}

impl ReplyCheck {
    /// The status as one word: `ok`, `empty` or `degenerate`.
    pub fn status(&self) -> &'static str {
        match self {
            ReplyCheck::Ok => "ok",
            ReplyCheck::Empty => "empty",
            ReplyCheck::Degenerate(_) => "degenerate",
        }
    }

    /// True for [`ReplyCheck::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, ReplyCheck::Ok)
    }
}

/// Which rule found a repetition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepetitionKind {
    /// A unit repeated back to back.
    Loop,
    /// A phrase covering much of the reply, not necessarily back to back.
    Dominant,
}

/// The repetition that makes a reply degenerate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repetition {
    /// Which rule found it.
    pub kind: RepetitionKind,
    /// The repeated unit or phrase, its tokens joined by single spaces.
    pub phrase: String,
    /// How many times it occurs (whole units, for a loop).
    pub times: usize,
    /// Tokens the repetition covers (a loop's whole stretch, or every occurrence).
    pub covered_tokens: usize,
    /// Tokens in the reply.
    pub reply_tokens: usize,
}

impl Repetition {
    /// The share of the reply's tokens the repetition covers, in (0, 1].
    pub fn share(&self) -> f64 {
        if self.reply_tokens == 0 {
            0.0
        } else {
            self.covered_tokens as f64 / self.reply_tokens as f64
        }
    }
}

impl fmt::Display for Repetition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.kind {
            RepetitionKind::Loop => " back to back",
            RepetitionKind::Dominant => "",
        };
        write!(
            f,
            "{:?} {} times{how} ({} of {} tokens)",
            self.phrase, self.times, self.covered_tokens, self.reply_tokens
        )
    }
}

impl fmt::Display for ReplyCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyCheck::Degenerate(repetition) => write!(f, "degenerate: {repetition}"),
            other => f.write_str(other.status()),
        }
    }
}

/// Checks one reply (see the [module docs](self) for the definitions).
pub fn check_reply(text: &str) -> ReplyCheck {
    let tokens = tokens(text);
    if tokens.is_empty() {
        return ReplyCheck::Empty;
    }
    match longest_loop(&tokens).or_else(|| dominant_phrase(&tokens)) {
        Some(repetition) => ReplyCheck::Degenerate(repetition),
        None => ReplyCheck::Ok,
    }
}

/// Whether a reply names a track: one of its titles and one of its artists each appear in the
/// reply as a whole run of tokens (lowercase; punctuation and spacing ignored, as in
/// [`check_reply`]; a possessive counts: `Bill Evans's`). A title also counts without a trailing qualifier in brackets or after a
/// dash (`Peace Piece` for `Peace Piece (Remastered 2003)`), and an artist credit of several
/// names (`A, B & C`, `A feat. B`) counts when any one of them appears.
///
/// ```
/// use music_crs_generate::reply_check::names_track;
///
/// let titles = ["Peace Piece - Remastered".to_string()];
/// let artists = ["Bill Evans".to_string()];
/// assert!(names_track("Try \"peace piece\" by BILL EVANS.", &titles, &artists));
/// assert!(!names_track("Try Peace Piece, a calm solo.", &titles, &artists));
/// ```
pub fn names_track(reply: &str, titles: &[String], artists: &[String]) -> bool {
    let reply = tokens(reply);
    let said = |name: &str| {
        let name = tokens(name);
        !name.is_empty()
            && reply.windows(name.len()).any(|window| {
                let last = name.len() - 1;
                window[..last] == name[..last] && said_as(&window[last], &name[last])
            })
    };
    let title_named = titles
        .iter()
        .any(|title| said(title) || said(core_title(title)));
    title_named
        && artists
            .iter()
            .any(|artist| said(artist) || credited_names(artist).any(said))
}

/// Whether a reply's token says a name's last token, possessive included (`Evans's`,
/// `Evans'`).
fn said_as(token: &str, name: &str) -> bool {
    token == name
        || token
            .strip_prefix(name)
            .is_some_and(|rest| matches!(rest, "'s" | "\u{2019}s" | "'" | "\u{2019}"))
}

/// A title without a trailing qualifier: the part before ` (`, ` [` or ` - `.
fn core_title(title: &str) -> &str {
    [" (", " [", " - "]
        .iter()
        .filter_map(|mark| title.find(mark))
        .min()
        .map_or(title, |cut| &title[..cut])
}

/// The single names of an artist credit: split at commas, `&`, ` and `, ` x `, `feat.`,
/// `ft.`, `featuring`, `with`.
fn credited_names(credit: &str) -> impl Iterator<Item = &str> {
    let lower = credit.to_lowercase();
    // Cut points found in the lowercase copy; ASCII separators keep byte offsets aligned.
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for separator in [
        ",",
        "&",
        " and ",
        " x ",
        " feat. ",
        " feat ",
        " ft. ",
        " featuring ",
        " with ",
    ] {
        let mut from = 0;
        while let Some(at) = lower.get(from..).and_then(|rest| rest.find(separator)) {
            cuts.push((from + at, separator.len()));
            from += at + separator.len();
        }
    }
    cuts.sort_unstable();
    let mut parts = Vec::new();
    let mut start = 0;
    if lower.len() == credit.len() {
        for (at, len) in cuts {
            if at >= start {
                parts.push(&credit[start..at]);
                start = at + len;
            }
        }
    }
    parts.push(&credit[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|part| !part.is_empty())
}

/// The reply's lowercase tokens: word runs (letters, digits, inner apostrophes) and single
/// other non-space characters.
fn tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let inner_apostrophe = (c == '\'' || c == '\u{2019}')
            && !word.is_empty()
            && chars.peek().is_some_and(|next| next.is_alphanumeric());
        if c.is_alphanumeric() || inner_apostrophe {
            word.extend(c.to_lowercase());
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        if !c.is_whitespace() {
            tokens.push(c.to_lowercase().collect());
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

/// The loop covering the most tokens (the shortest unit on a tie), if any.
fn longest_loop(tokens: &[String]) -> Option<Repetition> {
    let mut best: Option<(usize, usize, usize)> = None; // (unit, start, span)
    for unit in 1..=MAX_LOOP_UNIT.min(tokens.len() / MIN_LOOP_REPEATS) {
        let needed = (unit * MIN_LOOP_REPEATS).max(MIN_LOOP_TOKENS);
        // `matched` counts the tokens equal to the one `unit` places before, in a row.
        let mut matched = 0;
        for end in unit..tokens.len() {
            if tokens[end] == tokens[end - unit] {
                matched += 1;
            } else {
                matched = 0;
            }
            let span = matched + unit;
            if span >= needed && best.is_none_or(|(_, _, longest)| span > longest) {
                best = Some((unit, end + 1 - span, span));
            }
        }
    }
    best.map(|(unit, start, span)| Repetition {
        kind: RepetitionKind::Loop,
        phrase: tokens[start..start + unit].join(" "),
        times: span / unit,
        covered_tokens: span,
        reply_tokens: tokens.len(),
    })
}

/// The phrase covering the most tokens under the dominant-phrase rule, if any (on a tie,
/// the shorter phrase, then the one that occurs first).
fn dominant_phrase(tokens: &[String]) -> Option<Repetition> {
    let mut best: Option<(usize, usize, usize)> = None; // (length, first start, times)
    for length in MIN_PHRASE_TOKENS..=MAX_PHRASE_TOKENS.min(tokens.len()) {
        // Per phrase: (first start, occurrences without overlap, end of the last counted).
        let mut seen: HashMap<&[String], (usize, usize, usize)> = HashMap::new();
        for start in 0..=tokens.len() - length {
            let phrase = &tokens[start..start + length];
            let entry = seen.entry(phrase).or_insert((start, 0, 0));
            if entry.1 == 0 || start >= entry.2 {
                entry.1 += 1;
                entry.2 = start + length;
            }
        }
        // Scanned in order of first occurrence, so ties break the same way on every run.
        let mut candidates: Vec<(usize, usize)> = seen
            .into_values()
            .filter(|&(_, times, _)| times >= MIN_PHRASE_REPEATS)
            .map(|(first, times, _)| (first, times))
            .collect();
        candidates.sort_unstable();
        for (first, times) in candidates {
            let covered = times * length;
            let dominant = covered as f64 >= MIN_PHRASE_SHARE * tokens.len() as f64;
            if dominant && best.is_none_or(|(l, _, t)| covered > l * t) {
                best = Some((length, first, times));
            }
        }
    }
    best.map(|(length, first, times)| Repetition {
        kind: RepetitionKind::Dominant,
        phrase: tokens[first..first + length].join(" "),
        times,
        covered_tokens: times * length,
        reply_tokens: tokens.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(reply: &str, title: &str, artist: &str) -> bool {
        names_track(reply, &[title.to_string()], &[artist.to_string()])
    }

    #[test]
    fn a_reply_names_a_track_by_whole_title_and_artist_tokens() {
        assert!(names(
            "Try \"Blue in Green\" by Miles Davis.",
            "Blue in Green",
            "Miles Davis"
        ));
        assert!(names(
            "blue in green -- miles davis!",
            "Blue In Green",
            "Miles Davis"
        ));
        // Both are needed, and partial words do not count.
        assert!(!names(
            "Try Blue in Green, a calm one.",
            "Blue in Green",
            "Miles Davis"
        ));
        assert!(!names(
            "Miles Davis plays on it.",
            "Blue in Green",
            "Miles Davis"
        ));
        assert!(!names(
            "Try Blue in Greenland by Miles Davis",
            "Blue in Green",
            "Miles Davis"
        ));
        // A qualifier after the title may be left out; a credit of several names needs one.
        assert!(names(
            "Peace Piece by Bill Evans",
            "Peace Piece (Remastered 2003)",
            "Bill Evans"
        ));
        assert!(names(
            "So What by Miles Davis",
            "So What - Live",
            "Miles Davis"
        ));
        assert!(names(
            "Under Pressure by David Bowie",
            "Under Pressure",
            "Queen & David Bowie"
        ));
        assert!(names("Stay by Rihanna", "Stay", "Rihanna feat. Mikky Ekko"));
        assert!(names("Stay by Mikky Ekko", "Stay", "Rihanna, Mikky Ekko"));
        assert!(!names("Stay by Rihanna", "Stay", ""));
        assert!(!names("", "Stay", "Rihanna"));
        // A possessive names the artist; a longer word does not.
        assert!(names(
            "Bill Evans's Peace Piece",
            "Peace Piece",
            "Bill Evans"
        ));
        assert!(names(
            "Bill Evans\u{2019} Peace Piece",
            "Peace Piece",
            "Bill Evans"
        ));
        assert!(!names(
            "Bill Evansville's Peace Piece",
            "Peace Piece",
            "Bill Evans"
        ));
        // Any of a track's titles and artists will do.
        assert!(names_track(
            "Hey Jude by The Beatles",
            &["Hey Jude - Remastered".into(), "Hey Jude".into()],
            &["Beatles, The".into(), "The Beatles".into()],
        ));
    }

    fn degenerate(text: &str) -> Repetition {
        match check_reply(text) {
            ReplyCheck::Degenerate(repetition) => repetition,
            other => panic!("{text:?} was {other:?}, not degenerate"),
        }
    }

    #[test]
    fn tokens_split_words_and_punctuation() {
        assert_eq!(
            tokens("You're SO right!! Café 🎵"),
            ["you're", "so", "right", "!", "!", "café", "🎵"]
        );
        assert_eq!(tokens("rock 'n' roll"), ["rock", "'", "n", "'", "roll"]);
        assert!(tokens(" \n\t").is_empty());
    }

    #[test]
    fn empty_means_only_white_space() {
        assert_eq!(check_reply(""), ReplyCheck::Empty);
        assert_eq!(check_reply(" \n \t"), ReplyCheck::Empty);
        assert_eq!(check_reply("."), ReplyCheck::Ok);
    }

    #[test]
    fn grounded_replies_pass() {
        // Replies as the template generator and a working model write them.
        for reply in [
            "I recommend \"Blue in Green\" by Miles Davis. It's a calm jazz track with soft \
             piano, perfect for a rainy evening. Enjoy!",
            "Here's \"Take Five\" by The Dave Brubeck Quartet, from Time Out (1959): cool jazz \
             in 5/4. If you like it, \"Blue Rondo à la Turk\" is on the same album.",
            "Sure! \"Smells Like Teen Spirit\" by Nirvana is a grunge classic. Nirvana at their \
             loudest: \"Smells Like Teen Spirit\" never gets old.",
            "Yes, yes, yes! Very very very good choice: \"La La La\" by Naughty Boy.",
            "Great pick. Great pick. Now something calmer?",
            "ok",
        ] {
            assert_eq!(check_reply(reply), ReplyCheck::Ok, "{reply}");
        }
    }

    #[test]
    fn a_sentence_looping_is_degenerate() {
        // Greedy decoding of a small model, cut by the token limit mid-sentence.
        let found = degenerate(
            "I'm glad you're enjoying the music! I'm glad you're enjoying the music! I'm glad \
             you're enjoying the music! I'm glad you're",
        );
        assert_eq!(found.kind, RepetitionKind::Loop);
        assert_eq!(found.phrase, "i'm glad you're enjoying the music !");
        assert_eq!(found.times, 3);
        assert_eq!(found.reply_tokens, 24);
        assert_eq!(found.covered_tokens, 24);
        assert_eq!(found.share(), 1.0);
    }

    #[test]
    fn a_loop_after_a_good_start_is_degenerate() {
        let found = degenerate(
            "Try \"Clair de Lune\" by Debussy, a gentle piano piece. It is calm and calm and \
             calm and calm and calm and",
        );
        assert_eq!(found.kind, RepetitionKind::Loop);
        assert_eq!(found.phrase, "calm and");
        assert_eq!(found.times, 5);
        assert_eq!(found.covered_tokens, 10);
    }

    #[test]
    fn loop_thresholds_are_exact() {
        // A three-token unit: twice is not a loop, three times is.
        assert!(check_reply("one two three one two three").is_ok());
        let three = degenerate("one two three one two three one two three");
        assert_eq!((three.times, three.covered_tokens), (3, 9));
        // One word: eight times is not a loop, nine times is.
        assert!(check_reply(&"la ".repeat(8)).is_ok());
        assert_eq!(degenerate(&"la ".repeat(9)).phrase, "la");
        // Two words: four times (8 tokens) is not a loop, five times (10) is.
        assert!(check_reply(&"so good ".repeat(4)).is_ok());
        assert_eq!(degenerate(&"so good ".repeat(5)).phrase, "so good");
        // Punctuation loops too.
        assert_eq!(degenerate(&"!".repeat(12)).phrase, "!");
        assert!(check_reply("Wow!!! Amazing...").is_ok());
    }

    #[test]
    fn case_does_not_hide_a_loop() {
        let found = degenerate("Enjoy the music. enjoy the music. ENJOY THE MUSIC. Enjoy");
        assert_eq!(found.phrase, "enjoy the music .");
    }

    #[test]
    fn a_dominant_phrase_is_degenerate_without_being_back_to_back() {
        let found = degenerate(
            "Here is a song for you: Hello. Here is a song for you: Yesterday. Here is a song \
             for you: Imagine.",
        );
        assert_eq!(found.kind, RepetitionKind::Dominant);
        assert_eq!(found.phrase, "here is a song for you :");
        assert_eq!(found.times, 3);
        assert_eq!(found.covered_tokens, 21);
        assert_eq!(found.reply_tokens, 27);
    }

    #[test]
    fn a_phrase_said_thrice_in_a_long_reply_is_not_dominant() {
        // "the track by" three times: 9 of 37 tokens.
        let reply = "Play the track by Nina Simone first, then the track by Etta James, and \
                     finally the track by Billie Holiday; all three sing the blues with a \
                     voice you will not forget soon.";
        assert!(check_reply(reply).is_ok(), "{:?}", check_reply(reply));
    }

    #[test]
    fn smollm2_replies_on_the_demo_are_told_apart() {
        // Replies SmolLM2-135M-Instruct (greedy, 48 tokens) wrote for the demo's first
        // session (`run --config config/demo_bm25_smollm2.toml --sessions 2`).
        let stuck = degenerate(
            "\"Theo Kowalski, theo kowalski, theo kowalski, theo kowalski, theo kowalski, theo \
             kowalski, theo kowals",
        );
        assert_eq!(stuck.phrase, "theo kowalski ,");
        assert_eq!(
            (stuck.times, stuck.covered_tokens, stuck.reply_tokens),
            (6, 19, 21)
        );
        let gift = degenerate(
            "Great, I'm glad you liked it. Now, I'm going to give you a little gift. I'm going \
             to give you a little gift. I'm going to give you a little gift. I'm going to give \
             you a",
        );
        assert_eq!(gift.phrase, "i'm going to give you a little gift .");
        assert_eq!(
            (gift.times, gift.covered_tokens, gift.reply_tokens),
            (3, 33, 43)
        );
        // Repetitive but not stuck: "a great choice" three times is a third of the reply.
        for sound in [
            "Great, that's a great choice. \"Under the Naïve Morning\" by Renée Vance is a \
             great choice. It's a great choice.",
            "Great, great. That's a great reference. \"Café\" from Renée Vance's Renée Vance \
             should hit the spot.",
            "Great choice. You might like \"Under the Lost River\" by Felix delgado. It's a \
             different artist, but a great choice.",
        ] {
            assert!(
                check_reply(sound).is_ok(),
                "{sound}: {:?}",
                check_reply(sound)
            );
        }
    }

    #[test]
    fn findings_are_the_same_on_every_call() {
        let reply = "a b c d a b c d x a b c d y a b c d";
        let first = check_reply(reply);
        for _ in 0..20 {
            assert_eq!(check_reply(reply), first);
        }
        assert!(matches!(first, ReplyCheck::Degenerate(_)));
    }

    #[test]
    fn checks_round_trip_through_json() {
        for check in [
            ReplyCheck::Ok,
            ReplyCheck::Empty,
            check_reply(&"so good ".repeat(6)),
        ] {
            let json = serde_json::to_string(&check).unwrap();
            assert_eq!(serde_json::from_str::<ReplyCheck>(&json).unwrap(), check);
        }
        assert_eq!(
            serde_json::to_string(&ReplyCheck::Empty).unwrap(),
            r#"{"status":"empty"}"#
        );
    }

    #[test]
    fn descriptions_name_the_phrase() {
        let text = check_reply(&"so good ".repeat(5)).to_string();
        assert_eq!(
            text,
            "degenerate: \"so good\" 5 times back to back (10 of 10 tokens)"
        );
    }
}
