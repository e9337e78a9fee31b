//! An hnsw_rs dump pair: the check must refuse whatever hnsw_rs cannot read safely. When it
//! accepts, hnsw_rs itself loads the dump, which must not panic, abort or exit.
//!
//! Input: the dimension (u8), the row count (u16 LE), the graph file's length (u32 LE), the
//! graph file, the data file. The parameters are the defaults (`M` 16, `ef_construction` 200).
#![no_main]

use hnsw_rs::prelude::{Hnsw, HnswIo};
use libfuzzer_sys::fuzz_target;
use music_crs_retrieval::dense::{CosineDistance, HnswParams, check_dump_bytes};

fuzz_target!(|input: &[u8]| {
    if input.len() < 7 {
        return;
    }
    let dim = usize::from(input[0]);
    let rows = usize::from(u16::from_le_bytes([input[1], input[2]]));
    let graph_len = u32::from_le_bytes([input[3], input[4], input[5], input[6]]) as usize;
    let rest = &input[7..];
    if graph_len > rest.len() {
        return;
    }
    let (graph, data) = rest.split_at(graph_len);
    if check_dump_bytes(graph, data, dim, rows, &HnswParams::default()).is_err() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("index.hnsw.graph"), graph).expect("write");
    std::fs::write(dir.path().join("index.hnsw.data"), data).expect("write");
    let mut loader = HnswIo::new(dir.path(), "index");
    let loaded: Hnsw<f32, CosineDistance> = loader.load_hnsw().expect("a checked dump loads");
    assert_eq!(loaded.get_nb_point(), rows);
    let query = vec![1.0f32; dim];
    let _ = loaded.search(&query, 3, 16);
});
