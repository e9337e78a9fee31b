//! The [`VectorIndex`] trait, exact search, and the serde-friendly choice between exact and
//! HNSW search.

use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::hnsw::{HnswIndex, HnswParams};
use super::scan::{ScoreRows, TopK};
use super::store::VectorFile;
use super::store::corrupt_file;
use super::vectors::{SIMD_ARCH, check_labelled, dot, unit_query, unit_rows};
use crate::{Error, Result};

/// One search hit: a row of the index and its cosine similarity to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// The row in the index; [`VectorIndex::ids`] maps it to an id.
    pub row: usize,
    /// Cosine similarity in `[-1, 1]`; higher is closer.
    pub score: f32,
}

/// Nearest-neighbour search by cosine similarity over labelled vectors.
///
/// Object-safe and `Send + Sync`. Results are best first, ties broken by lower row. Queries
/// need not be normalised (indexes normalise them); a query of the wrong dimension or with
/// non-finite values is an error.
pub trait VectorIndex: Send + Sync {
    /// A short name for logs (`"exact"`, `"hnsw"`).
    fn name(&self) -> &str;

    /// Dimensions per vector.
    fn dim(&self) -> usize;

    /// The id of each row.
    fn ids(&self) -> &[String];

    /// Number of indexed vectors.
    fn len(&self) -> usize {
        self.ids().len()
    }

    /// True when nothing is indexed.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `k` nearest rows to one query.
    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Neighbour>>;

    /// The `k` nearest rows to each query of a row-major `queries` matrix (`n * dim` values),
    /// in input order. The default loops over [`VectorIndex::search`].
    fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Neighbour>>> {
        check_batch(queries, self.dim())?;
        queries
            .chunks_exact(self.dim())
            .map(|query| self.search(query, k))
            .collect()
    }
}

macro_rules! forward_index {
    ($($ty:ty),*) => {$(
        impl<I: VectorIndex + ?Sized> VectorIndex for $ty {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn dim(&self) -> usize {
                (**self).dim()
            }
            fn ids(&self) -> &[String] {
                (**self).ids()
            }
            fn search(&self, query: &[f32], k: usize) -> Result<Vec<Neighbour>> {
                (**self).search(query, k)
            }
            fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Neighbour>>> {
                (**self).search_batch(queries, k)
            }
        }
    )*};
}

forward_index!(&I, Box<I>, Arc<I>);

/// [`VectorIndex::search_batch`] of an index that answers one unit-length query at a time
/// (the graphs): each query is checked and normalised (an error names it by position), then
/// the queries are searched in parallel.
pub(crate) fn search_unit_queries(
    queries: &[f32],
    dim: usize,
    search_unit: impl Fn(&[f32]) -> Vec<Neighbour> + Sync,
) -> Result<Vec<Vec<Neighbour>>> {
    check_batch(queries, dim)?;
    queries
        .par_chunks(dim)
        .enumerate()
        .map(|(i, query)| {
            let q = unit_query(query, dim, || format!("query {i}"))?;
            Ok(search_unit(&q))
        })
        .collect()
}

pub(crate) fn check_batch(queries: &[f32], dim: usize) -> Result<()> {
    if dim == 0 || !queries.len().is_multiple_of(dim) {
        return Err(Error::DimensionMismatch {
            what: format!("a query matrix of {} values", queries.len()),
            expected: dim,
            found: if dim == 0 { 0 } else { queries.len() % dim },
        });
    }
    Ok(())
}

/// Which index to build over a set of vectors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", from = "IndexTable")]
#[non_exhaustive]
pub enum IndexParams {
    /// Exact search: every vector is scored (best for up to ~50k vectors queried a few
    /// thousand times).
    #[default]
    Exact,
    /// Approximate search with an HNSW graph.
    Hnsw(HnswParams),
}

/// The table form of [`IndexParams`]: `{ kind = "exact" }` with any other key is an error
/// (serde lets a unit variant of a tagged enum ignore extra keys).
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum IndexTable {
    Exact {},
    Hnsw(HnswParams),
}

impl From<IndexTable> for IndexParams {
    fn from(table: IndexTable) -> Self {
        match table {
            IndexTable::Exact {} => IndexParams::Exact,
            IndexTable::Hnsw(params) => IndexParams::Hnsw(params),
        }
    }
}

impl IndexParams {
    /// Checks the parameters (HNSW limits) before anything is built.
    pub fn validate(&self) -> Result<()> {
        match self {
            IndexParams::Exact => Ok(()),
            IndexParams::Hnsw(params) => params.validate(),
        }
    }

    /// Builds the chosen index over `ids` and their row-major `vectors`.
    pub fn build(
        &self,
        ids: Vec<String>,
        vectors: Vec<f32>,
        dim: usize,
    ) -> Result<Box<dyn VectorIndex>> {
        self.validate()?;
        Ok(match self {
            IndexParams::Exact => Box::new(ExactIndex::build(ids, vectors, dim)?),
            IndexParams::Hnsw(params) => {
                Box::new(HnswIndex::build(ids, vectors, dim, params.clone())?)
            }
        })
    }
}

/// Exact cosine search: every indexed vector is scored.
///
/// Batches are scored by a register-tiled SIMD kernel (AVX-512 or AVX2 when the CPU has them)
/// that feeds each query's running top-k, with the rows split over rayon's threads; a single
/// query splits the rows over threads too. Results do not depend on the number of threads.
#[derive(Debug, Clone)]
pub struct ExactIndex {
    dim: usize,
    ids: Vec<String>,
    /// Unit-length rows, row-major.
    data: Vec<f32>,
}

/// Queries scored together in [`ExactIndex::search_batch`]: every chunk of rows is repacked
/// once per block, and each thread keeps a top-k per query of the block.
const QUERY_BLOCK: usize = 4096;
/// Rows per parallel task for one query, and the fewest per task for a batch.
const ROW_CHUNK: usize = 4096;

impl ExactIndex {
    /// Indexes `ids` with their row-major `vectors` (`ids.len() * dim` values), normalised to
    /// unit length. Non-finite values and a wrong length are errors naming the row.
    pub fn build(ids: Vec<String>, vectors: Vec<f32>, dim: usize) -> Result<Self> {
        let data = unit_rows(&ids, vectors, dim)?;
        Ok(ExactIndex { dim, ids, data })
    }

    /// The unit-length vector of a row.
    pub fn vector(&self, row: usize) -> Option<&[f32]> {
        self.data.get(row * self.dim..(row + 1) * self.dim)
    }

    /// Saves the ids and vectors (a [`VectorFile`] with key `exact-index`).
    pub fn save(&self, path: &Path) -> Result<()> {
        VectorFile {
            key: EXACT_KEY.into(),
            dim: self.dim,
            ids: self.ids.clone(),
            data: self.data.clone(),
        }
        .save(path)
    }

    /// Loads an index written by [`ExactIndex::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let file = VectorFile::load(path)?;
        if file.key != EXACT_KEY {
            return Err(corrupt_file(
                path,
                format!("holds {:?}, not an exact index", file.key),
            ));
        }
        // Saved rows are unit length already; normalising again would shift the last bits.
        check_labelled(&file.ids, &file.data, file.dim)?;
        Ok(ExactIndex {
            dim: file.dim,
            ids: file.ids,
            data: file.data,
        })
    }
}

const EXACT_KEY: &str = "exact-index";

impl VectorIndex for ExactIndex {
    fn name(&self) -> &str {
        "exact"
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn ids(&self) -> &[String] {
        &self.ids
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Neighbour>> {
        let q = unit_query(query, self.dim, || "query".into())?;
        // One query reads every row once: memory-bound, so a plain SIMD dot per row (the
        // batch kernel's repacking would cost as much as the reading).
        let partial: Vec<TopK> = self
            .data
            .par_chunks(ROW_CHUNK * self.dim)
            .enumerate()
            .map(|(chunk, rows)| {
                let first = chunk * ROW_CHUNK;
                let mut top = TopK::new(k);
                for (i, row) in rows.chunks_exact(self.dim).enumerate() {
                    top.offer(first + i, dot(&q, row));
                }
                top
            })
            .collect();
        let mut top = TopK::new(k);
        partial.iter().for_each(|part| top.absorb(part));
        Ok(to_neighbours(top.into_sorted()))
    }

    fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Neighbour>>> {
        check_batch(queries, self.dim)?;
        let mut unit = Vec::with_capacity(queries.len());
        for (i, query) in queries.chunks_exact(self.dim).enumerate() {
            unit.extend(unit_query(query, self.dim, || format!("query {i}"))?);
        }
        let rows = self.ids.len();
        let mut out = Vec::with_capacity(unit.len() / self.dim);
        for block in unit.chunks(QUERY_BLOCK * self.dim) {
            let count = block.len() / self.dim;
            // Row ranges scored in parallel, each against the whole block of queries (so each
            // chunk of rows is repacked once per block), a few per thread to even out the load.
            let min_range = ROW_CHUNK.min(rows.max(1));
            let ranges = (4 * rayon::current_num_threads()).min(rows.div_ceil(min_range).max(1));
            let range_rows = rows.div_ceil(ranges).max(1);
            let parts: Vec<Vec<TopK>> = self
                .data
                .par_chunks(range_rows * self.dim)
                .enumerate()
                .map(|(range, data)| {
                    let mut tops: Vec<TopK> = (0..count).map(|_| TopK::new(k)).collect();
                    SIMD_ARCH.dispatch(ScoreRows {
                        queries: block,
                        rows: data,
                        first_row: range * range_rows,
                        dim: self.dim,
                        tops: &mut tops,
                    });
                    tops
                })
                .collect();
            for query in 0..count {
                let mut top = TopK::new(k);
                parts.iter().for_each(|part| top.absorb(&part[query]));
                out.push(to_neighbours(top.into_sorted()));
            }
        }
        Ok(out)
    }
}

fn to_neighbours(pairs: Vec<(usize, f32)>) -> Vec<Neighbour> {
    pairs
        .into_iter()
        .map(|(row, score)| Neighbour { row, score })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> ExactIndex {
        ExactIndex::build(
            vec!["x".into(), "y".into(), "xy".into(), "neg".into()],
            vec![1.0, 0.0, 0.0, 2.0, 1.0, 1.0, -1.0, 0.0],
            2,
        )
        .unwrap()
    }

    #[test]
    fn exact_ranks_by_cosine() {
        let hits = index().search(&[3.0, 0.1], 3).unwrap();
        let rows: Vec<usize> = hits.iter().map(|h| h.row).collect();
        assert_eq!(rows, vec![0, 2, 1]);
        assert!((hits[0].score - 0.99944).abs() < 1e-3);
    }

    #[test]
    fn batch_matches_single_queries() {
        let index = index();
        let queries = [0.2, 1.0, -1.0, -0.1, 0.5, 0.5];
        let batch = index.search_batch(&queries, 4).unwrap();
        assert_eq!(batch.len(), 3);
        for (i, query) in queries.chunks(2).enumerate() {
            let single = index.search(query, 4).unwrap();
            let rows = |v: &[Neighbour]| v.iter().map(|n| n.row).collect::<Vec<_>>();
            assert_eq!(rows(&batch[i]), rows(&single));
            for (a, b) in batch[i].iter().zip(&single) {
                assert!((a.score - b.score).abs() < 1e-5);
            }
        }
    }

    /// Enough rows for several parallel row ranges and kernel chunks, close scores included.
    fn many_rows(rows: usize, dim: usize) -> (Vec<String>, Vec<f32>) {
        let ids = (0..rows).map(|i| format!("r{i}")).collect();
        let data = (0..rows * dim)
            .map(|i| ((i * 2_654_435_761) % 1009) as f32 / 1009.0 - 0.5)
            .collect();
        (ids, data)
    }

    #[test]
    fn batches_match_a_naive_scan_on_any_thread_count() {
        let dim = 24;
        let (ids, data) = many_rows(9_000, dim);
        let index = ExactIndex::build(ids, data, dim).unwrap();
        let queries: Vec<f32> = index.data[..37 * dim]
            .iter()
            .enumerate()
            .map(|(i, x)| x + (i % 5) as f32 * 0.01)
            .collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| index.search_batch(&queries, 15).unwrap())
        };
        let one = run(1);
        assert_eq!(one, run(3));
        for (query, hits) in queries.chunks_exact(dim).zip(&one) {
            let mut unit = query.to_vec();
            crate::dense::normalize(&mut unit);
            let mut naive: Vec<(usize, f32)> = index
                .data
                .chunks_exact(dim)
                .map(|row| unit.iter().zip(row).map(|(a, b)| a * b).sum())
                .enumerate()
                .collect();
            naive.sort_by(crate::dense::vectors::best_first);
            for (hit, (row, score)) in hits.iter().zip(naive) {
                assert!((hit.score - score).abs() < 1e-5);
                // Rows may swap only where scores tie to rounding.
                if hit.row != row {
                    assert!((hit.score - score).abs() < 1e-6, "{hit:?} vs {row}");
                }
            }
            let single = index.search(query, 15).unwrap();
            let rows = |v: &[Neighbour]| v.iter().map(|n| n.row).collect::<Vec<_>>();
            assert_eq!(rows(hits), rows(&single));
        }
    }

    #[test]
    fn bad_queries_and_rows_are_errors() {
        let index = index();
        assert!(matches!(
            index.search(&[1.0], 2),
            Err(Error::DimensionMismatch { .. })
        ));
        assert!(matches!(
            index.search(&[f32::NAN, 1.0], 2),
            Err(Error::NonFiniteVector { .. })
        ));
        assert!(index.search_batch(&[1.0, 2.0, 3.0], 2).is_err());
        let err = ExactIndex::build(vec!["a".into(), "b".into()], vec![1.0, f32::INFINITY], 1)
            .unwrap_err();
        assert!(err.to_string().contains('b'), "{err}");
        assert!(ExactIndex::build(vec!["a".into()], vec![1.0, 2.0, 3.0, 4.0], 2).is_err());
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exact.bin");
        let index = index();
        index.save(&path).unwrap();
        let loaded = ExactIndex::load(&path).unwrap();
        assert_eq!(loaded.ids(), index.ids());
        assert_eq!(
            loaded.search(&[0.3, 0.4], 4).unwrap(),
            index.search(&[0.3, 0.4], 4).unwrap()
        );
    }

    #[test]
    fn index_params_serde_and_validation() {
        let json = serde_json::to_string(&IndexParams::Exact).unwrap();
        assert_eq!(json, r#"{"kind":"exact"}"#);
        let hnsw: IndexParams =
            serde_json::from_str(r#"{"kind":"hnsw","max_nb_connection":300}"#).unwrap();
        assert!(hnsw.validate().is_err());
        assert!(hnsw.build(vec![], vec![], 2).is_err());
    }
}
