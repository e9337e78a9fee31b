//! The demo catalog: artists with a home genre and era, albums of several tracks, tags.

use std::collections::HashSet;

use music_crs_core::Track;
use rand::Rng;

use super::random::{Cumulative, DemoRng, normal, pick, uuid, weighted_index, word};
use super::vocab::{ADJECTIVES, ALPHANUMERIC, FIRST_NAMES, GENRES, LAST_NAMES, NOUNS};

/// What the generator knows about a track beyond its public metadata.
#[derive(Debug, Clone)]
pub(crate) struct TrackFacts {
    pub artist: usize,
    pub album: usize,
    pub genre: usize,
    pub subgenre: &'static str,
    pub moods: Vec<&'static str>,
    pub instruments: Vec<&'static str>,
    pub era: String,
    pub year: i32,
    pub has_lyrics: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Artist {
    pub genre: usize,
    pub tracks: Vec<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct Album {
    pub tracks: Vec<usize>,
}

/// The generated catalog with the indexes sessions are sampled from.
#[derive(Debug, Clone)]
pub(crate) struct CatalogModel {
    pub tracks: Vec<Track>,
    pub facts: Vec<TrackFacts>,
    pub artists: Vec<Artist>,
    pub albums: Vec<Album>,
    /// Tracks of each genre, sampled in proportion to popularity.
    pub by_genre: Vec<Cumulative>,
    /// Artists of each genre, sampled in proportion to their best track's popularity.
    pub artists_by_genre: Vec<Cumulative>,
}

/// How likely a track is to be played: a steep function of popularity gives the long tail.
pub(crate) fn play_weight(track: &Track) -> f64 {
    (track.popularity.unwrap_or(0.0) / 12.0).exp()
}

/// Relative genre sizes: broad genres hold more artists than niche ones.
fn genre_weight(name: &str) -> f64 {
    match name {
        "pop" | "rock" | "hip-hop" | "indie rock" | "electronic" => 3.0,
        "r&b" | "metal" | "folk" | "jazz" | "latin" | "country" | "soul" => 2.0,
        _ => 1.0,
    }
}

pub(crate) fn era_of(year: i32) -> String {
    format!("{}s", year / 10 * 10)
}

fn plural(noun: &str) -> String {
    if noun.ends_with('s') || noun.ends_with('h') {
        format!("{noun}es")
    } else if let Some(stem) = noun.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{noun}s")
    }
}

fn artist_name(rng: &mut DemoRng) -> String {
    match rng.random_range(0..20) {
        0..=8 => format!("{} {}", pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES)),
        9..=13 => format!("The {} {}", pick(rng, ADJECTIVES), plural(word(rng, NOUNS))),
        14..=16 => format!("{} {}", pick(rng, ADJECTIVES), pick(rng, NOUNS)),
        17..=18 => format!(
            "{} & the {}",
            pick(rng, FIRST_NAMES),
            plural(word(rng, NOUNS))
        ),
        _ => format!("DJ {}", pick(rng, FIRST_NAMES)),
    }
}

fn album_name(rng: &mut DemoRng, artist: &str, first: bool) -> String {
    if first && rng.random_bool(0.1) {
        return artist.to_string();
    }
    match rng.random_range(0..10) {
        0..=3 => format!("{} {}", pick(rng, ADJECTIVES), pick(rng, NOUNS)),
        4 => plural(word(rng, NOUNS)),
        5 => format!("Songs from the {}", pick(rng, NOUNS)),
        6 => format!("{} Sessions", pick(rng, NOUNS)),
        7 => format!("{} & {}", pick(rng, NOUNS), pick(rng, NOUNS)),
        8 => format!("Live at the {}", pick(rng, NOUNS)),
        _ => format!("The {} {}", pick(rng, ADJECTIVES), plural(word(rng, NOUNS))),
    }
}

fn track_title(rng: &mut DemoRng, year: i32) -> String {
    let base = match rng.random_range(0..10) {
        0..=3 => format!("{} {}", pick(rng, ADJECTIVES), pick(rng, NOUNS)),
        4..=5 => pick(rng, NOUNS).to_string(),
        6 => format!("The {}", pick(rng, NOUNS)),
        7 => format!("{} in the {}", pick(rng, NOUNS), pick(rng, NOUNS)),
        8 => format!("{} {}", pick(rng, ADJECTIVES), plural(word(rng, NOUNS))),
        _ => format!("Under the {} {}", pick(rng, ADJECTIVES), pick(rng, NOUNS)),
    };
    // Suffixes as real catalogs carry them; they make exact-title matching harder.
    match rng.random_range(0..100) {
        0..=2 => format!("{base} (Live)"),
        3..=5 if year < 2000 => format!("{base} - Remastered"),
        6 => format!("{base} - Radio Edit"),
        _ => base,
    }
}

fn isrc(rng: &mut DemoRng, registrant: &str, year: i32) -> String {
    let country = pick(rng, &["US", "GB", "DE", "SE", "FR", "JP", "BR", "KR"]);
    format!(
        "{country}{registrant}{:02}{:05}",
        year.rem_euclid(100),
        rng.random_range(0..100_000)
    )
}

/// Builds a catalog of exactly `num_tracks` tracks.
pub(crate) fn generate_catalog(rng: &mut DemoRng, num_tracks: usize) -> CatalogModel {
    let genre_weights: Vec<f64> = GENRES.iter().map(|g| genre_weight(g.name)).collect();
    let mut tracks: Vec<Track> = Vec::with_capacity(num_tracks);
    let mut facts: Vec<TrackFacts> = Vec::with_capacity(num_tracks);
    let mut artists: Vec<Artist> = Vec::new();
    let mut albums: Vec<Album> = Vec::new();
    let mut artist_names: HashSet<String> = HashSet::new();

    while tracks.len() < num_tracks {
        let genre_index = weighted_index(rng, &genre_weights);
        let genre = &GENRES[genre_index];
        let mut name = artist_name(rng);
        while !artist_names.insert(name.clone()) {
            name = artist_name(rng);
        }
        let artist_index = artists.len();
        let artist_id = uuid(rng);
        let registrant: String = (0..3).map(|_| *pick(rng, ALPHANUMERIC) as char).collect();
        let subgenre = *pick(rng, genre.subgenres);
        // A few artists cross over into a neighbouring genre.
        let second_genre = rng
            .random_bool(0.15)
            .then(|| GENRES[rng.random_range(0..GENRES.len())].name)
            .filter(|&g| g != genre.name);
        let home_mood = *pick(rng, genre.moods);
        let home_instrument = *pick(rng, genre.instruments);
        // Popularity has a long tail: most artists are obscure, a few are stars.
        let star = rng.random_bool(0.06);
        let base_popularity = if star {
            70.0 + 20.0 * rng.random::<f64>()
        } else {
            (32.0 + 14.0 * normal(rng)).clamp(2.0, 70.0)
        };
        let (first_year, last_year) = genre.years;
        let mut year = rng.random_range(first_year..=last_year.max(first_year));
        let num_albums = 1 + [0, 0, 1, 1, 2, 3][rng.random_range(0..6)];
        let mut artist = Artist {
            genre: genre_index,
            tracks: Vec::new(),
        };

        for album_number in 0..num_albums {
            if tracks.len() >= num_tracks {
                break;
            }
            let album_index = albums.len();
            let album_id = uuid(rng);
            let album_title = album_name(rng, &name, album_number == 0);
            let album_mood = *pick(rng, genre.moods);
            let release_date = format!(
                "{year:04}-{:02}-{:02}",
                rng.random_range(1..=12),
                rng.random_range(1..=28)
            );
            let size = if rng.random_bool(0.12) {
                rng.random_range(1..=3)
            } else {
                rng.random_range(6..=12)
            };
            let mut album = Album { tracks: Vec::new() };
            let mut titles: HashSet<String> = HashSet::new();
            for _ in 0..size {
                if tracks.len() >= num_tracks {
                    break;
                }
                let mut title = track_title(rng, year);
                while !titles.insert(title.clone()) {
                    title = track_title(rng, year);
                }
                let mut moods = vec![home_mood];
                if album_mood != home_mood {
                    moods.push(album_mood);
                }
                if rng.random_bool(0.3) {
                    let extra = *pick(rng, genre.moods);
                    if !moods.contains(&extra) {
                        moods.push(extra);
                    }
                }
                let mut instruments = vec![home_instrument];
                if rng.random_bool(0.4) {
                    let extra = *pick(rng, genre.instruments);
                    if !instruments.contains(&extra) {
                        instruments.push(extra);
                    }
                }
                let era = era_of(year);
                let mut tags: Vec<String> = vec![genre.name.to_string(), subgenre.to_string()];
                if let Some(second) = second_genre {
                    tags.push(second.to_string());
                }
                tags.extend(moods.iter().map(|m| m.to_string()));
                tags.extend(instruments.iter().map(|i| i.to_string()));
                tags.push(era.clone());
                let popularity = (base_popularity + 9.0 * normal(rng) - 2.0 * album_number as f64)
                    .clamp(0.0, 100.0)
                    .round();
                let (low, high) = genre.seconds;
                let duration_ms = rng.random_range(low * 1000..=high * 1000) / 1000 * 1000
                    + rng.random_range(0..1000);
                let track_index = tracks.len();
                tracks.push(Track {
                    track_id: uuid(rng),
                    track_name: vec![title],
                    artist_name: vec![name.clone()],
                    album_name: vec![album_title.clone()],
                    tag_list: tags,
                    artist_id: vec![artist_id.clone()],
                    album_id: vec![album_id.clone()],
                    isrc: if rng.random_bool(0.95) {
                        vec![isrc(rng, &registrant, year)]
                    } else {
                        Vec::new()
                    },
                    popularity: Some(popularity),
                    release_date: Some(release_date.clone()),
                    duration_ms: Some(duration_ms),
                });
                facts.push(TrackFacts {
                    artist: artist_index,
                    album: album_index,
                    genre: genre_index,
                    subgenre,
                    moods,
                    instruments,
                    era,
                    year,
                    has_lyrics: rng.random_bool(genre.lyrics_share),
                });
                album.tracks.push(track_index);
                artist.tracks.push(track_index);
            }
            albums.push(album);
            year = (year + rng.random_range(1..=4)).min(2025);
        }
        artists.push(artist);
    }

    let by_genre = (0..GENRES.len())
        .map(|g| {
            let members = (0..tracks.len()).filter(|&t| facts[t].genre == g).collect();
            Cumulative::new(members, |t| play_weight(&tracks[t]))
        })
        .collect();
    let artists_by_genre = (0..GENRES.len())
        .map(|g| {
            let members = (0..artists.len())
                .filter(|&a| artists[a].genre == g && !artists[a].tracks.is_empty())
                .collect();
            Cumulative::new(members, |a| {
                artists[a]
                    .tracks
                    .iter()
                    .map(|&t| play_weight(&tracks[t]))
                    .fold(0.0, f64::max)
            })
        })
        .collect();
    CatalogModel {
        tracks,
        facts,
        artists,
        albums,
        by_genre,
        artists_by_genre,
    }
}
