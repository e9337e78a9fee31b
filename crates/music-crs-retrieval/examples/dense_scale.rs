//! Memory and latency of exact and HNSW search as the index grows: synthetic clustered unit
//! vectors (200 Gaussian centres, like `../shared/bench/ann_peer.py`) of several sizes.
//!
//! ```text
//! cargo run --release -p music-crs-retrieval --features dense --example dense_scale -- \
//!     50000x128 50000x512 500000x128 500000x512 5000000x128:exact
//! ```
//!
//! Each argument is `ROWSxDIM`, optionally `:exact` to skip HNSW. For each size it prints the
//! f32 table's bytes, the resident memory each index adds, exact search's single-query latency
//! (median of 20) and batch queries/s, then HNSW's build time and, at the smallest efSearch of
//! 16, 32, 64, 128, 256 that reaches recall@20 >= 0.95 against exact search, its single-query
//! latency and batch queries/s. `ANN_QUERIES` (default 500) sets the batch size; rayon uses
//! `RAYON_NUM_THREADS` threads (default: all cores). HNSW uses `HnswParams::default()`.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use music_crs_retrieval::dense::{ExactIndex, HnswIndex, HnswParams, VectorIndex};

#[path = "../benches/support/ann_data.rs"]
#[allow(dead_code)]
mod ann_data;

use ann_data::{generate, recall, rows};

const K: usize = 20;
const RECALL_GOAL: f64 = 0.95;
const EF_LADDER: [usize; 5] = [16, 32, 64, 128, 256];
const LATENCY_QUERIES: usize = 20;

/// Resident memory of this process in bytes (Linux), or 0 where `/proc` is missing.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0, |kib| kib * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Median seconds of answering each of the first `LATENCY_QUERIES` queries alone.
fn single_latency(index: &dyn VectorIndex, queries: &[f32], dim: usize) -> Result<f64> {
    let mut times = Vec::new();
    for query in queries.chunks_exact(dim).take(LATENCY_QUERIES) {
        let started = Instant::now();
        index.search(query, K)?;
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Queries per second of one batch of all queries.
fn batch_qps(index: &dyn VectorIndex, queries: &[f32], dim: usize) -> Result<f64> {
    let started = Instant::now();
    index.search_batch(queries, K)?;
    Ok((queries.len() / dim) as f64 / started.elapsed().as_secs_f64())
}

fn run(rows_count: usize, dim: usize, with_hnsw: bool, query_count: usize) -> Result<()> {
    let started = Instant::now();
    let data = generate(rows_count, query_count, dim, 7);
    println!(
        "\n{rows_count} x {dim}: f32 table {:.1} MiB (generated in {:.1} s)",
        mib((rows_count * dim * 4) as u64),
        started.elapsed().as_secs_f64()
    );
    let ids: Vec<String> = (0..rows_count).map(|i| i.to_string()).collect();

    let before = resident_bytes();
    let started = Instant::now();
    let exact = ExactIndex::build(ids.clone(), data.base.clone(), dim)?;
    println!(
        "  exact: built in {:.2} s, +{:.1} MiB resident",
        started.elapsed().as_secs_f64(),
        mib(resident_bytes().saturating_sub(before))
    );
    let latency = single_latency(&exact, &data.queries, dim)?;
    let started = Instant::now();
    let truth = rows(exact.search_batch(&data.queries, K)?);
    let qps = query_count as f64 / started.elapsed().as_secs_f64();
    println!(
        "  exact: single query {:.2} ms (median of {LATENCY_QUERIES}), batch of {query_count} \
         {qps:.0} queries/s",
        latency * 1e3
    );
    drop(exact);
    if !with_hnsw {
        return Ok(());
    }

    let before = resident_bytes();
    let started = Instant::now();
    let mut hnsw = HnswIndex::build(ids, data.base, dim, HnswParams::default())?;
    println!(
        "  hnsw (M {}, efConstruction {}): built in {:.1} s, +{:.1} MiB resident",
        hnsw.params().max_nb_connection,
        hnsw.params().ef_construction,
        started.elapsed().as_secs_f64(),
        mib(resident_bytes().saturating_sub(before))
    );
    for ef in EF_LADDER {
        hnsw.set_ef_search(ef)?;
        let got = rows(hnsw.search_batch(&data.queries, K)?);
        let reached = recall(&got, &truth);
        if reached < RECALL_GOAL {
            println!("  hnsw efSearch {ef}: recall@20 {reached:.4}, below {RECALL_GOAL}");
            continue;
        }
        let latency = single_latency(&hnsw, &data.queries, dim)?;
        let qps = batch_qps(&hnsw, &data.queries, dim)?;
        println!(
            "  hnsw efSearch {ef}: recall@20 {reached:.4}, single query {:.3} ms, batch \
             {qps:.0} queries/s",
            latency * 1e3
        );
        return Ok(());
    }
    println!("  hnsw: no efSearch up to 256 reaches recall@20 {RECALL_GOAL}");
    Ok(())
}

fn main() -> Result<()> {
    let query_count: usize = std::env::var("ANN_QUERIES")
        .unwrap_or_else(|_| "500".into())
        .parse()
        .context("ANN_QUERIES must be a number")?;
    let sizes: Vec<String> = std::env::args().skip(1).collect();
    if sizes.is_empty() {
        bail!("give sizes as ROWSxDIM[:exact], e.g. 50000x128 500000x512 5000000x128:exact");
    }
    println!(
        "rayon threads {}, {query_count} queries, k {K}",
        rayon::current_num_threads()
    );
    for size in sizes {
        let (shape, mode) = size.split_once(':').unwrap_or((&size, ""));
        let (rows_count, dim) = shape
            .split_once('x')
            .and_then(|(r, d)| Some((r.parse().ok()?, d.parse().ok()?)))
            .with_context(|| format!("{size:?} is not ROWSxDIM[:exact]"))?;
        if dim == 0 || rows_count == 0 || !matches!(mode, "" | "exact") {
            bail!("{size:?} is not ROWSxDIM[:exact] with positive sizes");
        }
        run(rows_count, dim, mode != "exact", query_count)?;
    }
    Ok(())
}
