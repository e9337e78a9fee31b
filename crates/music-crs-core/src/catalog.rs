//! The track catalog: tracks by position and by id.

use std::collections::HashMap;

use crate::{Error, Result, Track};

/// An immutable list of tracks with an id lookup.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tracks: Vec<Track>,
    by_id: HashMap<String, usize>,
}

impl Catalog {
    /// Builds a catalog; fails on a duplicate track id.
    pub fn new(tracks: Vec<Track>) -> Result<Self> {
        let mut by_id = HashMap::with_capacity(tracks.len());
        for (index, track) in tracks.iter().enumerate() {
            if by_id.insert(track.track_id.clone(), index).is_some() {
                return Err(Error::DuplicateTrack(track.track_id.clone()));
            }
        }
        Ok(Catalog { tracks, by_id })
    }

    /// The track with this id.
    pub fn get(&self, track_id: &str) -> Option<&Track> {
        self.by_id.get(track_id).map(|&i| &self.tracks[i])
    }

    /// The position of this id in [`Catalog::tracks`].
    pub fn index_of(&self, track_id: &str) -> Option<usize> {
        self.by_id.get(track_id).copied()
    }

    /// All tracks, in catalog order.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// Number of tracks.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// True when there are no tracks.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// True when the id is in the catalog.
    pub fn contains(&self, track_id: &str) -> bool {
        self.by_id.contains_key(track_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_ids_are_rejected() {
        let err = Catalog::new(vec![Track::new("x", "a", "b"), Track::new("x", "c", "d")]);
        assert!(matches!(err, Err(Error::DuplicateTrack(id)) if id == "x"));
    }

    #[test]
    fn lookup_by_id() {
        let catalog =
            Catalog::new(vec![Track::new("x", "a", "b"), Track::new("y", "c", "d")]).unwrap();
        assert_eq!(catalog.index_of("y"), Some(1));
        assert_eq!(catalog.get("x").unwrap().name(), "a");
        assert!(catalog.get("z").is_none());
    }
}
