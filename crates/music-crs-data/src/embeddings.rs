//! Track-Embeddings and User-Embeddings files: one [`EmbeddingTable`] per embedding column.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use music_crs_core::EmbeddingTable;

use crate::columns::ParquetFile;
use crate::{Error, Result};

/// The id column of Track-Embeddings files.
pub const TRACK_EMBEDDING_ID_COLUMN: &str = "track_id";
/// The id column of User-Embeddings files.
pub const USER_EMBEDDING_ID_COLUMN: &str = "user_id";

/// The embedding kinds of the Track-Embeddings datasets (their column names).
pub const TRACK_EMBEDDING_KINDS: [&str; 6] = [
    "audio-laion_clap",
    "image-siglip2",
    "cf-bpr",
    "attributes-qwen3_embedding_0.6b",
    "lyrics-qwen3_embedding_0.6b",
    "metadata-qwen3_embedding_0.6b",
];

/// The embedding kinds of the User-Embeddings datasets.
pub const USER_EMBEDDING_KINDS: [&str; 1] = ["cf-bpr"];

/// One embedding column of one file, before it becomes an [`EmbeddingTable`].
struct KindColumn {
    kind: String,
    /// 0 when every row is empty.
    dim: usize,
    rows: Vec<Option<Vec<f32>>>,
}

/// The embedding columns of one file.
struct FileEmbeddings {
    path: PathBuf,
    ids: Vec<String>,
    kinds: Vec<KindColumn>,
}

/// Reads one embeddings parquet file into one table per kind.
///
/// `id_column` names the ids (`track_id`, `user_id`). `kinds` selects embedding columns by
/// name (each must exist and be a numeric list); empty selects every numeric-list column
/// except the id. Each kind's dimension is taken from the data (its first non-empty row); an
/// empty or null list marks a missing vector. A vector of another length is an error naming
/// the file, row and column.
pub fn read_embeddings(
    path: &Path,
    id_column: &str,
    kinds: &[&str],
) -> Result<Vec<EmbeddingTable>> {
    merge_embeddings(vec![read_file(path, id_column, kinds)?])
}

fn read_file(path: &Path, id_column: &str, kinds: &[&str]) -> Result<FileEmbeddings> {
    let file = ParquetFile::open(path)?;
    file.require(&[id_column])?;
    file.require(kinds)?;
    let wanted: Vec<String> = if kinds.is_empty() {
        file.columns().to_vec()
    } else {
        std::iter::once(id_column.to_string())
            .chain(kinds.iter().map(|k| k.to_string()))
            .collect()
    };
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let frame = file.read(&wanted)?;
    let id_col = frame.required(id_column)?;
    let ids = id_col
        .strings()?
        .into_iter()
        .enumerate()
        .map(|(row, id)| {
            id.filter(|id| !id.is_empty())
                .ok_or_else(|| id_col.row_error(row, "the id is null or empty"))
        })
        .collect::<Result<Vec<String>>>()?;
    let mut columns = Vec::new();
    for name in wanted.iter().filter(|&&name| name != id_column) {
        let Some(col) = frame.column(name) else {
            continue;
        };
        let rows = match col.f32_lists() {
            Ok(rows) => rows,
            // Unrequested columns that are not numeric lists are not embeddings: skip them.
            Err(Error::ColumnType { .. }) if kinds.is_empty() => continue,
            Err(e) => return Err(e),
        };
        if kinds.is_empty() && col.is_null_type() {
            continue;
        }
        let dim = rows
            .iter()
            .flatten()
            .map(Vec::len)
            .find(|&len| len > 0)
            .unwrap_or(0);
        for (row, vector) in rows.iter().enumerate() {
            if let Some(v) = vector
                && !v.is_empty()
                && v.len() != dim
            {
                return Err(col.row_error(
                    row,
                    format!(
                        "the vector has {} dimensions, earlier rows have {dim}",
                        v.len()
                    ),
                ));
            }
        }
        columns.push(KindColumn {
            kind: col.name().to_string(),
            dim,
            rows,
        });
    }
    Ok(FileEmbeddings {
        path: path.to_path_buf(),
        ids,
        kinds: columns,
    })
}

/// Joins the files of one split: ids repeated across files keep their first vector (user
/// embedding splits overlap); kinds must agree in dimension.
fn merge_embeddings(files: Vec<FileEmbeddings>) -> Result<Vec<EmbeddingTable>> {
    let Some(first) = files.first() else {
        return Ok(Vec::new());
    };
    let kinds: Vec<String> = first.kinds.iter().map(|k| k.kind.clone()).collect();
    let mut dims: Vec<usize> = first.kinds.iter().map(|k| k.dim).collect();
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    let mut rows: Vec<Vec<Option<Vec<f32>>>> = vec![Vec::new(); kinds.len()];
    let mut repeated = 0usize;
    for file in files {
        let mut columns = Vec::with_capacity(kinds.len());
        for (k, kind) in kinds.iter().enumerate() {
            let column = file
                .kinds
                .iter()
                .position(|c| &c.kind == kind)
                .ok_or_else(|| Error::MissingColumn {
                    path: file.path.clone(),
                    column: kind.clone(),
                    present: file
                        .kinds
                        .iter()
                        .map(|c| c.kind.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            let dim = file.kinds[column].dim;
            if dim != 0 && dims[k] != 0 && dim != dims[k] {
                return Err(Error::ColumnType {
                    path: file.path.clone(),
                    column: kind.clone(),
                    found: format!("{dim}-dimensional vectors"),
                    expected: format!("{} dimensions, as in the earlier shards", dims[k]),
                });
            }
            if dims[k] == 0 {
                dims[k] = dim;
            }
            columns.push(column);
        }
        let mut file_kinds: Vec<Option<KindColumn>> = file.kinds.into_iter().map(Some).collect();
        let mut taken: Vec<std::vec::IntoIter<Option<Vec<f32>>>> = columns
            .iter()
            .map(|&c| {
                file_kinds[c]
                    .take()
                    .map(|k| k.rows.into_iter())
                    .unwrap_or_default()
            })
            .collect();
        for id in file.ids {
            let fresh = seen.insert(id.clone());
            for (k, column) in taken.iter_mut().enumerate() {
                let vector = column.next().flatten();
                if fresh {
                    rows[k].push(vector);
                }
            }
            if fresh {
                ids.push(id);
            } else {
                repeated += 1;
            }
        }
    }
    if repeated > 0 {
        tracing::warn!(
            repeated,
            "ids repeated across embedding shards: kept the first vector"
        );
    }
    kinds
        .into_iter()
        .zip(dims)
        .zip(rows)
        .map(|((kind, dim), rows)| {
            EmbeddingTable::new(kind, dim, ids.iter().cloned().zip(rows)).map_err(Error::from)
        })
        .collect()
}

/// Reads and joins the embedding files of one split (see [`read_embeddings`]).
pub(crate) fn read_embedding_shards(
    paths: &[PathBuf],
    id_column: &str,
    kinds: &[&str],
) -> Result<Vec<EmbeddingTable>> {
    let files = paths
        .iter()
        .map(|path| read_file(path, id_column, kinds))
        .collect::<Result<Vec<_>>>()?;
    merge_embeddings(files)
}
