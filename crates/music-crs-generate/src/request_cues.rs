//! What a listener's message asks for, read with light heuristics: a salient phrase to echo,
//! an artist the listener names, and a genre they want.

use music_crs_core::Track;

/// Moods and qualities a listener may ask for.
const MOODS: &[&str] = &[
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
const GENRES: &[&str] = &[
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
const ACTIVITIES: &[(&str, &str)] = &[
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
const ERAS: &[&str] = &[
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

/// What a message asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RequestCues {
    /// A short phrase from the message to echo back ("something mellow for a rainy evening").
    pub echo: Option<String>,
    /// An artist the listener names ("songs by Adele").
    pub artist: Option<String>,
    /// A genre the listener asks for.
    pub genre: Option<String>,
}

impl RequestCues {
    /// Reads the cues of `message`; `last_played` resolves "the same artist".
    pub fn read(message: &str, last_played: Option<&Track>) -> Self {
        let raw: Vec<&str> = message.split_whitespace().collect();
        let words: Vec<String> = raw.iter().map(|w| clean_word(w)).collect();
        let genre = find_terms(&words, GENRES.iter().copied())
            .first()
            .map(|(_, g)| g.to_string());
        RequestCues {
            echo: echo_phrase(&raw, &words),
            artist: named_artist(&raw, &words).or_else(|| same_artist(message, last_played)),
            genre,
        }
    }
}

/// The phrase to echo. A message often opens with a reaction to the last track ("Nice, they
/// never disappoint.") before the request, so sentences are read from the last one back;
/// the lexicon-based readers are tried on every sentence before the fallback run of words.
fn echo_phrase(raw: &[&str], words: &[String]) -> Option<String> {
    let mut sentences: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for (i, word) in raw.iter().enumerate() {
        if word.ends_with(['.', '!', '?']) || i + 1 == raw.len() {
            sentences.push((start, i + 1));
            start = i + 1;
        }
    }
    let span = |&(from, to): &(usize, usize)| (&raw[from..to], &words[from..to]);
    sentences
        .iter()
        .rev()
        .map(span)
        .find_map(|(raw, words)| {
            let genre = find_terms(words, GENRES.iter().copied())
                .first()
                .map(|(_, g)| *g);
            something_phrase(raw, words)
                .or_else(|| more_phrase(raw, words))
                .or_else(|| lexicon_phrase(words, genre))
        })
        .or_else(|| {
            sentences
                .iter()
                .rev()
                .map(span)
                .find_map(|(raw, words)| content_run(raw, words))
        })
}

/// "somewhere more upbeat", "a bit more mellow" → "something more upbeat": a quality asked
/// for in comparison with the last track.
fn more_phrase(raw: &[&str], words: &[String]) -> Option<String> {
    let at = words.iter().position(|w| w == "more")?;
    let next = words.get(at + 1)?;
    let written = raw.get(at + 1)?;
    let lowercase = written
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .chars()
        .next()
        .is_some_and(char::is_lowercase);
    let noun = REQUEST_NOUNS.contains(&next.as_str()) || GENRES.contains(&next.as_str());
    (lowercase && !noun && !is_stopword(next) && !ends_clause(raw[at]))
        .then(|| format!("something more {next}"))
}

/// "something mellow for a rainy evening": the words after "something"/"anything" up to
/// the end of the clause.
fn something_phrase(raw: &[&str], words: &[String]) -> Option<String> {
    let start = words
        .iter()
        .position(|w| w == "something" || w == "anything")?;
    let mut phrase: Vec<String> = vec![words[start].clone()];
    if ends_clause(raw[start]) {
        return None;
    }
    for (raw_word, word) in raw.iter().zip(words).skip(start + 1).take(7) {
        if CLAUSE_BREAKS.contains(&word.as_str()) || word.is_empty() {
            break;
        }
        phrase.push(
            raw_word
                .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '&' && c != '-')
                .to_string(),
        );
        if ends_clause(raw_word) {
            break;
        }
    }
    while phrase.len() > 1
        && phrase
            .last()
            .is_some_and(|w| is_stopword(&w.to_lowercase()) && w != "something")
    {
        phrase.pop();
    }
    (phrase.len() >= 2).then(|| phrase.join(" "))
}

/// A phrase built from lexicon hits: "chill jazz", "something upbeat for a workout", "80s music".
fn lexicon_phrase(words: &[String], genre: Option<&str>) -> Option<String> {
    let mood = find_terms(words, MOODS.iter().copied())
        .first()
        .map(|(_, m)| *m);
    let activity = find_terms(words, ACTIVITIES.iter().map(|(k, _)| *k))
        .first()
        .and_then(|(_, key)| ACTIVITIES.iter().find(|(k, _)| k == key))
        .map(|(_, phrase)| *phrase);
    let era = words.iter().find(|w| ERAS.contains(&w.as_str()));
    match (mood, genre, activity, era) {
        (Some(mood), Some(genre), _, _) => Some(format!("{mood} {genre}")),
        (None, Some(genre), Some(activity), _) => Some(format!("{genre} for {activity}")),
        (None, Some(genre), None, Some(era)) => Some(format!("{era} {genre}")),
        (None, Some(genre), None, None) => Some(genre.to_string()),
        (Some(mood), None, Some(activity), _) => Some(format!("something {mood} for {activity}")),
        (Some(mood), None, None, _) => Some(format!("something {mood}")),
        (None, None, Some(activity), _) => Some(format!("music for {activity}")),
        (None, None, None, Some(era)) => Some(format!("{era} music")),
        (None, None, None, None) => None,
    }
}

/// The longest run (at most four words) of words that are not stopwords, as written.
fn content_run(raw: &[&str], words: &[String]) -> Option<String> {
    let mut best: Option<(usize, usize)> = None;
    let mut start = 0;
    for i in 0..=words.len() {
        let content = i < words.len() && !is_stopword(&words[i]);
        let breaks = i > 0 && i < words.len() && ends_clause(raw[i - 1]);
        if !content || breaks {
            let len = i - start;
            if len > 0 && best.is_none_or(|(_, l)| len > l) {
                best = Some((start, len));
            }
            start = if content { i } else { i + 1 };
        }
    }
    let (start, len) = best?;
    let phrase: Vec<&str> = raw[start..start + len.min(4)]
        .iter()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '&'))
        .collect();
    let phrase = phrase.join(" ");
    // Very long "words" (scripts written without spaces) make a clumsy echo, and a lone
    // short word ("yes", "go") says nothing.
    let words = phrase.split_whitespace().count();
    let chars = phrase.chars().count();
    (words > 0 && chars <= 40 && (words > 1 || chars >= 4)).then_some(phrase)
}

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
        let mut name: Vec<&str> = Vec::new();
        for raw_word in raw.iter().skip(i + 1).take(5) {
            let trimmed = raw_word.trim_matches(|c: char| {
                !c.is_alphanumeric() && c != '&' && c != '\'' && c != '.' && c != '-'
            });
            let trimmed = trimmed.trim_end_matches('.');
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
        if word == "from" && PLACES.contains(&first.to_lowercase().as_str()) {
            continue;
        }
        if name.len() == 1 && matches!(*first, "I" | "The" | "A") {
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

    #[test]
    fn echo_prefers_the_something_phrase() {
        let cues = RequestCues::read(
            "I want something mellow for a rainy evening, maybe jazz.",
            None,
        );
        assert_eq!(
            cues.echo.as_deref(),
            Some("something mellow for a rainy evening")
        );
        assert_eq!(cues.genre.as_deref(), Some("jazz"));
    }

    #[test]
    fn echo_from_lexicon_and_fallback_run() {
        let cues = RequestCues::read("Play me some chill jazz please", None);
        assert_eq!(cues.echo.as_deref(), Some("chill jazz"));
        let cues = RequestCues::read("Got any Tokyo city-lights stuff?", None);
        assert_eq!(cues.echo.as_deref(), Some("Tokyo city-lights"));
        let cues = RequestCues::read("more please", None);
        assert_eq!(cues.echo, None);
    }

    #[test]
    fn echo_reads_the_request_after_a_reaction() {
        let cues = RequestCues::read(
            "Nice, Renée Vance never disappoints. Can we go somewhere more gritty?",
            None,
        );
        assert_eq!(cues.echo.as_deref(), Some("something more gritty"));
        let cues = RequestCues::read(
            "\"Hidden Ghosts\" was exactly what I needed. How about some dream pop?",
            None,
        );
        assert_eq!(cues.echo.as_deref(), Some("dream pop"));
        assert_eq!(cues.genre.as_deref(), Some("dream pop"));
        let cues = RequestCues::read("Love this one! Keep the indie rock going.", None);
        assert_eq!(cues.genre.as_deref(), Some("indie rock"));
        // A capitalised word after "more" is a name, not a quality.
        let cues = RequestCues::read("More Ines Vance, but from a different album.", None);
        assert_ne!(cues.echo.as_deref(), Some("something more Ines"));
        // A trailing thank-you says nothing; the request before it is echoed.
        let cues = RequestCues::read("Play something upbeat. Thanks!", None);
        assert_eq!(cues.echo.as_deref(), Some("something upbeat"));
    }

    #[test]
    fn names_an_artist_after_by_or_from() {
        let cues = RequestCues::read("Can I hear a song by Florence and the Machine?", None);
        assert_eq!(cues.artist.as_deref(), Some("Florence and the Machine"));
        let cues = RequestCues::read("something from Japan", None);
        assert_eq!(cues.artist, None);
        let cues = RequestCues::read("music from the 80s by someone new", None);
        assert_eq!(cues.artist, None);
        let cues = RequestCues::read("\"Lift Me Up\" by Mree is lovely! More like that?", None);
        assert_eq!(cues.artist, None);
        let cues = RequestCues::read("Loved it. Another one by Mree?", None);
        assert_eq!(cues.artist.as_deref(), Some("Mree"));
        let last = Track::new("t", "Halo", "Beyoncé");
        let cues = RequestCues::read("More from the same artist!", Some(&last));
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
