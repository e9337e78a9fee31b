//! Writes core types to parquet in the schema of the TalkPlayData hub datasets.
//!
//! The layouts follow the real files (see `shared/fixtures/talkplay/`), so anything written
//! here reads back through the same loader as the hub data:
//!
//! - conversations: `session_id`, `user_id`, `session_date`, `user_profile` struct,
//!   `conversation_goal` struct, `conversations` list<struct{content, role, thought,
//!   turn_number: int64}>, `goal_progress_assessments` list<struct{goal_progress_assessment,
//!   turn_number: int64}>. Blind files ([`write_blind_sessions`]) have neither `session_date`
//!   nor `goal_progress_assessments`, as on the hub.
//! - tracks: `track_id`; `track_name`, `artist_name`, `album_name`, `tag_list` as
//!   `list<string>`; `popularity` float64; `release_date` string; `artist_id`, `album_id`
//!   `list<string>`; `duration` int64 milliseconds; `ISRC` `list<string>`.
//! - users: `user_id`, `age` int64, `age_group`, `country_code`, `country_name`, `gender`.
//! - embeddings: the id column, then one `list<float32>` column per embedding kind, named by
//!   [`EmbeddingTable::kind`]; a missing vector is an empty list.
//!
//! The Arrow schema stored in each file (the `ARROW:schema` footer key that pyarrow and pandas
//! read) carries the hub's types: `string`, `list<item: …>`, `int64`, `double`, `float`.
//! Polars would otherwise record `string_view` and `large_list`, which pandas cannot convert.
//! The parquet column layout is the same for both, so only the footer changes. As in the hub's
//! conversation file, the top-level `session_id`, `user_id` and `session_date` of train / test
//! conversations are `large_string`.
//!
//! A missing message thought is written as the empty string, as the hub does. Every file is
//! written to a temporary file in the target directory and renamed into place, so a reader
//! never sees half a file.

use std::collections::HashSet;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use music_crs_core::{EmbeddingTable, Session, Track, UserProfile};
use polars::chunked_array::builder::get_list_builder;
use polars::prelude::*;
use polars_parquet::write::schema_to_metadata_key;

use crate::{Error, Result};

/// Writes conversation sessions (train / test layout, with `session_date` and
/// `goal_progress_assessments`) to `path`.
pub fn write_sessions(path: impl AsRef<Path>, sessions: &[Session]) -> Result<()> {
    let path = path.as_ref();
    let mut frame = sessions_frame(sessions, false).map_err(|e| write_error(path, e))?;
    write_hub_frame(path, &mut frame, SESSION_LARGE_STRINGS)
}

/// Writes blind sessions: the layout of the hub's blind files, without `session_date` and
/// `goal_progress_assessments`.
pub fn write_blind_sessions(path: impl AsRef<Path>, sessions: &[Session]) -> Result<()> {
    let path = path.as_ref();
    let mut frame = sessions_frame(sessions, true).map_err(|e| write_error(path, e))?;
    write_frame(path, &mut frame)
}

/// Writes catalog tracks in the Track-Metadata layout.
pub fn write_tracks(path: impl AsRef<Path>, tracks: &[Track]) -> Result<()> {
    let path = path.as_ref();
    let mut frame = tracks_frame(tracks).map_err(|e| write_error(path, e))?;
    write_frame(path, &mut frame)
}

/// Writes user profiles in the User-Metadata layout. Every profile needs a `user_id`; the
/// error names the row that lacks one.
pub fn write_users(path: impl AsRef<Path>, users: &[UserProfile]) -> Result<()> {
    let path = path.as_ref();
    if let Some(row) = users.iter().position(|u| u.user_id.is_none()) {
        return Err(Error::InvalidRow {
            path: path.to_path_buf(),
            row,
            column: "user_id".into(),
            reason: "the profile has no user_id".into(),
        });
    }
    let mut frame = users_frame(users).map_err(|e| write_error(path, e))?;
    write_frame(path, &mut frame)
}

/// Writes embedding tables as one file: `id_column` (e.g. `track_id` or `user_id`), then one
/// `list<float32>` column per table named by its kind.
///
/// Rows are the ids of the first table in order, then ids only later tables hold; an id a
/// table lacks, or holds without a vector, gets an empty list. Two tables of the same kind
/// are an error.
pub fn write_embeddings(
    path: impl AsRef<Path>,
    id_column: &str,
    tables: &[EmbeddingTable],
) -> Result<()> {
    let path = path.as_ref();
    let mut seen_kinds = Vec::with_capacity(tables.len());
    for table in tables {
        if table.kind() == id_column || seen_kinds.contains(&table.kind()) {
            return Err(Error::InvalidParam {
                field: format!("embedding kinds written to {}", path.display()),
                reason: format!("column {:?} appears more than once", table.kind()),
            });
        }
        seen_kinds.push(table.kind());
    }
    let mut frame = embeddings_frame(id_column, tables).map_err(|e| write_error(path, e))?;
    write_frame(path, &mut frame)
}

/// The conversations table as a frame: the columns [`write_sessions`] writes, or
/// [`write_blind_sessions`] when `blind` is true.
pub fn sessions_frame(sessions: &[Session], blind: bool) -> PolarsResult<DataFrame> {
    let height = sessions.len();
    let mut columns = vec![
        string_column(
            "session_id",
            sessions.iter().map(|s| Some(s.session_id.as_str())),
        ),
        string_column("user_id", sessions.iter().map(|s| Some(s.user_id.as_str()))),
    ];
    if !blind {
        columns.push(string_column(
            "session_date",
            sessions.iter().map(|s| s.session_date.as_deref()),
        ));
    }
    columns.push(profile_struct(sessions)?);
    columns.push(goal_struct(sessions)?);
    columns.push(conversations_list(sessions)?);
    if !blind {
        columns.push(goal_progress_list(sessions)?);
    }
    DataFrame::new(height, columns)
}

/// The tracks table as a frame (the columns [`write_tracks`] writes).
pub fn tracks_frame(tracks: &[Track]) -> PolarsResult<DataFrame> {
    let columns = vec![
        string_column("track_id", tracks.iter().map(|t| Some(t.track_id.as_str()))),
        string_list_column("track_name", tracks.iter().map(|t| &t.track_name)),
        string_list_column("artist_name", tracks.iter().map(|t| &t.artist_name)),
        string_list_column("album_name", tracks.iter().map(|t| &t.album_name)),
        string_list_column("tag_list", tracks.iter().map(|t| &t.tag_list)),
        Float64Chunked::from_iter_options("popularity".into(), tracks.iter().map(|t| t.popularity))
            .into_column(),
        string_column(
            "release_date",
            tracks.iter().map(|t| t.release_date.as_deref()),
        ),
        string_list_column("artist_id", tracks.iter().map(|t| &t.artist_id)),
        string_list_column("album_id", tracks.iter().map(|t| &t.album_id)),
        Int64Chunked::from_iter_options("duration".into(), tracks.iter().map(|t| t.duration_ms))
            .into_column(),
        string_list_column("ISRC", tracks.iter().map(|t| &t.isrc)),
    ];
    DataFrame::new(tracks.len(), columns)
}

/// The users table as a frame (the columns [`write_users`] writes).
pub fn users_frame(users: &[UserProfile]) -> PolarsResult<DataFrame> {
    let columns = vec![
        string_column("user_id", users.iter().map(|u| u.user_id.as_deref())),
        Int64Chunked::from_iter_options("age".into(), users.iter().map(|u| u.age)).into_column(),
        string_column("age_group", users.iter().map(|u| u.age_group.as_deref())),
        string_column(
            "country_code",
            users.iter().map(|u| u.country_code.as_deref()),
        ),
        string_column(
            "country_name",
            users.iter().map(|u| u.country_name.as_deref()),
        ),
        string_column("gender", users.iter().map(|u| u.gender.as_deref())),
    ];
    DataFrame::new(users.len(), columns)
}

/// An embeddings table as a frame (the columns [`write_embeddings`] writes).
pub fn embeddings_frame(id_column: &str, tables: &[EmbeddingTable]) -> PolarsResult<DataFrame> {
    let mut ids: Vec<&str> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for table in tables {
        for id in table.ids() {
            if seen.insert(id.as_str()) {
                ids.push(id.as_str());
            }
        }
    }
    let mut columns = vec![string_column(id_column, ids.iter().map(|id| Some(*id)))];
    for table in tables {
        let mut builder = ListPrimitiveChunkedBuilder::<Float32Type>::new(
            table.kind().into(),
            ids.len(),
            ids.len() * table.dim(),
            DataType::Float32,
        );
        for id in &ids {
            builder.append_slice(table.get(id).unwrap_or(&[]));
        }
        columns.push(builder.finish().into_column());
    }
    DataFrame::new(ids.len(), columns)
}

/// Top-level columns the hub's train / test conversation files type as `large_string`.
const SESSION_LARGE_STRINGS: &[&str] = &["session_id", "user_id", "session_date"];

/// Writes a frame to `path` through a temporary file in the same directory, then renames it.
/// The file's Arrow schema uses the hub's types (see the [module docs](self)).
pub fn write_frame(path: &Path, frame: &mut DataFrame) -> Result<()> {
    write_hub_frame(path, frame, &[])
}

/// [`write_frame`], with the top-level string columns in `large_strings` typed `large_string`.
fn write_hub_frame(path: &Path, frame: &mut DataFrame, large_strings: &[&str]) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs_err::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::InvalidParam {
            field: "output path".into(),
            reason: format!("{} does not name a file", path.display()),
        })?
        .to_string_lossy();
    let temp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = write_to(&temp, frame, large_strings)
        .and_then(|()| std::fs::rename(&temp, path).map_err(|e| Error::io(path, e)));
    if result.is_err() {
        // Best effort: the temporary file is garbage once the write failed.
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn write_to(temp: &Path, frame: &mut DataFrame, large_strings: &[&str]) -> Result<()> {
    let schema = hub_arrow_schema(frame, large_strings);
    let key = schema_to_metadata_key(&schema);
    // Given an `ARROW:schema` entry, polars stores it instead of its own.
    let metadata = KeyValueMetadata::from_static(vec![(key.key, key.value.unwrap_or_default())]);
    let file = fs_err::File::create(temp).map_err(|e| Error::io(temp, e))?;
    let mut out = BufWriter::new(file);
    ParquetWriter::new(&mut out)
        .with_compression(ParquetCompression::Zstd(None))
        .with_key_value_metadata(Some(metadata))
        .finish(frame)
        .map_err(|e| write_error(temp, e))?;
    let file = out
        .into_inner()
        .map_err(|e| Error::io(temp, e.into_error()))?;
    // Durable before the rename makes it visible.
    file.sync_all().map_err(|e| Error::io(temp, e))
}

/// The frame's Arrow schema with the hub's types: polars' view and large types become `string`,
/// `binary` and `list<item: …>`; `large_strings` names top-level columns kept `large_string`.
pub fn hub_arrow_schema(frame: &DataFrame, large_strings: &[&str]) -> ArrowSchema {
    frame
        .schema()
        .iter_fields()
        .map(|field| {
            let mut arrow = hub_field(field.to_arrow(CompatLevel::newest()));
            if large_strings.contains(&arrow.name.as_str()) && arrow.dtype == ArrowDataType::Utf8 {
                arrow.dtype = ArrowDataType::LargeUtf8;
            }
            (arrow.name.clone(), arrow)
        })
        .collect()
}

fn hub_field(field: ArrowField) -> ArrowField {
    let dtype = hub_dtype(field.dtype);
    ArrowField { dtype, ..field }
}

fn hub_dtype(dtype: ArrowDataType) -> ArrowDataType {
    use ArrowDataType as D;
    match dtype {
        D::Utf8View | D::LargeUtf8 => D::Utf8,
        D::BinaryView | D::LargeBinary => D::Binary,
        // The item keeps polars' name `item`, as in the hub's stored schema.
        D::List(item) | D::LargeList(item) => D::List(Box::new(hub_field(*item))),
        D::Struct(fields) => D::Struct(fields.into_iter().map(hub_field).collect()),
        other => other,
    }
}

fn write_error(path: &Path, err: PolarsError) -> Error {
    Error::ParquetWrite {
        path: path.to_path_buf(),
        message: err.to_string(),
    }
}

fn string_column<'a>(name: &str, values: impl Iterator<Item = Option<&'a str>>) -> Column {
    StringChunked::from_iter_options(name.into(), values).into_column()
}

fn string_list_column<'a>(
    name: &str,
    rows: impl ExactSizeIterator<Item = &'a Vec<String>>,
) -> Column {
    let mut builder = ListStringChunkedBuilder::new(name.into(), rows.len(), rows.len() * 2);
    for row in rows {
        builder.append_values_iter(row.iter().map(String::as_str));
    }
    builder.finish().into_column()
}

fn struct_column(name: &str, height: usize, fields: &[Series]) -> PolarsResult<Column> {
    Ok(StructChunked::from_series(name.into(), height, fields.iter())?.into_column())
}

fn profile_struct(sessions: &[Session]) -> PolarsResult<Column> {
    // A session without a profile gets a struct of nulls, as blind B has on the hub.
    let profiles: Vec<Option<&UserProfile>> =
        sessions.iter().map(|s| s.user_profile.as_ref()).collect();
    let text = |name: &str, get: fn(&UserProfile) -> Option<&str>| {
        StringChunked::from_iter_options(name.into(), profiles.iter().map(|p| p.and_then(get)))
            .into_series()
    };
    let fields = [
        Int64Chunked::from_iter_options(
            "age".into(),
            profiles.iter().map(|p| p.and_then(|p| p.age)),
        )
        .into_series(),
        text("age_group", |p| p.age_group.as_deref()),
        text("country_code", |p| p.country_code.as_deref()),
        text("country_name", |p| p.country_name.as_deref()),
        text("gender", |p| p.gender.as_deref()),
        text("preferred_language", |p| p.preferred_language.as_deref()),
        text("preferred_musical_culture", |p| {
            p.preferred_musical_culture.as_deref()
        }),
        text("user_id", |p| p.user_id.as_deref()),
        text("user_split", |p| p.user_split.as_deref()),
    ];
    struct_column("user_profile", sessions.len(), &fields)
}

fn goal_struct(sessions: &[Session]) -> PolarsResult<Column> {
    let goals: Vec<_> = sessions
        .iter()
        .map(|s| s.conversation_goal.as_ref())
        .collect();
    let fields = [
        StringChunked::from_iter_options(
            "category".into(),
            goals.iter().map(|g| g.and_then(|g| g.category.as_deref())),
        )
        .into_series(),
        StringChunked::from_iter_options(
            "listener_goal".into(),
            goals
                .iter()
                .map(|g| g.and_then(|g| g.listener_goal.as_deref())),
        )
        .into_series(),
        StringChunked::from_iter_options(
            "specificity".into(),
            goals
                .iter()
                .map(|g| g.and_then(|g| g.specificity.as_deref())),
        )
        .into_series(),
    ];
    struct_column("conversation_goal", sessions.len(), &fields)
}

/// Builds a list<struct> column from one flat struct series of all rows and the number of
/// rows each session owns.
fn list_of_structs(name: &str, flat: &Series, lengths: &[usize]) -> PolarsResult<Column> {
    let mut builder = get_list_builder(flat.dtype(), flat.len(), lengths.len(), name.into());
    let mut offset = 0usize;
    for &len in lengths {
        builder.append_series(&flat.slice(offset as i64, len))?;
        offset += len;
    }
    Ok(builder.finish().into_column())
}

fn conversations_list(sessions: &[Session]) -> PolarsResult<Column> {
    let messages: Vec<_> = sessions.iter().flat_map(|s| &s.messages).collect();
    let lengths: Vec<usize> = sessions.iter().map(|s| s.messages.len()).collect();
    let fields = [
        StringChunked::from_iter_values(
            "content".into(),
            messages.iter().map(|m| m.content.as_str()),
        )
        .into_series(),
        StringChunked::from_iter_values("role".into(), messages.iter().map(|m| m.role.as_str()))
            .into_series(),
        StringChunked::from_iter_values(
            "thought".into(),
            messages.iter().map(|m| m.thought.as_deref().unwrap_or("")),
        )
        .into_series(),
        Int64Chunked::from_iter_values(
            "turn_number".into(),
            messages.iter().map(|m| i64::from(m.turn_number)),
        )
        .into_series(),
    ];
    let flat =
        StructChunked::from_series(PlSmallStr::EMPTY, messages.len(), fields.iter())?.into_series();
    list_of_structs("conversations", &flat, &lengths)
}

fn goal_progress_list(sessions: &[Session]) -> PolarsResult<Column> {
    let rows: Vec<_> = sessions.iter().flat_map(|s| &s.goal_progress).collect();
    let lengths: Vec<usize> = sessions.iter().map(|s| s.goal_progress.len()).collect();
    let fields = [
        StringChunked::from_iter_options(
            "goal_progress_assessment".into(),
            rows.iter().map(|g| g.assessment.as_deref()),
        )
        .into_series(),
        Int64Chunked::from_iter_values(
            "turn_number".into(),
            rows.iter().map(|g| i64::from(g.turn_number)),
        )
        .into_series(),
    ];
    let flat =
        StructChunked::from_series(PlSmallStr::EMPTY, rows.len(), fields.iter())?.into_series();
    list_of_structs("goal_progress_assessments", &flat, &lengths)
}

#[cfg(test)]
mod tests {
    use music_crs_core::shared::shared_path;
    use music_crs_core::{ConversationGoal, GoalProgress, Message, Role};

    use super::*;
    use crate::{read_embeddings, read_sessions, read_tracks, read_users};

    fn names(frame: &DataFrame) -> Vec<String> {
        frame
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect()
    }

    fn read_back(path: &Path) -> DataFrame {
        let file = std::fs::File::open(path).unwrap();
        ParquetReader::new(file).finish().unwrap()
    }

    fn session(id: &str, turns: u32) -> Session {
        let mut messages = Vec::new();
        let mut goal_progress = Vec::new();
        for turn in 1..=turns {
            let mut user = Message::new(
                turn,
                Role::User,
                format!("turn {turn}: something like Sigur Rós?"),
            );
            user.thought = (turn > 1).then(|| "the last one was close".to_string());
            messages.push(user);
            messages.push(Message::new(turn, Role::Music, format!("track-{turn}")));
            messages.push(Message::new(
                turn,
                Role::Assistant,
                format!("Try \"Café {turn}\"."),
            ));
            goal_progress.push(GoalProgress {
                turn_number: turn,
                assessment: (turn > 1).then(|| "MOVES_TOWARD_GOAL".to_string()),
            });
        }
        Session {
            session_id: id.into(),
            user_id: format!("user-{id}"),
            session_date: Some("2020-03-02".into()),
            user_profile: Some(UserProfile {
                user_id: Some(format!("user-{id}")),
                age: Some(19),
                age_group: Some("10s".into()),
                country_code: Some("IS".into()),
                country_name: Some("Iceland".into()),
                gender: Some("female".into()),
                preferred_language: Some("English".into()),
                preferred_musical_culture: Some("Western".into()),
                user_split: Some("test_cold".into()),
            }),
            conversation_goal: Some(ConversationGoal {
                category: Some("B".into()),
                listener_goal: Some("discover calm music".into()),
                specificity: Some("LL".into()),
            }),
            messages,
            goal_progress,
        }
    }

    fn track(id: &str) -> Track {
        Track {
            track_id: id.into(),
            track_name: vec!["Naïve Café".into()],
            artist_name: vec!["Zoë Jönsson".into(), "Guest".into()],
            album_name: vec!["Mañana".into()],
            tag_list: vec!["folk".into(), "warm".into()],
            artist_id: vec!["a1".into(), "a2".into()],
            album_id: vec!["b1".into()],
            isrc: vec!["SEABC2012345".into()],
            popularity: Some(42.0),
            release_date: Some("2012-11-16".into()),
            duration_ms: Some(215_000),
        }
    }

    #[test]
    fn sessions_round_trip_through_parquet_and_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/train-00000-of-00001.parquet");
        let mut no_profile = session("s2", 2);
        no_profile.user_profile = None;
        no_profile.conversation_goal = None;
        let sessions = vec![session("s1", 8), no_profile, session("s3", 0)];
        write_sessions(&path, &sessions).unwrap();

        let frame = read_back(&path);
        assert_eq!(
            names(&frame),
            [
                "session_id",
                "user_id",
                "session_date",
                "user_profile",
                "conversation_goal",
                "conversations",
                "goal_progress_assessments"
            ]
        );
        let conversations = frame.column("conversations").unwrap().list().unwrap();
        assert_eq!(conversations.get_as_series(0).unwrap().len(), 24);
        assert_eq!(conversations.get_as_series(2).unwrap().len(), 0);

        // The reader refuses a conversation without messages; the others read back equal.
        write_sessions(&path, &sessions[..2]).unwrap();
        assert_eq!(read_sessions(&path).unwrap(), sessions[..2]);
        // Nothing but the final file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![path.file_name().unwrap().to_owned()]);
    }

    #[test]
    fn blind_files_have_the_hub_blind_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blind.parquet");
        let mut blind = session("b1", 3);
        blind.messages.truncate(7);
        blind.session_date = None;
        blind.goal_progress.clear();
        write_blind_sessions(&path, std::slice::from_ref(&blind)).unwrap();
        let frame = read_back(&path);
        assert_eq!(
            names(&frame),
            [
                "session_id",
                "user_id",
                "user_profile",
                "conversation_goal",
                "conversations"
            ]
        );
        assert_eq!(read_sessions(&path).unwrap(), vec![blind]);
    }

    #[test]
    fn tracks_users_and_embeddings_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut sparse = Track::new("t2", "Only a title", "Someone");
        sparse.popularity = None;
        let tracks = vec![track("t1"), sparse];
        let tracks_path = dir.path().join("tracks.parquet");
        write_tracks(&tracks_path, &tracks).unwrap();
        assert_eq!(read_tracks(&tracks_path).unwrap(), tracks);
        let frame = read_back(&tracks_path);
        assert_eq!(frame.column("duration").unwrap().dtype(), &DataType::Int64);
        assert_eq!(
            frame.column("ISRC").unwrap().dtype(),
            &DataType::List(Box::new(DataType::String))
        );

        let users = vec![UserProfile {
            user_id: Some("u1".into()),
            age: Some(33),
            age_group: Some("30s".into()),
            country_code: Some("BR".into()),
            country_name: Some("Brazil".into()),
            gender: Some("male".into()),
            ..UserProfile::default()
        }];
        let users_path = dir.path().join("users.parquet");
        write_users(&users_path, &users).unwrap();
        assert_eq!(read_users(&users_path).unwrap(), users);

        let audio = EmbeddingTable::new(
            "audio-laion_clap",
            3,
            vec![
                ("t1".to_string(), Some(vec![0.5, -0.25, 1.0])),
                ("t2".to_string(), None),
            ],
        )
        .unwrap();
        let cf = EmbeddingTable::new("cf-bpr", 2, vec![("t2".to_string(), Some(vec![1.0, 2.0]))])
            .unwrap();
        let emb_path = dir.path().join("emb.parquet");
        write_embeddings(&emb_path, "track_id", &[audio, cf]).unwrap();
        let frame = read_back(&emb_path);
        assert_eq!(
            frame.column("cf-bpr").unwrap().dtype(),
            &DataType::List(Box::new(DataType::Float32))
        );
        let tables = read_embeddings(&emb_path, "track_id", &[]).unwrap();
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].kind(), "audio-laion_clap");
        assert_eq!(tables[0].get("t1"), Some(&[0.5, -0.25, 1.0][..]));
        assert_eq!(tables[0].get("t2"), None);
        // t1 is absent from the cf table: written as an empty list, read back as missing.
        assert_eq!(tables[1].get("t1"), None);
        assert_eq!(tables[1].get("t2"), Some(&[1.0, 2.0][..]));
    }

    #[test]
    fn bad_input_is_an_error_naming_the_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.parquet");
        let users = vec![
            UserProfile {
                user_id: Some("u1".into()),
                ..UserProfile::default()
            },
            UserProfile::default(),
        ];
        let err = write_users(&path, &users).unwrap_err().to_string();
        assert!(err.contains("row 1") && err.contains("user_id"), "{err}");
        assert!(!path.exists());

        let table =
            EmbeddingTable::new("cf-bpr", 1, vec![("a".to_string(), Some(vec![1.0]))]).unwrap();
        let err = write_embeddings(&path, "user_id", &[table.clone(), table])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cf-bpr"), "{err}");

        // A parent that is a file cannot hold the output.
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        let err = write_tracks(blocker.join("t.parquet"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("file"), "{err}");
    }

    /// The Arrow schema a parquet file records (what pyarrow and pandas read), decoded raw:
    /// polars' own reader would turn `string` into `string_view`.
    fn file_arrow_schema(path: &Path) -> ArrowSchema {
        use base64::Engine as _;
        let mut file = std::fs::File::open(path).unwrap();
        let metadata = polars_parquet::read::read_metadata(&mut file).unwrap();
        let encoded = metadata
            .key_value_metadata()
            .iter()
            .flatten()
            .find(|kv| kv.key == "ARROW:schema")
            .and_then(|kv| kv.value.clone())
            .unwrap_or_else(|| panic!("{} has no ARROW:schema", path.display()));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        // The legacy IPC framing prefixes 0xFFFFFFFF and a length.
        let message = if bytes[..4] == [255; 4] {
            &bytes[8..]
        } else {
            &bytes[..]
        };
        polars_arrow::io::ipc::read::deserialize_schema(message)
            .unwrap()
            .0
    }

    /// `(name, dtype)` of every column, in order.
    fn typed_columns(schema: &ArrowSchema) -> Vec<(String, ArrowDataType)> {
        schema
            .iter_values()
            .map(|f| (f.name.to_string(), f.dtype.clone()))
            .collect()
    }

    fn utf8_list() -> ArrowDataType {
        ArrowDataType::List(Box::new(ArrowField::new(
            "item".into(),
            ArrowDataType::Utf8,
            true,
        )))
    }

    #[test]
    fn written_files_record_the_hub_arrow_schema() {
        let dir = tempfile::tempdir().unwrap();
        let written = |name: &str| dir.path().join(name);
        write_sessions(written("train.parquet"), &[session("s", 2)]).unwrap();
        write_blind_sessions(written("blind.parquet"), &[session("b", 1)]).unwrap();
        write_tracks(written("tracks.parquet"), &[track("t")]).unwrap();

        // The samples carry no users or embeddings table: their types are the hub's scalar
        // and list<float> types, in the writer's column order.
        let users = vec![UserProfile {
            user_id: Some("u".into()),
            ..UserProfile::default()
        }];
        write_users(written("users.parquet"), &users).unwrap();
        let users_schema = typed_columns(&file_arrow_schema(&written("users.parquet")));
        let mut expected = vec![
            ("user_id".to_string(), ArrowDataType::Utf8),
            ("age".to_string(), ArrowDataType::Int64),
        ];
        for name in ["age_group", "country_code", "country_name", "gender"] {
            expected.push((name.to_string(), ArrowDataType::Utf8));
        }
        assert_eq!(users_schema, expected);
        let table = EmbeddingTable::new("cf-bpr", 2, vec![("t".to_string(), Some(vec![1.0, 2.0]))])
            .unwrap();
        write_embeddings(written("emb.parquet"), "track_id", &[table]).unwrap();
        assert_eq!(
            typed_columns(&file_arrow_schema(&written("emb.parquet"))),
            [
                ("track_id".to_string(), ArrowDataType::Utf8),
                (
                    "cf-bpr".to_string(),
                    ArrowDataType::List(Box::new(ArrowField::new(
                        "item".into(),
                        ArrowDataType::Float32,
                        true
                    )))
                ),
            ]
        );

        let tracks = typed_columns(&file_arrow_schema(&written("tracks.parquet")));
        assert_eq!(
            tracks[tracks.len() - 2..],
            [
                ("duration".to_string(), ArrowDataType::Int64),
                ("ISRC".to_string(), utf8_list()),
            ]
        );
        for (ours, sample) in [
            ("train.parquet", "conversations-test-sample.parquet"),
            ("blind.parquet", "blind-a-sample.parquet"),
            ("tracks.parquet", "tracks-sample.parquet"),
        ] {
            let Some(real) = shared_path(&format!("fixtures/talkplay/{sample}")) else {
                return;
            };
            let real = typed_columns(&file_arrow_schema(&real));
            let ours = typed_columns(&file_arrow_schema(&written(ours)));
            // The tracks sample lacks the hub's trailing `duration` and `ISRC`.
            assert_eq!(ours[..real.len()], real[..], "{sample}");
            assert!(
                ours[real.len()..]
                    .iter()
                    .all(|(name, _)| name == "duration" || name == "ISRC")
            );
        }
    }

    /// The dtype of every column (and struct field) we write matches the real hub sample.
    fn assert_same_dtypes(ours: &DataFrame, real: &DataFrame, columns: &[String]) {
        for name in columns {
            let a = ours.column(name.as_str()).unwrap().dtype();
            let b = real.column(name.as_str()).unwrap().dtype();
            assert_eq!(a, b, "column {name}");
        }
    }

    #[test]
    fn schema_matches_the_real_hub_files() {
        let Some(conversations) =
            shared_path("fixtures/talkplay/conversations-test-sample.parquet")
        else {
            return;
        };
        let real = read_back(&conversations);
        let ours = sessions_frame(&[session("s", 2)], false).unwrap();
        assert_eq!(names(&ours), names(&real));
        assert_same_dtypes(&ours, &real, &names(&real));

        let Some(blind) = shared_path("fixtures/talkplay/blind-a-sample.parquet") else {
            return;
        };
        let real = read_back(&blind);
        let ours = sessions_frame(&[session("s", 2)], true).unwrap();
        assert_eq!(names(&ours), names(&real));
        assert_same_dtypes(&ours, &real, &names(&real));

        let Some(tracks) = shared_path("fixtures/talkplay/tracks-sample.parquet") else {
            return;
        };
        let real = read_back(&tracks);
        let ours = tracks_frame(&[track("t")]).unwrap();
        // The sample lacks the hub's `duration` and `ISRC`; every column it has is ours too,
        // in the same order.
        assert_eq!(names(&ours)[..real.width()], names(&real)[..]);
        assert_same_dtypes(&ours, &real, &names(&real));
    }
}
