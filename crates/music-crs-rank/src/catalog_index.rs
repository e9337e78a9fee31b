//! Per-track metadata the channels and features read, computed once per catalog.

use std::collections::HashMap;
use std::sync::Arc;

use music_crs_core::{Catalog, Track};

/// A catalog with the lookups the rank crate needs: artist and album keys, popularity,
/// lowercased names and tag tokens per track, and the tracks of each artist and album.
///
/// Artist keys, album keys and tag tokens are interned as `u32` ids once here, so channels and
/// features compare integers per candidate instead of hashing strings.
#[derive(Debug, Clone)]
pub struct CatalogIndex {
    catalog: Arc<Catalog>,
    tracks: Vec<TrackInfo>,
    /// Tag token → token id.
    token_ids: HashMap<String, u32>,
    /// Tracks of each artist id, most popular first.
    by_artist: Vec<Vec<u32>>,
    /// Tracks of each album id, most popular first.
    by_album: Vec<Vec<u32>>,
}

/// What the rank crate precomputes for one track.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrackInfo {
    /// Artist ids (interned keys: artist ids when the catalog has them, else lowercased
    /// names).
    pub artists: Vec<u32>,
    /// Album ids, like `artists`.
    pub albums: Vec<u32>,
    /// Catalog popularity, 0 when unknown.
    pub popularity: f32,
    /// Release year, when known.
    pub year: Option<u32>,
    /// Lowercased artist names (for "is the artist named in the message").
    pub artist_names: Vec<String>,
    /// Lowercased titles.
    pub titles: Vec<String>,
    /// Each tag as its word tokens' ids.
    pub tags: Vec<Vec<u32>>,
    /// All tag token ids, sorted and deduplicated.
    pub tag_tokens: Vec<u32>,
}

/// Assigns consecutive ids to strings.
fn intern(ids: &mut HashMap<String, u32>, key: &str) -> u32 {
    if let Some(&id) = ids.get(key) {
        return id;
    }
    let id = ids.len() as u32;
    ids.insert(key.to_string(), id);
    id
}

impl CatalogIndex {
    /// Indexes a catalog.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        let mut artist_ids = HashMap::new();
        let mut album_ids = HashMap::new();
        let mut token_ids = HashMap::new();
        let tracks: Vec<TrackInfo> = catalog
            .tracks()
            .iter()
            .map(|track| track_info(track, &mut artist_ids, &mut album_ids, &mut token_ids))
            .collect();
        let mut by_artist: Vec<Vec<u32>> = vec![Vec::new(); artist_ids.len()];
        let mut by_album: Vec<Vec<u32>> = vec![Vec::new(); album_ids.len()];
        for (position, info) in tracks.iter().enumerate() {
            let position = position as u32;
            for &key in &info.artists {
                by_artist[key as usize].push(position);
            }
            for &key in &info.albums {
                by_album[key as usize].push(position);
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
        by_artist.iter_mut().for_each(order);
        by_album.iter_mut().for_each(order);
        CatalogIndex {
            catalog,
            tracks,
            token_ids,
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

    pub(crate) fn info(&self, position: u32) -> &TrackInfo {
        &self.tracks[position as usize]
    }

    pub(crate) fn track(&self, position: u32) -> &Track {
        &self.catalog.tracks()[position as usize]
    }

    /// Tracks sharing an artist id, most popular first.
    pub(crate) fn artist_tracks(&self, artist: u32) -> &[u32] {
        self.by_artist
            .get(artist as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// Tracks sharing an album id, most popular first.
    pub(crate) fn album_tracks(&self, album: u32) -> &[u32] {
        self.by_album.get(album as usize).map_or(&[], Vec::as_slice)
    }

    /// The id of a tag token, when some track's tags hold it.
    pub(crate) fn token_id(&self, token: &str) -> Option<u32> {
        self.token_ids.get(token).copied()
    }

    /// Catalog positions of the played ids the catalog knows, oldest first.
    pub(crate) fn positions(&self, ids: &[String]) -> Vec<u32> {
        ids.iter().filter_map(|id| self.position(id)).collect()
    }

    /// The catalog position of a track id.
    pub(crate) fn position(&self, id: &str) -> Option<u32> {
        self.catalog.index_of(id).map(|p| p as u32)
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

fn track_info(
    track: &Track,
    artist_ids: &mut HashMap<String, u32>,
    album_ids: &mut HashMap<String, u32>,
    token_ids: &mut HashMap<String, u32>,
) -> TrackInfo {
    let tags: Vec<Vec<u32>> = track
        .tag_list
        .iter()
        .map(|tag| tokens(tag))
        .filter(|t| !t.is_empty())
        .map(|t| t.iter().map(|w| intern(token_ids, w)).collect())
        .collect();
    let mut tag_tokens: Vec<u32> = tags.iter().flatten().copied().collect();
    tag_tokens.sort_unstable();
    tag_tokens.dedup();
    let ids = |keys: Vec<String>, map: &mut HashMap<String, u32>| {
        keys.iter().map(|k| intern(map, k)).collect()
    };
    TrackInfo {
        artists: ids(keys(&track.artist_id, &track.artist_name), artist_ids),
        albums: ids(keys(&track.album_id, &track.album_name), album_ids),
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
        // a and b share the artist key "x" (no artist ids: the lowercased name).
        assert_eq!(index.info(0).artists, index.info(1).artists);
        assert_ne!(index.info(0).artists, index.info(2).artists);
        assert_eq!(index.artist_tracks(index.info(0).artists[0]), &[1, 0]);
        assert_eq!(index.artist_tracks(index.info(2).artists[0]), &[2]);
        assert!(index.artist_tracks(99).is_empty());
        assert!(
            index.info(0).albums.is_empty(),
            "no album names, no album keys"
        );
    }

    #[test]
    fn tokens_are_lowercase_words() {
        assert_eq!(tokens("Hip-Hop, 90s & R"), vec!["hip", "hop", "90s"]);
    }
}
