//! Approximate cosine search with an hnsw_rs graph, saved and reloaded with hnsw_rs's own dump
//! format plus a manifest (the vector file's framing: magic, version, checksum) that holds the
//! parameters, the checksums of the dump files and the id map.

use std::path::Path;

use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::prelude::{AnnT, Hnsw, HnswIo};
use serde::{Deserialize, Serialize};

use super::hnsw_dump::{self, Expected};
use super::index::{Neighbour, VectorIndex, search_unit_queries};
use super::store::{
    checksum_file, corrupt_file, framed_from_bytes, load_framed, push_strs, save_framed,
};
use super::vectors::{best_first, dot, unit_query, unit_rows};
use crate::{Error, Result};

/// Default neighbours kept per node and layer (HNSW's `M`).
pub const DEFAULT_MAX_NB_CONNECTION: usize = 16;
/// Default candidate list size while building.
pub const DEFAULT_EF_CONSTRUCTION: usize = 200;
/// Default candidate list size while searching (raised to `k` when smaller). On 50,000 x 384
/// clustered vectors (`examples/ann_vs_faiss.rs`) 64 gives recall@20 0.998 and 32 gives
/// 0.98-0.986; on harder data (5,000 x 32 in `tests/dense.rs`) 32 falls to recall 0.87, so the
/// default stays at 64.
pub const DEFAULT_EF_SEARCH: usize = 64;
/// Default number of layers.
pub const DEFAULT_MAX_LAYER: usize = 16;
/// hnsw_rs exits the process when asked for more connections than this.
pub const MAX_NB_CONNECTION_LIMIT: usize = 256;
/// hnsw_rs silently caps layers at this number.
pub const MAX_LAYER_LIMIT: usize = 16;

/// Parameters of an [`HnswIndex`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HnswParams {
    /// Neighbours kept per node and layer (`M`), 2..=256.
    pub max_nb_connection: usize,
    /// Candidate list size while building; at least 1.
    pub ef_construction: usize,
    /// Candidate list size while searching; at least 1 (a search uses `max(ef_search, k)`).
    pub ef_search: usize,
    /// Number of layers, 1..=16.
    pub max_layer: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            max_nb_connection: DEFAULT_MAX_NB_CONNECTION,
            ef_construction: DEFAULT_EF_CONSTRUCTION,
            ef_search: DEFAULT_EF_SEARCH,
            max_layer: DEFAULT_MAX_LAYER,
        }
    }
}

impl HnswParams {
    /// Checks every value before hnsw_rs sees it (it calls `process::exit` on more than 256
    /// connections).
    pub fn validate(&self) -> Result<()> {
        let invalid = |name, reason: String| Err(Error::InvalidParameter { name, reason });
        if !(2..=MAX_NB_CONNECTION_LIMIT).contains(&self.max_nb_connection) {
            return invalid(
                "max_nb_connection",
                format!(
                    "{} is outside 2..={MAX_NB_CONNECTION_LIMIT}",
                    self.max_nb_connection
                ),
            );
        }
        if self.ef_construction == 0 {
            return invalid("ef_construction", "must be at least 1".into());
        }
        if self.ef_search == 0 {
            return invalid("ef_search", "must be at least 1".into());
        }
        if !(1..=MAX_LAYER_LIMIT).contains(&self.max_layer) {
            return invalid(
                "max_layer",
                format!("{} is outside 1..={MAX_LAYER_LIMIT}", self.max_layer),
            );
        }
        Ok(())
    }
}

/// Cosine distance between unit vectors for hnsw_rs: `1 - dot`, clamped at 0 because hnsw_rs
/// asserts non-negative distances and rounding can push `dot` of a vector with itself past 1.
///
/// Its own type (rather than anndists' `DistDot`, which asserts the same bound and stays scalar
/// without anndists' SIMD features) with a vectorisable dot product.
#[derive(Debug, Default, Clone, Copy)]
pub struct CosineDistance;

impl Distance<f32> for CosineDistance {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - dot(va, vb)).max(0.0)
    }
}

/// Approximate cosine search over an hnsw_rs graph.
pub struct HnswIndex {
    graph: Hnsw<'static, f32, CosineDistance>,
    dim: usize,
    ids: Vec<String>,
    params: HnswParams,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("dim", &self.dim)
            .field("len", &self.ids.len())
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

const BASENAME: &str = "index";
const MANIFEST: &str = "index.manifest";
const MANIFEST_MAGIC: &[u8; 8] = b"MCRSHNSW";
const MANIFEST_VERSION: u32 = 2;
/// The hnsw_rs dump files, in the order of [`Header::checksums`].
const DUMP_FILES: [&str; 2] = ["hnsw.graph", "hnsw.data"];

/// The manifest's header (JSON inside the framed file), followed by the id map.
#[derive(Serialize, Deserialize)]
struct Header {
    dim: usize,
    params: HnswParams,
    /// Checksums of the dump files named by [`DUMP_FILES`].
    checksums: [u64; 2],
}

impl HnswIndex {
    /// Builds the graph over `ids` and their row-major `vectors` (normalised to unit length),
    /// inserting in parallel on rayon's threads. The graph depends on thread timing, so two
    /// builds may differ slightly; save and load an index to reuse it exactly.
    pub fn build(
        ids: Vec<String>,
        vectors: Vec<f32>,
        dim: usize,
        params: HnswParams,
    ) -> Result<Self> {
        params.validate()?;
        let vectors = unit_rows(&ids, vectors, dim)?;
        let mut graph = Hnsw::new(
            params.max_nb_connection,
            ids.len().max(1),
            params.max_layer,
            params.ef_construction,
            CosineDistance,
        );
        let rows: Vec<(&[f32], usize)> = vectors.chunks_exact(dim).zip(0..).collect();
        graph.parallel_insert_slice(&rows);
        graph.set_searching_mode(true);
        tracing::debug!(rows = ids.len(), dim, ?params, "built hnsw index");
        Ok(HnswIndex {
            graph,
            dim,
            ids,
            params,
        })
    }

    /// The parameters the index was built with (`ef_search` may since have changed).
    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    /// Changes the search candidate list size (at least 1).
    pub fn set_ef_search(&mut self, ef_search: usize) -> Result<()> {
        let params = HnswParams {
            ef_search,
            ..self.params.clone()
        };
        params.validate()?;
        self.params = params;
        Ok(())
    }

    /// Saves the index into directory `dir` (created if needed): hnsw_rs's dump
    /// `index.hnsw.graph` and `index.hnsw.data`, and `index.manifest` with the parameters,
    /// checksums of both dump files and the row-to-id map. Files are written under temporary
    /// names and renamed, the manifest last.
    pub fn save(&self, dir: &Path) -> Result<()> {
        fs_err::create_dir_all(dir)?;
        // Staged under a name of the atomic writer's pattern, so a killed save's folder is
        // removed by a later write here.
        music_crs_core::atomic::remove_stale_temp_files(dir);
        let staging = dir.join(music_crs_core::atomic::temp_name("hnsw-dump"));
        fs_err::create_dir_all(&staging)?;
        let dumped = self
            .graph
            .file_dump(&staging, BASENAME)
            .map_err(|e| Error::Hnsw(format!("dump into {}: {e}", staging.display())))?;
        let mut checksums = [0u64; 2];
        for (sum, ext) in checksums.iter_mut().zip(DUMP_FILES) {
            let from = staging.join(format!("{dumped}.{ext}"));
            *sum = checksum_file(&from)?;
            fs_err::rename(&from, dir.join(format!("{BASENAME}.{ext}")))?;
        }
        fs_err::remove_dir(&staging)?;
        write_manifest(
            &dir.join(MANIFEST),
            &Header {
                dim: self.dim,
                params: self.params.clone(),
                checksums,
            },
            &self.ids,
        )
    }

    /// Loads an index saved by [`HnswIndex::save`]. A missing, truncated or altered file is an
    /// error naming it. Before hnsw_rs reads the dump (it trusts it: it allocates from its
    /// lengths, copies vectors unchecked, panics or exits the process on bad input), both dump
    /// files are walked field by field against the manifest and their checksums, streaming.
    ///
    /// hnsw_rs ties a loaded graph's lifetime to its small loader object, so each load leaks
    /// that loader (a few hundred bytes); load indexes once per process.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        let (header, ids) = read_manifest(&path)?;
        let [graph_file, data_file] = DUMP_FILES.map(|ext| dir.join(format!("{BASENAME}.{ext}")));
        hnsw_dump::check_files(
            [&graph_file, &data_file],
            &Expected {
                dim: header.dim,
                rows: ids.len(),
                params: &header.params,
            },
            header.checksums,
        )?;
        // The loader must outlive the graph it returns ('a: 'b in hnsw_rs), hence the leak.
        let loader: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, BASENAME)));
        let mut graph: Hnsw<'static, f32, CosineDistance> = loader
            .load_hnsw()
            .map_err(|e| Error::Hnsw(format!("reload from {}: {e}", dir.display())))?;
        if graph.get_nb_point() != ids.len() {
            return Err(corrupt_file(
                &path,
                format!(
                    "lists {} ids but the graph holds {} points",
                    ids.len(),
                    graph.get_nb_point()
                ),
            ));
        }
        graph.set_searching_mode(true);
        Ok(HnswIndex {
            graph,
            dim: header.dim,
            ids,
            params: header.params,
        })
    }

    fn search_unit(&self, query: &[f32], k: usize) -> Vec<Neighbour> {
        if k == 0 || self.ids.is_empty() {
            return Vec::new();
        }
        let ef = self.params.ef_search.max(k);
        let mut hits: Vec<(usize, f32)> = self
            .graph
            .search(query, k, ef)
            .into_iter()
            .filter(|n| n.d_id < self.ids.len())
            .map(|n| (n.d_id, 1.0 - n.distance))
            .collect();
        hits.sort_unstable_by(best_first);
        hits.into_iter()
            .map(|(row, score)| Neighbour { row, score })
            .collect()
    }
}

/// Writes the manifest: the framed header and id map.
fn write_manifest(path: &Path, header: &Header, ids: &[String]) -> Result<()> {
    let header = serde_json::to_string(header)
        .map_err(|e| corrupt_file(path, format!("cannot serialise the header: {e}")))?;
    let size = header.len() + 8 + ids.iter().map(|id| id.len() + 4).sum::<usize>();
    save_framed(path, MANIFEST_MAGIC, MANIFEST_VERSION, size, |bytes| {
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&(ids.len() as u64).to_le_bytes());
        push_strs(bytes, ids)
    })
}

/// Reads the header and id map of a manifest written by [`HnswIndex::save`].
fn read_manifest(path: &Path) -> Result<(Header, Vec<String>)> {
    let framed = load_framed(
        path,
        MANIFEST_MAGIC,
        MANIFEST_VERSION,
        "an hnsw index manifest",
    )?;
    parse_manifest(path, framed)
}

/// Checks the bytes of an index manifest (`path` names them in errors): its framing, header
/// and id map. For fuzzing; [`HnswIndex::load`] reads the file.
#[doc(hidden)]
pub fn check_manifest_bytes(bytes: Vec<u8>, path: &Path) -> Result<()> {
    let framed = framed_from_bytes(
        path,
        bytes,
        MANIFEST_MAGIC,
        MANIFEST_VERSION,
        "an hnsw index manifest",
    )?;
    parse_manifest(path, framed).map(|_| ())
}

/// Checks an hnsw_rs dump held in memory against the dimension, row count and parameters a
/// manifest would give: `Ok` means hnsw_rs can read it. For fuzzing; [`HnswIndex::load`]
/// checks the files.
#[doc(hidden)]
pub fn check_dump_bytes(
    graph: &[u8],
    data: &[u8],
    dim: usize,
    rows: usize,
    params: &HnswParams,
) -> Result<()> {
    params.validate()?;
    hnsw_dump::check_bytes(graph, data, &Expected { dim, rows, params })
}

fn parse_manifest(path: &Path, framed: super::store::Framed) -> Result<(Header, Vec<String>)> {
    let mut reader = framed.reader();
    let header = reader
        .u64()
        .and_then(|len| reader.bytes(len))
        .ok_or_else(|| corrupt_file(path, "truncated header"))?;
    let header: Header = serde_json::from_slice(header)
        .map_err(|e| corrupt_file(path, format!("bad header: {e}")))?;
    let rows = reader
        .u64()
        .ok_or_else(|| corrupt_file(path, "truncated id map"))?;
    let ids = reader.strings(rows).map_err(|e| corrupt_file(path, e))?;
    if !reader.rest().is_empty() {
        return Err(corrupt_file(path, "trailing bytes after the id map"));
    }
    header
        .params
        .validate()
        .map_err(|e| corrupt_file(path, format!("bad parameters: {e}")))?;
    if header.dim == 0 {
        return Err(corrupt_file(path, "dimension 0"));
    }
    Ok((header, ids))
}

impl VectorIndex for HnswIndex {
    fn name(&self) -> &str {
        "hnsw"
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn ids(&self) -> &[String] {
        &self.ids
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Neighbour>> {
        let q = unit_query(query, self.dim, || "query".into())?;
        Ok(self.search_unit(&q, k))
    }

    fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Neighbour>>> {
        search_unit_queries(queries, self.dim, |q| self.search_unit(q, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> (Vec<String>, Vec<f32>) {
        let mut ids = Vec::new();
        let mut data = Vec::new();
        for i in 0..200 {
            let angle = i as f32 * 0.031;
            ids.push(format!("t{i}"));
            data.extend_from_slice(&[angle.cos(), angle.sin(), 0.1]);
        }
        (ids, data)
    }

    #[test]
    fn params_are_validated_before_hnsw_rs() {
        assert!(HnswParams::default().validate().is_ok());
        for bad in [
            HnswParams {
                max_nb_connection: 257,
                ..HnswParams::default()
            },
            HnswParams {
                max_nb_connection: 1,
                ..HnswParams::default()
            },
            HnswParams {
                ef_search: 0,
                ..HnswParams::default()
            },
            HnswParams {
                max_layer: 17,
                ..HnswParams::default()
            },
        ] {
            assert!(HnswIndex::build(vec![], vec![], 2, bad).is_err());
        }
    }

    #[test]
    fn finds_the_nearest_rows_and_saves() {
        let (ids, data) = grid();
        let index = HnswIndex::build(ids, data.clone(), 3, HnswParams::default()).unwrap();
        let hits = index.search(&data[30..33], 3).unwrap();
        assert_eq!(hits[0].row, 10);
        assert!(hits[0].score > 0.999);
        let mut rows: Vec<usize> = hits.iter().map(|h| h.row).collect();
        rows.sort_unstable();
        assert_eq!(rows, vec![9, 10, 11]);

        let dir = tempfile::tempdir().unwrap();
        index.save(dir.path()).unwrap();
        let loaded = HnswIndex::load(dir.path()).unwrap();
        assert_eq!(loaded.ids(), index.ids());
        assert_eq!(loaded.params(), index.params());
        for query in data.chunks(3).step_by(17) {
            assert_eq!(
                loaded.search(query, 5).unwrap(),
                index.search(query, 5).unwrap()
            );
        }
    }

    #[test]
    fn corrupt_dumps_are_named_errors() {
        let (ids, data) = grid();
        let index = HnswIndex::build(ids, data, 3, HnswParams::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        index.save(dir.path()).unwrap();

        let graph = dir.path().join("index.hnsw.graph");
        let mut bytes = std::fs::read(&graph).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&graph, &bytes).unwrap();
        let err = HnswIndex::load(dir.path()).unwrap_err();
        assert!(matches!(err, Error::CorruptFile { .. }), "{err}");
        assert!(err.to_string().contains("index.hnsw.graph"), "{err}");
        // The flipped byte also breaks the walk; the checksum is what names the damage.
        assert!(err.to_string().contains("checksum differs"), "{err}");

        let manifest = dir.path().join(MANIFEST);
        let mut bytes = std::fs::read(&manifest).unwrap();
        let last_id = bytes.len() - 10;
        bytes[last_id] ^= 0x01;
        std::fs::write(&manifest, &bytes).unwrap();
        let err = HnswIndex::load(dir.path()).unwrap_err();
        assert!(matches!(err, Error::CorruptFile { .. }), "{err}");
        assert!(err.to_string().contains(MANIFEST), "{err}");

        std::fs::write(&manifest, b"{not json").unwrap();
        let err = HnswIndex::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains(MANIFEST), "{err}");

        let missing = HnswIndex::load(&dir.path().join("absent")).unwrap_err();
        assert!(missing.to_string().contains("absent"), "{missing}");
    }

    /// Dumps whose checksums match their manifest but whose content hnsw_rs cannot read
    /// safely: each is a named error, never a panic, an abort or an exit inside hnsw_rs.
    mod crafted_dumps {
        use super::*;

        const USIZE: usize = std::mem::size_of::<usize>();

        /// A saved 200-point index: (directory, graph bytes, data bytes).
        fn saved() -> (tempfile::TempDir, Vec<u8>, Vec<u8>) {
            let (ids, data) = grid();
            let index = HnswIndex::build(ids, data, 3, HnswParams::default()).unwrap();
            let dir = tempfile::tempdir().unwrap();
            index.save(dir.path()).unwrap();
            let graph = std::fs::read(dir.path().join("index.hnsw.graph")).unwrap();
            let data = std::fs::read(dir.path().join("index.hnsw.data")).unwrap();
            (dir, graph, data)
        }

        /// Writes the dump files and a manifest whose checksums match them, then loads.
        fn load_crafted(dir: &Path, graph: &[u8], data: &[u8]) -> Result<HnswIndex> {
            let manifest = dir.join(MANIFEST);
            let (mut header, ids) = read_manifest(&manifest).unwrap();
            std::fs::write(dir.join("index.hnsw.graph"), graph).unwrap();
            std::fs::write(dir.join("index.hnsw.data"), data).unwrap();
            header.checksums = [
                crate::dense::store::checksum(graph),
                crate::dense::store::checksum(data),
            ];
            write_manifest(&manifest, &header, &ids).unwrap();
            HnswIndex::load(dir)
        }

        fn crafted_error(dir: &Path, graph: &[u8], data: &[u8], file: &str) -> String {
            let err = load_crafted(dir, graph, data).unwrap_err();
            assert!(matches!(err, Error::CorruptFile { .. }), "{err}");
            let err = err.to_string();
            assert!(err.contains(file), "{err}");
            err
        }

        /// Byte offsets in the graph file: (end of the description, first point, its first
        /// neighbour count).
        fn offsets(graph: &[u8]) -> (usize, usize, usize) {
            let usize_at =
                |at: usize| usize::from_ne_bytes(graph[at..at + USIZE].try_into().unwrap());
            // magic, mode, M, level scale, layers, ef, points, dim.
            let names = 4 + 1 + 1 + 8 + 1 + 3 * USIZE;
            let dist_len = usize_at(names);
            let type_at = names + USIZE + dist_len;
            let description_end = type_at + USIZE + usize_at(type_at);
            // Layers in use, then layer 0: magic and count.
            let first_point = description_end + 1 + 4 + USIZE;
            // Magic, origin id, layer, rank.
            let first_count = first_point + 4 + USIZE + 1 + 4;
            (description_end, first_point, first_count)
        }

        #[test]
        fn a_saved_index_passes_the_check() {
            let (dir, graph, data) = saved();
            let loaded = load_crafted(dir.path(), &graph, &data).unwrap();
            assert_eq!(loaded.ids().len(), 200);
            check_dump_bytes(&graph, &data, 3, 200, &HnswParams::default()).unwrap();
        }

        #[test]
        fn format_version_2_is_refused_before_hnsw_rs_exits() {
            let (dir, graph, data) = saved();
            // A well-formed version-2 description: its magic and no level scale.
            let mut old = 0x002a_677fu32.to_ne_bytes().to_vec();
            old.extend_from_slice(&graph[4..6]);
            old.extend_from_slice(&graph[14..]);
            let err = crafted_error(dir.path(), &old, &data, "index.hnsw.graph");
            assert!(err.contains("version 2"), "{err}");
        }

        #[test]
        fn huge_layer_counts_are_refused_before_allocating() {
            let (dir, mut graph, data) = saved();
            let (end, _, _) = offsets(&graph);
            let count_at = end + 1 + 4;
            graph[count_at..count_at + USIZE].copy_from_slice(&(usize::MAX / 2).to_ne_bytes());
            let err = crafted_error(dir.path(), &graph, &data, "index.hnsw.graph");
            assert!(err.contains("more than the 200 points"), "{err}");
        }

        #[test]
        fn short_vectors_are_refused_before_an_unchecked_copy() {
            let (dir, graph, mut data) = saved();
            // Header (magic, dim), then the first vector: magic, origin id, byte length.
            let len_at = 4 + USIZE + 4 + 8;
            data[len_at..len_at + 8].copy_from_slice(&4u64.to_ne_bytes());
            let err = crafted_error(dir.path(), &graph, &data, "index.hnsw.data");
            assert!(err.contains("dimension 3 needs 12"), "{err}");
        }

        #[test]
        fn nan_distances_and_dangling_neighbours_are_named() {
            let (dir, graph, data) = saved();
            let (_, _, count_at) = offsets(&graph);
            let first = usize::from_ne_bytes(graph[count_at..count_at + USIZE].try_into().unwrap());
            assert!(first > 0, "the first point has neighbours");
            // The first neighbour: id, layer, rank, distance.
            let neighbour = count_at + USIZE;
            let mut nan = graph.clone();
            let distance_at = neighbour + USIZE + 1 + 4;
            nan[distance_at..distance_at + 4].copy_from_slice(&f32::NAN.to_ne_bytes());
            let err = crafted_error(dir.path(), &nan, &data, "index.hnsw.graph");
            assert!(err.contains("distance NaN"), "{err}");

            let mut dangling = graph.clone();
            let rank_at = neighbour + USIZE + 1;
            dangling[rank_at..rank_at + 4].copy_from_slice(&5000i32.to_ne_bytes());
            let err = crafted_error(dir.path(), &dangling, &data, "index.hnsw.graph");
            assert!(err.contains("rank 5000"), "{err}");

            let mut entry = graph.clone();
            let entry_rank_at = entry.len() - 4;
            entry[entry_rank_at..].copy_from_slice(&(-1i32).to_ne_bytes());
            let err = crafted_error(dir.path(), &entry, &data, "index.hnsw.graph");
            assert!(err.contains("entry point"), "{err}");
        }

        #[test]
        fn names_dimensions_and_counts_must_match_the_manifest() {
            let (dir, graph, data) = saved();
            let names = 4 + 1 + 1 + 8 + 1 + 3 * USIZE;
            let mut bad_name = graph.clone();
            bad_name[names + USIZE] = 0xff;
            let err = crafted_error(dir.path(), &bad_name, &data, "index.hnsw.graph");
            assert!(err.contains("not UTF-8"), "{err}");

            let mut dim = data.clone();
            dim[4..4 + USIZE].copy_from_slice(&4usize.to_ne_bytes());
            let err = crafted_error(dir.path(), &graph, &dim, "index.hnsw.data");
            assert!(err.contains("dimension 4"), "{err}");

            let mut trailing = data.clone();
            trailing.push(0);
            let err = crafted_error(dir.path(), &graph, &trailing, "index.hnsw.data");
            assert!(err.contains("trailing"), "{err}");

            let truncated = &graph[..graph.len() - 3];
            let err = crafted_error(dir.path(), truncated, &data, "index.hnsw.graph");
            assert!(err.contains("truncated"), "{err}");
        }

        /// A hand-made dump of `rows` points of dimension `dim`, all on layer 0, each the
        /// others' neighbour, every value 1.0: (graph bytes, data bytes).
        fn tiny_dump(dim: usize, rows: usize) -> (Vec<u8>, Vec<u8>) {
            let mut g = 0x002a_6779u32.to_ne_bytes().to_vec();
            g.extend([1, 16]); // full mode, M
            g.extend(1.0f64.to_ne_bytes()); // level scale
            g.push(16); // layers
            for value in [200, rows, dim] {
                g.extend(value.to_ne_bytes()); // ef_construction, points, dimension
            }
            for name in ["music_crs_retrieval::dense::hnsw::CosineDistance", "f32"] {
                g.extend(name.len().to_ne_bytes());
                g.extend(name.as_bytes());
            }
            g.push(1); // layers in use
            g.extend(0x000a_676fu32.to_ne_bytes());
            g.extend(rows.to_ne_bytes());
            let mut d = 0xa67f_0000u32.to_ne_bytes().to_vec();
            d.extend(dim.to_ne_bytes());
            for rank in 0..rows {
                g.extend(0x000a_678fu32.to_ne_bytes());
                g.extend(rank.to_ne_bytes());
                g.push(0);
                g.extend((rank as i32).to_ne_bytes());
                g.extend((rows - 1).to_ne_bytes());
                for other in (0..rows).filter(|&o| o != rank) {
                    g.extend(other.to_ne_bytes());
                    g.push(0);
                    g.extend((other as i32).to_ne_bytes());
                    g.extend(0.5f32.to_ne_bytes());
                }
                for _ in 1..16 {
                    g.extend(0usize.to_ne_bytes());
                }
                d.extend(0xa67f_0000u32.to_ne_bytes());
                d.extend((rank as u64).to_ne_bytes());
                d.extend((4 * dim as u64).to_ne_bytes());
                for _ in 0..dim {
                    d.extend(1.0f32.to_ne_bytes());
                }
            }
            g.extend(0usize.to_ne_bytes()); // entry point: origin, layer, rank
            g.push(0);
            g.extend(0i32.to_ne_bytes());
            (g, d)
        }

        /// Seen in hnsw_rs's reader while fuzzing, reproduced through the `hnsw_dump` target:
        /// hnsw_rs casts each vector's byte buffer to `f32`s, and an empty buffer's pointer is
        /// not aligned, so a dimension-0 dump the check accepted aborted inside hnsw_rs
        /// ("unsafe precondition(s) violated: slice::from_raw_parts").
        #[test]
        fn a_dump_of_empty_vectors_is_refused_before_hnsw_rs_reads_it() {
            let params = HnswParams::default();
            let (graph, data) = tiny_dump(2, 3);
            check_dump_bytes(&graph, &data, 2, 3, &params).unwrap();
            let (graph, data) = tiny_dump(0, 3);
            let err = check_dump_bytes(&graph, &data, 0, 3, &params)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("graph dump") && err.contains("dimension 0"),
                "{err}"
            );
        }

        #[test]
        fn every_prefix_of_a_dump_is_an_error_not_a_panic() {
            let (_dir, graph, data) = saved();
            let params = HnswParams::default();
            for cut in (0..graph.len()).step_by(331) {
                assert!(check_dump_bytes(&graph[..cut], &data, 3, 200, &params).is_err());
            }
            for cut in (0..data.len()).step_by(97) {
                assert!(check_dump_bytes(&graph, &data[..cut], 3, 200, &params).is_err());
            }
        }
    }

    #[test]
    fn empty_index_answers_nothing() {
        let index = HnswIndex::build(vec![], vec![], 4, HnswParams::default()).unwrap();
        assert!(index.search(&[1.0, 0.0, 0.0, 0.0], 5).unwrap().is_empty());
    }
}
