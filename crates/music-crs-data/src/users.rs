//! User-Metadata files: one [`UserProfile`] per row.

use std::path::Path;

use music_crs_core::UserProfile;

use crate::Result;
use crate::columns::ParquetFile;

/// The column a users file must have.
pub const USER_ID_COLUMN: &str = "user_id";

/// Optional string columns, in the order [`read_users`] fills [`UserProfile`].
pub const USER_STRING_COLUMNS: [&str; 7] = [
    "age_group",
    "country_code",
    "country_name",
    "gender",
    "preferred_language",
    "preferred_musical_culture",
    "user_split",
];

/// Reads every user of one User-Metadata parquet file.
///
/// `user_id` (string) is required and copied into [`UserProfile::user_id`]; `age` is any
/// integer; `age_group`, `country_code`, `country_name`, `gender` (and, when present,
/// `preferred_language`, `preferred_musical_culture`, `user_split`) are strings. Other columns
/// are ignored. A null or empty user id is an error naming the file and row.
pub fn read_users(path: &Path) -> Result<Vec<UserProfile>> {
    let file = ParquetFile::open(path)?;
    file.require(&[USER_ID_COLUMN])?;
    let mut wanted = vec![USER_ID_COLUMN, "age"];
    wanted.extend(USER_STRING_COLUMNS);
    let frame = file.read(&wanted)?;
    let height = frame.height();
    let id_col = frame.required(USER_ID_COLUMN)?;
    let ids = id_col.strings()?;
    let ages = match frame.column("age") {
        Some(col) => col.ints()?,
        None => vec![None; height],
    };
    let mut columns = Vec::with_capacity(USER_STRING_COLUMNS.len());
    for name in USER_STRING_COLUMNS {
        columns.push(
            match frame.column(name) {
                Some(col) => col.strings()?,
                None => vec![None; height],
            }
            .into_iter(),
        );
    }
    let mut users = Vec::with_capacity(height);
    for (row, (id, age)) in ids.into_iter().zip(ages).enumerate() {
        let user_id = id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| id_col.row_error(row, "the user id is null or empty"))?;
        users.push(next_profile(&mut columns, Some(user_id), age));
    }
    Ok(users)
}

/// The next row's profile from the [`USER_STRING_COLUMNS`] iterators, in that order: shared by
/// the users table and the conversations' `user_profile` struct, which hold the same fields.
pub(crate) fn next_profile(
    columns: &mut [std::vec::IntoIter<Option<String>>],
    user_id: Option<String>,
    age: Option<i64>,
) -> UserProfile {
    let mut next = |field: usize| columns.get_mut(field).and_then(|c| c.next()).flatten();
    UserProfile {
        user_id,
        age,
        age_group: next(0),
        country_code: next(1),
        country_name: next(2),
        gender: next(3),
        preferred_language: next(4),
        preferred_musical_culture: next(5),
        user_split: next(6),
    }
}
