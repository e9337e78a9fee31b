//! Catalog tracks and how their metadata is turned into text.

use serde::{Deserialize, Serialize};

/// One catalog track, with the columns of the Track-Metadata datasets.
///
/// Name-like columns are lists on the hub (a track can have several artists); most hold one
/// value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// Unique id (a UUID in TalkPlayData-Challenge, a Spotify id in TalkPlayData-2).
    pub track_id: String,
    /// Track titles.
    #[serde(default)]
    pub track_name: Vec<String>,
    /// Artist names.
    #[serde(default)]
    pub artist_name: Vec<String>,
    /// Album names.
    #[serde(default)]
    pub album_name: Vec<String>,
    /// Free-form tags (genres, moods, eras...).
    #[serde(default)]
    pub tag_list: Vec<String>,
    /// Artist ids, parallel to `artist_name`.
    #[serde(default)]
    pub artist_id: Vec<String>,
    /// Album ids, parallel to `album_name`.
    #[serde(default)]
    pub album_id: Vec<String>,
    /// ISRC codes.
    #[serde(default)]
    pub isrc: Vec<String>,
    /// Popularity as the catalog gives it (0..=100 on the hub), when known.
    #[serde(default)]
    pub popularity: Option<f64>,
    /// Release date as the catalog writes it (usually `YYYY-MM-DD`).
    #[serde(default)]
    pub release_date: Option<String>,
    /// Duration in milliseconds.
    #[serde(default)]
    pub duration_ms: Option<i64>,
}

impl Track {
    /// A track with one title and one artist; other fields empty.
    pub fn new(
        track_id: impl Into<String>,
        name: impl Into<String>,
        artist: impl Into<String>,
    ) -> Self {
        Track {
            track_id: track_id.into(),
            track_name: vec![name.into()],
            artist_name: vec![artist.into()],
            ..Track::default()
        }
    }

    /// The title, list values joined with ", " (empty when unknown).
    pub fn name(&self) -> String {
        self.track_name.join(", ")
    }

    /// The artists, joined with ", " (empty when unknown).
    pub fn artist(&self) -> String {
        self.artist_name.join(", ")
    }

    /// The albums, joined with ", " (empty when unknown).
    pub fn album(&self) -> String {
        self.album_name.join(", ")
    }

    /// The release year, when the release date starts with four digits.
    pub fn release_year(&self) -> Option<u32> {
        let date = self.release_date.as_deref()?;
        let year = date.get(..4)?;
        year.chars()
            .all(|c| c.is_ascii_digit())
            .then(|| year.parse().ok())?
    }

    /// The text of one field as the official baseline stringifies it: lists joined with ", ",
    /// missing values as the empty string.
    pub fn field_text(&self, field: TrackField) -> String {
        match field {
            TrackField::TrackId => self.track_id.clone(),
            TrackField::TrackName => self.track_name.join(", "),
            TrackField::ArtistName => self.artist_name.join(", "),
            TrackField::AlbumName => self.album_name.join(", "),
            TrackField::TagList => self.tag_list.join(", "),
            TrackField::ReleaseDate => self.release_date.clone().unwrap_or_default(),
            TrackField::Popularity => self.popularity.map(|p| p.to_string()).unwrap_or_default(),
        }
    }

    /// `field: value` lines, one per field, each ending in a newline: the document text the
    /// official BM25 baseline indexes.
    pub fn document_text(&self, fields: &[TrackField]) -> String {
        let mut text = String::new();
        for &field in fields {
            text.push_str(field.column_name());
            text.push_str(": ");
            text.push_str(&self.field_text(field));
            text.push('\n');
        }
        text
    }
}

/// A catalog column that can be turned into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackField {
    /// `track_id`.
    TrackId,
    /// `track_name`.
    TrackName,
    /// `artist_name`.
    ArtistName,
    /// `album_name`.
    AlbumName,
    /// `tag_list`.
    TagList,
    /// `release_date`.
    ReleaseDate,
    /// `popularity`.
    Popularity,
}

impl TrackField {
    /// The fields the official BM25 baseline indexes, in its order.
    pub const BASELINE: [TrackField; 4] = [
        TrackField::TrackName,
        TrackField::ArtistName,
        TrackField::AlbumName,
        TrackField::ReleaseDate,
    ];

    /// The column name on the hub, as used in `field: value` lines.
    pub fn column_name(self) -> &'static str {
        match self {
            TrackField::TrackId => "track_id",
            TrackField::TrackName => "track_name",
            TrackField::ArtistName => "artist_name",
            TrackField::AlbumName => "album_name",
            TrackField::TagList => "tag_list",
            TrackField::ReleaseDate => "release_date",
            TrackField::Popularity => "popularity",
        }
    }

    /// Parses a column name (as in config files).
    pub fn from_column_name(name: &str) -> Option<TrackField> {
        [
            TrackField::TrackId,
            TrackField::TrackName,
            TrackField::ArtistName,
            TrackField::AlbumName,
            TrackField::TagList,
            TrackField::ReleaseDate,
            TrackField::Popularity,
        ]
        .into_iter()
        .find(|f| f.column_name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_text_matches_baseline_layout() {
        let mut track = Track::new("t", "Feel This Moment", "Pitbull");
        track.artist_name.push("Christina Aguilera".into());
        track.album_name = vec!["Global Warming".into()];
        track.release_date = Some("2012-11-16".into());
        assert_eq!(
            track.document_text(&TrackField::BASELINE),
            "track_name: Feel This Moment\nartist_name: Pitbull, Christina Aguilera\n\
             album_name: Global Warming\nrelease_date: 2012-11-16\n"
        );
        assert_eq!(track.release_year(), Some(2012));
    }

    #[test]
    fn field_names_round_trip() {
        for field in TrackField::BASELINE {
            assert_eq!(
                TrackField::from_column_name(field.column_name()),
                Some(field)
            );
        }
        assert_eq!(TrackField::from_column_name("nope"), None);
    }
}
