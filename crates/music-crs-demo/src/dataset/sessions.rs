//! Demo users and their conversations: listening sessions first, then the words around them.

use std::collections::HashSet;

use music_crs_core::{ConversationGoal, GoalProgress, Message, Role, Session, UserProfile};
use rand::Rng;

use super::catalog::{CatalogModel, TrackFacts, play_weight};
use super::random::{DemoRng, normal, pick, uuid, weighted_index, word};
use super::vocab::{ACTIVITIES, COUNTRIES, GENRES};

/// A generated listener: the public profile plus the tastes that drive their sessions.
#[derive(Debug, Clone)]
pub(crate) struct UserModel {
    pub profile: UserProfile,
    genres: Vec<usize>,
    genre_weights: Vec<f64>,
    favorite_artists: Vec<usize>,
    /// Warm users have train sessions; cold users appear only in test and blind.
    pub warm: bool,
    /// How often this user comes back (some listeners are far more active).
    activity: f64,
}

/// How a track follows the one before it in a listening session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    First,
    SameAlbum,
    SameArtist,
    Similar,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoalKind {
    GenreExplore,
    MoodActivity,
    ArtistDive,
    AlbumRecall,
    OpenDiscovery,
}

/// A session with the catalog positions of the tracks it recommends, turn by turn.
#[derive(Debug, Clone)]
pub(crate) struct GeneratedSession {
    pub session: Session,
    pub tracks: Vec<usize>,
    pub user: usize,
}

/// Rates of the listening walk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalkRates {
    pub same_album: f64,
    pub same_artist: f64,
}

fn country_genre_bias(country: &str, genre: &str) -> f64 {
    match (country, genre) {
        ("BR" | "AR" | "MX" | "ES", "latin") => 5.0,
        ("KR", "k-pop") => 8.0,
        ("JP", "electronic" | "jazz" | "k-pop") => 2.0,
        ("US", "hip-hop" | "country") => 2.0,
        ("DE" | "NL", "electronic" | "metal") => 2.0,
        ("SE" | "IS", "metal" | "ambient" | "indie rock") => 2.0,
        ("UK", "indie rock" | "rock") => 2.0,
        _ => 1.0,
    }
}

pub(crate) fn generate_users(
    rng: &mut DemoRng,
    catalog: &CatalogModel,
    num_users: usize,
    cold_share: f64,
) -> Vec<UserModel> {
    let cold = ((num_users as f64) * cold_share).round() as usize;
    // Keep at least one warm user so train sessions always have someone to belong to.
    let warm_count = num_users.saturating_sub(cold).max(1.min(num_users));
    let country_weights: Vec<f64> = COUNTRIES.iter().map(|c| f64::from(c.3)).collect();
    (0..num_users)
        .map(|index| {
            let (code, country, language, _) = COUNTRIES[weighted_index(rng, &country_weights)];
            // Ages skew young, as on streaming services.
            let age = 16 + (rng.random::<f64>().powf(1.7) * 50.0) as i64;
            let gender = if rng.random_bool(0.58) {
                "male"
            } else {
                "female"
            };
            let language = if language == "English" || rng.random_bool(0.75) {
                "English"
            } else {
                language
            };
            let weights: Vec<f64> = GENRES
                .iter()
                .enumerate()
                .map(|(g, genre)| {
                    if catalog.by_genre[g].is_empty() {
                        0.0
                    } else {
                        country_genre_bias(code, genre.name)
                    }
                })
                .collect();
            let mut genres = Vec::new();
            let mut remaining = weights.clone();
            for _ in 0..rng.random_range(2..=3) {
                if remaining.iter().all(|&w| w == 0.0) {
                    break;
                }
                let g = weighted_index(rng, &remaining);
                remaining[g] = 0.0;
                genres.push(g);
            }
            let genre_weights = [0.6, 0.3, 0.1][..genres.len()].to_vec();
            let mut favorite_artists = Vec::new();
            for _ in 0..rng.random_range(2..=5) {
                let g = genres[weighted_index(rng, &genre_weights)];
                if let Some(artist) = catalog.artists_by_genre[g].sample(rng)
                    && !favorite_artists.contains(&artist)
                {
                    favorite_artists.push(artist);
                }
            }
            let top_genre = &GENRES[genres[0]];
            let culture = match code {
                "BR" | "AR" | "MX" | "ES" if rng.random_bool(0.5) => "Latin American",
                "KR" | "JP" if rng.random_bool(0.4) => "East Asian",
                _ if rng.random_bool(0.25) => "Western",
                _ => top_genre.culture,
            };
            let warm = index < warm_count;
            let user_id = uuid(rng);
            UserModel {
                profile: UserProfile {
                    user_id: Some(user_id),
                    age: Some(age),
                    age_group: Some(format!("{}s", age / 10 * 10)),
                    country_code: Some(code.to_string()),
                    country_name: Some(country.to_string()),
                    gender: Some(gender.to_string()),
                    preferred_language: Some(language.to_string()),
                    preferred_musical_culture: Some(culture.to_string()),
                    user_split: Some(if warm { "train" } else { "test_cold" }.to_string()),
                },
                genres,
                genre_weights,
                favorite_artists,
                warm,
                activity: (0.8 * normal(rng)).exp(),
            }
        })
        .collect()
}

/// The user a session belongs to: warm users weighted by activity, cold ones for about 30%
/// of evaluation sessions.
pub(crate) fn pick_user(rng: &mut DemoRng, users: &[UserModel], evaluation: bool) -> usize {
    let want_cold = evaluation && rng.random_bool(0.3);
    let weights: Vec<f64> = users
        .iter()
        .map(|u| if u.warm != want_cold { u.activity } else { 0.0 })
        .collect();
    if weights.iter().all(|&w| w == 0.0) {
        let fallback: Vec<f64> = users.iter().map(|u| u.activity).collect();
        return weighted_index(rng, &fallback);
    }
    weighted_index(rng, &weights)
}

fn weighted_among(
    rng: &mut DemoRng,
    catalog: &CatalogModel,
    candidates: impl Iterator<Item = usize>,
) -> Option<usize> {
    let candidates: Vec<usize> = candidates.collect();
    if candidates.is_empty() {
        return None;
    }
    let weights: Vec<f64> = candidates
        .iter()
        .map(|&t| play_weight(&catalog.tracks[t]))
        .collect();
    Some(candidates[weighted_index(rng, &weights)])
}

fn shared_tags(a: &TrackFacts, b: &TrackFacts) -> usize {
    let mut shared = usize::from(a.genre == b.genre) + usize::from(a.subgenre == b.subgenre);
    shared += a.moods.iter().filter(|m| b.moods.contains(m)).count();
    shared += a
        .instruments
        .iter()
        .filter(|i| b.instruments.contains(i))
        .count();
    shared + usize::from(a.era == b.era)
}

/// A track by another artist that shares tags with `previous`, popular ones more often.
fn similar_track(
    rng: &mut DemoRng,
    catalog: &CatalogModel,
    user: &UserModel,
    previous: usize,
    played: &HashSet<usize>,
) -> Option<usize> {
    let prev = &catalog.facts[previous];
    let genre = if rng.random_bool(0.8) || user.genres.is_empty() {
        prev.genre
    } else {
        user.genres[weighted_index(rng, &user.genre_weights)]
    };
    let mut candidates = Vec::new();
    for _ in 0..40 {
        let Some(t) = catalog.by_genre[genre].sample(rng) else {
            break;
        };
        if !played.contains(&t) && catalog.facts[t].artist != prev.artist {
            candidates.push(t);
        }
    }
    if candidates.is_empty() {
        // A genre too small to offer anything new: any unplayed track by another artist.
        return (0..40)
            .map(|_| rng.random_range(0..catalog.tracks.len()))
            .find(|t| !played.contains(t) && catalog.facts[*t].artist != prev.artist);
    }
    let weights: Vec<f64> = candidates
        .iter()
        .map(|&t| {
            let shared = shared_tags(prev, &catalog.facts[t]) as f64;
            (1.0 + shared).powi(2)
        })
        .collect();
    Some(candidates[weighted_index(rng, &weights)])
}

fn first_track(rng: &mut DemoRng, catalog: &CatalogModel, user: &UserModel) -> (usize, bool) {
    if !user.favorite_artists.is_empty() && rng.random_bool(0.3) {
        let artist = *pick(rng, &user.favorite_artists);
        if let Some(t) =
            weighted_among(rng, catalog, catalog.artists[artist].tracks.iter().copied())
        {
            return (t, true);
        }
    }
    if !user.genres.is_empty() {
        let genre = user.genres[weighted_index(rng, &user.genre_weights)];
        if let Some(t) = catalog.by_genre[genre].sample(rng) {
            return (t, false);
        }
    }
    (rng.random_range(0..catalog.tracks.len()), false)
}

/// A listening session of `turns` distinct tracks that hang together.
fn listen(
    rng: &mut DemoRng,
    catalog: &CatalogModel,
    user: &UserModel,
    turns: usize,
    rates: WalkRates,
) -> (Vec<usize>, Vec<Step>, bool) {
    let (first, from_favorite) = first_track(rng, catalog, user);
    let mut tracks = vec![first];
    let mut steps = vec![Step::First];
    let mut played: HashSet<usize> = HashSet::from([first]);
    while tracks.len() < turns.min(catalog.tracks.len()) {
        let prev = *tracks.last().unwrap_or(&first);
        let facts = &catalog.facts[prev];
        let draw: f64 = rng.random();
        let mut next = None;
        if draw < rates.same_album {
            let album = &catalog.albums[facts.album].tracks;
            next = weighted_among(
                rng,
                catalog,
                album.iter().copied().filter(|t| !played.contains(t)),
            )
            .map(|t| (t, Step::SameAlbum));
        }
        if next.is_none() && draw < rates.same_artist {
            let artist = &catalog.artists[facts.artist].tracks;
            let other_album = artist
                .iter()
                .copied()
                .filter(|t| !played.contains(t) && catalog.facts[*t].album != facts.album);
            next = weighted_among(rng, catalog, other_album).map(|t| (t, Step::SameArtist));
        }
        if next.is_none() {
            next = similar_track(rng, catalog, user, prev, &played).map(|t| (t, Step::Similar));
        }
        let Some((track, step)) = next.or_else(|| {
            (0..catalog.tracks.len())
                .find(|t| !played.contains(t))
                .map(|t| (t, Step::Similar))
        }) else {
            break;
        };
        played.insert(track);
        tracks.push(track);
        steps.push(step);
    }
    (tracks, steps, from_favorite)
}

/// The words of one track, for messages.
struct Words<'a> {
    title: &'a str,
    artist: &'a str,
    album: &'a str,
    genre: &'static str,
    subgenre: &'static str,
    mood: &'static str,
    instrument: &'static str,
    era: &'a str,
    year: i32,
}

fn words<'a>(rng: &mut DemoRng, catalog: &'a CatalogModel, track: usize) -> Words<'a> {
    let facts = &catalog.facts[track];
    let meta = &catalog.tracks[track];
    Words {
        title: meta.track_name.first().map_or("", String::as_str),
        artist: meta.artist_name.first().map_or("", String::as_str),
        album: meta.album_name.first().map_or("", String::as_str),
        genre: GENRES[facts.genre].name,
        subgenre: facts.subgenre,
        mood: word(rng, &facts.moods),
        instrument: word(rng, &facts.instruments),
        era: &facts.era,
        year: facts.year,
    }
}

fn first_request(rng: &mut DemoRng, kind: GoalKind, t: &Words, activity: &str) -> (String, String) {
    let Words {
        artist,
        genre,
        subgenre,
        mood,
        instrument,
        era,
        ..
    } = t;
    let text = match kind {
        GoalKind::GenreExplore => match rng.random_range(0..4) {
            0 => format!("I'm looking for some {mood} {genre}. Any ideas?"),
            1 => format!("Can you recommend some {genre} from the {era}?"),
            2 => format!("I want to get into {subgenre}. Where should I start?"),
            _ => format!("Play me something {genre}, ideally with {instrument}."),
        },
        GoalKind::MoodActivity => match rng.random_range(0..3) {
            0 => format!("I need music for {activity}. Something {mood}."),
            1 => format!("What would you play for {activity}? I'm after a {mood} vibe."),
            _ => format!("Give me something {mood} for {activity}, maybe {genre}."),
        },
        GoalKind::ArtistDive => match rng.random_range(0..3) {
            0 => format!("I've been really into {artist} lately. Play me one of their songs?"),
            1 => format!("Play something by {artist}."),
            _ => format!("What's a good {artist} track to start with?"),
        },
        GoalKind::AlbumRecall => match rng.random_range(0..2) {
            0 => format!(
                "There's a {genre} album from the {era} I can't remember the name of. I think it was by {artist}?"
            ),
            _ => format!("Help me find a {mood} {subgenre} record, I think by {artist}."),
        },
        GoalKind::OpenDiscovery => match rng.random_range(0..3) {
            0 => format!("Surprise me with something {mood}."),
            1 => format!("I'm open to anything today. Maybe something {mood} with {instrument}?"),
            _ => format!("Recommend me a song I probably haven't heard, something in {genre}."),
        },
    };
    let cue = match kind {
        GoalKind::ArtistDive | GoalKind::AlbumRecall => format!("music by {artist}"),
        GoalKind::MoodActivity => format!("{mood} music for {activity}"),
        _ => format!("{mood} {genre}"),
    };
    (text, cue)
}

fn reaction(rng: &mut DemoRng, p: &Words, satisfied: bool) -> String {
    let (title, artist, mood, instrument) = (p.title, p.artist, p.mood, p.instrument);
    if satisfied {
        match rng.random_range(0..8) {
            0 | 1 => String::new(),
            2 => "Love this one!".into(),
            3 => "Great pick.".into(),
            4 => format!("\"{title}\" was exactly what I needed."),
            5 => format!("Nice, {artist} never disappoints."),
            6 => format!("That {mood} sound is perfect."),
            _ => format!("Ooh, I like the {instrument} on that."),
        }
    } else {
        match rng.random_range(0..3) {
            0 => format!("Hmm, \"{title}\" is a bit too {mood} for me."),
            1 => "Not really feeling that one.".into(),
            _ => "That's not quite it.".into(),
        }
    }
}

fn follow_up_request(
    rng: &mut DemoRng,
    step: Step,
    t: &Words,
    p: &Words,
    prev_moods: &[&str],
    next_moods: &[&'static str],
) -> (String, String) {
    let Words {
        artist,
        album,
        genre,
        subgenre,
        instrument,
        era,
        ..
    } = t;
    match step {
        Step::SameAlbum | Step::First => {
            let text = match rng.random_range(0..5) {
                0 => format!("What else is on {album}?"),
                1 => format!("Another one from {album}, please."),
                2 => "Can we stay on that album?".into(),
                3 => "Play another track from that record.".into(),
                _ => format!("I'd like to hear more of {album} by {artist}."),
            };
            (text, format!("more from the album {album}"))
        }
        Step::SameArtist => {
            let text = match rng.random_range(0..5) {
                0 => format!("Play something else by {artist}."),
                1 => format!("More {artist}, but from a different album."),
                2 => format!("What else has {artist} made?"),
                3 => "Stick with this artist, please.".into(),
                _ => "Do they have anything from another record?".into(),
            };
            (text, format!("more songs by {artist}"))
        }
        Step::Similar => {
            // Ask for a mood the upcoming track has and the previous one lacks, when there is one.
            let fresh: Vec<&'static str> = next_moods
                .iter()
                .copied()
                .filter(|m| !prev_moods.contains(m))
                .collect();
            let mood = if fresh.is_empty() {
                t.mood
            } else {
                *pick(rng, &fresh)
            };
            let prev_artist = p.artist;
            match rng.random_range(0..16) {
                0 | 1 => (
                    format!("Can we go somewhere more {mood}?"),
                    format!("something {mood}"),
                ),
                2 => (
                    format!("Something {mood} next."),
                    format!("something {mood}"),
                ),
                3 | 4 => (
                    format!("Keep the {genre} going, but a different artist."),
                    format!("{genre} by another artist"),
                ),
                5 => (format!("Switch it up, some {genre}?"), genre.to_string()),
                6 | 7 => (
                    format!("Got any {genre} from the {era}?"),
                    format!("{genre} from the {era}"),
                ),
                8 => (
                    format!("I'd love something with {instrument}."),
                    instrument.to_string(),
                ),
                9 | 10 => (format!("How about some {subgenre}?"), subgenre.to_string()),
                11 | 12 => (
                    format!("Give me some {mood} {genre} with {instrument}."),
                    format!("{mood} {genre} with {instrument}"),
                ),
                13 => (
                    format!("Something that sounds like {prev_artist} but by someone else."),
                    format!("artists similar to {prev_artist}"),
                ),
                14 => (
                    "Surprise me with something along those lines.".into(),
                    "something in the same vein".into(),
                ),
                _ => ("Another one like that?".into(), "something similar".into()),
            }
        }
    }
}

fn assistant_reply(rng: &mut DemoRng, t: &Words) -> String {
    let Words {
        title,
        artist,
        album,
        genre,
        subgenre,
        mood,
        instrument,
        era,
        year,
    } = t;
    let opener = *pick(
        rng,
        &[
            "",
            "",
            "Sure! ",
            "Good call. ",
            "Coming right up. ",
            "Got it. ",
        ],
    );
    let body = match rng.random_range(0..6) {
        0 => format!("Here's \"{title}\" by {artist}: {mood} {genre} from {year}."),
        1 => format!(
            "Try \"{title}\" by {artist}, from the album {album}. It's {mood}, with lots of {instrument}."
        ),
        2 => format!("You might like \"{title}\" by {artist}; it has that {mood} feel."),
        3 => format!("How about \"{title}\" by {artist}? A {subgenre} gem from the {era}."),
        4 => format!("\"{title}\" from {artist}'s {album} should hit the spot."),
        _ => format!("Queue up \"{title}\" by {artist}, {instrument} and a {mood} mood."),
    };
    format!("{opener}{body}")
}

fn goal(rng: &mut DemoRng, kind: GoalKind, t: &Words, activity: &str) -> ConversationGoal {
    let Words {
        artist,
        genre,
        mood,
        era,
        ..
    } = t;
    let (categories, specificities, text): (&[&str], &[&str], String) = match kind {
        GoalKind::GenreExplore => (
            &["A", "B"],
            &["LH", "HL"],
            format!("explore and discover {genre} music, especially {mood} tracks from the {era}."),
        ),
        GoalKind::MoodActivity => (
            &["C", "D", "E"],
            &["LL", "LH"],
            format!("find {mood} songs to accompany {activity}."),
        ),
        GoalKind::ArtistDive => (
            &["F", "G"],
            &["HL", "HH"],
            format!("dig into the music of {artist} and find more songs with a similar sound."),
        ),
        GoalKind::AlbumRecall => (
            &["H", "I"],
            &["HH", "HL"],
            format!(
                "identify a specific {genre} album by {artist} from vague memories of its sound."
            ),
        ),
        GoalKind::OpenDiscovery => (
            &["J", "K"],
            &["LL"],
            "discover diverse music through open-ended conversation, staying engaged throughout."
                .to_string(),
        ),
    };
    ConversationGoal {
        category: Some(pick(rng, categories).to_string()),
        listener_goal: Some(text),
        specificity: Some(pick(rng, specificities).to_string()),
    }
}

fn goal_kind(rng: &mut DemoRng, from_favorite: bool) -> GoalKind {
    if from_favorite && rng.random_bool(0.7) {
        return if rng.random_bool(0.7) {
            GoalKind::ArtistDive
        } else {
            GoalKind::AlbumRecall
        };
    }
    const KINDS: [GoalKind; 5] = [
        GoalKind::GenreExplore,
        GoalKind::MoodActivity,
        GoalKind::OpenDiscovery,
        GoalKind::ArtistDive,
        GoalKind::AlbumRecall,
    ];
    KINDS[weighted_index(rng, &[0.35, 0.3, 0.2, 0.1, 0.05])]
}

/// The dates sessions of a split fall on: 2019 for train, the first half of 2020 after it.
fn session_date(rng: &mut DemoRng, evaluation: bool) -> String {
    let (year, last_month) = if evaluation { (2020, 6) } else { (2019, 12) };
    format!(
        "{year}-{:02}-{:02}",
        rng.random_range(1..=last_month),
        rng.random_range(1..=28)
    )
}

/// One full session of `turns` turns for `user_index`.
pub(crate) fn generate_session(
    rng: &mut DemoRng,
    catalog: &CatalogModel,
    users: &[UserModel],
    user_index: usize,
    turns: usize,
    rates: WalkRates,
    split_label: &str,
) -> GeneratedSession {
    let user = &users[user_index];
    let (tracks, steps, from_favorite) = listen(rng, catalog, user, turns, rates);
    let kind = goal_kind(rng, from_favorite);
    let activity = *pick(rng, ACTIVITIES);
    let session_id = uuid(rng);
    let user_id = user.profile.user_id.clone().unwrap_or_default();
    let evaluation = split_label != "train";
    let mut profile = user.profile.clone();
    profile.user_split = Some(
        match (evaluation, user.warm) {
            (false, _) => "train",
            (true, true) => "test_warm",
            (true, false) => "test_cold",
        }
        .to_string(),
    );

    let mut messages = Vec::with_capacity(tracks.len() * 3);
    let mut goal_progress = Vec::with_capacity(tracks.len());
    let mut conversation_goal = None;
    for (position, (&track, &step)) in tracks.iter().zip(&steps).enumerate() {
        let turn = position as u32 + 1;
        let t = words(rng, catalog, track);
        let (user_text, cue, user_thought, assessment) = if position == 0 {
            conversation_goal = Some(goal(rng, kind, &t, activity));
            let (text, cue) = first_request(rng, kind, &t, activity);
            (text, cue, None, None)
        } else {
            let previous = tracks[position - 1];
            let p = words(rng, catalog, previous);
            let satisfied = rng.random_bool(0.85);
            let (request, cue) = follow_up_request(
                rng,
                step,
                &t,
                &p,
                &catalog.facts[previous].moods,
                &catalog.facts[track].moods,
            );
            let react = reaction(rng, &p, satisfied);
            let text = if react.is_empty() {
                request
            } else {
                format!("{react} {request}")
            };
            let thought = rng.random_bool(0.4).then(|| {
                if satisfied {
                    format!("\"{}\" fits my goal; now I want {cue}.", p.title)
                } else {
                    format!(
                        "\"{}\" misses what I am after; I should ask for {cue}.",
                        p.title
                    )
                }
            });
            let assessment = if satisfied {
                "MOVES_TOWARD_GOAL"
            } else {
                "DOES_NOT_MOVE_TOWARD_GOAL"
            };
            (text, cue, thought, Some(assessment.to_string()))
        };
        let mut user_message = Message::new(turn, Role::User, user_text);
        user_message.thought = user_thought;
        messages.push(user_message);
        let mut music = Message::new(turn, Role::Music, catalog.tracks[track].track_id.clone());
        music.thought = rng.random_bool(0.75).then(|| {
            let facts = &catalog.facts[track];
            format!(
                "The listener wants {cue}. \"{}\" by {} is {} {} with {}.",
                t.title,
                t.artist,
                facts.moods.join(" and "),
                t.subgenre,
                facts.instruments.join(" and ")
            )
        });
        messages.push(music);
        messages.push(Message::new(
            turn,
            Role::Assistant,
            assistant_reply(rng, &t),
        ));
        goal_progress.push(GoalProgress {
            turn_number: turn,
            assessment,
        });
    }
    GeneratedSession {
        session: Session {
            session_id,
            user_id,
            session_date: Some(session_date(rng, evaluation)),
            user_profile: Some(profile),
            conversation_goal,
            messages,
            goal_progress,
        },
        tracks,
        user: user_index,
    }
}

/// Cuts a full session to a blind input ending at the user message of `turn` (1-based);
/// returns the gold track of that turn. Blind files carry no date and no progress rows.
pub(crate) fn cut_to_blind(generated: &mut GeneratedSession, turn: u32) -> usize {
    let session = &mut generated.session;
    session
        .messages
        .retain(|m| m.turn_number < turn || (m.turn_number == turn && m.role == Role::User));
    session.session_date = None;
    session.goal_progress.clear();
    generated.tracks[turn as usize - 1]
}
