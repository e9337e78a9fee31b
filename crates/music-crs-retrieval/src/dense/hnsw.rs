//! Approximate cosine search over an HNSW graph held in flat arrays, built in parallel and
//! saved in the project's framed format (see [`file`]).
//!
//! The graph is the HNSW of Malkov and Yashunin: levels drawn with probability `M^-level`
//! (from a fixed seed), greedy descent through the upper layers, a best-first search with `ef`
//! candidates on each layer a node joins, and neighbours chosen by the paper's diversity
//! heuristic (a candidate is kept when it is closer to the node than to every neighbour kept
//! so far). Layer 0 keeps up to `2M` neighbours and the layers above `M` (the paper's `Mmax0`
//! and `Mmax`, faiss's `nb_neighbors`). A new node picks up to `2M` neighbours on layer 0, as
//! faiss does (the paper picks `M` and lets later insertions fill the list), and a full list
//! is re-chosen by the same rule when a new neighbour arrives.
//!
//! Memory layout: the unit vectors are one row-major table; neighbour lists are `u32` node
//! ids in one array with a fixed stride per node (a count, then the slots); the visited set
//! of a search is a per-thread array of generation stamps (4 bytes per node of the largest
//! index the thread has searched, kept for reuse), so a search allocates nothing.
//!
//! Insertion runs on rayon's threads. Neighbour slots are atomics read without a lock: a
//! search that races an update sees the old or the new id of each slot, both valid nodes,
//! which only changes which candidates it visits. Updates of one node's lists are serialised
//! by that node's mutex. The node of the highest level is inserted first and stays the entry
//! point, so no global lock is needed. On one thread the build is deterministic.
//!
//! This engine replaced hnsw_rs 0.3.5, which held every neighbour as an `Arc` to an `Arc`,
//! kept the visited set in a SipHash `HashMap` and allocated per candidate: on 50,000 x 384
//! clustered vectors it built 2.8-3.6x slower than faiss and answered 0.40x faiss's
//! queries/s at recall@20 >= 0.95, and on 500,000 x 128 its recall stayed below 0.89 up to
//! efSearch 256 (the crate README has the measurements of both engines).

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::index::{Neighbour, VectorIndex, search_unit_queries};
use super::vectors::{dot, unit_query, unit_rows};
use crate::{Error, Result};

mod file;

/// Default neighbours kept per node on the layers above 0 (HNSW's `M`; layer 0 keeps `2M`).
pub const DEFAULT_MAX_NB_CONNECTION: usize = 16;
/// Default candidate list size while building.
pub const DEFAULT_EF_CONSTRUCTION: usize = 200;
/// Default candidate list size while searching (raised to `k` when smaller). On 50,000 x 384
/// clustered vectors (`examples/ann_vs_faiss.rs`) 32 already gives recall@20 0.98; on harder
/// data (5,000 x 32, `tests/dense.rs`, built on one thread) 32 gives 0.884, 64 gives 0.966
/// and 128 gives 0.995, so the default stays at 64.
pub const DEFAULT_EF_SEARCH: usize = 64;
/// Default number of layers.
pub const DEFAULT_MAX_LAYER: usize = 16;
/// The largest `M`: layer 0 then holds 512 neighbours per node (2 KiB), far past where
/// recall stops improving.
pub const MAX_NB_CONNECTION_LIMIT: usize = 256;
/// The most layers: a node reaches layer 16 with probability `M^-16` (one in 2^64 at `M` 16),
/// so more would never be used.
pub const MAX_LAYER_LIMIT: usize = 16;

/// Parameters of an [`HnswIndex`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HnswParams {
    /// Neighbours kept per node on the layers above 0 (`M`; layer 0 keeps `2M`), 2..=256.
    pub max_nb_connection: usize,
    /// Candidate list size while building; at least 1.
    pub ef_construction: usize,
    /// Candidate list size while searching; at least 1 (a search uses `max(ef_search, k)`).
    pub ef_search: usize,
    /// Number of layers, 1..=16 (1: a flat graph).
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
    /// Checks every value; an error names the parameter and its range.
    pub fn validate(&self) -> Result<()> {
        let invalid = |name, reason: String| Err(Error::InvalidParameter { name, reason });
        if !(2..=MAX_NB_CONNECTION_LIMIT).contains(&self.max_nb_connection) {
            return invalid(
                "max_nb_connection",
                format!(
                    "{} is outside 2..={MAX_NB_CONNECTION_LIMIT} (neighbours per node on the \
                     upper layers; layer 0 keeps twice as many)",
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
                format!(
                    "{} is outside 1..={MAX_LAYER_LIMIT} (a node reaches layer L with \
                     probability M^-L)",
                    self.max_layer
                ),
            );
        }
        Ok(())
    }
}

/// Seed of the level draws: the same data and parameters give the same levels.
const LEVEL_SEED: u64 = 0x5eed_1e7e1;

/// A node and its distance to the current query (`-dot`, so smaller is closer), ordered by
/// distance then node.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    distance: f32,
    node: u32,
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.node.cmp(&other.node))
    }
}

/// Per-thread search state, reused across searches so a search allocates nothing.
#[derive(Default)]
struct Scratch {
    /// `stamps[node] == stamp` marks a node visited in the current search.
    stamps: Vec<u32>,
    stamp: u32,
    frontier: BinaryHeap<Reverse<Candidate>>,
    best: BinaryHeap<Candidate>,
    ids: Vec<u32>,
}

impl Scratch {
    /// Starts a search over `nodes` nodes: a fresh stamp, empty heaps.
    fn start(&mut self, nodes: usize) {
        if self.stamps.len() < nodes {
            self.stamps.resize(nodes, 0);
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            // After 2^32 searches the stamps wrap: clear them once.
            self.stamps.iter_mut().for_each(|s| *s = 0);
            self.stamp = 1;
        }
        self.frontier.clear();
        self.best.clear();
    }

    /// Marks `node` visited; false when it already was.
    #[inline]
    fn visit(&mut self, node: u32) -> bool {
        let slot = &mut self.stamps[node as usize];
        let fresh = *slot != self.stamp;
        *slot = self.stamp;
        fresh
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The graph: levels, neighbour lists and the entry point.
struct Graph {
    /// Neighbours kept per node on layers above 0 (`M`); layer 0 keeps `2M`.
    m: usize,
    levels: Vec<u8>,
    /// Layer 0: per node a count then `2M` slots.
    base_links: Vec<AtomicU32>,
    /// Layers above 0 of node `i` start at `upper_start[i]`: per layer a count then `M` slots.
    upper_start: Vec<usize>,
    upper_links: Vec<AtomicU32>,
    /// The first node of the highest level.
    entry: u32,
    top_level: u8,
}

impl Graph {
    /// A graph without links over nodes of the given levels (fewer than 2^32 of them).
    fn new(m: usize, levels: Vec<u8>) -> Graph {
        let mut upper_start = Vec::with_capacity(levels.len());
        let mut upper_len = 0;
        for &level in &levels {
            upper_start.push(upper_len);
            upper_len += level as usize * (m + 1);
        }
        let (entry, top_level) = levels
            .iter()
            .enumerate()
            .fold(
                (0, 0),
                |best, (node, &level)| {
                    if level > best.1 { (node, level) } else { best }
                },
            );
        let atomics = |len: usize| (0..len).map(|_| AtomicU32::new(0)).collect();
        Graph {
            m,
            base_links: atomics(levels.len() * (2 * m + 1)),
            levels,
            upper_start,
            upper_links: atomics(upper_len),
            entry: entry as u32,
            top_level,
        }
    }

    fn capacity(&self, layer: u8) -> usize {
        if layer == 0 { 2 * self.m } else { self.m }
    }

    /// The count slot and neighbour slots of `node` on `layer` (which it must belong to).
    #[inline]
    fn slots(&self, node: u32, layer: u8) -> &[AtomicU32] {
        let node = node as usize;
        if layer == 0 {
            let stride = 2 * self.m + 1;
            &self.base_links[node * stride..(node + 1) * stride]
        } else {
            let start = self.upper_start[node] + (layer as usize - 1) * (self.m + 1);
            &self.upper_links[start..start + self.m + 1]
        }
    }

    /// Copies the neighbours of `node` on `layer` into `out`.
    #[inline]
    fn neighbours(&self, node: u32, layer: u8, out: &mut Vec<u32>) {
        let slots = self.slots(node, layer);
        let count = (slots[0].load(Relaxed) as usize).min(slots.len() - 1);
        out.clear();
        out.extend(slots[1..=count].iter().map(|id| id.load(Relaxed)));
    }

    fn set_neighbours(&self, node: u32, layer: u8, ids: impl ExactSizeIterator<Item = u32>) {
        let slots = self.slots(node, layer);
        let count = ids.len().min(slots.len() - 1);
        for (slot, id) in slots[1..].iter().zip(ids) {
            slot.store(id, Relaxed);
        }
        slots[0].store(count as u32, Relaxed);
    }
}

/// Approximate cosine search over an HNSW graph (see the module documentation): built in
/// parallel, saved to and loaded from one checksummed file.
pub struct HnswIndex {
    dim: usize,
    ids: Vec<String>,
    /// Unit-length rows, row-major.
    vectors: Vec<f32>,
    params: HnswParams,
    graph: Graph,
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

impl HnswIndex {
    /// Builds the graph over `ids` and their row-major `vectors` (normalised to unit length),
    /// inserting on the current rayon pool's threads. On one thread (a pool of one, or
    /// `RAYON_NUM_THREADS=1`) the graph is the same on every run; with more it depends on
    /// thread timing, so two builds may differ slightly (save and load an index to reuse it
    /// exactly).
    pub fn build(
        ids: Vec<String>,
        vectors: Vec<f32>,
        dim: usize,
        params: HnswParams,
    ) -> Result<Self> {
        params.validate()?;
        let vectors = unit_rows(&ids, vectors, dim)?;
        let count = ids.len();
        if u32::try_from(count).is_err() {
            return Err(Error::InvalidParameter {
                name: "rows",
                reason: format!("{count} rows; the graph holds at most {}", u32::MAX),
            });
        }
        let m = params.max_nb_connection;
        let graph = Graph::new(m, draw_levels(count, m, params.max_layer));
        let index = HnswIndex {
            dim,
            ids,
            vectors,
            params,
            graph,
        };
        let locks: Vec<Mutex<()>> = (0..count).map(|_| Mutex::new(())).collect();
        (0..count as u32)
            .into_par_iter()
            .filter(|&node| node != index.graph.entry)
            .for_each(|node| index.insert(node, &locks));
        tracing::debug!(rows = count, dim, params = ?index.params, "built hnsw index");
        Ok(index)
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

    /// Saves the index to the file `path` (its folder is created if needed): parameters, id
    /// map, vectors and graph in one checksummed file (magic `MCRSHNSW`, format version 3),
    /// written under a temporary name and renamed into place, so a reader never sees half a
    /// file. The file is streamed: saving holds no second copy of the index.
    pub fn save(&self, path: &Path) -> Result<()> {
        file::save(self, path)
    }

    /// Loads an index written by [`HnswIndex::save`], answering exactly as the saved one.
    ///
    /// A missing, truncated or corrupt file is an error naming it (every count, neighbour
    /// id and level is checked before use, so no input makes it panic or allocate more than
    /// its length justifies); a file written by a newer version names that version. The
    /// folder of an index saved by versions that used hnsw_rs (`index.manifest` beside
    /// `index.hnsw.graph` and `index.hnsw.data`) is refused with an error saying to rebuild
    /// the index from its vectors.
    pub fn load(path: &Path) -> Result<Self> {
        file::load(path)
    }

    /// [`HnswIndex::load`] on the bytes of a saved index; `path` names them in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        file::from_bytes(bytes, path)
    }

    #[inline]
    fn row(&self, node: u32) -> &[f32] {
        let start = node as usize * self.dim;
        &self.vectors[start..start + self.dim]
    }

    #[inline]
    fn distance(&self, query: &[f32], node: u32) -> f32 {
        -dot(query, self.row(node))
    }

    /// Greedy walk on `layer` from `current` to the closest node it can reach.
    fn descend(
        &self,
        query: &[f32],
        mut current: Candidate,
        layer: u8,
        ids: &mut Vec<u32>,
    ) -> Candidate {
        loop {
            let mut moved = false;
            self.graph.neighbours(current.node, layer, ids);
            for &node in ids.iter() {
                let distance = self.distance(query, node);
                if distance < current.distance {
                    current = Candidate { distance, node };
                    moved = true;
                }
            }
            if !moved {
                return current;
            }
        }
    }

    /// Best-first search on `layer` from `start`: up to `ef` closest nodes found, closest
    /// first, in `out`.
    fn search_layer(
        &self,
        scratch: &mut Scratch,
        query: &[f32],
        start: Candidate,
        ef: usize,
        layer: u8,
        out: &mut Vec<Candidate>,
    ) {
        scratch.start(self.ids.len());
        scratch.visit(start.node);
        scratch.frontier.push(Reverse(start));
        scratch.best.push(start);
        let mut ids = std::mem::take(&mut scratch.ids);
        while let Some(Reverse(closest)) = scratch.frontier.pop() {
            let worst = scratch.best.peek().map_or(f32::INFINITY, |c| c.distance);
            if closest.distance > worst && scratch.best.len() >= ef {
                break;
            }
            self.graph.neighbours(closest.node, layer, &mut ids);
            ids.retain(|&node| scratch.visit(node));
            for &node in &ids {
                let distance = self.distance(query, node);
                let worst = scratch.best.peek().map_or(f32::INFINITY, |c| c.distance);
                if scratch.best.len() < ef || distance < worst {
                    let candidate = Candidate { distance, node };
                    scratch.frontier.push(Reverse(candidate));
                    scratch.best.push(candidate);
                    if scratch.best.len() > ef {
                        scratch.best.pop();
                    }
                }
            }
        }
        scratch.ids = ids;
        out.clear();
        out.extend(scratch.best.drain());
        out.sort_unstable();
    }

    /// Up to `keep` of `candidates` (closest to `base` first), each closer to `base` than to
    /// any candidate kept before it.
    fn diverse(&self, candidates: &[Candidate], keep: usize, out: &mut Vec<Candidate>) {
        out.clear();
        for &candidate in candidates {
            if out.len() >= keep {
                break;
            }
            let row = self.row(candidate.node);
            if out
                .iter()
                .all(|kept| candidate.distance < self.distance(row, kept.node))
            {
                out.push(candidate);
            }
        }
    }

    fn insert(&self, node: u32, locks: &[Mutex<()>]) {
        let graph = &self.graph;
        let query = self.row(node);
        let level = graph.levels[node as usize];
        let mut ids = Vec::new();
        let mut current = Candidate {
            distance: self.distance(query, graph.entry),
            node: graph.entry,
        };
        for layer in (level + 1..=graph.top_level).rev() {
            current = self.descend(query, current, layer, &mut ids);
        }
        let mut found = Vec::new();
        let mut chosen = Vec::new();
        let mut pool = Vec::new();
        for layer in (0..=level.min(graph.top_level)).rev() {
            SCRATCH.with_borrow_mut(|scratch| {
                self.search_layer(
                    scratch,
                    query,
                    current,
                    self.params.ef_construction,
                    layer,
                    &mut found,
                )
            });
            found.retain(|c| c.node != node);
            let Some(&closest) = found.first() else {
                continue;
            };
            current = closest;
            // Up to 2M on layer 0, M above (faiss's `nb_neighbors(level)`; the paper picks M
            // on every layer, which measured a lower recall for the same build time).
            self.diverse(&found, graph.capacity(layer), &mut chosen);
            {
                let _own = locks[node as usize]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                graph.set_neighbours(node, layer, chosen.iter().map(|c| c.node));
            }
            for neighbour in &chosen {
                self.link(neighbour.node, node, layer, locks, &mut pool, &mut found);
            }
        }
    }

    /// Adds `new` to the neighbours of `node` on `layer`, re-choosing them when full.
    /// `pool` and `kept` are scratch buffers.
    fn link(
        &self,
        node: u32,
        new: u32,
        layer: u8,
        locks: &[Mutex<()>],
        pool: &mut Vec<Candidate>,
        kept: &mut Vec<Candidate>,
    ) {
        let graph = &self.graph;
        let _guard = locks[node as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let slots = graph.slots(node, layer);
        let count = slots[0].load(Relaxed) as usize;
        let capacity = graph.capacity(layer);
        if count < capacity {
            slots[count + 1].store(new, Relaxed);
            slots[0].store(count as u32 + 1, Relaxed);
            return;
        }
        let row = self.row(node);
        pool.clear();
        pool.extend(
            slots[1..=count]
                .iter()
                .map(|id| id.load(Relaxed))
                .chain([new])
                .map(|other| Candidate {
                    distance: self.distance(row, other),
                    node: other,
                }),
        );
        pool.sort_unstable();
        self.diverse(pool, capacity, kept);
        graph.set_neighbours(node, layer, kept.iter().map(|c| c.node));
    }

    fn search_unit(&self, query: &[f32], k: usize) -> Vec<Neighbour> {
        if k == 0 || self.ids.is_empty() {
            return Vec::new();
        }
        let graph = &self.graph;
        let mut ids = Vec::new();
        let mut current = Candidate {
            distance: self.distance(query, graph.entry),
            node: graph.entry,
        };
        for layer in (1..=graph.top_level).rev() {
            current = self.descend(query, current, layer, &mut ids);
        }
        let mut found = Vec::new();
        SCRATCH.with_borrow_mut(|scratch| {
            self.search_layer(
                scratch,
                query,
                current,
                self.params.ef_search.max(k),
                0,
                &mut found,
            )
        });
        // Closest first, ties by lower node: the order of `best_first` on scores.
        found
            .into_iter()
            .take(k)
            .map(|c| Neighbour {
                row: c.node as usize,
                score: -c.distance,
            })
            .collect()
    }
}

/// Levels with `P(level >= l) = m^-l`, capped below `max_layer`, from [`LEVEL_SEED`].
fn draw_levels(count: usize, m: usize, max_layer: usize) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(LEVEL_SEED);
    let scale = 1.0 / (m as f64).ln();
    let cap = max_layer.saturating_sub(1).min(u8::MAX as usize) as f64;
    (0..count)
        .map(|_| {
            let uniform: f64 = rng.random_range(f64::EPSILON..1.0);
            (-uniform.ln() * scale).floor().min(cap) as u8
        })
        .collect()
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
    use crate::dense::ExactIndex;

    /// Points on 8 clusters with uniform noise.
    pub(super) fn clustered(rows: usize, dim: usize, seed: u64) -> (Vec<String>, Vec<f32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let centres: Vec<f32> = (0..8 * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut data = Vec::with_capacity(rows * dim);
        for _ in 0..rows {
            let c = rng.random_range(0..8);
            data.extend((0..dim).map(|d| centres[c * dim + d] + rng.random_range(-0.4..0.4)));
        }
        ((0..rows).map(|i| format!("p{i}")).collect(), data)
    }

    fn recall(index: &dyn VectorIndex, exact: &ExactIndex, queries: &[f32], k: usize) -> f64 {
        let got = index.search_batch(queries, k).unwrap();
        let want = exact.search_batch(queries, k).unwrap();
        let hits: usize = got
            .iter()
            .zip(&want)
            .map(|(g, w)| {
                w.iter()
                    .filter(|n| g.iter().any(|h| h.row == n.row))
                    .count()
            })
            .sum();
        hits as f64 / (want.len() * k) as f64
    }

    fn one_thread<T: Send>(work: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(work)
    }

    #[test]
    fn params_are_validated_with_their_ranges() {
        assert!(HnswParams::default().validate().is_ok());
        let bad = |params: HnswParams, name: &str, says: &str| {
            let err = HnswIndex::build(vec![], vec![], 2, params).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidParameter { name: n, .. } if *n == name),
                "{err}"
            );
            assert!(err.to_string().contains(says), "{err}");
        };
        let defaults = HnswParams::default;
        bad(
            HnswParams {
                max_nb_connection: 257,
                ..defaults()
            },
            "max_nb_connection",
            "outside 2..=256",
        );
        bad(
            HnswParams {
                max_nb_connection: 1,
                ..defaults()
            },
            "max_nb_connection",
            "layer 0 keeps twice as many",
        );
        bad(
            HnswParams {
                ef_construction: 0,
                ..defaults()
            },
            "ef_construction",
            "at least 1",
        );
        bad(
            HnswParams {
                ef_search: 0,
                ..defaults()
            },
            "ef_search",
            "at least 1",
        );
        for max_layer in [0, 17] {
            bad(
                HnswParams {
                    max_layer,
                    ..defaults()
                },
                "max_layer",
                "outside 1..=16",
            );
        }
        let mut index = HnswIndex::build(vec![], vec![], 2, defaults()).unwrap();
        assert!(index.set_ef_search(0).is_err());
        index.set_ef_search(7).unwrap();
        assert_eq!(index.params().ef_search, 7);
        // The edges of the ranges build.
        for (m, max_layer) in [(2, 1), (256, 16)] {
            let params = HnswParams {
                max_nb_connection: m,
                max_layer,
                ..defaults()
            };
            let (ids, data) = clustered(300, 4, 9);
            let index = HnswIndex::build(ids, data.clone(), 4, params).unwrap();
            assert_eq!(index.search(&data[..4], 1).unwrap()[0].row, 0);
        }
        let serde: HnswParams = serde_json::from_str(r#"{"ef_search": 12}"#).unwrap();
        assert_eq!(serde.ef_search, 12);
        assert!(serde_json::from_str::<HnswParams>(r#"{"ef": 12}"#).is_err());
    }

    #[test]
    fn layer_0_keeps_up_to_2m_and_upper_layers_m() {
        let dim = 8;
        let (ids, data) = clustered(3_000, dim, 6);
        let params = HnswParams {
            max_nb_connection: 4,
            ..HnswParams::default()
        };
        let index = one_thread(|| HnswIndex::build(ids, data, dim, params)).unwrap();
        let graph = &index.graph;
        let mut ids = Vec::new();
        let mut widest = [0usize; 2];
        for node in 0..3_000u32 {
            graph.neighbours(node, 0, &mut ids);
            assert!(ids.len() <= 8);
            widest[0] = widest[0].max(ids.len());
            for layer in 1..=graph.levels[node as usize] {
                graph.neighbours(node, layer, &mut ids);
                assert!(ids.len() <= 4);
                widest[1] = widest[1].max(ids.len());
            }
        }
        assert_eq!(widest, [8, 4], "lists fill to their capacity");
    }

    #[test]
    fn finds_the_exact_neighbours_of_clustered_points() {
        let dim = 16;
        let (ids, data) = clustered(2_000, dim, 1);
        let (_, queries) = clustered(200, dim, 2);
        let exact = ExactIndex::build(ids.clone(), data.clone(), dim).unwrap();
        let mut index = HnswIndex::build(ids, data, dim, HnswParams::default()).unwrap();
        // 16 uniform-noise dimensions are hard for any HNSW: a wider list is what reaches
        // 0.98 here.
        index.set_ef_search(128).unwrap();
        let reached = recall(&index, &exact, &queries, 10);
        assert!(reached >= 0.98, "recall@10 {reached}");
    }

    #[test]
    fn scores_are_cosines_best_first() {
        let dim = 16;
        let (ids, data) = clustered(500, dim, 3);
        let index = HnswIndex::build(ids, data.clone(), dim, HnswParams::default()).unwrap();
        let hits = index.search(&data[..dim], 5).unwrap();
        assert_eq!(hits[0].row, 0);
        assert!((hits[0].score - 1.0).abs() < 1e-5);
        for pair in hits.windows(2) {
            assert!(pair[0].score >= pair[1].score);
        }
        let row = index.row(hits[2].row as u32);
        let mut unit = data[..dim].to_vec();
        crate::dense::normalize(&mut unit);
        assert!((dot(&unit, row) - hits[2].score).abs() < 1e-6);
    }

    #[test]
    fn one_thread_builds_the_same_graph_twice() {
        let dim = 16;
        let (ids, data) = clustered(800, dim, 4);
        let (_, queries) = clustered(20, dim, 5);
        let build = || {
            one_thread(|| HnswIndex::build(ids.clone(), data.clone(), dim, HnswParams::default()))
                .unwrap()
        };
        let (a, b) = (build(), build());
        assert_eq!(
            a.search_batch(&queries, 10).unwrap(),
            b.search_batch(&queries, 10).unwrap()
        );
        let links = |index: &HnswIndex| -> Vec<u32> {
            let graph = &index.graph;
            graph
                .base_links
                .iter()
                .chain(&graph.upper_links)
                .map(|id| id.load(Relaxed))
                .collect()
        };
        assert!(links(&a) == links(&b));
    }

    #[test]
    fn small_and_bad_inputs() {
        let empty = HnswIndex::build(vec![], vec![], 4, HnswParams::default()).unwrap();
        assert!(empty.search(&[1.0, 0.0, 0.0, 0.0], 3).unwrap().is_empty());
        let one =
            HnswIndex::build(vec!["a".into()], vec![1.0, 2.0], 2, HnswParams::default()).unwrap();
        assert_eq!(one.search(&[1.0, 2.0], 3).unwrap().len(), 1);
        assert!(one.search(&[1.0, 2.0], 0).unwrap().is_empty());
        assert!(one.search(&[1.0], 3).is_err());
        assert!(one.search(&[f32::NAN, 1.0], 3).is_err());
        assert!(one.search_batch(&[1.0, 2.0, 3.0], 3).is_err());
        let err = HnswIndex::build(
            vec!["a".into(), "b".into()],
            vec![1.0, 2.0, f32::INFINITY, 0.0],
            2,
            HnswParams::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains('b'), "{err}");
        assert!(HnswIndex::build(vec!["a".into()], vec![1.0], 2, HnswParams::default()).is_err());
    }

    #[test]
    fn a_grid_finds_its_nearest_rows() {
        let mut ids = Vec::new();
        let mut data = Vec::new();
        for i in 0..200 {
            let angle = i as f32 * 0.031;
            ids.push(format!("t{i}"));
            data.extend_from_slice(&[angle.cos(), angle.sin(), 0.1]);
        }
        let index = HnswIndex::build(ids, data.clone(), 3, HnswParams::default()).unwrap();
        let hits = index.search(&data[30..33], 3).unwrap();
        assert_eq!(hits[0].row, 10);
        assert!(hits[0].score > 0.999);
        let mut rows: Vec<usize> = hits.iter().map(|h| h.row).collect();
        rows.sort_unstable();
        assert_eq!(rows, vec![9, 10, 11]);
    }
}
