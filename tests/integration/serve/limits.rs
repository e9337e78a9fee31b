//! The limits: requests over the concurrency limit are refused at once with 503 (never
//! queued) while health and metrics still answer; slow requests time out with 503; sessions
//! are bounded, the least recently used evicted first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use music_crs::Generator;
use music_crs::core::GenerationRequest;
use music_crs::serve::Limits;
use serde_json::json;

use super::{Gate, Held, Server, assert_error, small_crs};

fn ask() -> serde_json::Value {
    json!({"messages": [{"role": "user", "content": "some Miles Davis"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_concurrency_limit_requests_are_shed_with_503() {
    let gate = Arc::new(Gate::default());
    let crs = small_crs(|inner| Held::boxed(inner, gate.clone()));
    let limits = Limits {
        max_concurrent_requests: 2,
        ..Limits::default()
    };
    let server = Arc::new(Server::start(crs, limits).await);
    let held: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move { server.post("/v1/recommend", &ask()).await })
        })
        .collect();
    gate.wait_for_held(2).await;

    // Full: the next API request is refused at once, even a cheap one.
    let start = Instant::now();
    let shed = server.post("/v1/recommend", &ask()).await;
    assert_error(&shed, 503, "overloaded", None);
    assert_error(&server.get("/v1/tracks/t1").await, 503, "overloaded", None);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let response = server
        .client
        .post(server.url("/v1/recommend"))
        .header("content-type", "application/json")
        .body(ask().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["retry-after"], "1");
    // Health and metrics are not API requests: they answer while the API is full.
    assert_eq!(server.get("/healthz").await.0, 200);
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("music_crs_http_requests_shed_total 3"),
        "{text}"
    );

    // The admitted requests all succeed once the generator goes on.
    gate.open();
    for request in held {
        let (status, answer) = request.await.unwrap();
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["tracks"][0]["track_id"], "t1");
    }
    assert_eq!(server.post("/v1/recommend", &ask()).await.0, 200);
}

/// Sleeps before answering.
struct Slow(Box<dyn Generator>, Duration);

impl Generator for Slow {
    fn name(&self) -> &str {
        "slow"
    }

    fn generate(&self, request: &GenerationRequest) -> music_crs_generate::Result<String> {
        std::thread::sleep(self.1);
        self.0.generate(request)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_time_out_with_503_and_keep_their_slot_until_done() {
    let crs = small_crs(|inner| Box::new(Slow(inner, Duration::from_millis(1_500))));
    let limits = Limits {
        request_timeout: Duration::from_millis(200),
        max_concurrent_requests: 1,
        ..Limits::default()
    };
    let server = Server::start(crs, limits).await;
    let start = Instant::now();
    let answer = server.post("/v1/recommend", &ask()).await;
    assert_error(&answer, 503, "timeout", None);
    assert!(
        start.elapsed() < Duration::from_millis(1_400),
        "answered after the work ended: {:?}",
        start.elapsed()
    );
    // The timed-out work still runs and still holds the only slot.
    assert_error(&server.get("/v1/tracks/t1").await, 503, "overloaded", None);
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    assert_eq!(server.get("/v1/tracks/t1").await.0, 200);
    let text = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("music_crs_http_requests_timed_out_total 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_bounded_and_the_least_recently_used_goes_first() {
    let crs = small_crs(|inner| inner);
    let limits = Limits {
        max_sessions: 2,
        ..Limits::default()
    };
    let server = Server::start(crs, limits).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, session) = server.post("/v1/sessions", &json!({})).await;
        assert_eq!(status, 201);
        ids.push(session["session_id"].as_str().unwrap().to_string());
    }
    // Using the first makes the second the least recently used.
    let first = format!("/v1/sessions/{}/messages", ids[0]);
    assert_eq!(
        server
            .post(&first, &json!({"content": "Miles Davis"}))
            .await
            .0,
        200
    );
    let (status, _) = server.post("/v1/sessions", &json!({})).await;
    assert_eq!(status, 201);
    assert_error(
        &server.get(&format!("/v1/sessions/{}", ids[1])).await,
        404,
        "unknown_session",
        Some("session_id"),
    );
    let (status, kept) = server.get(&format!("/v1/sessions/{}", ids[0])).await;
    assert_eq!(status, 200);
    assert_eq!(kept["messages"].as_array().unwrap().len(), 3);
    let text = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("music_crs_sessions 2"), "{text}");
    assert!(
        text.contains("music_crs_sessions_evicted_total 1"),
        "{text}"
    );
}
