//! BM25 index build and batch search, per corpus size.
//!
//! Documents and queries are the real samples of `../shared/fixtures/bm25/` (the catalog
//! documents repeated with a per-copy suffix up to each size); without `shared/`, synthetic
//! ones. The full 50,000-document / 8,000-query comparison with bm25s is the
//! `bm25_jsonl` example on `../shared/bench/make_bm25_bench.py`'s files.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use music_crs_core::shared::shared_path;
use music_crs_retrieval::{Bm25Index, Bm25Params};

const SIZES: [usize; 3] = [2_520, 10_000, 50_000];

fn read_texts(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect()
}

/// Deterministic filler text from a small vocabulary (a linear congruential generator).
fn synthetic(count: usize, words_each: usize, seed: u64) -> Vec<String> {
    const WORDS: [&str; 16] = [
        "love", "night", "dance", "blue", "heart", "summer", "rock", "jazz", "soul", "fire",
        "dream", "city", "rain", "light", "wild", "home",
    ];
    let mut state = seed;
    (0..count)
        .map(|i| {
            let mut text = format!("track_name: song {i}\n");
            for _ in 0..words_each {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                text.push_str(WORDS[(state >> 60) as usize]);
                text.push(' ');
            }
            text
        })
        .collect()
}

fn data() -> (Vec<String>, Vec<String>) {
    match (
        shared_path("fixtures/bm25/corpus.jsonl"),
        shared_path("fixtures/bm25/queries.jsonl"),
    ) {
        (Some(corpus), Some(queries)) => (read_texts(&corpus), read_texts(&queries)),
        _ => (synthetic(2_520, 12, 1), synthetic(800, 150, 2)),
    }
}

fn corpus_of(base: &[String], size: usize) -> Vec<(String, String)> {
    (0..size)
        .map(|i| {
            let copy = i / base.len();
            let text = &base[i % base.len()];
            // A distinct suffix per copy keeps repeated documents distinct terms-wise.
            (format!("d{i}"), format!("{text}copy: c{copy}\n"))
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let (base, queries) = data();
    let query_refs: Vec<&str> = queries.iter().map(String::as_str).collect();

    let mut build = c.benchmark_group("bm25_build");
    build.sample_size(10);
    for size in SIZES {
        let docs = corpus_of(&base, size);
        build.throughput(Throughput::Elements(size as u64));
        build.bench_with_input(BenchmarkId::from_parameter(size), &docs, |b, docs| {
            b.iter(|| Bm25Index::build(docs.iter().cloned(), Bm25Params::default()).unwrap());
        });
    }
    build.finish();

    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut search = c.benchmark_group("bm25_search_batch");
    search.sample_size(10);
    search.throughput(Throughput::Elements(query_refs.len() as u64));
    for size in SIZES {
        let index = Bm25Index::build(corpus_of(&base, size), Bm25Params::default()).unwrap();
        search.bench_with_input(BenchmarkId::new("1_thread", size), &index, |b, index| {
            b.iter(|| one_thread.install(|| black_box(index.search_batch(&query_refs, 20))));
        });
        search.bench_with_input(BenchmarkId::new("all_threads", size), &index, |b, index| {
            b.iter(|| black_box(index.search_batch(&query_refs, 20)));
        });
    }
    search.finish();
}

criterion_group!(bm25, benches);
criterion_main!(bm25);
