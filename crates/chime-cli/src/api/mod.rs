//! The HTTP API (axum): jobs, runs, pause and resume, manual runs, durable timers, replicas and
//! leases, store health, `/metrics`, and the status page at `/` that reads them. Reads are open
//! (bind to loopback, the default, or put a proxy in front); every change needs
//! `Authorization: Bearer $CHIME_TOKEN`, and without `CHIME_TOKEN` the API is read-only.

mod jobs;
mod page;
mod timers;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use crate::engine::Engine;

/// What every handler sees.
pub(crate) struct Api {
    pub(crate) engine: Engine,
    pub(crate) metrics: PrometheusHandle,
    pub(crate) token: Option<String>,
    pub(crate) store_url: String,
    pub(crate) timers: Arc<crate::timers::Timers>,
}

type Shared = State<Arc<Api>>;

/// An error answer: a status and a JSON `{"error": ...}`.
pub(crate) struct ApiError(StatusCode, String);

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError(status, message.into())
    }

    pub(crate) fn store(e: impl std::fmt::Display) -> ApiError {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, format!("the store is unavailable: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.0, axum::Json(json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The routes.
pub(crate) fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/ui/page.css", get(page::css))
        .route("/ui/page.js", get(page::js))
        .route("/ui/view.js", get(page::view_js))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status))
        .route("/v1/replicas", get(replicas))
        .route("/v1/jobs", get(jobs::list))
        .route("/v1/jobs/{name}", get(jobs::show).put(jobs::upsert).delete(jobs::delete))
        .route("/v1/jobs/{name}/run", post(jobs::run_now))
        .route("/v1/jobs/{name}/pause", post(jobs::pause))
        .route("/v1/jobs/{name}/resume", post(jobs::resume))
        .route("/v1/jobs/{name}/runs", get(jobs::runs))
        .route("/v1/jobs/{name}/timeline", get(jobs::timeline))
        .route("/v1/timers", get(timers::list))
        .route("/v1/timers/{key}", get(timers::show).put(timers::put).delete(timers::delete))
        .with_state(api)
}

/// Refuses a change without the token.
pub(crate) fn authorize(api: &Api, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &api.token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the API is read-only: start chime with CHIME_TOKEN set to allow changes",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong bearer token")),
        None => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "this needs `Authorization: Bearer <CHIME_TOKEN>`"))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn readyz(State(api): Shared) -> Response {
    let stopping = api.engine.stopping.load(std::sync::atomic::Ordering::SeqCst);
    let up = api.engine.store_up();
    let body = json!({ "store_up": up, "stopping": stopping });
    let status = if up && !stopping { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(api): Shared) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::render(&api.metrics))
        .into_response()
}

async fn status(State(api): Shared) -> Response {
    let engine = &api.engine;
    let timers = match api.timers.summary().await {
        Ok(summary) => summary,
        Err(e) => json!({ "available": false, "error": e }),
    };
    let running: usize = engine.jobs().iter().map(|j| j.running).sum();
    axum::Json(json!({
        "replica": engine.replica.id,
        "version": env!("CARGO_PKG_VERSION"),
        "started": jiff::Timestamp::from_millisecond(engine.replica.started_ms).ok().map(|t| t.to_string()),
        "store": { "backend": engine.meta.backend(), "url": api.store_url, "up": engine.store_up() },
        "jobs": engine.jobs().len(),
        "running_here": running,
        "stopping": engine.stopping.load(std::sync::atomic::Ordering::SeqCst),
        "writable": api.token.is_some(),
        "timers": timers,
    }))
    .into_response()
}

async fn replicas(State(api): Shared) -> Result<Response, ApiError> {
    let engine = &api.engine;
    let (replicas, running) =
        tokio::try_join!(engine.meta.replicas(), engine.meta.running()).map_err(ApiError::store)?;
    let now = crate::store::now_ms();
    let out: Vec<serde_json::Value> = replicas
        .iter()
        .map(|r| {
            let leases: Vec<serde_json::Value> = running
                .iter()
                .filter(|run| run.replica == r.id)
                .map(|run| json!({ "job": run.job, "fence": run.fence, "run_id": run.run_id, "tick": run.tick, "since": ts(run.started_ms) }))
                .collect();
            json!({
                "id": r.id, "host": r.host, "pid": r.pid, "listen": r.listen, "version": r.version,
                "started": ts(r.started_ms), "heartbeat": ts(r.heartbeat_ms),
                "heartbeat_age_ms": now - r.heartbeat_ms, "alive": now - r.heartbeat_ms < 30_000,
                "self": r.id == engine.replica.id, "jobs": r.jobs, "leases": leases,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "replicas": out })).into_response())
}

/// Milliseconds since the epoch as RFC 3339.
pub(crate) fn ts(ms: i64) -> Option<String> {
    jiff::Timestamp::from_millisecond(ms).ok().map(|t| t.to_string())
}
