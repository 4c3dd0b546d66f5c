//! `/v1/jobs`: the jobs with their next and last runs, changes to API jobs, manual runs, pause and
//! resume, run history and the 24-hour timeline.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Api, ApiError, Shared, authorize, ts};
use crate::engine::JobView;
use crate::engine::claim::{self, Manual, Refused};
use crate::job::{Source, Target};
use crate::store::{JobState, now_ms};

fn view(job: &JobView, state: Option<&JobState>, paused_here: bool) -> Value {
    let spec = &job.spec;
    let last = state.and_then(|s| s.last_run.as_ref());
    json!({
        "name": spec.name,
        "schedule": spec.schedule_text,
        "timezone": spec.timezone_name,
        "source": spec.source,
        "scope": spec.scope(),
        "kind": match spec.target { Target::Command { .. } => "command", Target::Http(_) => "http" },
        "overlap": spec.overlap,
        "paused": state.map_or(paused_here, |s| s.paused),
        "paused_by": state.and_then(|s| s.paused_by.clone()),
        "next_run": job.next.map(|t| t.fire.to_string()),
        "next_tick": job.next.map(|t| t.nominal.to_string()),
        "running_here": job.running,
        "last_run": last,
        "last_status": last.map(|r| r.outcome),
        "last_success": state.and_then(|s| s.last_success_ms).and_then(ts),
        "missed": {
            "total": state.map_or(0, |s| s.missed_total),
            "last": state.and_then(|s| s.last_missed.clone()),
        },
    })
}

async fn states(api: &Api) -> Option<HashMap<String, JobState>> {
    match api.engine.meta.states().await {
        Ok(states) => Some(states.into_iter().map(|s| (s.job.clone(), s)).collect()),
        Err(e) => {
            tracing::warn!(error = %e, "job states unavailable for the API");
            None
        }
    }
}

pub(super) async fn list(State(api): Shared) -> Response {
    let states = states(&api).await;
    let jobs: Vec<Value> = api
        .engine
        .jobs()
        .iter()
        .map(|j| {
            view(j, states.as_ref().and_then(|s| s.get(&j.spec.name)), api.engine.is_paused(&j.spec.name))
        })
        .collect();
    Json(json!({ "jobs": jobs, "store_up": states.is_some() })).into_response()
}

fn known(api: &Api, name: &str) -> Result<JobView, ApiError> {
    api.engine.job(name).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no job named `{name}`")))
}

pub(super) async fn show(State(api): Shared, Path(name): Path<String>) -> Result<Response, ApiError> {
    let job = known(&api, &name)?;
    let states = states(&api).await;
    let mut out = view(&job, states.as_ref().and_then(|s| s.get(&name)), api.engine.is_paused(&name));
    out["definition"] = job.spec.definition();
    Ok(Json(out).into_response())
}

fn refuse_file_job(api: &Api, name: &str) -> Result<(), ApiError> {
    match api.engine.job(name) {
        Some(job) if job.spec.source != Source::Api => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("job `{name}` is defined in the schedule file; change it there (and reload with SIGHUP)"),
        )),
        _ => Ok(()),
    }
}

pub(super) async fn upsert(
    State(api): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize(&api, &headers)?;
    refuse_file_job(&api, &name)?;
    crate::config::values::job_name(&name).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")))?;
    let spec = crate::config::api_job(&name, &body, &api.engine.defaults)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let definition = spec.definition();
    let created = api.engine.meta.put_api_job(&name, &definition).await.map_err(ApiError::store)?;
    api.engine.load_api_jobs().await.map_err(ApiError::store)?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({ "name": name, "definition": definition, "created": created }))).into_response())
}

pub(super) async fn delete(
    State(api): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&api, &headers)?;
    refuse_file_job(&api, &name)?;
    let existed = api.engine.meta.delete_api_job(&name).await.map_err(ApiError::store)?;
    api.engine.load_api_jobs().await.map_err(ApiError::store)?;
    if !existed {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no API job named `{name}`")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn run_now(
    State(api): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&api, &headers)?;
    let job = known(&api, &name)?;
    match claim::manual(&api.engine, job.spec.clone()).await {
        Ok(Manual::Started { run_id, fence, tick }) => {
            Ok((StatusCode::ACCEPTED, Json(json!({ "status": "started", "run_id": run_id, "fence": fence, "tick": tick }))).into_response())
        }
        Ok(Manual::Queued) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "status": "queued", "overlap": job.spec.overlap, "message": "the job is running; this run starts when it can" })),
        )
            .into_response()),
        Err(Refused::Running) => {
            Err(ApiError::new(StatusCode::CONFLICT, format!("job `{name}` is running and its overlap policy is `skip`")))
        }
        Err(Refused::TooMany) => {
            Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "999 manual runs since the job's last scheduled tick"))
        }
        Err(Refused::Store(e)) => Err(ApiError::store(e)),
    }
}

async fn set_paused(
    api: Arc<Api>,
    name: String,
    headers: HeaderMap,
    paused: bool,
) -> Result<Response, ApiError> {
    authorize(&api, &headers)?;
    known(&api, &name)?;
    let by = api.engine.replica.id.clone();
    api.engine.meta.set_paused(&name, paused, &by, now_ms()).await.map_err(ApiError::store)?;
    {
        let mut set = crate::engine::lock(&api.engine.paused);
        if paused {
            set.insert(name.clone());
        } else {
            set.remove(&name);
        }
    }
    Ok(Json(json!({ "name": name, "paused": paused })).into_response())
}

pub(super) async fn pause(
    State(api): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    set_paused(api, name, headers, true).await
}

pub(super) async fn resume(
    State(api): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    set_paused(api, name, headers, false).await
}

#[derive(serde::Deserialize)]
pub(super) struct RunsQuery {
    limit: Option<usize>,
}

pub(super) async fn runs(
    State(api): Shared,
    Path(name): Path<String>,
    Query(q): Query<RunsQuery>,
) -> Result<Response, ApiError> {
    known(&api, &name)?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("`limit` must be from 1 to 1000, not {limit}"),
        ));
    }
    let runs = api.engine.meta.runs(&name, limit).await.map_err(ApiError::store)?;
    Ok(Json(json!({ "job": name, "runs": runs })).into_response())
}

pub(super) async fn timeline(State(api): Shared, Path(name): Path<String>) -> Result<Response, ApiError> {
    known(&api, &name)?;
    let since = now_ms() - 24 * 3600 * 1000;
    let buckets = api.engine.meta.timeline(&name, since).await.map_err(ApiError::store)?;
    Ok(Json(json!({ "job": name, "bucket_seconds": crate::store::BUCKET_MS / 1000, "since": ts(since), "buckets": buckets })).into_response())
}
