//! Integration tests of music-crs-data (one binary): the real TalkPlayData samples in
//! `shared/fixtures/talkplay/`, local layouts with several shards, embeddings, and bad input.

mod bad_input;
mod embeddings;
mod fixtures;
mod layout;

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

/// Writes a frame as parquet, creating parent folders.
pub fn write_parquet(path: &Path, df: &mut DataFrame) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    ParquetWriter::new(File::create(path).unwrap())
        .finish(df)
        .unwrap();
}

/// A `conversations` list column: one list of message structs per session.
pub fn conversations_column(sessions: &[Vec<(i64, &str, &str)>]) -> Column {
    let lists: ListChunked = sessions
        .iter()
        .map(|messages| {
            let turn = Series::new(
                "turn_number".into(),
                messages.iter().map(|m| m.0).collect::<Vec<_>>(),
            );
            let role = Series::new(
                "role".into(),
                messages.iter().map(|m| m.1).collect::<Vec<_>>(),
            );
            let content = Series::new(
                "content".into(),
                messages.iter().map(|m| m.2).collect::<Vec<_>>(),
            );
            let fields = [content, role, turn];
            Some(
                StructChunked::from_series("".into(), messages.len(), fields.iter())
                    .unwrap()
                    .into_series(),
            )
        })
        .collect();
    lists.with_name("conversations".into()).into_series().into()
}

/// A real fixture file, or `None` (skip) when `shared/` is absent.
pub fn fixture(name: &str) -> Option<PathBuf> {
    music_crs_core::shared::shared_path(&format!("fixtures/talkplay/{name}"))
}

/// Copies a file into `dir/data/<split>-00000-of-00001.parquet`.
pub fn install_shard(file: &Path, dir: &Path, split: &str) -> PathBuf {
    let target = dir
        .join("data")
        .join(format!("{split}-00000-of-00001.parquet"));
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(file, &target).unwrap();
    target
}
