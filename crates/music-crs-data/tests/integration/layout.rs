//! Local layouts: shards per split, several shards, the demo-style dataset root.

use std::fs::File;

use music_crs_data::{Dataset, DatasetSpec, Loader, PartSpec, SplitKind, read_sessions};
use polars::prelude::*;

use crate::{fixture, install_shard, write_parquet};

#[test]
fn several_shards_of_a_split_load_in_order() {
    let Some(path) = fixture("conversations-test-sample.parquet") else {
        return;
    };
    let whole = read_sessions(&path).unwrap();
    let df = ParquetReader::new(File::open(&path).unwrap())
        .finish()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Three uneven shards, written out of order.
    for (index, (offset, len)) in [(200, 63), (0, 100), (100, 100)].into_iter().enumerate() {
        let shard_number = [2, 0, 1][index];
        let mut part = df.slice(offset, len);
        write_parquet(
            &data.join(format!("test-{shard_number:05}-of-00003.parquet")),
            &mut part,
        );
    }
    install_shard(&path, dir.path(), "train");
    let loader = Loader::default();
    let source = dir.path().to_string_lossy().into_owned();
    let sessions = loader
        .load_sessions(&PartSpec::new(source.clone(), "test"))
        .unwrap();
    assert_eq!(sessions, whole);
    let both = loader
        .load_sessions(&PartSpec::new(source.clone(), "test+train"))
        .unwrap_err();
    // Both splits hold the same sessions: repeated ids are reported with the file.
    let text = both.to_string();
    assert!(
        text.contains(&whole[0].session_id) && text.contains("train-00000-of-00001.parquet"),
        "{text}"
    );
    assert_eq!(
        loader.shards(&PartSpec::new(source, "test")).unwrap().len(),
        3
    );
}

#[test]
fn a_parquet_file_is_a_source_of_its_own() {
    let Some(path) = fixture("blind-b-sample.parquet") else {
        return;
    };
    let part = PartSpec::new(path.to_string_lossy(), "ignored");
    let sessions = Loader::default().load_sessions(&part).unwrap();
    assert_eq!(sessions.len(), 80);
}

#[test]
fn dataset_root_in_the_demo_layout() {
    let (Some(dev), Some(blind), Some(tracks)) = (
        fixture("conversations-test-sample.parquet"),
        fixture("blind-a-sample.parquet"),
        fixture("tracks-sample.parquet"),
    ) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    install_shard(&dev, &root.path().join("conversations"), "test");
    install_shard(&blind, &root.path().join("conversations"), "blind");
    install_shard(&tracks, &root.path().join("tracks"), "all_tracks");
    let mut users = df!(
        "user_id" => ["u1", "u2"],
        "age" => [31i64, 22],
        "gender" => ["female", "male"],
    )
    .unwrap();
    write_parquet(
        &root
            .path()
            .join("users/data/all_users-00000-of-00001.parquet"),
        &mut users,
    );

    let spec = DatasetSpec::local_layout(root.path(), "blind", SplitKind::Blind);
    let dataset = Dataset::new(spec.clone(), Loader::default());
    assert_eq!(dataset.turn_contexts().unwrap().len(), 80);
    assert_eq!(dataset.catalog().unwrap().len(), 2520);
    let users = dataset.users().unwrap().unwrap();
    assert_eq!(users["u2"].gender.as_deref(), Some("male"));
    // No embeddings were written: the error names the folder and the layout expected.
    let err = dataset.track_embeddings(&[]).unwrap_err().to_string();
    assert!(
        err.contains("track_embeddings") && err.contains("all_tracks-NNNNN-of-NNNNN.parquet"),
        "{err}"
    );

    let dev_set = Dataset::new(
        spec.with_conversations_split("test", SplitKind::Full),
        Loader::default(),
    );
    assert_eq!(dev_set.turn_contexts().unwrap().len(), 263 * 8);
}
