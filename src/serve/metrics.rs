//! Request counts, latency histograms, requests in flight, shed and timed-out requests and the
//! session count, exposed at `GET /metrics` in the Prometheus (OpenMetrics) text format.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::state::AppState;

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets, in seconds: 0.25 ms to 10 s.
const LATENCY_BUCKETS: [f64; 15] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The server's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    shed: Counter,
    timeouts: Counter,
    sessions: Gauge<i64, std::sync::atomic::AtomicI64>,
    evicted: Counter<u64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric under the `music_crs` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("music_crs");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let in_flight = Gauge::default();
        let shed = Counter::default();
        let timeouts = Counter::default();
        let sessions = Gauge::default();
        let evicted = Counter::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route",
            latency.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being answered",
            in_flight.clone(),
        );
        registry.register(
            "http_requests_shed",
            "API requests refused with 503 because the concurrency limit was reached",
            shed.clone(),
        );
        registry.register(
            "http_requests_timed_out",
            "API requests answered with 503 because they took longer than the timeout",
            timeouts.clone(),
        );
        registry.register(
            "sessions",
            "Conversations kept by the server",
            sessions.clone(),
        );
        registry.register(
            "sessions_evicted",
            "Sessions dropped because they expired or the store was full",
            evicted.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            in_flight,
            shed,
            timeouts,
            sessions,
            evicted,
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    pub(crate) fn record_shed(&self) {
        self.shed.inc();
    }

    pub(crate) fn record_timeout(&self) {
        self.timeouts.inc();
    }

    pub(crate) fn set_sessions(&self, count: usize, evicted: usize) {
        self.sessions.set(i64::try_from(count).unwrap_or(i64::MAX));
        if evicted > 0 {
            self.evicted.inc_by(evicted as u64);
        }
    }
}

/// A known method's name; anything else is `other`, so that labels stay few.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    }
}

/// Decrements the in-flight gauge when the request ends, however it ends.
struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Middleware: counts every request by its route pattern (never the raw path, so ids do not
/// multiply the series) and observes its latency.
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let metrics = &state.metrics;
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    metrics.in_flight.inc();
    let _in_flight = InFlight(&metrics.in_flight);
    let start = Instant::now();
    let response = next.run(request).await;
    let seconds = start.elapsed().as_secs_f64();
    metrics
        .latency
        .get_or_create(&RouteLabels {
            method,
            route: route.clone(),
        })
        .observe(seconds);
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_names_every_family() {
        let metrics = Metrics::new();
        metrics
            .requests
            .get_or_create(&RequestLabels {
                method: "POST",
                route: "/v1/recommend".into(),
                status: 200,
            })
            .inc();
        metrics
            .latency
            .get_or_create(&RouteLabels {
                method: "POST",
                route: "/v1/recommend".into(),
            })
            .observe(0.003);
        metrics.record_shed();
        metrics.set_sessions(3, 2);
        let text = metrics.render();
        for needle in [
            r#"music_crs_http_requests_total{method="POST",route="/v1/recommend",status="200"} 1"#,
            r#"music_crs_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/v1/recommend"} 1"#,
            "music_crs_http_requests_shed_total 1",
            "music_crs_sessions 3",
            "music_crs_sessions_evicted_total 2",
            "# EOF",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
    }
}
