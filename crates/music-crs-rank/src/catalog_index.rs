//! Per-track metadata the channels and features read, computed once per catalog.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use music_crs_core::{Catalog, Track};

/// A catalog with the lookups the rank crate needs: artist and album keys, popularity,
/// lowercased names and tag tokens per track, and the tracks of each artist and album.
#[derive(Debug, Clone)]
pub struct CatalogIndex {
    catalog: Arc<Catalog>,
    tracks: Vec<TrackInfo>,
    by_artist: HashMap<String, Vec<u32>>,
    by_album: HashMap<String, Vec<u32>>,
}

/// What the rank crate precomputes for one track.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrackInfo {
    /// Artist keys: artist ids when the catalog has them, else lowercased names.
    pub artists: Vec<String>,
    /// Album keys, like `artists`.
    pub albums: Vec<String>,
    /// Catalog popularity, 0 when unknown.
    pub popularity: f32,
    /// Release year, when known.
    pub year: Option<u32>,
    /// Lowercased artist names (for "is the artist named in the message").
    pub artist_names: Vec<String>,
    /// Lowercased titles.
    pub titles: Vec<String>,
    /// Each tag as its lowercased word tokens.
    pub tags: Vec<Vec<String>>,
    /// All tag tokens, deduplicated.
    pub tag_tokens: HashSet<String>,
}

impl CatalogIndex {
    /// Indexes a catalog.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        let tracks: Vec<TrackInfo> = catalog.tracks().iter().map(track_info).collect();
        let mut by_artist: HashMap<String, Vec<u32>> = HashMap::new();
        let mut by_album: HashMap<String, Vec<u32>> = HashMap::new();
        for (position, info) in tracks.iter().enumerate() {
            let position = position as u32;
            for key in &info.artists {
                by_artist.entry(key.clone()).or_default().push(position);
            }
            for key in &info.albums {
                by_album.entry(key.clone()).or_default().push(position);
            }
        }
        // Most popular first, then catalog order: the order channels walk them in.
        let order = |list: &mut Vec<u32>| {
            list.dedup();
            list.sort_by(|&a, &b| {
                tracks[b as usize]
                    .popularity
                    .total_cmp(&tracks[a as usize].popularity)
                    .then(a.cmp(&b))
            });
        };
        by_artist.values_mut().for_each(order);
        by_album.values_mut().for_each(order);
        CatalogIndex {
            catalog,
            tracks,
            by_artist,
            by_album,
        }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Number of tracks.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// True when the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    pub(crate) fn info(&self, position: usize) -> &TrackInfo {
        &self.tracks[position]
    }

    pub(crate) fn track(&self, position: usize) -> &Track {
        &self.catalog.tracks()[position]
    }

    /// Tracks sharing an artist key, most popular first.
    pub(crate) fn artist_tracks(&self, key: &str) -> &[u32] {
        self.by_artist.get(key).map_or(&[], Vec::as_slice)
    }

    /// Tracks sharing an album key, most popular first.
    pub(crate) fn album_tracks(&self, key: &str) -> &[u32] {
        self.by_album.get(key).map_or(&[], Vec::as_slice)
    }

    /// Catalog positions of the played ids the catalog knows, oldest first.
    pub(crate) fn positions(&self, ids: &[String]) -> Vec<usize> {
        ids.iter()
            .filter_map(|id| self.catalog.index_of(id))
            .collect()
    }
}

fn keys(ids: &[String], names: &[String]) -> Vec<String> {
    let ids: Vec<String> = ids
        .iter()
        .filter(|id| !id.trim().is_empty())
        .cloned()
        .collect();
    if !ids.is_empty() {
        return ids;
    }
    names
        .iter()
        .map(|name| name.trim().to_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

fn track_info(track: &Track) -> TrackInfo {
    let tags: Vec<Vec<String>> = track
        .tag_list
        .iter()
        .map(|tag| tokens(tag))
        .filter(|t| !t.is_empty())
        .collect();
    let tag_tokens = tags.iter().flatten().cloned().collect();
    TrackInfo {
        artists: keys(&track.artist_id, &track.artist_name),
        albums: keys(&track.album_id, &track.album_name),
        popularity: track.popularity.unwrap_or(0.0) as f32,
        year: track.release_year(),
        artist_names: lowercase_names(&track.artist_name),
        titles: lowercase_names(&track.track_name),
        tags,
        tag_tokens,
    }
}

fn lowercase_names(names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| n.trim().to_lowercase())
        .filter(|n| n.chars().count() >= 3)
        .collect()
}

/// Lowercased alphanumeric word tokens of at least two characters.
pub(crate) fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artist_lists_are_ordered_by_popularity() {
        let mut a = Track::new("a", "One", "X");
        a.popularity = Some(10.0);
        let mut b = Track::new("b", "Two", "X");
        b.popularity = Some(50.0);
        let c = Track::new("c", "Three", "Y");
        let index = CatalogIndex::new(Arc::new(Catalog::new(vec![a, b, c]).unwrap()));
        assert_eq!(index.artist_tracks("x"), &[1, 0]);
        assert_eq!(index.artist_tracks("y"), &[2]);
        assert!(index.artist_tracks("z").is_empty());
    }

    #[test]
    fn tokens_are_lowercase_words() {
        assert_eq!(tokens("Hip-Hop, 90s & R"), vec!["hip", "hop", "90s"]);
    }
}
