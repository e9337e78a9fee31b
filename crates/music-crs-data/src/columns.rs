//! Reading parquet files through polars and turning their columns into plain Rust vectors,
//! with errors that name the file and column. Polars types stay inside this module.

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::{Error, Result};

/// An opened parquet file whose schema is known.
pub(crate) struct ParquetFile {
    path: PathBuf,
    reader: ParquetReader<File>,
    columns: Vec<String>,
}

/// Runs a polars call, turning its errors and panics into [`Error::Parquet`] naming `path`.
fn guarded<T>(path: &Path, f: impl FnOnce() -> PolarsResult<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Error::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
        // Malformed files must not bring the process down; polars may panic on some.
        Err(_) => Err(Error::Parquet {
            path: path.to_path_buf(),
            message: "the parquet reader failed on malformed data".into(),
        }),
    }
}

impl ParquetFile {
    /// Opens `path` and reads its schema.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut reader = ParquetReader::new(file);
        let schema = guarded(path, || reader.schema())?;
        let columns = schema.iter().map(|(name, _)| name.to_string()).collect();
        Ok(ParquetFile {
            path: path.to_path_buf(),
            reader,
            columns,
        })
    }

    /// The column names, in file order.
    pub(crate) fn columns(&self) -> &[String] {
        &self.columns
    }

    /// True when the file has this column.
    pub(crate) fn has(&self, column: &str) -> bool {
        self.columns.iter().any(|c| c == column)
    }

    /// Fails with [`Error::MissingColumn`] unless the file has every column.
    pub(crate) fn require(&self, columns: &[&str]) -> Result<()> {
        match columns.iter().find(|c| !self.has(c)) {
            None => Ok(()),
            Some(missing) => Err(Error::MissingColumn {
                path: self.path.clone(),
                column: (*missing).into(),
                present: self.columns.join(", "),
            }),
        }
    }

    /// Reads the wanted columns the file has (others are skipped: optional columns).
    pub(crate) fn read(self, wanted: &[&str]) -> Result<Frame> {
        let present: Vec<String> = wanted
            .iter()
            .filter(|c| self.has(c))
            .map(|c| c.to_string())
            .collect();
        let path = self.path;
        let reader = self.reader;
        let df = guarded(&path, move || reader.with_columns(Some(present)).finish())?;
        Ok(Frame { path, df })
    }
}

/// Columns read from one file.
pub(crate) struct Frame {
    path: PathBuf,
    df: DataFrame,
}

impl Frame {
    /// The file the columns came from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Number of rows.
    pub(crate) fn height(&self) -> usize {
        self.df.height()
    }

    /// A column, when read.
    pub(crate) fn column(&self, name: &str) -> Option<Col<'_>> {
        let series = self.df.column(name).ok()?.as_materialized_series().clone();
        Some(Col {
            path: &self.path,
            name: name.to_string(),
            series,
        })
    }

    /// A required column (checked by [`ParquetFile::require`] before reading).
    pub(crate) fn required(&self, name: &str) -> Result<Col<'_>> {
        self.column(name).ok_or_else(|| Error::MissingColumn {
            path: self.path.clone(),
            column: name.into(),
            present: self
                .df
                .get_column_names()
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// One column (or struct field) with the file and name used in error messages.
pub(crate) struct Col<'a> {
    path: &'a Path,
    /// `column` or `column.field`.
    name: String,
    series: Series,
}

impl<'a> Col<'a> {
    fn polars<T>(&self, f: impl FnOnce() -> PolarsResult<T>) -> Result<T> {
        guarded(self.path, f)
    }

    /// The error for a type this column cannot be read as.
    pub(crate) fn type_error(&self, expected: &str) -> Error {
        Error::ColumnType {
            path: self.path.to_path_buf(),
            column: self.name.clone(),
            found: self.series.dtype().to_string(),
            expected: expected.into(),
        }
    }

    /// An error about one row of this column.
    pub(crate) fn row_error(&self, row: usize, reason: impl Into<String>) -> Error {
        Error::InvalidRow {
            path: self.path.to_path_buf(),
            row,
            column: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// The column name (`parent.child` for struct fields).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Number of values.
    pub(crate) fn len(&self) -> usize {
        self.series.len()
    }

    /// True for a column of the Null type (every value null).
    pub(crate) fn is_null_type(&self) -> bool {
        matches!(self.series.dtype(), DataType::Null)
    }

    /// Which values are null.
    pub(crate) fn nulls(&self) -> Result<Vec<bool>> {
        Ok(self
            .series
            .is_null()
            .iter()
            .map(|v| v == Some(true))
            .collect())
    }

    /// String values (`string`, `large_string`, `string_view`; a Null column is all `None`).
    pub(crate) fn strings(&self) -> Result<Vec<Option<String>>> {
        match self.series.dtype() {
            DataType::Null => Ok(vec![None; self.len()]),
            DataType::String => {
                let ca = self.polars(|| self.series.str().cloned())?;
                Ok(ca.iter().map(|v| v.map(str::to_owned)).collect())
            }
            _ => Err(self.type_error("string")),
        }
    }

    /// Integer values (any integer type, or a float type holding whole numbers).
    pub(crate) fn ints(&self) -> Result<Vec<Option<i64>>> {
        let dtype = self.series.dtype();
        if matches!(dtype, DataType::Null) {
            return Ok(vec![None; self.len()]);
        }
        if !dtype.is_primitive_numeric() {
            return Err(self.type_error("integer"));
        }
        if dtype.is_float() {
            let values = self.floats()?;
            return values
                .into_iter()
                .enumerate()
                .map(|(row, v)| match v {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                    Some(f) => Err(self.row_error(row, format!("{f} is not a whole number"))),
                    None => Ok(None),
                })
                .collect();
        }
        let cast = self.polars(|| self.series.cast(&DataType::Int64))?;
        let ca = self.polars(|| cast.i64().cloned())?;
        Ok(ca.iter().collect())
    }

    /// Float values (any numeric type).
    pub(crate) fn floats(&self) -> Result<Vec<Option<f64>>> {
        let dtype = self.series.dtype();
        if matches!(dtype, DataType::Null) {
            return Ok(vec![None; self.len()]);
        }
        if !dtype.is_primitive_numeric() {
            return Err(self.type_error("number"));
        }
        let cast = self.polars(|| self.series.cast(&DataType::Float64))?;
        let ca = self.polars(|| cast.f64().cloned())?;
        Ok(ca.iter().collect())
    }

    /// A field of a struct column; `Ok(None)` when the struct lacks it or the column is of
    /// the Null type (then every field is null).
    pub(crate) fn field(&self, name: &str) -> Result<Option<Col<'a>>> {
        match self.series.dtype() {
            DataType::Null => Ok(None),
            DataType::Struct(_) => {
                let ca = self.polars(|| self.series.struct_().cloned())?;
                Ok(ca
                    .fields_as_series()
                    .into_iter()
                    .find(|s| s.name().as_str() == name)
                    .map(|series| Col {
                        path: self.path,
                        name: format!("{}.{name}", self.name),
                        series,
                    }))
            }
            _ => Err(self.type_error("struct")),
        }
    }

    /// True for a struct column (false for the Null type).
    pub(crate) fn check_struct(&self) -> Result<()> {
        match self.series.dtype() {
            DataType::Null | DataType::Struct(_) => Ok(()),
            _ => Err(self.type_error("struct")),
        }
    }

    /// A list column as offsets into its flattened values; `None` for a Null-typed column.
    pub(crate) fn lists(&self, expected: &str) -> Result<Option<Lists<'a>>> {
        match self.series.dtype() {
            DataType::Null => Ok(None),
            DataType::List(_) => {
                let series = self.series.rechunk();
                let ca = self.polars(|| series.list().cloned())?;
                let offsets = self.polars(|| ca.offsets())?;
                let offsets: Vec<usize> = offsets.as_slice().iter().map(|&o| o as usize).collect();
                let nulls = ca.is_null().iter().map(|v| v == Some(true)).collect();
                Ok(Some(Lists {
                    offsets,
                    nulls,
                    values: Col {
                        path: self.path,
                        name: format!("{}[]", self.name),
                        series: ca.get_inner(),
                    },
                }))
            }
            _ => Err(self.type_error(expected)),
        }
    }

    /// Lists of strings: `list<string>` (nulls inside skipped), a plain string column (one
    /// value per row), or the Null type (all empty).
    pub(crate) fn string_lists(&self) -> Result<Vec<Vec<String>>> {
        if matches!(self.series.dtype(), DataType::String) {
            return Ok(self
                .strings()?
                .into_iter()
                .map(|v| v.into_iter().collect())
                .collect());
        }
        let Some(lists) = self.lists("list<string>")? else {
            return Ok(vec![Vec::new(); self.len()]);
        };
        if !matches!(
            lists.values.series.dtype(),
            DataType::String | DataType::Null
        ) {
            return Err(self.type_error("list<string>"));
        }
        let values = lists.values.strings()?;
        Ok((0..self.len())
            .map(|row| {
                values[lists.range(row)]
                    .iter()
                    .filter_map(|v| v.clone())
                    .collect()
            })
            .collect())
    }

    /// Numeric lists as f32 (embeddings). `None` marks a null row; the Null type is all `None`.
    pub(crate) fn f32_lists(&self) -> Result<Vec<Option<Vec<f32>>>> {
        const EXPECTED: &str = "list<float>";
        let Some(lists) = self.lists(EXPECTED)? else {
            return Ok(vec![None; self.len()]);
        };
        let inner = &lists.values.series;
        let dtype = inner.dtype();
        if !(dtype.is_primitive_numeric() || matches!(dtype, DataType::Null)) {
            return Err(self.type_error(EXPECTED));
        }
        let cast = self.polars(|| inner.cast(&DataType::Float32))?;
        let ca = self.polars(|| cast.f32().cloned())?.rechunk().into_owned();
        let values: Vec<Option<f32>> = ca.iter().collect();
        (0..self.len())
            .map(|row| {
                if lists.nulls[row] {
                    return Ok(None);
                }
                values[lists.range(row)]
                    .iter()
                    .map(|v| v.ok_or_else(|| self.row_error(row, "the vector holds a null")))
                    .collect::<Result<Vec<f32>>>()
                    .map(Some)
            })
            .collect()
    }
}

/// A list column split into flattened values and per-row ranges.
pub(crate) struct Lists<'a> {
    offsets: Vec<usize>,
    nulls: Vec<bool>,
    /// The flattened values of every row.
    pub(crate) values: Col<'a>,
}

impl Lists<'_> {
    /// The value range of a row.
    pub(crate) fn range(&self, row: usize) -> std::ops::Range<usize> {
        self.offsets[row]..self.offsets[row + 1]
    }

    /// True when the row's list is null.
    pub(crate) fn is_null(&self, row: usize) -> bool {
        self.nulls[row]
    }
}
