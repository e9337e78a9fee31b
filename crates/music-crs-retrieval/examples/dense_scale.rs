//! Memory and latency of exact and HNSW search as the index grows: synthetic clustered unit
//! vectors (200 Gaussian centres, like `../shared/bench/ann_peer.py`) of several sizes.
//!
//! ```text
//! cargo run --release -p music-crs-retrieval --features dense --example dense_scale -- \
//!     50000x128:exact 50000x128:hnsw 500000x512:exact 5000000x128:exact
//! ```
//!
//! Each argument is `ROWSxDIM:KIND`, KIND `exact` ([`ExactIndex`]) or `hnsw` ([`HnswIndex`]).
//! For each it prints the f32 table's
//! bytes and the resident memory the index adds (its own copy of the vectors included; the
//! generated input stays alive beside it). Freed memory stays with the allocator and hides
//! later growth, so that figure is exact only for the first argument of a run: give one
//! argument per run to compare memory. Exact: single-query latency (median of 20) and batch
//! queries/s. HNSW (`HnswParams::default()`): build seconds, then at the smallest efSearch of
//! 16, 32, 64, 128, 256 that reaches recall@20 >= 0.95 against exact search, single-query
//! latency and batch queries/s. `ANN_QUERIES` (default 500) sets the batch size; rayon uses
//! `RAYON_NUM_THREADS` threads (default: all cores).

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

/// Which index to measure.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Exact,
    Hnsw,
}

fn run(rows_count: usize, dim: usize, kind: Kind, query_count: usize) -> Result<()> {
    let started = Instant::now();
    let data = generate(rows_count, query_count, dim, 7);
    println!(
        "\n{rows_count} x {dim}: f32 table {:.1} MiB (generated in {:.1} s)",
        mib((rows_count * dim * 4) as u64),
        started.elapsed().as_secs_f64()
    );
    let ids: Vec<String> = (0..rows_count).map(|i| i.to_string()).collect();
    // Measured before the copy the index consumes, so the figure is all the index holds.
    let before = resident_bytes();
    let started = Instant::now();
    match kind {
        Kind::Exact => {
            let exact = ExactIndex::build(ids, data.base.clone(), dim)?;
            println!(
                "  exact: built in {:.2} s, +{:.1} MiB resident",
                started.elapsed().as_secs_f64(),
                mib(resident_bytes().saturating_sub(before))
            );
            let latency = single_latency(&exact, &data.queries, dim)?;
            let qps = batch_qps(&exact, &data.queries, dim)?;
            check_batch_against_single(&exact, &data)?;
            println!(
                "  exact: single query {:.2} ms (median of {LATENCY_QUERIES}), batch of \
                 {query_count} {qps:.0} queries/s",
                latency * 1e3
            );
        }
        Kind::Hnsw => {
            let mut hnsw =
                HnswIndex::build(ids.clone(), data.base.clone(), dim, HnswParams::default())?;
            let built = Measured::new(started, before);
            let truth = exact_truth(ids, &data)?;
            report_hnsw(&mut hnsw, built, &data, &truth)?;
        }
    }
    Ok(())
}

/// The batch kernel and the single-query path are separate code: on the first queries both
/// must find the same rows (up to rounding at tied scores).
fn check_batch_against_single(exact: &ExactIndex, data: &ann_data::Data) -> Result<()> {
    let some = &data.queries[..data.dim * LATENCY_QUERIES.min(data.query_count())];
    let batch = exact.search_batch(some, K)?;
    for (i, (query, hits)) in some.chunks_exact(data.dim).zip(&batch).enumerate() {
        let single = exact.search(query, K)?;
        for (a, b) in hits.iter().zip(&single) {
            if a.row != b.row && (a.score - b.score).abs() > 1e-5 {
                bail!(
                    "query {i}: batch found row {} ({}), single row {} ({})",
                    a.row,
                    a.score,
                    b.row,
                    b.score
                );
            }
        }
    }
    Ok(())
}

/// Build seconds and resident bytes added, taken right after a build.
struct Measured {
    seconds: f64,
    resident: u64,
}

impl Measured {
    fn new(started: Instant, before: u64) -> Self {
        Measured {
            seconds: started.elapsed().as_secs_f64(),
            resident: resident_bytes().saturating_sub(before),
        }
    }
}

/// The exact top 20 of every query (built after the measured index, so its memory is not
/// counted).
fn exact_truth(ids: Vec<String>, data: &ann_data::Data) -> Result<Vec<Vec<usize>>> {
    let exact = ExactIndex::build(ids, data.base.clone(), data.dim)?;
    Ok(rows(exact.search_batch(&data.queries, K)?))
}

/// Prints the build time and resident memory of a just-built index, then its latency and
/// queries/s at the smallest efSearch reaching the recall goal.
fn report_hnsw(
    index: &mut HnswIndex,
    built: Measured,
    data: &ann_data::Data,
    truth: &[Vec<usize>],
) -> Result<()> {
    let dim = data.dim;
    println!(
        "  hnsw (M {}, efConstruction {}): built in {:.1} s, +{:.1} MiB resident",
        index.params().max_nb_connection,
        index.params().ef_construction,
        built.seconds,
        mib(built.resident)
    );
    for ef in EF_LADDER {
        index.set_ef_search(ef)?;
        let got = rows(index.search_batch(&data.queries, K)?);
        let reached = recall(&got, truth);
        if reached < RECALL_GOAL {
            println!("  hnsw efSearch {ef}: recall@20 {reached:.4}, below {RECALL_GOAL}");
            continue;
        }
        let latency = single_latency(&*index, &data.queries, dim)?;
        let qps = batch_qps(&*index, &data.queries, dim)?;
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
        bail!("give ROWSxDIM:KIND arguments, e.g. 50000x128:exact 500000x512:hnsw");
    }
    println!(
        "rayon threads {}, {query_count} queries, k {K}",
        rayon::current_num_threads()
    );
    for size in sizes {
        let parsed = size.split_once(':').and_then(|(shape, kind)| {
            let (rows_count, dim) = shape.split_once('x')?;
            let kind = match kind {
                "exact" => Kind::Exact,
                "hnsw" => Kind::Hnsw,
                _ => return None,
            };
            Some((rows_count.parse().ok()?, dim.parse().ok()?, kind))
        });
        let Some((rows_count, dim, kind)) = parsed.filter(|&(r, d, _)| r > 0 && d > 0) else {
            bail!("{size:?} is not ROWSxDIM:KIND with positive sizes and KIND exact or hnsw");
        };
        run(rows_count, dim, kind, query_count)?;
    }
    Ok(())
}
