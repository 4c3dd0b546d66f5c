//! The status page at `/`: one HTML page, its stylesheet and two small scripts, compiled into the
//! binary (nothing is fetched from elsewhere, nothing is built at install). The page reads the API
//! (`/v1/status`, `/v1/jobs`, `/v1/replicas`, `/v1/timers`, a job's runs and timeline) every two
//! seconds; its buttons call the API with the bearer token typed into the page, so the page can
//! change nothing the API would not let the same token change. Without `CHIME_TOKEN` the daemon
//! says so in `/v1/status` (`writable: false`) and the page shows no buttons.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const HTML: &str = include_str!("page/index.html");
const CSS: &str = include_str!("page/page.css");
const JS: &str = include_str!("page/page.js");
const VIEW_JS: &str = include_str!("page/view.js");

/// Only this origin's own files and API; no inline script or style, no framing.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                      connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

pub(super) async fn index() -> Response {
    asset("text/html; charset=utf-8", HTML)
}

pub(super) async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

pub(super) async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

pub(super) async fn view_js() -> Response {
    asset("text/javascript; charset=utf-8", VIEW_JS)
}
