//! End-to-end speed of the default method on the demo dataset: loading, building the BM25
//! index, and predicting the whole test split (BM25 + templates).
//!
//! ```sh
//! cargo bench --bench pipeline
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use music_crs::config::CrsConfig;
use music_crs::{RunData, build_crs};

fn pipeline(c: &mut Criterion) {
    // The default config: the demo dataset's test split at data/demo.
    let config = CrsConfig::default();

    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10);
    group.bench_function("load_demo", |b| {
        b.iter(|| black_box(RunData::load_for(&config).expect("load")))
    });
    let data = RunData::load_for(&config).expect("load");
    let turns = data.turns().expect("turns");
    group.bench_function("build_bm25_template", |b| {
        b.iter(|| black_box(build_crs(&config, &data).expect("build")))
    });
    let crs = build_crs(&config, &data).expect("build");
    for n in [100, turns.len()] {
        group.bench_with_input(BenchmarkId::new("predict_bm25_template", n), &n, |b, &n| {
            b.iter(|| black_box(crs.predict(&turns[..n]).expect("predict")))
        });
    }
    group.bench_function("end_to_end_demo_test", |b| {
        b.iter(|| {
            let data = RunData::load_for(&config).expect("load");
            let turns = data.turns().expect("turns");
            let crs = build_crs(&config, &data).expect("build");
            black_box(crs.predict(&turns).expect("predict"))
        })
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
