//! A bounded load test on loopback: 32 concurrent clients send a fixed number of
//! `/v1/recommend` requests (the demo test split's conversations, BM25 + template replies)
//! within a time limit; every answer must be a 200. Then the same load over a concurrency
//! limit of 2: the only failures allowed are 503 `overloaded`, and every admitted request
//! succeeds.
//!
//! Latency and throughput are printed, not asserted: this is a debug build sharing the machine
//! with other tests. The speed goal is measured by `scripts/serve-bench.sh` on a release
//! build.

use std::sync::Arc;
use std::time::{Duration, Instant};

use music_crs::config::SplitKind;
use music_crs::serve::{Limits, RecommendRequest};
use serde_json::Value;

use super::{Server, demo_crs};
use crate::common::{demo_config, load};

const CLIENTS: usize = 32;
const REQUESTS: usize = 3_200;
const TIME_LIMIT: Duration = Duration::from_secs(300);

/// `/v1/recommend` bodies from the demo test split's turns (history and message).
fn bodies() -> Vec<String> {
    let (_, turns) = load(&demo_config("test", SplitKind::Full));
    turns
        .iter()
        .map(|turn| serde_json::to_string(&RecommendRequest::from_turn(turn, Some(10))).unwrap())
        .collect()
}

/// What each request got: the status, the error code of a failure, and the latency.
struct Outcome {
    status: u16,
    code: Option<String>,
    latency: Duration,
}

/// Sends `REQUESTS` bodies from `CLIENTS` concurrent clients (each on its own keep-alive
/// connection); all within `TIME_LIMIT`.
async fn hammer(server: &Server, bodies: Arc<Vec<String>>) -> (Vec<Outcome>, Duration) {
    let url = server.url("/v1/recommend");
    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client_index| {
            let url = url.clone();
            let bodies = bodies.clone();
            let client = super::client();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in (client_index..REQUESTS).step_by(CLIENTS) {
                    let body = bodies[i % bodies.len()].clone();
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .expect("the server answers");
                    let status = response.status().as_u16();
                    let bytes = response.bytes().await.expect("the body");
                    let json: Value = serde_json::from_slice(&bytes).expect("a JSON answer");
                    let code = json["error"]["code"].as_str().map(str::to_string);
                    if status == 200 {
                        assert!(!json["tracks"].as_array().unwrap().is_empty(), "{json}");
                    }
                    outcomes.push(Outcome {
                        status,
                        code,
                        latency: sent.elapsed(),
                    });
                }
                outcomes
            })
        })
        .collect();
    let all = tokio::time::timeout(TIME_LIMIT, async {
        let mut all = Vec::with_capacity(REQUESTS);
        for client in clients {
            all.extend(client.await.expect("a client task"));
        }
        all
    })
    .await
    .expect("the load test ends within its time limit");
    (all, start.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(phase: &str, outcomes: &[Outcome], elapsed: Duration) {
    let mut latencies: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.status == 200)
        .map(|o| o.latency)
        .collect();
    latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{phase}: {} requests from {CLIENTS} clients in {:.2} s = {:.0} req/s; {} ok; latency \
         of the ok ones p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms (debug build)",
        outcomes.len(),
        elapsed.as_secs_f64(),
        outcomes.len() as f64 / elapsed.as_secs_f64(),
        latencies.len(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 95.0)),
        ms(percentile(&latencies, 99.0)),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_clients_without_errors_then_only_503s_over_the_limit() {
    let bodies = Arc::new(bodies());
    assert!(bodies.len() >= 1_000, "{} turns", bodies.len());
    let crs = demo_crs();

    let server = Server::start(crs.clone(), Limits::default()).await;
    let (outcomes, elapsed) = hammer(&server, bodies.clone()).await;
    report("under the limit", &outcomes, elapsed);
    assert_eq!(outcomes.len(), REQUESTS);
    let errors: Vec<(u16, &Option<String>)> = outcomes
        .iter()
        .filter(|o| o.status != 200)
        .map(|o| (o.status, &o.code))
        .collect();
    assert!(
        errors.is_empty(),
        "{} errors: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    drop(server);

    let limits = Limits {
        max_concurrent_requests: 2,
        ..Limits::default()
    };
    let server = Server::start(crs, limits).await;
    let (outcomes, elapsed) = hammer(&server, bodies).await;
    report("over a limit of 2", &outcomes, elapsed);
    let ok = outcomes.iter().filter(|o| o.status == 200).count();
    let shed = outcomes
        .iter()
        .filter(|o| o.status == 503 && o.code.as_deref() == Some("overloaded"))
        .count();
    println!("over a limit of 2: {ok} answered, {shed} shed with 503, no other outcome");
    assert_eq!(ok + shed, REQUESTS, "a failure other than 503 overloaded");
    assert!(ok > 0, "nothing was admitted");
    assert!(shed > 0, "32 clients never went over a limit of 2");
}
