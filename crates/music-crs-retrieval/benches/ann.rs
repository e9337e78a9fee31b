//! Exact vs HNSW cosine search on 50,000 x 384 clustered unit vectors, 2,000 queries: the
//! workload of the faiss peer (`../shared/bench/ann_peer.py`).
//!
//! Reads `base.npy`, `queries.npy` and `exact_top20.npy` from `$ANN_DATA` (default
//! `target/ann-data`, written by `ann_peer.py make target/ann-data`); without them it generates
//! clustered data of the same shape deterministically. Prints HNSW build time and recall@20
//! against exact search, then criterion times one batch of all queries per index
//! (throughput = queries/s). `RAYON_NUM_THREADS=1` matches the peer's single thread.
//!
//! `ANN_EF_SEARCH` (comma-separated, default `32,64`) picks the HNSW search list sizes;
//! `ANN_M` and `ANN_EF_CONSTRUCTION` override the build parameters (defaults: `HnswParams`).
//! Before criterion runs, each index answers the whole batch three times and the best time
//! gives the printed queries/s and the HNSW/exact speed ratio (one process, same load). The
//! side by side with faiss is `examples/ann_vs_faiss.rs`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use music_crs_retrieval::dense::{ExactIndex, HnswIndex, HnswParams, VectorIndex};

#[path = "support/ann_data.rs"]
#[allow(dead_code)]
mod ann_data;

use ann_data::{generate, load_peer_data, recall, rows};

const K: usize = 20;

/// Queries per second of the fastest of three runs of `batch` (`n` queries each).
fn best_qps(n: usize, mut batch: impl FnMut()) -> f64 {
    let best = (0..3)
        .map(|_| {
            let started = Instant::now();
            batch();
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    n as f64 / best
}

fn bench(c: &mut Criterion) {
    let dir = std::env::var_os("ANN_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ann-data"));
    let (data, peer_truth, source) = match load_peer_data(&dir) {
        Ok((data, truth)) => (data, Some(truth), dir.display().to_string()),
        Err(e) => {
            eprintln!("ann bench: no peer data ({e:#}); generating clustered vectors");
            let data = generate(50_000, 2_000, 384, 7);
            (data, None, "generated".to_string())
        }
    };
    let n = data.rows();
    let nq = data.query_count();
    let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    eprintln!(
        "ann bench: {source} ({n} x {}, {nq} queries), rayon threads {}",
        data.dim,
        rayon::current_num_threads()
    );

    let exact = ExactIndex::build(ids.clone(), data.base.clone(), data.dim).expect("exact index");
    let exact_hits = rows(exact.search_batch(&data.queries, K).expect("exact search"));
    let exact_qps = best_qps(nq, || {
        exact.search_batch(&data.queries, K).expect("exact search");
    });
    eprintln!("exact: {exact_qps:.0} queries/s (best of 3 batches)");
    if let Some(truth) = &peer_truth {
        eprintln!(
            "exact recall@20 vs numpy truth: {:.4}",
            recall(&exact_hits, truth)
        );
    }

    let env_usize = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    let defaults = HnswParams::default();
    let params = HnswParams {
        max_nb_connection: env_usize("ANN_M").unwrap_or(defaults.max_nb_connection),
        ef_construction: env_usize("ANN_EF_CONSTRUCTION").unwrap_or(defaults.ef_construction),
        ..defaults
    };
    let started = Instant::now();
    let mut hnsw = HnswIndex::build(ids, data.base.clone(), data.dim, params).expect("hnsw index");
    eprintln!(
        "hnsw build (M {}, ef_construction {}): {:.1} s",
        hnsw.params().max_nb_connection,
        hnsw.params().ef_construction,
        started.elapsed().as_secs_f64()
    );

    let ef_list: Vec<usize> = std::env::var("ANN_EF_SEARCH")
        .unwrap_or_else(|_| "32,64".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();

    let mut group = c.benchmark_group(format!("ann_{n}x{}", data.dim));
    group.sample_size(10);
    group.throughput(Throughput::Elements(nq as u64));
    group.bench_function(BenchmarkId::new("exact", n), |b| {
        b.iter(|| exact.search_batch(&data.queries, K).expect("search"))
    });
    for ef in ef_list {
        hnsw.set_ef_search(ef).expect("ef_search");
        let got = rows(hnsw.search_batch(&data.queries, K).expect("hnsw search"));
        let qps = best_qps(nq, || {
            hnsw.search_batch(&data.queries, K).expect("hnsw search");
        });
        eprintln!(
            "hnsw ef_search {ef}: recall@20 vs exact {:.4}, {qps:.0} queries/s (best of 3), \
             {:.2}x exact",
            recall(&got, &exact_hits),
            qps / exact_qps
        );
        group.bench_function(BenchmarkId::new(format!("hnsw_ef{ef}"), n), |b| {
            b.iter(|| hnsw.search_batch(&data.queries, K).expect("search"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
