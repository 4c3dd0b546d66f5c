//! `/v1/timers`: durable one-shot timers. `PUT /v1/timers/{key}` creates one (201), or answers 200
//! when the key holds a timer made from the same request (a retried PUT changes nothing) and 409
//! when it holds another: a timer cannot be changed, and its key stays taken until the timer is
//! purged (`[timers] retention`, 24 h by default, after it ended). `GET` shows it, `DELETE` cancels it (204; 404 for no such key;
//! 409 once it fired or was skipped). `GET /v1/timers?state=pending&limit=N` lists them.

use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chime::durable::{Created, NewTimer, State as TimerState};
use serde_json::{Value, json};

use super::{ApiError, Shared, authorize};
use crate::timers::{body, view};

fn store(e: impl std::fmt::Display) -> ApiError {
    ApiError::store(e)
}

fn check_key(key: &str) -> Result<(), ApiError> {
    body::key(key).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))
}

pub(super) async fn put(
    State(api): Shared,
    Path(key): Path<String>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize(&api, &headers)?;
    check_key(&key)?;
    let request: Value = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")))?;
    let parsed = body::parse(&request, &api.engine.defaults)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let payload = serde_json::to_vec(&parsed.payload).expect("JSON serialises");
    let mut timer = match parsed.when {
        body::When::At(at) => NewTimer::at(&key, SystemTime::from(at), parsed.handler, payload),
        body::When::After(after) => NewTimer::after(&key, after, parsed.handler, payload),
    };
    if let Some(grace) = parsed.grace {
        timer = timer.grace(grace);
    }
    match api.timers.durable.create(timer).await {
        Ok(Created::New) => {
            let stored = api.timers.durable.get(&key).await.map_err(store)?;
            let shown = stored.as_ref().map_or(Value::Null, view);
            Ok((StatusCode::CREATED, Json(json!({ "created": true, "timer": shown }))).into_response())
        }
        Ok(Created::Exists(stored)) => {
            let shown = view(&stored);
            if shown["request"] == parsed.payload["request"] {
                return Ok(
                    (StatusCode::OK, Json(json!({ "created": false, "timer": shown }))).into_response()
                );
            }
            Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "timer `{key}` exists ({}) with another definition; a timer cannot be changed: cancel it \
                     and use another key (a key stays taken until its timer is purged, `[timers] retention` after it ended)",
                    stored.state()
                ),
            ))
        }
        Err(chime::Error::InvalidOption(e)) => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("`{}`: {}", e.option(), e.reason())))
        }
        Err(e) => Err(store(e)),
    }
}

pub(super) async fn show(State(api): Shared, Path(key): Path<String>) -> Result<Response, ApiError> {
    check_key(&key)?;
    match api.timers.durable.get(&key).await.map_err(store)? {
        Some(timer) => Ok(Json(view(&timer)).into_response()),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no timer `{key}`"))),
    }
}

pub(super) async fn delete(
    State(api): Shared,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&api, &headers)?;
    check_key(&key)?;
    let durable = &api.timers.durable;
    if durable.cancel(&key).await.map_err(store)? {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    match durable.get(&key).await.map_err(store)? {
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no timer `{key}`"))),
        Some(t) if t.state() == TimerState::Cancelled => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(t) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("timer `{key}` is {} and can no longer be cancelled", t.state()),
        )),
    }
}

#[derive(serde::Deserialize)]
pub(super) struct ListQuery {
    state: Option<String>,
    limit: Option<usize>,
}

pub(super) async fn list(State(api): Shared, Query(q): Query<ListQuery>) -> Result<Response, ApiError> {
    let name = q.state.as_deref().unwrap_or("pending");
    let state = TimerState::from_name(name).ok_or_else(|| {
        let names = TimerState::ALL.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
        ApiError::new(StatusCode::BAD_REQUEST, format!("unknown `state` `{name}`; expected one of {names}"))
    })?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("`limit` must be from 1 to 1000, not {limit}"),
        ));
    }
    let timers = api.timers.durable.list(state, limit).await.map_err(store)?;
    Ok(Json(json!({ "state": name, "timers": timers.iter().map(view).collect::<Vec<_>>() })).into_response())
}
