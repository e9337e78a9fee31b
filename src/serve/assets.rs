//! The web chat page and the OpenAPI description, compiled into the binary.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The page: a conversation view, a message box, a user picker and a reset button.
pub(crate) const INDEX_HTML: &str = include_str!("assets/index.html");
/// The page's script (no framework, no build step).
pub(crate) const APP_JS: &str = include_str!("assets/app.js");
/// The page's styles.
pub(crate) const APP_CSS: &str = include_str!("assets/app.css");
/// The page's icon.
pub(crate) const FAVICON_SVG: &str = include_str!("assets/favicon.svg");
/// The API's OpenAPI 3.1 description, written by hand.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Only this server's own script, styles and API: no inline code, no third party.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// A static file with its content type; the page also gets a content security policy.
pub(crate) fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if content_type.starts_with("text/html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}
