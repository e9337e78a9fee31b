//! Track-Metadata files: one [`Track`] per row.

use std::path::Path;

use music_crs_core::Track;

use crate::Result;
use crate::columns::{Frame, ParquetFile};

/// The column a track file must have.
pub const TRACK_ID_COLUMN: &str = "track_id";

/// List-of-string columns read when present, in [`Track`] field order.
pub const TRACK_LIST_COLUMNS: [&str; 6] = [
    "track_name",
    "artist_name",
    "album_name",
    "tag_list",
    "artist_id",
    "album_id",
];

/// Names accepted for the ISRC list column.
pub const ISRC_COLUMNS: [&str; 2] = ["ISRC", "isrc"];

/// Names accepted for the duration column (milliseconds).
pub const DURATION_COLUMNS: [&str; 2] = ["duration", "duration_ms"];

/// Reads every track of one Track-Metadata parquet file.
///
/// `track_id` (string) is required; `track_name`, `artist_name`, `album_name`, `tag_list`,
/// `artist_id`, `album_id` and `ISRC` are lists of strings (a plain string column is read as
/// one-value lists); `popularity` is any number; `release_date` a string; `duration` an
/// integer of milliseconds. Missing optional columns leave the fields empty; other columns
/// are ignored. A null or empty track id is an error naming the file and row.
pub fn read_tracks(path: &Path) -> Result<Vec<Track>> {
    let file = ParquetFile::open(path)?;
    file.require(&[TRACK_ID_COLUMN])?;
    let mut wanted = vec![TRACK_ID_COLUMN, "popularity", "release_date"];
    wanted.extend(TRACK_LIST_COLUMNS);
    wanted.extend(ISRC_COLUMNS);
    wanted.extend(DURATION_COLUMNS);
    let frame = file.read(&wanted)?;
    decode_tracks(&frame)
}

fn first_present<'f>(frame: &'f Frame, names: &[&str]) -> Option<crate::columns::Col<'f>> {
    names.iter().find_map(|name| frame.column(name))
}

fn decode_tracks(frame: &Frame) -> Result<Vec<Track>> {
    let height = frame.height();
    let id_col = frame.required(TRACK_ID_COLUMN)?;
    let ids = id_col.strings()?;
    let mut lists = Vec::with_capacity(TRACK_LIST_COLUMNS.len() + 1);
    for name in TRACK_LIST_COLUMNS {
        lists.push(match frame.column(name) {
            Some(col) => col.string_lists()?,
            None => vec![Vec::new(); height],
        });
    }
    lists.push(match first_present(frame, &ISRC_COLUMNS) {
        Some(col) => col.string_lists()?,
        None => vec![Vec::new(); height],
    });
    let popularity = match frame.column("popularity") {
        Some(col) => col.floats()?,
        None => vec![None; height],
    };
    let release_dates = match frame.column("release_date") {
        Some(col) => col.strings()?,
        None => vec![None; height],
    };
    let durations = match first_present(frame, &DURATION_COLUMNS) {
        Some(col) => col.ints()?,
        None => vec![None; height],
    };
    let mut lists: Vec<std::vec::IntoIter<Vec<String>>> =
        lists.into_iter().map(Vec::into_iter).collect();
    let mut next = |field: usize| lists[field].next().unwrap_or_default();
    let mut tracks = Vec::with_capacity(height);
    for (row, ((id, popularity), (release_date, duration_ms))) in ids
        .into_iter()
        .zip(popularity)
        .zip(release_dates.into_iter().zip(durations))
        .enumerate()
    {
        let track_id = id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| id_col.row_error(row, "the track id is null or empty"))?;
        tracks.push(Track {
            track_id,
            track_name: next(0),
            artist_name: next(1),
            album_name: next(2),
            tag_list: next(3),
            artist_id: next(4),
            album_id: next(5),
            isrc: next(6),
            popularity,
            release_date,
            duration_ms,
        });
    }
    Ok(tracks)
}
