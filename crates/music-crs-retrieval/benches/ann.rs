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
//! gives the printed queries/s and the HNSW/exact speed ratio (one process, same load).

use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use music_crs_retrieval::dense::{ExactIndex, HnswIndex, HnswParams, VectorIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const K: usize = 20;

struct Data {
    dim: usize,
    base: Vec<f32>,
    queries: Vec<f32>,
    source: String,
}

/// Reads a little-endian `.npy` array of `<f4` or `<i8` values: (shape, values as f64-free raw).
fn read_npy(path: &Path) -> Option<(Vec<usize>, String, Vec<u8>)> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.get(..6)? != b"\x93NUMPY" {
        return None;
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(bytes.get(start..start + header_len)?).ok()?;
    let descr = header
        .split("'descr': '")
        .nth(1)?
        .split('\'')
        .next()?
        .to_string();
    if header.contains("'fortran_order': True") {
        return None;
    }
    let shape_text = header.split("'shape': (").nth(1)?.split(')').next()?;
    let shape = shape_text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().ok())
        .collect::<Option<Vec<usize>>>()?;
    Some((shape, descr, bytes[start + header_len..].to_vec()))
}

fn f32s(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn load_peer_data(dir: &Path) -> Option<(Data, Vec<Vec<usize>>)> {
    let (base_shape, base_descr, base) = read_npy(&dir.join("base.npy"))?;
    let (query_shape, query_descr, queries) = read_npy(&dir.join("queries.npy"))?;
    let (truth_shape, truth_descr, truth) = read_npy(&dir.join("exact_top20.npy"))?;
    if base_descr != "<f4" || query_descr != "<f4" || truth_descr != "<i8" {
        return None;
    }
    let truth: Vec<Vec<usize>> = truth
        .chunks_exact(8 * truth_shape[1])
        .map(|row| {
            row.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()) as usize)
                .collect()
        })
        .collect();
    assert_eq!(query_shape[0], truth.len());
    Some((
        Data {
            dim: base_shape[1],
            base: f32s(&base),
            queries: f32s(&queries),
            source: dir.display().to_string(),
        },
        truth,
    ))
}

/// 200 Gaussian clusters of unit vectors, like the peer's generator (not bit-identical).
fn generate(n: usize, queries: usize, dim: usize) -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut gauss = move || {
        // Box-Muller: rand's normal distribution lives in rand_distr, not a dependency here.
        let u: f32 = rng.random_range(f32::EPSILON..1.0);
        let v: f32 = rng.random();
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    };
    let centers: Vec<f32> = (0..200 * dim).map(|_| gauss()).collect();
    let mut pick = ChaCha8Rng::seed_from_u64(8);
    let mut sample = |count: usize| {
        let mut out = Vec::with_capacity(count * dim);
        for _ in 0..count {
            let c = pick.random_range(0..200);
            let mut v: Vec<f32> = (0..dim)
                .map(|d| centers[c * dim + d] + 0.35 * gauss())
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            out.extend(v);
        }
        out
    };
    let base = sample(n);
    let queries = sample(queries);
    Data {
        dim,
        base,
        queries,
        source: format!("generated {n} x {dim}"),
    }
}

fn recall(got: &[Vec<usize>], truth: &[Vec<usize>]) -> f64 {
    let hits: usize = got
        .iter()
        .zip(truth)
        .map(|(g, t)| g.iter().filter(|row| t.contains(row)).count())
        .sum();
    hits as f64 / (truth.len() * K) as f64
}

fn rows(hits: Vec<Vec<music_crs_retrieval::dense::Neighbour>>) -> Vec<Vec<usize>> {
    hits.into_iter()
        .map(|h| h.into_iter().map(|n| n.row).collect())
        .collect()
}

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
    let (data, peer_truth) = match load_peer_data(&dir) {
        Some((data, truth)) => (data, Some(truth)),
        None => (generate(50_000, 2_000, 384), None),
    };
    let n = data.base.len() / data.dim;
    let nq = data.queries.len() / data.dim;
    let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    eprintln!(
        "ann bench: {} ({n} x {}, {nq} queries), rayon threads {}",
        data.source,
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
