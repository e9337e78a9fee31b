//! Embedding tables: one per kind, dimensions from the data, empty lists as missing rows.

use music_crs_data::{Loader, PartSpec, read_embeddings};
use polars::prelude::*;

use crate::write_parquet;

fn list_column(name: &str, rows: &[Vec<f32>]) -> Column {
    let lists: ListChunked = rows
        .iter()
        .map(|row| Some(Series::new("".into(), row.as_slice())))
        .collect();
    lists.with_name(name.into()).into_series().into()
}

#[test]
fn kinds_take_their_dimension_from_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/all_tracks-00000-of-00001.parquet");
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("track_id".into(), ["a", "b", "c"]),
        list_column(
            "cf-bpr",
            &[vec![1.0, 2.0, 3.0], vec![], vec![4.0, 5.0, 6.0]],
        ),
        list_column("image-siglip2", &[vec![], vec![0.5; 5], vec![0.25; 5]]),
        Column::new("note".into(), ["x", "y", "z"]),
    ])
    .unwrap();
    write_parquet(&path, &mut df);

    let tables = read_embeddings(&path, "track_id", &[]).unwrap();
    let kinds: Vec<(&str, usize)> = tables.iter().map(|t| (t.kind(), t.dim())).collect();
    assert_eq!(kinds, [("cf-bpr", 3), ("image-siglip2", 5)]);
    let cf = &tables[0];
    assert_eq!(cf.get("a"), Some(&[1.0, 2.0, 3.0][..]));
    assert_eq!(cf.get("b"), None);
    assert_eq!(cf.len(), 3);
    assert_eq!(tables[1].get("a"), None);
    assert_eq!(tables[1].get("c"), Some(&[0.25; 5][..]));

    let only = Loader::default()
        .load_track_embeddings(
            &PartSpec::new(dir.path().to_string_lossy(), "all_tracks"),
            &["image-siglip2"],
        )
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].kind(), "image-siglip2");

    let err = read_embeddings(&path, "track_id", &["audio-laion_clap"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("audio-laion_clap") && err.contains("all_tracks-00000"),
        "{err}"
    );
    let err = read_embeddings(&path, "track_id", &["note"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"note\"") && err.contains("list<float>"),
        "{err}"
    );
}

#[test]
fn a_vector_of_another_length_names_file_row_and_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.parquet");
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("user_id".into(), ["u1", "u2"]),
        list_column("cf-bpr", &[vec![1.0, 2.0], vec![1.0, 2.0, 3.0]]),
    ])
    .unwrap();
    write_parquet(&path, &mut df);
    let err = read_embeddings(&path, "user_id", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.parquet") && err.contains("row 1") && err.contains("cf-bpr"),
        "{err}"
    );
}

#[test]
fn user_splits_join_and_repeated_ids_keep_their_first_vector() {
    let dir = tempfile::tempdir().unwrap();
    let mut train = DataFrame::new_infer_height(vec![
        Column::new("user_id".into(), ["u1", "u2"]),
        list_column("cf-bpr", &[vec![1.0, 0.0], vec![0.0, 1.0]]),
    ])
    .unwrap();
    let mut warm = DataFrame::new_infer_height(vec![
        Column::new("user_id".into(), ["u2", "u3"]),
        list_column("cf-bpr", &[vec![9.0, 9.0], vec![]]),
    ])
    .unwrap();
    write_parquet(
        &dir.path().join("data/train-00000-of-00001.parquet"),
        &mut train,
    );
    write_parquet(
        &dir.path().join("data/test_warm-00000-of-00001.parquet"),
        &mut warm,
    );
    let tables = Loader::default()
        .load_user_embeddings(
            &PartSpec::new(dir.path().to_string_lossy(), "train+test_warm"),
            &[],
        )
        .unwrap();
    assert_eq!(tables.len(), 1);
    let cf = &tables[0];
    assert_eq!(cf.ids(), ["u1", "u2", "u3"]);
    assert_eq!(cf.get("u2"), Some(&[0.0, 1.0][..]));
    assert_eq!(cf.get("u3"), None);
}
