//! What a listener's message asks for, read with light heuristics: a salient phrase to echo,
//! an artist the listener names, and a genre they want.

use music_crs_core::Track;

/// Moods and qualities a listener may ask for.
pub(crate) const MOODS: &[&str] = &[
    "upbeat",
    "energetic",
    "mellow",
    "calm",
    "chill",
    "chilled",
    "happy",
    "sad",
    "dark",
    "romantic",
    "melancholic",
    "melancholy",
    "dreamy",
    "aggressive",
    "relaxing",
    "relaxed",
    "peaceful",
    "uplifting",
    "groovy",
    "heavy",
    "soft",
    "acoustic",
    "moody",
    "nostalgic",
    "emotional",
    "intense",
    "gentle",
    "catchy",
    "funky",
    "atmospheric",
    "epic",
    "slow",
    "fast",
    "faster",
    "slower",
    "quiet",
    "loud",
    "danceable",
    "cheerful",
    "hopeful",
    "angry",
    "soothing",
    "haunting",
    "bright",
    "warm",
    "cozy",
    "cosy",
    "fun",
    "sexy",
    "smooth",
    "raw",
    "minimal",
    "instrumental",
    "orchestral",
    "experimental",
    "underground",
    "obscure",
    "popular",
    "rebellious",
    "anthemic",
    "gritty",
    "bittersweet",
    "feel-good",
    "confident",
    "laid-back",
    "introspective",
    "sensual",
    "soulful",
    "sophisticated",
    "late-night",
    "swinging",
    "hypnotic",
    "euphoric",
    "futuristic",
    "pulsing",
    "meditative",
    "intimate",
    "serene",
    "dramatic",
    "majestic",
    "contemplative",
    "sunny",
    "passionate",
    "festive",
    "heartfelt",
    "easygoing",
    "rootsy",
    "wistful",
    "positive",
    "hazy",
    "playful",
];

/// Genres (matched against track tags to notice a plain miss).
pub(crate) const GENRES: &[&str] = &[
    "jazz",
    "rock",
    "pop",
    "hip hop",
    "hip-hop",
    "rap",
    "metal",
    "punk",
    "blues",
    "country",
    "folk",
    "soul",
    "funk",
    "disco",
    "house",
    "techno",
    "trance",
    "edm",
    "dubstep",
    "drum and bass",
    "reggae",
    "reggaeton",
    "latin",
    "salsa",
    "k-pop",
    "kpop",
    "j-pop",
    "r&b",
    "rnb",
    "indie",
    "grunge",
    "ambient",
    "classical",
    "opera",
    "gospel",
    "electronic",
    "electronica",
    "synthpop",
    "synthwave",
    "lo-fi",
    "lofi",
    "trap",
    "emo",
    "ska",
    "bossa nova",
    "samba",
    "afrobeat",
    "afrobeats",
    "dancehall",
    "shoegaze",
    "post-rock",
    "psychedelic",
    "bluegrass",
    "soundtrack",
    "city pop",
    "new wave",
    "grime",
    "garage",
    "flamenco",
    "tango",
    "cumbia",
    "bachata",
    "hardcore",
    "alternative",
    "britpop",
    "chanson",
    "fado",
    "swing",
    "bebop",
    "indie rock",
    "indie pop",
    "dream pop",
    "post-punk",
    "synth-pop",
    "dance-pop",
    "electropop",
    "neo-soul",
    "cool jazz",
    "jazz fusion",
    "drone",
    "new age",
    "downtempo",
    "baroque",
    "minimalism",
    "thrash metal",
    "doom metal",
    "metalcore",
    "motown",
    "dub",
    "honky tonk",
    "classic rock",
    "idm",
];

/// Activities and moments, with the phrase used to echo them.
pub(crate) const ACTIVITIES: &[(&str, &str)] = &[
    ("workout", "a workout"),
    ("gym", "the gym"),
    ("running", "running"),
    ("run", "a run"),
    ("jogging", "jogging"),
    ("study", "studying"),
    ("studying", "studying"),
    ("focus", "focus"),
    ("coding", "coding"),
    ("road trip", "a road trip"),
    ("driving", "driving"),
    ("drive", "a drive"),
    ("party", "a party"),
    ("sleep", "sleep"),
    ("sleeping", "sleeping"),
    ("cooking", "cooking"),
    ("dinner", "dinner"),
    ("dancing", "dancing"),
    ("wedding", "a wedding"),
    ("rainy", "a rainy day"),
    ("rain", "a rainy day"),
    ("morning", "the morning"),
    ("evening", "the evening"),
    ("night", "the night"),
    ("late night", "a late night"),
    ("summer", "summer"),
    ("winter", "winter"),
    ("commute", "the commute"),
    ("meditation", "meditation"),
    ("yoga", "yoga"),
    ("reading", "reading"),
    ("cleaning", "cleaning"),
    ("beach", "the beach"),
    ("sunset", "sunset"),
];

/// Eras written as decades.
pub(crate) const ERAS: &[&str] = &[
    "50s", "60s", "70s", "80s", "90s", "00s", "2000s", "2010s", "1950s", "1960s", "1970s", "1980s",
    "1990s", "'60s", "'70s", "'80s", "'90s",
];

/// Words a phrase worth echoing does not start, end or consist of.
#[rustfmt::skip]
const STOPWORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "so", "to", "of", "in", "on", "at", "for", "with",
    "by", "from", "as", "is", "are", "was", "were", "be", "been", "it", "its", "it's", "this",
    "that", "these", "those", "i", "i'm", "i'd", "i've", "me", "my", "mine", "you", "your",
    "we", "our", "us", "he", "she", "they", "them", "their", "can", "could", "would", "will",
    "should", "please", "play", "recommend", "suggest", "want", "wanna", "need", "give", "find",
    "get", "let", "let's", "listen", "hear", "song", "songs", "track", "tracks", "music",
    "tune", "tunes", "some", "more", "any", "something", "anything", "like", "just", "really",
    "very", "maybe", "also", "too", "now", "then", "again", "do", "does", "did", "have", "has",
    "had", "what", "which", "who", "how", "about", "into", "up", "down", "out", "over", "not",
    "no", "yes", "yeah", "ok", "okay", "thanks", "thank", "hi", "hey", "hello", "great", "good",
    "nice", "love", "loved", "liked", "one", "ones", "else", "other", "another", "same",
    "there", "here", "is", "am", "if", "when", "while", "than", "much", "bit", "little", "kind",
    "sort", "type", "looking", "feel", "feeling", "mood", "vibe", "vibes", "thing", "things",
    "stuff", "try", "else", "keep", "going", "switch", "change", "perfect", "ideally", "still",
    "time", "ones", "lot", "way", "know", "think", "sure", "right", "well", "though", "i'll",
    "you're", "that's", "let's", "go", "make", "made", "enjoy", "enjoyed", "similar",
    "recommendation", "recommendations", "suggestion", "suggestions", "artist", "artists",
    "band", "bands", "album", "albums", "playlist", "list", "new", "different", "stay", "stick",
    "start", "help", "remember", "record", "records",
];

/// Words that end the phrase after "something" / "anything".
const CLAUSE_BREAKS: &[&str] = &[
    "but", "please", "because", "so", "thanks", "and", "or", "which", "that's", "though",
];

/// Words that, just before "by" / "from", make it a request for an artist.
const REQUEST_NOUNS: &[&str] = &[
    "song",
    "songs",
    "track",
    "tracks",
    "music",
    "something",
    "anything",
    "stuff",
    "more",
    "another",
    "one",
    "ones",
    "tunes",
    "play",
    "some",
    "hits",
    "album",
    "work",
    "else",
];

/// Verbs of a request to hear something.
const REQUEST_VERBS: &[&str] = &[
    "play",
    "hear",
    "find",
    "recommend",
    "suggest",
    "need",
    "want",
    "queue",
    "put",
    "give",
];

/// Place names that follow "from" without naming an artist.
const PLACES: &[&str] = &[
    "japan",
    "korea",
    "china",
    "india",
    "brazil",
    "mexico",
    "spain",
    "france",
    "germany",
    "italy",
    "uk",
    "england",
    "britain",
    "ireland",
    "scotland",
    "usa",
    "us",
    "america",
    "canada",
    "australia",
    "africa",
    "nigeria",
    "ghana",
    "cuba",
    "jamaica",
    "argentina",
    "colombia",
    "chile",
    "peru",
    "sweden",
    "norway",
    "finland",
    "iceland",
    "russia",
    "turkey",
    "greece",
    "portugal",
    "europe",
    "asia",
    "latin",
    "the",
    "my",
    "your",
    "this",
    "that",
    "today",
    "now",
    "then",
    "before",
    "last",
    "next",
    "earlier",
];

/// Lowercase word with the punctuation around it removed (letters of every script kept).
pub(crate) fn clean_word(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric() && c != '&' && c != '\'' && c != '-')
        .trim_matches('\'')
        .to_lowercase()
}

fn ends_clause(word: &str) -> bool {
    word.ends_with([',', '.', '!', '?', ';', ':'])
}

fn is_stopword(word: &str) -> bool {
    word.is_empty() || STOPWORDS.contains(&word)
}

/// Finds a lexicon entry (one or two words) in the cleaned words.
fn find_terms<'a>(
    words: &[String],
    lexicon: impl Iterator<Item = &'a str>,
) -> Vec<(usize, &'a str)> {
    let mut found: Vec<(usize, &str)> = Vec::new();
    for term in lexicon {
        let parts: Vec<&str> = term.split(' ').collect();
        let hit = words
            .windows(parts.len())
            .position(|window| window.iter().zip(&parts).all(|(w, p)| w == p));
        if let Some(position) = hit {
            found.push((position, term));
        }
    }
    // At one position the longer term wins ("indie rock" over "indie").
    found.sort_by_key(|&(position, term)| (position, std::cmp::Reverse(term.len()), term));
    found
}

/// The kind of request a listener made, which decides how a reply may echo it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CueKind {
    /// A genre, maybe with a mood or era ("chill jazz", "1990s hip-hop").
    Genre,
    /// A mood or quality ("mellow", "more upbeat").
    Mood,
    /// An activity or moment ("a workout", "a rainy day").
    Activity,
    /// An era ("80s").
    Era,
    /// An artist the listener names.
    Artist,
    /// Several kinds in one phrase ("something mellow for a rainy evening").
    Mixed,
}

/// A request to echo: its kind and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Echo {
    /// What kind of request it is.
    pub kind: CueKind,
    /// A noun phrase that reads after "for" or "you asked for" ("something mellow", "chill
    /// jazz", "music for a workout", "80s music"); `None` for an artist, whose name is echoed
    /// only by patterns made for names.
    pub phrase: Option<String>,
    /// The bare words of a single-kind request: the genre phrase, the mood ("more upbeat"),
    /// the activity ("a workout"), the era ("80s") or the artist's name.
    pub bare: Option<String>,
}

/// What a message asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RequestCues {
    /// The request to echo back; `None` when no genre, mood, era, activity or artist is asked
    /// for clearly (then a reply says nothing about the request).
    pub echo: Option<Echo>,
    /// An artist the listener names ("songs by Adele").
    pub artist: Option<String>,
    /// A genre the listener asks for.
    pub genre: Option<String>,
}

impl RequestCues {
    /// Reads the cues of `message`; `played` (oldest first) resolves "the same artist" and
    /// keeps names of tracks and albums already played from passing for requests.
    pub fn read(message: &str, played: &[Track]) -> Self {
        let message = without_quotes(message);
        let raw: Vec<&str> = message.split_whitespace().collect();
        let words: Vec<String> = raw.iter().map(|w| clean_word(w)).collect();
        let names = name_words(&raw);
        let genre = find_terms(&words, GENRES.iter().copied())
            .into_iter()
            .find(|(at, term)| !names_hit(&names, *at, term))
            .map(|(_, g)| g.to_string());
        let artist = named_artist(&raw, &words)
            .filter(|name| !names_a_played_title(name, played))
            .or_else(|| same_artist(&message, played.last()));
        let echo = match &artist {
            Some(name) => Some(Echo {
                kind: CueKind::Artist,
                phrase: None,
                bare: Some(name.clone()),
            }),
            None => echo_of(&raw, &words, &names),
        };
        RequestCues {
            echo,
            artist,
            genre,
        }
    }
}

/// The message with quoted spans ("Title", “Title”, ‘Title’, 'Title') blanked out: quotes
/// hold titles, whose words are never requests. A quoted span ends its sentence.
fn without_quotes(message: &str) -> String {
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let after_space = i == 0 || chars[i - 1].is_whitespace() || "([".contains(chars[i - 1]);
        let close = match c {
            '"' => Some('"'),
            '\u{201c}' => Some('\u{201d}'),
            '\u{2018}' => Some('\u{2019}'),
            // A straight single quote opens a title only before a capital, after a space.
            '\'' if after_space && chars.get(i + 1).is_some_and(|n| n.is_uppercase()) => Some('\''),
            _ => None,
        };
        if let Some(close) = close {
            let end = chars[i + 1..]
                .iter()
                .enumerate()
                .position(|(k, &ch)| {
                    ch == close
                        && (close != '\''
                            || chars.get(i + 2 + k).is_none_or(|n| !n.is_alphanumeric()))
                })
                .map(|k| i + 1 + k);
            if let Some(end) = end {
                out.push_str(" . ");
                i = end + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Which words are written like part of a name: a capital inside a sentence, or a capital at
/// its start followed by another capitalised word ("Midnight Rain was great"). Such words are
/// titles or names, never a genre, mood or activity asked for.
fn name_words(raw: &[&str]) -> Vec<bool> {
    let capital = |word: &str| {
        word.trim_start_matches(|c: char| !c.is_alphanumeric())
            .chars()
            .next()
            .is_some_and(char::is_uppercase)
    };
    (0..raw.len())
        .map(|i| {
            if !capital(raw[i]) || raw[i] == "I" {
                return false;
            }
            let starts_sentence = i == 0 || raw[i - 1].ends_with(['.', '!', '?', ':']);
            let next_capital = raw
                .get(i + 1)
                .is_some_and(|next| capital(next) && !ends_clause(raw[i]));
            let previous_capital = i > 0 && !starts_sentence && capital(raw[i - 1]);
            !starts_sentence || next_capital || previous_capital
        })
        .collect()
}

/// True when a lexicon hit of `term` at `at` covers a word written as part of a name.
fn names_hit(names: &[bool], at: usize, term: &str) -> bool {
    let len = term.split(' ').count();
    names.iter().skip(at).take(len).any(|&name| name)
}

/// True when `name` is (part of) the title or album of a track already played and not its
/// artist: "more from Songs of Innocence" names an album.
fn names_a_played_title(name: &str, played: &[Track]) -> bool {
    let wanted = normalize_name(name);
    !wanted.is_empty()
        && played.iter().any(|track| {
            let in_title = [track.name(), track.album()]
                .iter()
                .any(|text| normalize_name(text).contains(&wanted));
            in_title && !artist_matches(name, track)
        })
}

/// The request to echo. A message often opens with a reaction to the last track ("Nice, they
/// never disappoint.") before the request, so sentences are read from the last one back.
fn echo_of(raw: &[&str], words: &[String], names: &[bool]) -> Option<Echo> {
    let mut sentences: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for (i, word) in raw.iter().enumerate() {
        if word.ends_with(['.', '!', '?']) || i + 1 == raw.len() {
            sentences.push((start, i + 1));
            start = i + 1;
        }
    }
    sentences.iter().rev().find_map(|&(from, to)| {
        let (raw, words, names) = (&raw[from..to], &words[from..to], &names[from..to]);
        let lexicon = Lexicon::read(words, names);
        something_phrase(raw, words, names, &lexicon)
            .or_else(|| more_phrase(raw, words, names))
            .or_else(|| lexicon.echo())
    })
}

/// The lexicon hits of one sentence (words written as names excluded).
struct Lexicon {
    mood: Option<&'static str>,
    genre: Option<&'static str>,
    /// The phrase that echoes the activity ("a workout").
    activity: Option<&'static str>,
    era: Option<String>,
}

impl Lexicon {
    fn read(words: &[String], names: &[bool]) -> Self {
        let first = |hits: Vec<(usize, &'static str)>| {
            hits.into_iter()
                .find(|(at, term)| !names_hit(names, *at, term))
                .map(|(_, term)| term)
        };
        let activity = first(find_terms(words, ACTIVITIES.iter().map(|(k, _)| *k)))
            .and_then(|key| ACTIVITIES.iter().find(|(k, _)| *k == key))
            .map(|(_, phrase)| *phrase);
        let era = words
            .iter()
            .zip(names)
            .find(|(w, name)| !**name && ERAS.contains(&w.as_str()))
            .map(|(w, _)| w.trim_start_matches('\'').to_string());
        Lexicon {
            mood: first(find_terms(words, MOODS.iter().copied())),
            genre: first(find_terms(words, GENRES.iter().copied())),
            activity,
            era,
        }
    }

    /// True when `word` (cleaned) belongs to a lexicon of requests.
    fn knows(word: &str) -> bool {
        MOODS.contains(&word)
            || GENRES.iter().any(|g| g.split(' ').any(|part| part == word))
            || ACTIVITIES
                .iter()
                .any(|(k, phrase)| k.split(' ').chain(phrase.split(' ')).any(|p| p == word))
            || ERAS.contains(&word)
    }

    /// "chill jazz", "something upbeat for a workout", "80s music", by the kinds found.
    fn echo(&self) -> Option<Echo> {
        let echo = |kind, phrase: String, bare: Option<String>| Echo {
            kind,
            phrase: Some(phrase),
            bare,
        };
        let era = self.era.as_deref();
        Some(match (self.mood, self.genre, self.activity, era) {
            (Some(mood), Some(genre), _, _) => {
                let phrase = format!("{mood} {genre}");
                echo(CueKind::Genre, phrase.clone(), Some(phrase))
            }
            (None, Some(genre), Some(activity), _) => {
                echo(CueKind::Mixed, format!("{genre} for {activity}"), None)
            }
            (None, Some(genre), None, Some(era)) => {
                let phrase = format!("{era} {genre}");
                echo(CueKind::Genre, phrase.clone(), Some(phrase))
            }
            (None, Some(genre), None, None) => {
                echo(CueKind::Genre, genre.to_string(), Some(genre.to_string()))
            }
            (Some(mood), None, Some(activity), _) => echo(
                CueKind::Mixed,
                format!("something {mood} for {activity}"),
                None,
            ),
            (Some(mood), None, None, _) => echo(
                CueKind::Mood,
                format!("something {mood}"),
                Some(mood.to_string()),
            ),
            (None, None, Some(activity), _) => echo(
                CueKind::Activity,
                format!("music for {activity}"),
                Some(activity.to_string()),
            ),
            (None, None, None, Some(era)) => {
                echo(CueKind::Era, format!("{era} music"), Some(era.to_string()))
            }
            (None, None, None, None) => return None,
        })
    }
}

/// "somewhere more upbeat", "a bit more mellow" → "something more upbeat": a mood asked for
/// in comparison with the last track.
fn more_phrase(raw: &[&str], words: &[String], names: &[bool]) -> Option<Echo> {
    let at = words.iter().position(|w| w == "more")?;
    let next = words.get(at + 1)?;
    let mood = MOODS.contains(&next.as_str()) && !names[at + 1] && !ends_clause(raw[at]);
    mood.then(|| Echo {
        kind: CueKind::Mood,
        phrase: Some(format!("something more {next}")),
        bare: Some(format!("more {next}")),
    })
}

/// "something mellow for a rainy evening": the words after "something"/"anything" up to
/// the end of the clause, when every word in it is a request word (mood, genre, activity,
/// era) or a small word; "something like Mirror" is no request to echo.
fn something_phrase(
    raw: &[&str],
    words: &[String],
    names: &[bool],
    lexicon: &Lexicon,
) -> Option<Echo> {
    let start = words
        .iter()
        .position(|w| w == "something" || w == "anything")?;
    if ends_clause(raw[start]) {
        return None;
    }
    let mut phrase: Vec<String> = vec![words[start].clone()];
    for ((raw_word, word), &name) in raw.iter().zip(words).zip(names).skip(start + 1).take(7) {
        if CLAUSE_BREAKS.contains(&word.as_str()) || word.is_empty() {
            break;
        }
        if name || !(Lexicon::knows(word) || SMALL_WORDS.contains(&word.as_str())) {
            return None;
        }
        phrase.push(word.clone());
        if ends_clause(raw_word) {
            break;
        }
    }
    while phrase.len() > 1
        && phrase
            .last()
            .is_some_and(|w| SMALL_WORDS.contains(&w.as_str()))
    {
        phrase.pop();
    }
    let known = phrase.iter().filter(|w| Lexicon::knows(w)).count();
    if known == 0 {
        return None;
    }
    // A single word after "something" is the lexicon's own echo, with its kind.
    if phrase.len() == 2 {
        return lexicon.echo();
    }
    Some(Echo {
        kind: CueKind::Mixed,
        phrase: Some(phrase.join(" ")),
        bare: None,
    })
}

/// Words that may sit between request words in an echoed phrase.
const SMALL_WORDS: &[&str] = &[
    "a", "an", "the", "for", "with", "of", "to", "in", "on", "at", "and", "my", "our", "some",
    "bit", "little", "long", "late", "lazy", "quiet", "early",
];

/// "by Adele", "from Daft Punk": capitalised words after "by" / "from".
fn named_artist(raw: &[&str], words: &[String]) -> Option<String> {
    for (i, word) in words.iter().enumerate() {
        if (word != "by" && word != "from") || ends_clause(raw[i]) {
            continue;
        }
        // Only a request names an artist ("songs by X", "something from X"); `"Title" by X`
        // talks about a track already played.
        let asked = words[i.saturating_sub(3)..i]
            .iter()
            .any(|w| REQUEST_NOUNS.contains(&w.as_str()));
        if !asked {
            continue;
        }
        // Right after a quoted title (blanked to "."), "from X" names its album, and "by X"
        // its artist only when the sentence asks to hear it ("I need the song "T" by X").
        if i > 0 && raw[i - 1] == "." {
            let verb = words[..i]
                .iter()
                .any(|w| REQUEST_VERBS.contains(&w.as_str()));
            if word == "from" || !verb {
                continue;
            }
        }
        let mut name: Vec<&str> = Vec::new();
        for raw_word in raw.iter().skip(i + 1).take(5) {
            let trimmed = raw_word.trim_matches(|c: char| {
                !c.is_alphanumeric() && c != '&' && c != '\'' && c != '.' && c != '-'
            });
            let trimmed = trimmed.trim_end_matches('.');
            let trimmed = trimmed
                .strip_suffix("'s")
                .or_else(|| trimmed.strip_suffix("\u{2019}s"))
                .unwrap_or(trimmed);
            let capital = trimmed
                .chars()
                .next()
                .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit());
            let joiner =
                !name.is_empty() && matches!(trimmed, "&" | "and" | "of" | "the" | "de" | "y");
            if !(capital || joiner) || trimmed.is_empty() {
                break;
            }
            name.push(trimmed);
            if ends_clause(raw_word) {
                break;
            }
        }
        while name
            .last()
            .is_some_and(|w| matches!(*w, "&" | "and" | "of" | "the" | "de" | "y"))
        {
            name.pop();
        }
        let Some(first) = name.first() else { continue };
        // "songs from 2003-2005" asks for years, not an artist.
        if name.iter().all(|w| w.chars().all(|c| !c.is_alphabetic())) {
            continue;
        }
        if word == "from" && PLACES.contains(&first.to_lowercase().as_str()) {
            continue;
        }
        if name.len() == 1 && matches!(*first, "I" | "The" | "A") {
            continue;
        }
        // "another one from Songs from the Mirror" names an album: a name opening with a
        // word such as "songs" or "music" is no artist.
        let lower = first.to_lowercase();
        if lower != "the" && is_stopword(&lower) {
            continue;
        }
        return Some(name.join(" "));
    }
    None
}

/// "more from the same artist": the artist of the last played track.
fn same_artist(message: &str, last_played: Option<&Track>) -> Option<String> {
    let lower = message.to_lowercase();
    let asks = [
        "same artist",
        "this artist",
        "that artist",
        "more from them",
        "more by them",
        "same band",
        "this band",
    ]
    .iter()
    .any(|cue| lower.contains(cue));
    let artist = last_played?.artist();
    (asks && !artist.is_empty()).then_some(artist)
}

/// True when a catalog tag names a genre or style ("power metal", "hip-hop", "bebop"), not a
/// mood, instrument or era: only such tags read well side by side ("part jazz, part funk").
pub(crate) fn is_genre_tag(tag: &str) -> bool {
    let tag = tag.trim().to_lowercase();
    GENRES.contains(&tag.as_str())
        || tag
            .rsplit([' ', '-'])
            .next()
            .is_some_and(|last| last != tag && GENRES.contains(&last))
}

/// Letters and digits only, lowercased: compares names across punctuation and case.
pub(crate) fn normalize_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// True when the track's artists include the requested one (or the other way round).
pub(crate) fn artist_matches(requested: &str, track: &Track) -> bool {
    let wanted = normalize_name(requested);
    if wanted.is_empty() {
        return true;
    }
    track.artist_name.iter().any(|artist| {
        let artist = normalize_name(artist);
        !artist.is_empty() && (artist.contains(&wanted) || wanted.contains(&artist))
    })
}

/// True when the track has enough tags to judge and none of them names the genre.
pub(crate) fn plainly_not_genre(genre: &str, track: &Track) -> bool {
    let wanted = normalize_name(genre);
    let tags: Vec<String> = track.tag_list.iter().map(|t| normalize_name(t)).collect();
    tags.len() >= 3
        && !tags
            .iter()
            .any(|tag| tag.contains(&wanted) || (tag.len() > 2 && wanted.contains(tag.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echoed(cues: &RequestCues) -> Option<&str> {
        let echo = cues.echo.as_ref()?;
        echo.phrase.as_deref().or(echo.bare.as_deref())
    }

    fn kind(message: &str) -> Option<CueKind> {
        RequestCues::read(message, &[]).echo.map(|echo| echo.kind)
    }

    #[test]
    fn title_words_are_never_requests() {
        for message in [
            "\"Mirror\" was great, more like that please",
            "Loved \u{201c}Dark Piano\u{201d}! Another one?",
            "I really liked Midnight Rain, more like that?",
            "Something like Mirror, please.",
            "Piano stuff?",
            "Can you find more songs like 'Forest & Signal'?",
        ] {
            let cues = RequestCues::read(message, &[]);
            assert_eq!(echoed(&cues), None, "{message}: {cues:?}");
        }
        // The same words as requests are read.
        assert_eq!(kind("something dark please"), Some(CueKind::Mood));
        assert_eq!(
            kind("Rain sounds, for a rainy day"),
            Some(CueKind::Activity)
        );
    }

    #[test]
    fn each_kind_gets_its_bare_words() {
        let bare = |message: &str| RequestCues::read(message, &[]).echo.and_then(|e| e.bare);
        assert_eq!(kind("some chill jazz"), Some(CueKind::Genre));
        assert_eq!(bare("some chill jazz").as_deref(), Some("chill jazz"));
        assert_eq!(
            bare("Can it be more upbeat?").as_deref(),
            Some("more upbeat")
        );
        assert_eq!(bare("music for my workout").as_deref(), Some("a workout"));
        assert_eq!(bare("anything from the 80s").as_deref(), Some("80s"));
        assert_eq!(kind("anything from the 80s"), Some(CueKind::Era));
        assert_eq!(kind("Play something by Adele"), Some(CueKind::Artist));
        assert_eq!(bare("Play something by Adele").as_deref(), Some("Adele"));
    }

    #[test]
    fn years_albums_and_reactions_are_not_artists() {
        let artist = |m: &str| RequestCues::read(m, &[]).artist;
        assert_eq!(artist("More songs from 2003-2005 please"), None);
        assert_eq!(
            artist("Can you play 'Break the Ice' from Blackout next?"),
            None
        );
        assert_eq!(
            artist("That track was 'Lonely' by Mean Lady, not RJD2."),
            None
        );
        assert_eq!(
            artist("I need to hear the song \"My Brain Hurts\" by Screeching Weasel.").as_deref(),
            Some("Screeching Weasel")
        );
        assert_eq!(
            artist("What other tracks from VNV Nation's discography?").as_deref(),
            Some("VNV Nation")
        );
    }

    #[test]
    fn album_and_generic_names_are_not_artists() {
        let cues = RequestCues::read("Another track from Songs from the Mirror?", &[]);
        assert_eq!(cues.artist, None);
        let mut played = Track::new("t0", "Halo", "Neon Morning");
        played.album_name = vec!["Glass Harbor".into()];
        let cues = RequestCues::read(
            "More songs from Glass Harbor please",
            std::slice::from_ref(&played),
        );
        assert_eq!(cues.artist, None);
        let cues = RequestCues::read(
            "More songs from Neon Morning please",
            std::slice::from_ref(&played),
        );
        assert_eq!(cues.artist.as_deref(), Some("Neon Morning"));
    }

    #[test]
    fn only_genre_tags_are_styles() {
        for tag in [
            "jazz",
            "power metal",
            "hip-hop",
            "synth-pop",
            "drum and bass",
        ] {
            assert!(is_genre_tag(tag), "{tag}");
        }
        for tag in ["acoustic guitar", "intimate", "1990s", "modular synth"] {
            assert!(!is_genre_tag(tag), "{tag}");
        }
    }

    #[test]
    fn echo_prefers_the_something_phrase() {
        let cues = RequestCues::read(
            "I want something mellow for a rainy evening, maybe jazz.",
            &[],
        );
        assert_eq!(echoed(&cues), Some("something mellow for a rainy evening"));
        assert_eq!(cues.genre.as_deref(), Some("jazz"));
    }

    #[test]
    fn echo_from_lexicon_and_fallback_run() {
        let cues = RequestCues::read("Play me some chill jazz please", &[]);
        assert_eq!(echoed(&cues), Some("chill jazz"));
        // No genre, mood, era, activity or artist: nothing to echo (this was once echoed as
        // "Tokyo city-lights", a run of words that may well be a title).
        let cues = RequestCues::read("Got any Tokyo city-lights stuff?", &[]);
        assert_eq!(echoed(&cues), None);
        let cues = RequestCues::read("more please", &[]);
        assert_eq!(echoed(&cues), None);
    }

    #[test]
    fn echo_reads_the_request_after_a_reaction() {
        let cues = RequestCues::read(
            "Nice, Renée Vance never disappoints. Can we go somewhere more gritty?",
            &[],
        );
        assert_eq!(echoed(&cues), Some("something more gritty"));
        let cues = RequestCues::read(
            "\"Hidden Ghosts\" was exactly what I needed. How about some dream pop?",
            &[],
        );
        assert_eq!(echoed(&cues), Some("dream pop"));
        assert_eq!(cues.genre.as_deref(), Some("dream pop"));
        let cues = RequestCues::read("Love this one! Keep the indie rock going.", &[]);
        assert_eq!(cues.genre.as_deref(), Some("indie rock"));
        // A capitalised word after "more" is a name, not a quality.
        let cues = RequestCues::read("More Ines Vance, but from a different album.", &[]);
        assert_ne!(echoed(&cues), Some("something more Ines"));
        // A trailing thank-you says nothing; the request before it is echoed.
        let cues = RequestCues::read("Play something upbeat. Thanks!", &[]);
        assert_eq!(echoed(&cues), Some("something upbeat"));
    }

    #[test]
    fn names_an_artist_after_by_or_from() {
        let cues = RequestCues::read("Can I hear a song by Florence and the Machine?", &[]);
        assert_eq!(cues.artist.as_deref(), Some("Florence and the Machine"));
        let cues = RequestCues::read("something from Japan", &[]);
        assert_eq!(cues.artist, None);
        let cues = RequestCues::read("music from the 80s by someone new", &[]);
        assert_eq!(cues.artist, None);
        let cues = RequestCues::read("\"Lift Me Up\" by Mree is lovely! More like that?", &[]);
        assert_eq!(cues.artist, None);
        let cues = RequestCues::read("Loved it. Another one by Mree?", &[]);
        assert_eq!(cues.artist.as_deref(), Some("Mree"));
        let last = Track::new("t", "Halo", "Beyoncé");
        let cues = RequestCues::read("More from the same artist!", std::slice::from_ref(&last));
        assert_eq!(cues.artist.as_deref(), Some("Beyoncé"));
    }

    #[test]
    fn matching_artists_and_genres() {
        let mut track = Track::new("t", "Rolling in the Deep", "Adele");
        assert!(artist_matches("adele", &track));
        assert!(!artist_matches("Sigur Rós", &track));
        track.tag_list = vec!["pop".into(), "soul".into(), "british".into()];
        assert!(!plainly_not_genre("soul", &track));
        assert!(plainly_not_genre("metal", &track));
    }
}
