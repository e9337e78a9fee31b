//! `compare` at challenge scale: 10 prediction files of 8,000 turns (1,000 sessions × 8)
//! against one ground truth, 10,000 resamples for the nDCG intervals and tests, 1,000 for
//! the diversity intervals and per-turn bands (the CLI's defaults). Goal: under 10 s on
//! 2 cores.
//!
//! `cargo bench -p music-crs-metrics --bench compare`

use criterion::{Criterion, criterion_group, criterion_main};
use music_crs_core::Prediction;
use music_crs_metrics::{CompareParams, GoldTurn, GroundTruth, MethodPredictions, compare};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SESSIONS: usize = 1_000;
const TURNS: u32 = 8;
const METHODS: usize = 10;
const CATALOG: usize = 47_071;

fn ground_truth(rng: &mut ChaCha8Rng) -> GroundTruth {
    let turns = (0..SESSIONS)
        .flat_map(|s| (1..=TURNS).map(move |t| (s, t)))
        .map(|(s, t)| GoldTurn {
            session_id: format!("session-{s:05}"),
            user_id: format!("user-{}", s % 700),
            turn_number: t,
            gold_track_ids: vec![format!("track-{}", rng.random_range(0..CATALOG))],
        })
        .collect();
    GroundTruth::new(turns).expect("a valid ground truth")
}

/// A method that puts the gold track in its top 20 with probability `skill`.
fn method(truth: &GroundTruth, skill: f64, rng: &mut ChaCha8Rng) -> Vec<Prediction> {
    const WORDS: [&str; 12] = [
        "here", "is", "a", "calm", "song", "with", "piano", "by", "an", "artist", "you", "like",
    ];
    truth
        .turns()
        .iter()
        .map(|gold| {
            let mut ids: Vec<String> = Vec::with_capacity(20);
            while ids.len() < 20 {
                let id = format!("track-{}", rng.random_range(0..CATALOG));
                if !ids.contains(&id) && id != gold.gold_track_ids[0] {
                    ids.push(id);
                }
            }
            if rng.random_bool(skill) {
                ids[rng.random_range(0..20)] = gold.gold_track_ids[0].clone();
            }
            let response: Vec<&str> = (0..24).map(|_| WORDS[rng.random_range(0..12)]).collect();
            Prediction {
                session_id: gold.session_id.clone(),
                user_id: gold.user_id.clone(),
                turn_number: gold.turn_number,
                predicted_track_ids: ids,
                predicted_response: response.join(" "),
            }
        })
        .collect()
}

fn bench_compare(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(26);
    let truth = ground_truth(&mut rng);
    let methods: Vec<Vec<Prediction>> = (0..METHODS)
        .map(|m| method(&truth, 0.2 + 0.03 * m as f64, &mut rng))
        .collect();
    let names: Vec<String> = (0..METHODS).map(|m| format!("method-{m}")).collect();
    let inputs: Vec<MethodPredictions<'_>> = names
        .iter()
        .zip(&methods)
        .map(|(name, predictions)| MethodPredictions { name, predictions })
        .collect();
    let mut params = CompareParams::default();
    params.evaluation.catalog_size = CATALOG;
    let mut group = c.benchmark_group("compare");
    group.sample_size(10);
    group.bench_function("10 methods x 8000 turns, 10k resamples", |b| {
        b.iter(|| compare(&truth, &inputs, &params).expect("comparable"))
    });
    group.finish();
}

criterion_group!(benches, bench_compare);
criterion_main!(benches);
