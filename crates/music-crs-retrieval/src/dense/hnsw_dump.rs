//! Checks of a saved hnsw_rs dump (the `.hnsw.graph` and `.hnsw.data` files of hnsw_rs
//! 0.3.5) made before hnsw_rs reads it.
//!
//! hnsw_rs trusts its dump: it reserves memory from the lengths it reads, copies vectors with
//! an unchecked `from_raw_parts` of the dimension it was told, panics on a NaN distance or an
//! out-of-range neighbour, and calls `process::exit` on an old format version. So both files
//! are walked here first, field by field as hnsw_rs will read them, every value checked
//! against the manifest (dimension, row count, parameters) and every count against the bytes
//! that remain; nothing is allocated from a length read from the files. The same single pass
//! computes the files' checksums, streaming through a fixed buffer.
//!
//! The graph file: a description (magic, dump mode, `M` as a `u8`, level scale, layer count,
//! `ef_construction`, point count, dimension, distance and value type names), the number of
//! layers in use, then per layer a magic, its point count and per point a magic, its origin
//! id, layer and rank, and per each of the 16 layers its neighbours (origin id, layer, rank,
//! distance); last the entry point. The data file: a magic and the dimension, then per point
//! a magic, its origin id, its byte length and the `f32` values. Integers are native-endian,
//! counts `usize`.

use std::io::{BufReader, Read};
use std::path::Path;

use super::hnsw::HnswParams;
use super::store::{ChecksumReader, corrupt_file};
use crate::Result;

const MAGIC_DESCRIPTION_V2: u32 = 0x002a_677f;
const MAGIC_DESCRIPTION_V3: u32 = 0x002a_6771;
const MAGIC_DESCRIPTION_V4: u32 = 0x002a_6779;
const MAGIC_LAYER: u32 = 0x000a_676f;
const MAGIC_POINT: u32 = 0x000a_678f;
const MAGIC_DATA: u32 = 0xa67f_0000;
/// hnsw_rs's fixed number of layers (`NB_LAYER_MAX`).
const LAYERS: usize = 16;
/// hnsw_rs refuses names longer than this.
const MAX_NAME: usize = 256;
/// The full dump mode (point ids written with every neighbour), the only one hnsw_rs reads
/// back consistently.
const FULL_MODE: u8 = 1;
const USIZE: usize = std::mem::size_of::<usize>();

/// What the manifest says the dump must hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    pub dim: usize,
    pub rows: usize,
    pub params: &'a HnswParams,
}

/// Which file a fault is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Graph,
    Data,
}

/// A fault found while walking the dump.
#[derive(Debug)]
struct Fault {
    side: Side,
    reason: String,
}

type Walk<T> = std::result::Result<T, Fault>;

impl Fault {
    /// The error naming the file of `paths` (graph, data) the fault is in.
    fn into_error(self, [graph, data]: [&Path; 2]) -> crate::Error {
        let path = match self.side {
            Side::Graph => graph,
            Side::Data => data,
        };
        corrupt_file(path, self.reason)
    }
}

/// One dump file being walked: counts its position against its length.
struct Stream<R> {
    inner: R,
    side: Side,
    pos: u64,
    len: u64,
}

impl<R: Read> Stream<R> {
    fn new(inner: R, len: u64, side: Side) -> Self {
        Stream {
            inner,
            side,
            pos: 0,
            len,
        }
    }

    fn fault(&self, reason: impl Into<String>) -> Fault {
        Fault {
            side: self.side,
            reason: reason.into(),
        }
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> Walk<()> {
        if (buf.len() as u64) > self.len.saturating_sub(self.pos) {
            return Err(self.fault(format!(
                "truncated while reading {what} at byte {}",
                self.pos
            )));
        }
        self.inner
            .read_exact(buf)
            .map_err(|e| self.fault(format!("reading {what} at byte {}: {e}", self.pos)))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &str) -> Walk<[u8; N]> {
        let mut b = [0u8; N];
        self.fill(&mut b, what)?;
        Ok(b)
    }

    fn u8(&mut self, what: &str) -> Walk<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &str) -> Walk<u32> {
        Ok(u32::from_ne_bytes(self.array(what)?))
    }

    fn i32(&mut self, what: &str) -> Walk<i32> {
        Ok(i32::from_ne_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Walk<u64> {
        Ok(u64::from_ne_bytes(self.array(what)?))
    }

    fn usize(&mut self, what: &str) -> Walk<usize> {
        Ok(usize::from_ne_bytes(self.array::<USIZE>(what)?))
    }

    fn f32(&mut self, what: &str) -> Walk<f32> {
        Ok(f32::from_ne_bytes(self.array(what)?))
    }

    fn magic(&mut self, expected: u32, what: &str) -> Walk<()> {
        let found = self.u32(what)?;
        if found != expected {
            return Err(self.fault(format!(
                "bad magic {found:#010x} for {what} at byte {} (expected {expected:#010x})",
                self.pos - 4
            )));
        }
        Ok(())
    }

    /// A `usize`-prefixed UTF-8 name of at most [`MAX_NAME`] bytes.
    fn name(&mut self, what: &str) -> Walk<String> {
        let len = self.usize(what)?;
        if len > MAX_NAME {
            return Err(self.fault(format!("{what} is {len} bytes long, at most {MAX_NAME}")));
        }
        let mut bytes = [0u8; MAX_NAME];
        self.fill(&mut bytes[..len], what)?;
        std::str::from_utf8(&bytes[..len])
            .map(str::to_string)
            .map_err(|_| self.fault(format!("{what} is not UTF-8")))
    }

    fn at_end(&self) -> Walk<()> {
        if self.pos != self.len {
            return Err(self.fault(format!(
                "{} trailing bytes after the dump",
                self.len.saturating_sub(self.pos)
            )));
        }
        Ok(())
    }
}

/// A dump file walked from disk, checksummed as it is read.
type FileStream = Stream<BufReader<ChecksumReader<fs_err::File>>>;

impl FileStream {
    fn open(path: &Path, side: Side) -> Result<Self> {
        let file = fs_err::File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Stream::new(
            BufReader::new(ChecksumReader::new(file, len)),
            len,
            side,
        ))
    }

    /// Reads what the walk left, so the checksum covers the whole file, and compares it with
    /// the manifest's.
    fn verify_checksum(self, path: &Path, stored: u64) -> Result<()> {
        // The buffer's unread bytes already went through the checksum.
        let sum = self.inner.into_inner().finish_reading(path)?;
        if sum != stored {
            return Err(corrupt_file(
                path,
                "checksum differs from the manifest (corrupt, truncated or from another save)",
            ));
        }
        Ok(())
    }
}

/// A neighbour or entry point reference: (layer, rank) within the layers in use.
struct References {
    /// Highest rank referenced per layer (`-1`: none).
    highest: [i64; 256],
}

impl References {
    fn note(&mut self, layer: u8, rank: i32) -> std::result::Result<(), String> {
        if rank < 0 {
            return Err(format!("refers to negative rank {rank} in layer {layer}"));
        }
        let slot = &mut self.highest[usize::from(layer)];
        *slot = (*slot).max(i64::from(rank));
        Ok(())
    }
}

/// The description at the head of the graph file, checked against `expected`.
fn walk_description<R: Read>(graph: &mut Stream<R>, expected: &Expected) -> Walk<()> {
    let magic = graph.u32("the description magic")?;
    let version = match magic {
        MAGIC_DESCRIPTION_V3 => 3,
        MAGIC_DESCRIPTION_V4 => 4,
        MAGIC_DESCRIPTION_V2 => {
            return Err(graph.fault("dump format version 2 is not supported; rebuild the index"));
        }
        other => {
            return Err(graph.fault(format!("not an hnsw_rs graph dump (magic {other:#010x})")));
        }
    };
    let mode = graph.u8("the dump mode")?;
    if mode != FULL_MODE {
        return Err(graph.fault(format!(
            "dump mode {mode}, expected the full mode {FULL_MODE}"
        )));
    }
    let connections = graph.u8("max_nb_connection")?;
    // hnsw_rs stores M as a u8 (256 wraps to 0).
    if connections != expected.params.max_nb_connection as u8 {
        return Err(graph.fault(format!(
            "max_nb_connection {connections} differs from the manifest's {}",
            expected.params.max_nb_connection
        )));
    }
    if version == 4 {
        let scale = f64::from_ne_bytes(graph.array("the level scale")?);
        if !(scale.is_finite() && scale > 0.0) {
            return Err(graph.fault(format!("level scale {scale} is not a positive number")));
        }
    }
    let layers = graph.u8("the layer count")?;
    if usize::from(layers) != LAYERS {
        return Err(graph.fault(format!("{layers} layers, hnsw_rs writes {LAYERS}")));
    }
    let ef = graph.usize("ef_construction")?;
    if ef != expected.params.ef_construction {
        return Err(graph.fault(format!(
            "ef_construction {ef} differs from the manifest's {}",
            expected.params.ef_construction
        )));
    }
    let points = graph.usize("the point count")?;
    if points != expected.rows {
        return Err(graph.fault(format!(
            "{points} points, the manifest lists {} ids",
            expected.rows
        )));
    }
    let dim = graph.usize("the dimension")?;
    // hnsw_rs reads a vector by casting its byte buffer to `f32`s: an empty buffer's dangling
    // pointer is not aligned for `f32`, which the standard library's checks abort on.
    if dim == 0 {
        return Err(graph.fault("dimension 0: hnsw_rs cannot read empty vectors"));
    }
    if dim != expected.dim {
        return Err(graph.fault(format!(
            "dimension {dim}, the manifest says {}",
            expected.dim
        )));
    }
    let distance = graph.name("the distance name")?;
    if distance.rsplit("::").next() != Some("CosineDistance") {
        return Err(graph.fault(format!("distance {distance:?}, expected CosineDistance")));
    }
    let value_type = graph.name("the value type name")?;
    if value_type != "f32" {
        return Err(graph.fault(format!("value type {value_type:?}, expected f32")));
    }
    Ok(())
}

/// The data file's record of one point, checked against the graph's origin id.
fn walk_vector<R: Read>(data: &mut Stream<R>, origin: usize, dim: usize) -> Walk<()> {
    data.magic(MAGIC_DATA, "a vector")?;
    let id = data.u64("a vector's origin id")?;
    if id != origin as u64 {
        return Err(data.fault(format!(
            "vector of point {id} where the graph has point {origin}"
        )));
    }
    let len = data.u64("a vector's length")?;
    if len != (dim as u64).saturating_mul(4) {
        return Err(data.fault(format!(
            "point {origin} has {len} bytes of values, dimension {dim} needs {}",
            dim * 4
        )));
    }
    for _ in 0..dim {
        let value = data.f32("a vector value")?;
        if !value.is_finite() {
            return Err(data.fault(format!("point {origin} holds a non-finite value")));
        }
    }
    Ok(())
}

/// Walks both files to their ends.
fn walk<G: Read, D: Read>(
    graph: &mut Stream<G>,
    data: &mut Stream<D>,
    expected: &Expected,
) -> Walk<()> {
    walk_description(graph, expected)?;
    data.magic(MAGIC_DATA, "the data header")?;
    let dim = data.usize("the data dimension")?;
    if dim != expected.dim {
        return Err(data.fault(format!(
            "dimension {dim}, the manifest says {}",
            expected.dim
        )));
    }
    let layers_used = usize::from(graph.u8("the number of layers in use")?);
    if layers_used > LAYERS {
        return Err(graph.fault(format!("{layers_used} layers in use, at most {LAYERS}")));
    }
    let mut counts = [0usize; LAYERS];
    let mut total = 0usize;
    let mut references = References { highest: [-1; 256] };
    for (layer, slot) in counts.iter_mut().enumerate().take(layers_used) {
        graph.magic(MAGIC_LAYER, "a layer")?;
        let count = graph.usize("a layer's point count")?;
        total = total.saturating_add(count);
        if total > expected.rows {
            return Err(graph.fault(format!(
                "layers hold more than the {} points of the index",
                expected.rows
            )));
        }
        *slot = count;
        for rank in 0..count {
            graph.magic(MAGIC_POINT, "a point")?;
            let origin = graph.usize("a point's origin id")?;
            if origin >= expected.rows {
                return Err(graph.fault(format!(
                    "point {origin} is not among the {} rows",
                    expected.rows
                )));
            }
            let at_layer = graph.u8("a point's layer")?;
            let at_rank = graph.i32("a point's rank")?;
            if usize::from(at_layer) != layer || i64::from(at_rank) != rank as i64 {
                return Err(graph.fault(format!(
                    "point {origin} claims layer {at_layer} rank {at_rank}, found at layer {layer} rank {rank}"
                )));
            }
            for _ in 0..LAYERS {
                let neighbours = graph.usize("a neighbour count")?;
                for _ in 0..neighbours {
                    let id = graph.usize("a neighbour id")?;
                    let n_layer = graph.u8("a neighbour's layer")?;
                    let n_rank = graph.i32("a neighbour's rank")?;
                    let distance = graph.f32("a neighbour distance")?;
                    if id >= expected.rows {
                        return Err(graph.fault(format!(
                            "point {origin} has neighbour {id}, not among the {} rows",
                            expected.rows
                        )));
                    }
                    references
                        .note(n_layer, n_rank)
                        .map_err(|e| graph.fault(format!("point {origin} {e}")))?;
                    if !(distance.is_finite() && distance >= 0.0) {
                        return Err(graph
                            .fault(format!("point {origin} has neighbour distance {distance}")));
                    }
                }
            }
            walk_vector(data, origin, expected.dim)?;
        }
    }
    if total != expected.rows {
        return Err(graph.fault(format!(
            "layers hold {total} points, the manifest lists {} ids",
            expected.rows
        )));
    }
    let _entry_origin = graph.usize("the entry point")?;
    let entry_layer = graph.u8("the entry point's layer")?;
    let entry_rank = graph.i32("the entry point's rank")?;
    references
        .note(entry_layer, entry_rank)
        .map_err(|e| graph.fault(format!("the entry point {e}")))?;
    for (layer, &highest) in references.highest.iter().enumerate() {
        let count = counts.get(layer).copied().unwrap_or(0);
        let in_use = layer < layers_used;
        if highest >= 0 && (!in_use || highest as u64 >= count as u64) {
            return Err(graph.fault(format!(
                "refers to rank {highest} of layer {layer}, which holds {} points",
                if in_use { count } else { 0 }
            )));
        }
    }
    graph.at_end()?;
    data.at_end()
}

/// Checks a dump held in memory (for fuzzing and tests): `Ok` means hnsw_rs can read it.
pub(crate) fn check_bytes(graph: &[u8], data: &[u8], expected: &Expected) -> Result<()> {
    let mut graph_stream = Stream::new(graph, graph.len() as u64, Side::Graph);
    let mut data_stream = Stream::new(data, data.len() as u64, Side::Data);
    walk(&mut graph_stream, &mut data_stream, expected)
        .map_err(|fault| fault.into_error([Path::new("graph dump"), Path::new("data dump")]))
}

/// Checks the dump files `paths` (graph, data) against `expected` and their `checksums`,
/// reading each once through a fixed buffer. A changed byte is reported as a checksum
/// mismatch; a dump whose checksums match but whose content hnsw_rs could not read safely
/// names the fault.
pub(crate) fn check_files(
    paths: [&Path; 2],
    expected: &Expected,
    checksums: [u64; 2],
) -> Result<()> {
    let [graph_path, data_path] = paths;
    let mut graph = Stream::open(graph_path, Side::Graph)?;
    let mut data = Stream::open(data_path, Side::Data)?;
    let walked = walk(&mut graph, &mut data, expected);
    // The checksums are judged first: after a changed byte, whatever the walk stumbled on
    // would only mislead.
    graph.verify_checksum(graph_path, checksums[0])?;
    data.verify_checksum(data_path, checksums[1])?;
    walked.map_err(|fault| fault.into_error(paths))
}
