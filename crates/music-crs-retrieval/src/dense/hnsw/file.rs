//! The saved form of an [`HnswIndex`]: one framed file (the vector file's framing: magic,
//! version, trailing checksum; written atomically), streamed both ways.
//!
//! Layout of the body, little-endian: a `u64`-prefixed JSON header (`dim` and the
//! [`HnswParams`]), the `u64` row count, one `u32`-prefixed UTF-8 id per row, the unit
//! vectors as `f32` row by row, one level byte per row, then per row its neighbour lists from
//! layer 0 up to its level, each a `u32` count and that many `u32` node ids. The entry point
//! is not stored: it is the first node of the highest level, as the build chose it.
//!
//! Format version 3; versions 1 and 2 were the manifest written beside hnsw_rs's dump files,
//! which this build refuses with an error saying to rebuild.

use std::io::{BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::super::store::{FramedReader, check_version, corrupt_file, save_framed_streamed};
use super::{Graph, HnswIndex, HnswParams};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"MCRSHNSW";
/// The format this build writes and reads.
const VERSION: u32 = 3;
/// The last version of the hnsw_rs-era manifest (same magic; versions 1 and 2).
const HNSW_RS_MANIFEST_VERSION: u32 = 2;
const WHAT: &str = "an HNSW index";
/// The files of an index saved by the versions that used hnsw_rs (a folder).
const HNSW_RS_FILES: [&str; 3] = ["index.manifest", "index.hnsw.graph", "index.hnsw.data"];
/// How to get a current index from an hnsw_rs-era one.
const REBUILD: &str = "this version no longer reads it: rebuild the index with \
    HnswIndex::build from the vectors it was built from (the embedding file holds the ids and \
    vectors) and save it again";

/// The JSON header.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    dim: usize,
    params: HnswParams,
}

pub(super) fn save(index: &HnswIndex, path: &Path) -> Result<()> {
    let header = serde_json::to_vec(&Header {
        dim: index.dim,
        params: index.params.clone(),
    })
    .map_err(|e| corrupt_file(path, format!("cannot serialise the header: {e}")))?;
    let graph = &index.graph;
    let rows = index.ids.len();
    let mut list = Vec::new();
    let mut links_len = 0u64;
    for node in 0..rows as u32 {
        for layer in 0..=graph.levels[node as usize] {
            graph.neighbours(node, layer, &mut list);
            links_len += 4 + 4 * list.len() as u64;
        }
    }
    let ids_len: u64 = index.ids.iter().map(|id| 4 + id.len() as u64).sum();
    let body_len = 8
        + header.len() as u64
        + 8
        + ids_len
        + 4 * index.vectors.len() as u64
        + rows as u64
        + links_len;
    save_framed_streamed(path, MAGIC, VERSION, body_len, |w| {
        w.u64(header.len() as u64)?;
        w.bytes(&header)?;
        w.u64(rows as u64)?;
        for id in &index.ids {
            w.str(id)?;
        }
        w.f32s(&index.vectors)?;
        w.bytes(&graph.levels)?;
        for node in 0..rows as u32 {
            for layer in 0..=graph.levels[node as usize] {
                graph.neighbours(node, layer, &mut list);
                w.u32(list.len() as u32)?;
                w.u32s(&list)?;
            }
        }
        Ok(())
    })
}

pub(super) fn load(path: &Path) -> Result<HnswIndex> {
    if path.is_dir() {
        return Err(folder_error(path));
    }
    let file = fs_err::File::open(path)?;
    let len = file.metadata()?.len();
    read(path, BufReader::with_capacity(1 << 16, file), len)
}

pub(super) fn from_bytes(bytes: &[u8], path: &Path) -> Result<HnswIndex> {
    read(path, bytes, bytes.len() as u64)
}

/// Why a folder is not an index: an hnsw_rs-era index (rebuild it) or something else.
fn folder_error(dir: &Path) -> Error {
    let found: Vec<&str> = HNSW_RS_FILES
        .into_iter()
        .filter(|name| dir.join(name).exists())
        .collect();
    if found.is_empty() {
        corrupt_file(
            dir,
            "a folder, not an HNSW index file (HnswIndex::save writes one file)",
        )
    } else {
        corrupt_file(
            dir,
            format!(
                "an HNSW index saved by an earlier version of music-crs in hnsw_rs's dump \
                 format (found {}); {REBUILD}",
                found.join(", ")
            ),
        )
    }
}

/// Reads an index from `input`, the `len` bytes of the file at `path`, checking every field
/// before it is used.
fn read(path: &Path, input: impl Read, len: u64) -> Result<HnswIndex> {
    let (mut r, version) = FramedReader::open(path, input, len, MAGIC, WHAT)?;
    if (1..=HNSW_RS_MANIFEST_VERSION).contains(&version) {
        let dir = path.parent().unwrap_or(Path::new("."));
        return Err(corrupt_file(
            path,
            format!(
                "the manifest (format version {version}) of an HNSW index saved by an earlier \
                 version of music-crs in hnsw_rs's dump format, in {}; {REBUILD}",
                dir.display()
            ),
        ));
    }
    check_version(path, version, VERSION, WHAT)?;

    let header_len = r.u64("the header length")?;
    let header = r.bytes(header_len, "the header")?;
    let Header { dim, params } =
        serde_json::from_slice(&header).map_err(|e| r.corrupt(format!("bad header: {e}")))?;
    params
        .validate()
        .map_err(|e| r.corrupt(format!("bad parameters: {e}")))?;
    if dim == 0 {
        return Err(r.corrupt("dimension 0"));
    }
    let rows = r.u64("the row count")?;
    // Each row needs at least an id length, its vector, a level and a layer-0 count: refuse
    // counts the file cannot hold before allocating for them.
    let row_bytes = dim
        .checked_mul(4)
        .and_then(|v| v.checked_add(9))
        .ok_or_else(|| r.corrupt(format!("dimension {dim} is too large")))?;
    let fits = (row_bytes as u64)
        .checked_mul(rows)
        .is_some_and(|need| need <= r.remaining());
    if !fits {
        return Err(r.corrupt(format!(
            "truncated or corrupt: {rows} rows of dimension {dim} do not fit in the file"
        )));
    }
    // `fits` bounds rows by the file length; the graph also needs them to fit a u32.
    let rows = u32::try_from(rows)
        .map_err(|_| r.corrupt(format!("{rows} rows; a graph holds at most {}", u32::MAX)))?
        as usize;

    let mut ids = Vec::with_capacity(rows);
    for _ in 0..rows {
        ids.push(r.string("the id map")?);
    }
    let mut vectors = Vec::with_capacity(rows * dim);
    r.f32s(rows * dim, &mut vectors, "the vectors")?;
    if let Some(at) = vectors.iter().position(|x| !x.is_finite()) {
        return Err(r.corrupt(format!(
            "the vector of {:?} holds a non-finite value",
            ids[at / dim]
        )));
    }
    let levels = r.bytes(rows as u64, "the levels")?;
    if let Some(row) = levels
        .iter()
        .position(|&level| level as usize >= params.max_layer)
    {
        return Err(r.corrupt(format!(
            "row {row} has level {}, past the {} layers of its parameters",
            levels[row], params.max_layer
        )));
    }

    // One count per list at least, before the lists are allocated.
    let lists: u64 = levels.iter().map(|&level| u64::from(level) + 1).sum();
    if 4 * lists > r.remaining() {
        return Err(r.corrupt("truncated: the file ends inside the neighbour lists"));
    }

    let graph = Graph::new(params.max_nb_connection, levels);
    let mut list = Vec::new();
    for node in 0..rows as u32 {
        for layer in 0..=graph.levels[node as usize] {
            let count = r.u32("the neighbour lists")? as usize;
            let capacity = graph.capacity(layer);
            if count > capacity {
                return Err(r.corrupt(format!(
                    "row {node} has {count} neighbours on layer {layer}, more than the \
                     {capacity} a list holds"
                )));
            }
            list.clear();
            r.u32s(count, &mut list, "the neighbour lists")?;
            // A neighbour must be a row on this layer: the search reads its list there.
            if let Some(&bad) = list
                .iter()
                .find(|&&id| id as usize >= rows || graph.levels[id as usize] < layer)
            {
                return Err(r.corrupt(format!(
                    "row {node} lists neighbour {bad} on layer {layer}, which is not a row \
                     on that layer"
                )));
            }
            graph.set_neighbours(node, layer, list.iter().copied());
        }
    }
    r.finish()?;
    Ok(HnswIndex {
        dim,
        ids,
        vectors,
        params,
        graph,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::tests::clustered;
    use super::*;
    use crate::dense::VectorIndex;
    use crate::dense::store::{checksum, save_framed};

    fn saved(rows: usize, dim: usize, params: HnswParams) -> (HnswIndex, Vec<u8>) {
        let (ids, data) = clustered(rows, dim, 11);
        let index = HnswIndex::build(ids, data, dim, params).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.hnsw");
        index.save(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        (index, bytes)
    }

    /// The same bytes with the trailing checksum made right again.
    fn resealed(mut bytes: Vec<u8>) -> Vec<u8> {
        let body = bytes.len() - 8;
        let sum = checksum(&bytes[..body]);
        bytes[body..].copy_from_slice(&sum.to_le_bytes());
        bytes
    }

    /// Every neighbour list, node by node and layer by layer.
    fn links(index: &HnswIndex) -> Vec<Vec<u32>> {
        let graph = &index.graph;
        let mut out = Vec::new();
        for node in 0..index.len() as u32 {
            for layer in 0..=graph.levels[node as usize] {
                let mut list = Vec::new();
                graph.neighbours(node, layer, &mut list);
                out.push(list);
            }
        }
        out
    }

    /// Loads `bytes` and, when they load, searches them: nothing may panic.
    fn load_and_search(bytes: &[u8]) -> Result<HnswIndex> {
        let index = HnswIndex::from_bytes(bytes, Path::new("fuzzed.hnsw"))?;
        let query = vec![0.5; index.dim()];
        for hit in index.search(&query, 5)? {
            assert!(hit.row < index.len());
        }
        Ok(index)
    }

    #[test]
    fn a_loaded_index_is_the_saved_one() {
        let dim = 12;
        let (ids, data) = clustered(2_000, dim, 12);
        let (_, queries) = clustered(100, dim, 13);
        let mut index = HnswIndex::build(ids, data, dim, HnswParams::default()).unwrap();
        index.set_ef_search(40).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // The folder is created; a second save replaces the first atomically.
        let path = dir.path().join("new/index.hnsw");
        index.save(&path).unwrap();
        index.save(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["index.hnsw"], "no temporary file is left");

        let loaded = HnswIndex::load(&path).unwrap();
        assert_eq!(loaded.ids(), index.ids());
        assert_eq!(loaded.params(), index.params());
        assert_eq!(loaded.params().ef_search, 40);
        assert!(loaded.vectors == index.vectors);
        assert_eq!(loaded.graph.levels, index.graph.levels);
        assert_eq!(loaded.graph.entry, index.graph.entry);
        assert!(links(&loaded) == links(&index));
        assert_eq!(
            loaded.search_batch(&queries, 10).unwrap(),
            index.search_batch(&queries, 10).unwrap()
        );
        let bytes = std::fs::read(&path).unwrap();
        let from_bytes = HnswIndex::from_bytes(&bytes, &path).unwrap();
        assert!(links(&from_bytes) == links(&index));

        let empty = HnswIndex::build(vec![], vec![], 3, HnswParams::default()).unwrap();
        let empty_path = dir.path().join("empty.hnsw");
        empty.save(&empty_path).unwrap();
        let loaded = HnswIndex::load(&empty_path).unwrap();
        assert!(loaded.is_empty());
        assert_eq!(loaded.dim(), 3);
        assert!(loaded.search(&[1.0, 0.0, 0.0], 4).unwrap().is_empty());
    }

    /// A file written by hand from the layout in the module documentation (the fuzz seed
    /// `hnsw_index` has the same bytes) loads and searches.
    #[test]
    fn the_documented_layout_loads() {
        let header = br#"{"dim":2,"params":{"max_nb_connection":16,"ef_construction":200,"ef_search":64,"max_layer":16}}"#;
        let mut bytes = MAGIC.to_vec();
        bytes.extend(3u32.to_le_bytes());
        bytes.extend((header.len() as u64).to_le_bytes());
        bytes.extend(header);
        bytes.extend(3u64.to_le_bytes());
        for id in ["t1", "t2", "t3"] {
            bytes.extend(2u32.to_le_bytes());
            bytes.extend(id.as_bytes());
        }
        for value in [0.6f32, 0.8, 1.0, 0.0, 0.0, 1.0] {
            bytes.extend(value.to_le_bytes());
        }
        bytes.extend([0, 0, 0]);
        for others in [[1u32, 2], [0, 2], [0, 1]] {
            bytes.extend(2u32.to_le_bytes());
            others.iter().for_each(|id| bytes.extend(id.to_le_bytes()));
        }
        bytes.extend([0; 8]);
        let index = HnswIndex::from_bytes(&resealed(bytes), Path::new("seed.hnsw")).unwrap();
        assert_eq!(index.ids(), ["t1", "t2", "t3"]);
        let hits = index.search(&[0.1, 1.0], 3).unwrap();
        let rows: Vec<usize> = hits.iter().map(|h| h.row).collect();
        assert_eq!(rows, [2, 0, 1]);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_a_named_error() {
        let (_, bytes) = saved(40, 3, HnswParams::default());
        let path = Path::new("dir/cut.hnsw");
        let named = |result: Result<HnswIndex>| {
            let err = result.unwrap_err();
            assert!(matches!(err, Error::CorruptFile { .. }), "{err}");
            assert!(err.to_string().contains("cut.hnsw"), "{err}");
        };
        for cut in 0..bytes.len() {
            named(HnswIndex::from_bytes(&bytes[..cut], path));
        }
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            named(HnswIndex::from_bytes(&flipped, path));
        }
        // A file cut short on disk names itself too, and says so.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cut.hnsw");
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        let err = HnswIndex::load(&file).unwrap_err().to_string();
        assert!(
            err.contains("cut.hnsw") && err.contains("truncated"),
            "{err}"
        );
        let missing = HnswIndex::load(&dir.path().join("absent.hnsw")).unwrap_err();
        assert!(missing.to_string().contains("absent.hnsw"), "{missing}");
    }

    /// Offsets in a saved file: (start of the row count, of the vectors, of the levels, of the
    /// neighbour lists).
    fn offsets(bytes: &[u8], ids: &[String], dim: usize) -> (usize, usize, usize, usize) {
        let header_len = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
        let rows_at = 20 + header_len;
        let vectors_at = rows_at + 8 + ids.iter().map(|id| 4 + id.len()).sum::<usize>();
        let levels_at = vectors_at + 4 * dim * ids.len();
        (rows_at, vectors_at, levels_at, levels_at + ids.len())
    }

    #[test]
    fn faults_behind_a_valid_checksum_are_named() {
        // One layer, so every row's only list is its layer-0 list.
        let params = HnswParams {
            max_layer: 1,
            max_nb_connection: 4,
            ..HnswParams::default()
        };
        let (index, bytes) = saved(30, 3, params);
        let (rows_at, vectors_at, levels_at, lists_at) = offsets(&bytes, index.ids(), 3);
        let fault = |edit: &dyn Fn(&mut Vec<u8>)| -> String {
            let mut bytes = bytes.clone();
            edit(&mut bytes);
            let err = HnswIndex::from_bytes(&resealed(bytes), Path::new("x.hnsw")).unwrap_err();
            assert!(matches!(err, Error::CorruptFile { .. }), "{err}");
            err.to_string()
        };
        let err = fault(&|b| b[lists_at + 4..lists_at + 8].copy_from_slice(&30u32.to_le_bytes()));
        assert!(err.contains("row 0 lists neighbour 30 on layer 0"), "{err}");
        let err = fault(&|b| b[lists_at..lists_at + 4].copy_from_slice(&9u32.to_le_bytes()));
        assert!(
            err.contains("9 neighbours on layer 0, more than the 8"),
            "{err}"
        );
        let err = fault(&|b| b[levels_at + 5] = 1);
        assert!(
            err.contains("row 5 has level 1, past the 1 layers"),
            "{err}"
        );
        let err =
            fault(&|b| b[vectors_at + 8..vectors_at + 12].copy_from_slice(&f32::NAN.to_le_bytes()));
        assert!(err.contains("\"p0\" holds a non-finite value"), "{err}");
        let err = fault(&|b| b[rows_at..rows_at + 8].copy_from_slice(&u64::MAX.to_le_bytes()));
        assert!(err.contains("do not fit in the file"), "{err}");
        let err = fault(&|b| b[20] = b'[');
        assert!(err.contains("bad header"), "{err}");
        let err = fault(&|b| {
            let end = b.len() - 8;
            b.insert(end, 0);
        });
        assert!(err.contains("1 unexpected bytes"), "{err}");

        // A neighbour list naming a row that is not on that layer (the search would read a
        // list the row does not have).
        let (index, bytes) = saved(300, 3, HnswParams::default());
        let graph = &index.graph;
        let (_, _, _, mut at) = offsets(&bytes, index.ids(), 3);
        let low = (0..300).find(|&n| graph.levels[n] == 0).unwrap() as u32;
        let mut list = Vec::new();
        for node in 0..300u32 {
            for layer in 0..=graph.levels[node as usize] {
                graph.neighbours(node, layer, &mut list);
                if layer == 1 && !list.is_empty() {
                    let mut bad = bytes.clone();
                    bad[at + 4..at + 8].copy_from_slice(&low.to_le_bytes());
                    let err = HnswIndex::from_bytes(&resealed(bad), Path::new("x.hnsw"))
                        .unwrap_err()
                        .to_string();
                    assert!(
                        err.contains(&format!("neighbour {low} on layer 1, which is not a row")),
                        "{err}"
                    );
                    return;
                }
                at += 4 + 4 * list.len();
            }
        }
        panic!("no upper-layer list to alter");
    }

    #[test]
    fn other_versions_are_named() {
        let (_, bytes) = saved(20, 3, HnswParams::default());
        let with_version = |version: u32| {
            let mut bytes = bytes.clone();
            bytes[8..12].copy_from_slice(&version.to_le_bytes());
            HnswIndex::from_bytes(&resealed(bytes), Path::new("v.hnsw"))
                .unwrap_err()
                .to_string()
        };
        let err = with_version(4);
        assert!(
            err.contains("v.hnsw") && err.contains("version 4") && err.contains("newer"),
            "{err}"
        );
        let err = with_version(2);
        assert!(err.contains("hnsw_rs") && err.contains("rebuild"), "{err}");
        let err = with_version(0);
        assert!(err.contains("version 0") && err.contains("older"), "{err}");
    }

    /// The folder `HnswIndex::save` wrote before this engine (hnsw_rs's dump and a version-2
    /// manifest beside it) is refused, naming the folder and saying to rebuild.
    #[test]
    fn an_hnsw_rs_dump_folder_is_refused_with_a_rebuild_hint() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old-index");
        std::fs::create_dir(&old).unwrap();
        // The manifest as version 2 wrote it: a JSON header with the dump's checksums, then
        // the id map.
        let header = br#"{"dim":2,"params":{"max_nb_connection":16,"ef_construction":200,"ef_search":64,"max_layer":16},"checksums":[1,2]}"#;
        save_framed(&old.join("index.manifest"), MAGIC, 2, 64, |b| {
            b.extend((header.len() as u64).to_le_bytes());
            b.extend(header);
            b.extend(1u64.to_le_bytes());
            b.extend(2u32.to_le_bytes());
            b.extend(b"t1");
            Ok(())
        })
        .unwrap();
        std::fs::write(old.join("index.hnsw.graph"), b"graph").unwrap();
        std::fs::write(old.join("index.hnsw.data"), b"data").unwrap();

        let err = HnswIndex::load(&old).unwrap_err();
        assert!(matches!(err, Error::CorruptFile { .. }), "{err}");
        let err = err.to_string();
        assert!(err.starts_with(&old.display().to_string()), "{err}");
        assert!(err.contains("hnsw_rs") && err.contains("rebuild"), "{err}");
        assert!(err.contains("embedding file"), "{err}");

        let err = HnswIndex::load(&old.join("index.manifest"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("index.manifest") && err.contains("rebuild"),
            "{err}"
        );
        assert!(err.contains(&old.display().to_string()), "{err}");

        let other = dir.path().join("plain");
        std::fs::create_dir(&other).unwrap();
        let err = HnswIndex::load(&other).unwrap_err().to_string();
        assert!(err.contains("plain") && err.contains("a folder"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Any bytes: an error or an index that searches, never a panic.
        #[test]
        fn any_bytes_load_or_fail(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend(VERSION.to_le_bytes());
            bytes.extend(tail);
            let _ = load_and_search(&bytes);
            if bytes.len() >= 20 {
                let _ = load_and_search(&resealed(bytes));
            }
        }

        /// A saved index with bytes overwritten and its checksum made right again, so the
        /// changes reach the field checks: an error or an index that searches.
        #[test]
        fn altered_files_load_or_fail(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let (_, bytes) = saved(25, 3, HnswParams {
                max_nb_connection: 2,
                ..HnswParams::default()
            });
            let mut bytes = bytes[..bytes.len() - 8].to_vec();
            for (at, value) in edits {
                let at = at.index(bytes.len());
                bytes[at] = value;
            }
            if truncate {
                bytes.truncate(12 + cut.index(bytes.len() - 12));
            }
            bytes.extend([0; 8]);
            let _ = load_and_search(&resealed(bytes));
        }
    }
}
