//! An HTTP request as a job: the fence, the nominal tick and an idempotency key in its headers,
//! so the receiving service can refuse a stale or repeated run; the status checked against
//! `expect` (any 2xx by default); the response's start and body tail kept as the run's output.

use std::time::Duration;

use super::output::Tail;
use crate::job::HttpTarget;

/// The most response body read per run.
const MAX_BODY: usize = 64 * 1024;

/// What a request came to.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) ok: bool,
}

/// The headers a run sends.
pub(crate) struct RunHeaders {
    pub(crate) fence: u64,
    pub(crate) scheduled_at: String,
    pub(crate) idempotency_key: String,
    pub(crate) run_id: String,
    pub(crate) deadline: String,
    /// A durable timer's attempt (`Chime-Attempt`).
    pub(crate) attempt: Option<u32>,
}

/// The most requests in flight at once (HTTP jobs and timers): a burst of ten thousand is sent in
/// waves rather than ten thousand connections at once.
const IN_FLIGHT: usize = 256;

/// A place among the requests in flight, held until the response is read.
pub(crate) async fn place() -> Option<tokio::sync::SemaphorePermit<'static>> {
    static PLACES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(IN_FLIGHT);
    PLACES.acquire().await.ok()
}

/// Builds the shared client (TLS through rustls with the system's roots).
pub(crate) fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("chime/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        // As many idle connections as requests in flight: a smaller pool closed most connections
        // after each wave of a burst and opened new ones for the next (a TCP handshake per run).
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Sends the request; the caller bounds it with the job's timeout.
pub(crate) async fn send(
    client: &reqwest::Client,
    target: &HttpTarget,
    headers: &RunHeaders,
    tail: &mut Tail,
) -> Result<Response, String> {
    let method = reqwest::Method::from_bytes(target.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut request = client
        .request(method, &target.url)
        .header("Chime-Fence", headers.fence.to_string())
        .header("Chime-Scheduled-At", &headers.scheduled_at)
        .header("Idempotency-Key", &headers.idempotency_key)
        .header("Chime-Run-Id", &headers.run_id)
        .header("Chime-Deadline", &headers.deadline);
    if let Some(attempt) = headers.attempt {
        request = request.header("Chime-Attempt", attempt.to_string());
    }
    for (name, value) in &target.headers {
        request = request.header(name, value);
    }
    if let Some(body) = &target.body {
        request = request.body(body.clone());
    }
    let mut response =
        request.send().await.map_err(|e| format!("{} {}: {}", target.method, target.url, error_chain(&e)))?;
    let status = response.status();
    tail.push(&format!("HTTP {status}\n"));
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    if !body.is_empty() {
        tail.push(&String::from_utf8_lossy(&body));
    }
    let ok =
        if target.expect.is_empty() { status.is_success() } else { target.expect.contains(&status.as_u16()) };
    Ok(Response { status: status.as_u16(), ok })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
