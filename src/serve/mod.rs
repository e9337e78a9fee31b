//! `music-crs serve`: the recommender as an HTTP service (feature `serve`).
//!
//! A JSON API under `/v1` (described by [`OPENAPI_JSON`], served at `/v1/openapi.json`), a web
//! chat page at `/`, `GET /healthz` and `GET /metrics` (Prometheus text format), on axum and
//! tokio. The method is built once, shared by every request, and its work runs on tokio's
//! blocking pool so the async workers keep accepting requests.
//!
//! | route | what |
//! | --- | --- |
//! | `POST /v1/recommend` | the conversation so far → ranked tracks with metadata and the reply (stateless) |
//! | `POST /v1/sessions` | start a conversation the server keeps |
//! | `GET`, `DELETE /v1/sessions/{id}` | its messages; forget it |
//! | `POST /v1/sessions/{id}/messages` | the listener's next message → tracks and reply |
//! | `GET /v1/tracks/{id}`, `GET /v1/users`, `GET /v1/users/{id}` | what the dataset knows |
//!
//! [`Limits`] bounds body size, message count and length, time per request, requests at once
//! (beyond: 503 at once, never an unbounded queue) and the sessions kept. Every bad request
//! gets a 4xx JSON error naming the field at fault ([`ApiError`]).
//!
//! ```no_run
//! # async fn example(crs: music_crs::Crs) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use music_crs::serve::{Limits, router, serve, shutdown_signal};
//!
//! let app = router(Arc::new(crs), "bm25_template", Limits::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, app, shutdown_signal()).await?;
//! # Ok(())
//! # }
//! ```

mod api;
mod assets;
mod error;
mod handlers;
mod limits;
mod metrics;
mod sessions;
mod state;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;

pub use api::{
    ApiMessage, CreateSessionRequest, Health, RecommendRequest, RecommendResponse,
    RecommendedTrack, SessionMessage, SessionMessageRequest, SessionView, TrackView, UserList,
    UserView,
};
pub use assets::OPENAPI_JSON;
pub use error::ApiError;
pub use limits::Limits;
pub use metrics::Metrics;

use crate::{Crs, Result};
use handlers as h;
use state::AppState;

/// Every route, as `(method, path)` in the router's syntax: the OpenAPI file documents each.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/app.js"),
    ("get", "/app.css"),
    ("get", "/favicon.svg"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/v1/openapi.json"),
    ("post", "/v1/recommend"),
    ("post", "/v1/sessions"),
    ("get", "/v1/sessions/{session_id}"),
    ("delete", "/v1/sessions/{session_id}"),
    ("post", "/v1/sessions/{session_id}/messages"),
    ("get", "/v1/tracks/{track_id}"),
    ("get", "/v1/users"),
    ("get", "/v1/users/{user_id}"),
];

/// The application: every route of [`ROUTES`] over one shared recommender. `method` names it
/// in `/healthz` (a config's `tid`).
pub fn router(crs: Arc<Crs>, method: &str, limits: Limits) -> Result<Router> {
    limits.validate()?;
    let max_body = limits.max_body_bytes;
    let state = AppState::new(crs, method.to_string(), limits);
    let api = Router::new()
        .route("/v1/recommend", post(h::recommend))
        .route("/v1/sessions", post(h::create_session))
        .route(
            "/v1/sessions/{session_id}",
            get(h::get_session).delete(h::delete_session),
        )
        .route(
            "/v1/sessions/{session_id}/messages",
            post(h::session_message),
        )
        .route("/v1/tracks/{track_id}", get(h::get_track))
        .route("/v1/users", get(h::list_users))
        .route("/v1/users/{user_id}", get(h::get_user))
        .route_layer(from_fn_with_state(state.clone(), h::admit));
    let open = Router::new()
        .route("/", get(h::index))
        .route("/app.js", get(h::app_js))
        .route("/app.css", get(h::app_css))
        .route("/favicon.svg", get(h::favicon))
        .route("/healthz", get(h::healthz))
        .route("/metrics", get(h::metrics))
        .route("/v1/openapi.json", get(h::openapi));
    Ok(open
        .merge(api)
        .fallback(h::not_found)
        .method_not_allowed_fallback(h::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .with_state(state))
}

/// A panic in a handler becomes a 500 JSON error, not a dropped connection.
fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("the server failed while answering; the error was logged").into_response()
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting connections and
/// returns once the requests in flight are answered.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                tracing::warn!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("Ctrl-C: finishing the requests in flight"),
        () = terminate => tracing::info!("SIGTERM: finishing the requests in flight"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_file_documents_every_route() {
        let spec: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = spec["paths"].as_object().unwrap();
        for (method, path) in ROUTES {
            assert!(
                paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} is missing from openapi.json"
            );
        }
        const METHODS: [&str; 7] = ["get", "post", "put", "delete", "patch", "head", "options"];
        let documented: usize = paths
            .values()
            .map(|p| {
                p.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| METHODS.contains(&k.as_str()))
                    .count()
            })
            .sum();
        assert_eq!(
            documented,
            ROUTES.len(),
            "openapi.json documents a route the server lacks"
        );
    }
}
