//! The routes: the JSON API, health, metrics, the OpenAPI file and the page.

use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::OwnedSemaphorePermit;

use super::api::{
    CreateSessionRequest, Health, RecommendRequest, RecommendResponse, SessionMessageRequest,
    SessionView, TrackView, UserList, UserListQuery, UserView, check_k, check_user,
    check_user_message, conversation_of,
};
use super::assets::{APP_CSS, APP_JS, FAVICON_SVG, INDEX_HTML, OPENAPI_JSON, asset};
use super::error::{ApiError, ApiJson, ApiQuery};
use super::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
use super::sessions::CommitError;
use super::state::AppState;

/// An admitted API request's permit. The computation holds a clone, so a request that timed
/// out still counts against the concurrency limit until its work is done.
#[derive(Debug, Clone)]
pub(crate) struct Admission(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// Middleware of the API routes: refuses with 503 `overloaded` when the concurrency limit is
/// reached (never queues), and answers 503 `timeout` when the request takes too long.
pub(crate) async fn admit(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Ok(permit) = state.admission.clone().try_acquire_owned() else {
        state.metrics.record_shed();
        return ApiError::overloaded().into_response();
    };
    request.extensions_mut().insert(Admission(Arc::new(permit)));
    let timeout = state.limits.request_timeout;
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            state.metrics.record_timeout();
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the request took longer than the server's limit of {} ms",
                    timeout.as_millis()
                ),
            )
            .into_response()
        }
    }
}

/// Runs CPU-heavy work on the blocking pool, holding the request's permit until it ends.
async fn compute<T: Send + 'static>(
    admission: Admission,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || {
        let _held = admission;
        work()
    })
    .await
    .map_err(|err| ApiError::internal(format!("the recommender failed: {err}")))
}

fn path_id(path: Result<Path<String>, PathRejection>, field: &str) -> Result<String, ApiError> {
    path.map(|Path(id)| id).map_err(|rejection| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            rejection.body_text(),
        )
        .at(field)
    })
}

fn recommender_failed(err: crate::Error) -> ApiError {
    ApiError::internal(format!("the recommender failed: {err}"))
}

/// `POST /v1/recommend`.
pub(crate) async fn recommend(
    State(state): State<AppState>,
    Extension(admission): Extension<Admission>,
    ApiJson(request): ApiJson<RecommendRequest>,
) -> Result<Json<RecommendResponse>, ApiError> {
    let crs = state.crs.clone();
    let k = check_k(request.k, crs.top_k())?;
    let user_id = check_user(&crs, request.user_id.as_deref())?;
    let (mut conversation, message) =
        conversation_of(request.messages, &user_id, crs.catalog(), &state.limits)?;
    let response = compute(admission, move || {
        let turn = conversation.next_turn_number();
        conversation
            .say(&crs, &message)
            .map(|reply| RecommendResponse::new(&crs, turn, reply, k))
    })
    .await?
    .map_err(recommender_failed)?;
    Ok(Json(response))
}

/// `POST /v1/sessions`.
pub(crate) async fn create_session(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateSessionRequest>,
) -> Result<Response, ApiError> {
    let user_id = check_user(&state.crs, request.user_id.as_deref())?;
    let (id, count, evicted) = {
        let mut sessions = state.sessions();
        let (id, evicted) = sessions.create(&user_id, Instant::now());
        (id, sessions.len(), evicted)
    };
    state.metrics.set_sessions(count, evicted);
    let view = SessionView::of(&id, &user_id, &crate::Conversation::new(&id, &user_id));
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/sessions/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

fn unknown_session(id: &str) -> ApiError {
    ApiError::not_found(
        "session_id",
        "unknown_session",
        format!("no session {id:?} (it may have expired or been evicted; start a new one)"),
    )
}

/// `GET /v1/sessions/{session_id}`.
pub(crate) async fn get_session(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<SessionView>, ApiError> {
    let id = path_id(path, "session_id")?;
    let mut sessions = state.sessions();
    let entry = sessions
        .get(&id, Instant::now())
        .ok_or_else(|| unknown_session(&id))?;
    Ok(Json(SessionView::of(
        &id,
        &entry.user_id,
        &entry.conversation,
    )))
}

/// `DELETE /v1/sessions/{session_id}`.
pub(crate) async fn delete_session(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(path, "session_id")?;
    let (removed, count) = {
        let mut sessions = state.sessions();
        (sessions.remove(&id), sessions.len())
    };
    if !removed {
        return Err(unknown_session(&id));
    }
    state.metrics.set_sessions(count, 0);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/sessions/{session_id}/messages`.
pub(crate) async fn session_message(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Extension(admission): Extension<Admission>,
    ApiJson(request): ApiJson<SessionMessageRequest>,
) -> Result<Json<RecommendResponse>, ApiError> {
    let id = path_id(path, "session_id")?;
    let crs = state.crs.clone();
    let k = check_k(request.k, crs.top_k())?;
    check_user_message(&request.content, "content", &state.limits)?;
    let (mut conversation, version) = {
        let mut sessions = state.sessions();
        let entry = sessions
            .get(&id, Instant::now())
            .ok_or_else(|| unknown_session(&id))?;
        (entry.conversation.clone(), entry.version)
    };
    let held = conversation.messages().len();
    if held + 1 > state.limits.max_messages {
        return Err(ApiError::invalid(
            "content",
            "too_many_messages",
            format!(
                "the session holds {held} messages and takes at most {}; start a new session",
                state.limits.max_messages
            ),
        ));
    }
    let message = request.content;
    let (conversation, response) = compute(admission, move || {
        let turn = conversation.next_turn_number();
        conversation
            .say(&crs, &message)
            .map(|reply| (conversation, RecommendResponse::new(&crs, turn, reply, k)))
    })
    .await?
    .map_err(recommender_failed)?;
    let committed = state
        .sessions()
        .commit(&id, version, conversation, Instant::now());
    match committed {
        Ok(()) => Ok(Json(RecommendResponse {
            session_id: Some(id),
            ..response
        })),
        Err(CommitError::Gone) => Err(unknown_session(&id)),
        Err(CommitError::Conflict) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "another message of this session was answered meanwhile; send one message at a time",
        )
        .at("session_id")),
    }
}

/// `GET /v1/tracks/{track_id}`.
pub(crate) async fn get_track(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<TrackView>, ApiError> {
    let id = path_id(path, "track_id")?;
    let track = state.crs.catalog().get(&id).ok_or_else(|| {
        ApiError::not_found(
            "track_id",
            "unknown_track",
            format!("the catalog has no track {id:?}"),
        )
    })?;
    Ok(Json(TrackView::of(track)))
}

/// `GET /v1/users`.
pub(crate) async fn list_users(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<UserListQuery>,
) -> Result<Json<UserList>, ApiError> {
    let page = state.limits.max_page_size;
    let limit = query.limit.unwrap_or(page);
    if limit > page {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("limit = {limit} is over the page size of {page}"),
        )
        .at("limit"));
    }
    let offset = query.offset.unwrap_or(0);
    let ids = &state.user_ids;
    Ok(Json(UserList {
        total: ids.len(),
        offset,
        user_ids: ids.iter().skip(offset).take(limit).cloned().collect(),
    }))
}

/// `GET /v1/users/{user_id}`.
pub(crate) async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<UserView>, ApiError> {
    let id = path_id(path, "user_id")?;
    let profile = state.crs.user(&id).ok_or_else(|| {
        ApiError::not_found(
            "user_id",
            "unknown_user",
            format!("the dataset's users table has no user {id:?}"),
        )
    })?;
    Ok(Json(UserView {
        user_id: id,
        profile: profile.clone(),
    }))
}

/// `GET /healthz`.
pub(crate) async fn healthz(State(state): State<AppState>) -> Json<Health> {
    let crs = &state.crs;
    Json(Health {
        status: "ok",
        method: state.method.clone(),
        retriever: crs.retriever_name().to_string(),
        generator: crs.generator_name().to_string(),
        tracks: crs.catalog().len(),
        users: state.user_ids.len(),
        k: crs.top_k(),
        sessions: state.sessions().len(),
    })
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(METRICS_CONTENT_TYPE),
    );
    response
}

/// `GET /v1/openapi.json`.
pub(crate) async fn openapi() -> Response {
    asset(OPENAPI_JSON, "application/json")
}

/// `GET /`.
pub(crate) async fn index() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8")
}

/// `GET /app.js`.
pub(crate) async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

/// `GET /app.css`.
pub(crate) async fn app_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

/// `GET /favicon.svg`.
pub(crate) async fn favicon() -> Response {
    asset(FAVICON_SVG, "image/svg+xml")
}

/// Any other path.
pub(crate) async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route {} {}; GET /v1/openapi.json lists them",
            request.method(),
            request.uri().path()
        ),
    )
}

/// A known path with another method.
pub(crate) async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}; GET /v1/openapi.json lists the routes",
            request.method(),
            request.uri().path()
        ),
    )
}
