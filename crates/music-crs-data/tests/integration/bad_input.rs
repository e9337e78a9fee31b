//! Bad input gives errors that name what is at fault, and never panics.

use std::path::Path;

use music_crs_data::{
    Error, Loader, PartSpec, Source, read_embeddings, read_sessions, read_tracks, read_users,
};
use polars::prelude::*;

use crate::{conversations_column, fixture, write_parquet};

fn ok_turn(turn: i64) -> Vec<(i64, &'static str, &'static str)> {
    vec![
        (turn, "user", "play something"),
        (turn, "music", "t1"),
        (turn, "assistant", "here you go"),
    ]
}

#[test]
fn a_missing_directory_is_not_found_naming_the_path() {
    let part = PartSpec::new("./no/such/dataset", "test");
    let err = Loader::default().load_sessions(&part).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("./no/such/dataset") && text.contains("NNNNN-of-NNNNN.parquet"),
        "{text}"
    );
    // An absolute path that does not exist is never taken for a hub id.
    assert!(matches!(
        Source::parse("/definitely/not/here").unwrap_err(),
        Error::NotFound { .. }
    ));
}

#[test]
fn a_missing_split_names_the_folder_and_layout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("nothing")).unwrap();
    let err = Loader::default()
        .load_sessions(&PartSpec::new(dir.path().to_string_lossy(), "test"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&dir.path().join("data").display().to_string())
            && err.contains("data/test-NNNNN-of-NNNNN.parquet"),
        "{err}"
    );
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/train-00000-of-00001.parquet"), b"").unwrap();
    let err = Loader::default()
        .load_sessions(&PartSpec::new(dir.path().to_string_lossy(), "test"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"test\"")
            && err.contains("data/test-NNNNN-of-NNNNN.parquet")
            && err.contains("train-00000-of-00001.parquet"),
        "{err}"
    );
}

#[test]
fn a_missing_required_column_names_column_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-conversations.parquet");
    let mut df = df!("session_id" => ["s1"], "user_id" => ["u1"]).unwrap();
    write_parquet(&path, &mut df);
    let err = read_sessions(&path).unwrap_err();
    assert!(
        matches!(&err, Error::MissingColumn { column, path: p, .. } if column == "conversations" && p == &path),
        "{err}"
    );
    assert!(err.to_string().contains("no-conversations.parquet"));

    let tracks = dir.path().join("tracks.parquet");
    let mut df = df!("name" => ["x"]).unwrap();
    write_parquet(&tracks, &mut df);
    let err = read_tracks(&tracks).unwrap_err().to_string();
    assert!(
        err.contains("\"track_id\"") && err.contains("tracks.parquet"),
        "{err}"
    );
    let err = read_users(&tracks).unwrap_err().to_string();
    assert!(err.contains("\"user_id\""), "{err}");
    let err = read_embeddings(&tracks, "track_id", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"track_id\""), "{err}");
}

#[test]
fn a_mistyped_column_names_column_file_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typed.parquet");
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("session_id".into(), [7i64]),
        conversations_column(&[ok_turn(1)]),
    ])
    .unwrap();
    write_parquet(&path, &mut df);
    let err = read_sessions(&path).unwrap_err();
    assert!(
        matches!(&err, Error::ColumnType { column, .. } if column == "session_id"),
        "{err}"
    );
    assert!(err.to_string().contains("typed.parquet") && err.to_string().contains("i64"));

    let path = dir.path().join("flat-conversations.parquet");
    let mut df = df!("session_id" => ["s1"], "conversations" => ["hello"]).unwrap();
    write_parquet(&path, &mut df);
    let err = read_sessions(&path).unwrap_err().to_string();
    assert!(
        err.contains("\"conversations\"") && err.contains("list<struct"),
        "{err}"
    );

    let path = dir.path().join("tracks.parquet");
    let mut df = df!("track_id" => ["t1"], "popularity" => ["high"]).unwrap();
    write_parquet(&path, &mut df);
    let err = read_tracks(&path).unwrap_err().to_string();
    assert!(
        err.contains("\"popularity\"") && err.contains("number"),
        "{err}"
    );
}

#[test]
fn a_turn_without_its_user_message_names_session_and_turn() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.parquet");
    let mut broken = ok_turn(1);
    broken.push((2, "music", "t2"));
    broken.push((2, "assistant", "again"));
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("session_id".into(), ["fine", "broken-session"]),
        conversations_column(&[ok_turn(1), broken]),
    ])
    .unwrap();
    write_parquet(&path, &mut df);
    let err = read_sessions(&path).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSession { session_id, turn_number: 2, row: 1, .. } if session_id == "broken-session"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("session broken-session, turn 2") && text.contains("broken.parquet"),
        "{text}"
    );
}

#[test]
fn bad_rows_name_their_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roles.parquet");
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("session_id".into(), ["s1"]),
        conversations_column(&[vec![(1, "user", "hi"), (1, "dj", "t1")]]),
    ])
    .unwrap();
    write_parquet(&path, &mut df);
    let err = read_sessions(&path).unwrap_err().to_string();
    assert!(
        err.contains("session s1, turn 1") && err.contains("\"dj\""),
        "{err}"
    );

    let path = dir.path().join("null-id.parquet");
    let mut df = df!("track_id" => [Some("t1"), None]).unwrap();
    write_parquet(&path, &mut df);
    let err = read_tracks(&path).unwrap_err().to_string();
    assert!(err.contains("row 1") && err.contains("track_id"), "{err}");

    let path = dir.path().join("empty-conversation.parquet");
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("session_id".into(), ["s1"]),
        conversations_column(&[vec![]]),
    ])
    .unwrap();
    write_parquet(&path, &mut df);
    let err = read_sessions(&path).unwrap_err().to_string();
    assert!(
        err.contains("session s1") && err.contains("no messages"),
        "{err}"
    );
}

fn assert_parquet_error(result: music_crs_data::Result<impl std::fmt::Debug>, path: &Path) {
    match result {
        Err(Error::Parquet { path: p, .. }) => assert_eq!(p, path),
        other => panic!(
            "expected a parquet error naming {}, got {other:?}",
            path.display()
        ),
    }
}

#[test]
fn corrupt_and_truncated_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.parquet");
    std::fs::write(&garbage, b"this is not a parquet file at all").unwrap();
    assert_parquet_error(read_sessions(&garbage), &garbage);
    let empty = dir.path().join("empty.parquet");
    std::fs::write(&empty, b"").unwrap();
    assert_parquet_error(read_tracks(&empty), &empty);

    let Some(real) = fixture("blind-a-sample.parquet") else {
        return;
    };
    let bytes = std::fs::read(&real).unwrap();
    let truncated = dir.path().join("truncated.parquet");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_parquet_error(read_sessions(&truncated), &truncated);
    let err = read_sessions(&truncated).unwrap_err().to_string();
    assert!(err.contains("truncated.parquet"), "{err}");
}

#[test]
fn damaged_files_never_panic() {
    let Some(real) = fixture("blind-b-sample.parquet") else {
        return;
    };
    let bytes = std::fs::read(&real).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.parquet");
    // Cuts keep the footer off; flips keep the footer but damage pages or metadata.
    for cut in [1, 4, 100, bytes.len() / 3, bytes.len() - 8, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert!(read_sessions(&path).is_err(), "cut at {cut}");
    }
    let mut state = 0x9e37_79b9_u32;
    for _ in 0..24 {
        let mut damaged = bytes.clone();
        for _ in 0..16 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let at = 4 + state as usize % (bytes.len() - 8);
            damaged[at] ^= (state >> 24) as u8 | 1;
        }
        std::fs::write(&path, &damaged).unwrap();
        // Either outcome is fine; a panic is not.
        let _ = read_sessions(&path);
        let _ = read_tracks(&path);
    }
}
