//! Pre-extracted embedding tables (Track-Embeddings and User-Embeddings datasets).

use std::collections::HashMap;

use crate::{Error, Result};

/// One embedding kind (e.g. `image-siglip2`) for a set of ids, stored row-major.
///
/// Rows may be missing (the hub stores an empty list): such ids are kept, with
/// [`EmbeddingTable::get`] answering `None`, so callers can skip them.
#[derive(Debug, Clone, Default)]
pub struct EmbeddingTable {
    kind: String,
    dim: usize,
    ids: Vec<String>,
    present: Vec<bool>,
    data: Vec<f32>,
    by_id: HashMap<String, usize>,
}

impl EmbeddingTable {
    /// Builds a table of `dim`-dimensional rows. `None` or an empty vector marks a missing
    /// row; any other length than `dim` is an error naming the id. Duplicate ids are errors.
    pub fn new(
        kind: impl Into<String>,
        dim: usize,
        rows: impl IntoIterator<Item = (String, Option<Vec<f32>>)>,
    ) -> Result<Self> {
        let kind = kind.into();
        let mut table = EmbeddingTable {
            kind,
            dim,
            ..EmbeddingTable::default()
        };
        for (id, vector) in rows {
            let vector = vector.filter(|v| !v.is_empty());
            if let Some(v) = vector.as_ref().filter(|v| v.len() != dim) {
                return Err(Error::InvalidValue {
                    field: format!("{} embedding of {id}", table.kind),
                    reason: format!("has {} dimensions, expected {dim}", v.len()),
                });
            }
            if table.by_id.insert(id.clone(), table.ids.len()).is_some() {
                return Err(Error::InvalidValue {
                    field: format!("{} embedding of {id}", table.kind),
                    reason: "the id appears more than once".into(),
                });
            }
            table.ids.push(id);
            table.present.push(vector.is_some());
            match vector {
                Some(v) => table.data.extend_from_slice(&v),
                None => table.data.extend(std::iter::repeat_n(0.0, dim)),
            }
        }
        Ok(table)
    }

    /// The embedding kind (the hub column name).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Dimensions per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of ids (present or not).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the table has no ids.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids, in row order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The row index of an id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The vector of an id, when it has one.
    pub fn get(&self, id: &str) -> Option<&[f32]> {
        self.index_of(id).and_then(|row| self.row(row))
    }

    /// The vector at a row index, when present.
    pub fn row(&self, row: usize) -> Option<&[f32]> {
        (*self.present.get(row)?).then(|| &self.data[row * self.dim..(row + 1) * self.dim])
    }

    /// Whether each row is present, in row order.
    pub fn present(&self) -> &[bool] {
        &self.present
    }

    /// The row-major matrix (missing rows are zeros).
    pub fn as_matrix(&self) -> &[f32] {
        &self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_rows_are_kept_but_absent() {
        let table = EmbeddingTable::new(
            "cf-bpr",
            2,
            vec![
                ("a".to_string(), Some(vec![1.0, 2.0])),
                ("b".to_string(), Some(vec![])),
                ("c".to_string(), None),
            ],
        )
        .unwrap();
        assert_eq!(table.len(), 3);
        assert_eq!(table.get("a"), Some(&[1.0, 2.0][..]));
        assert_eq!(table.get("b"), None);
        assert_eq!(table.row(2), None);
        assert_eq!(table.as_matrix().len(), 6);
    }

    #[test]
    fn wrong_dimension_names_the_id() {
        let err =
            EmbeddingTable::new("x", 3, vec![("t9".to_string(), Some(vec![1.0]))]).unwrap_err();
        assert!(err.to_string().contains("t9"), "{err}");
    }
}
