//! Durable one-shot timers (`PUT|GET|DELETE /v1/timers/{key}`) on chime's `durable`: the daemon
//! registers two handlers, `command` and `http`, on every replica, so a timer created through any
//! replica's API runs once on whichever replica claims it when it comes due, and again elsewhere if
//! that replica dies mid-run (after its lease). A run gets the same environment, headers, timeout,
//! process-group handling and output relay as a job's run ([`run`]); its fence is the durable
//! timer's. This module also keeps the figures the status page and `chime_timers_pending` show.

pub(crate) mod body;
mod run;

use std::time::Duration;

use chime::durable::{DurableTimer, DurableTimers, RetryPolicy, State};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::config::TimerSettings;
use crate::engine::Engine;
use crate::store::Durable;

/// Pending timers are counted up to this many (pages of the store's list); past it the count
/// says "at least".
const COUNT_CAP: u64 = 100_000;
const PAGE: usize = 500;
/// How old the figures may be when the API asks for them.
const FRESH: Duration = Duration::from_secs(1);
/// How often the metric is refreshed when nobody asks.
const REFRESH: Duration = Duration::from_secs(10);

/// The daemon's durable timers.
pub(crate) struct Timers {
    pub(crate) durable: DurableTimers,
    summary: tokio::sync::Mutex<Option<(Instant, Value)>>,
}

/// Starts serving durable timers on `store`, with the engine's HTTP client and job defaults.
pub(crate) async fn start(
    engine: &Engine,
    store: Durable,
    settings: &TimerSettings,
) -> Result<Timers, String> {
    let (for_command, for_http) = (engine.clone(), engine.clone());
    let retry = RetryPolicy::exponential(settings.backoff, settings.backoff.max(Duration::from_secs(600)))
        .max_attempts(settings.attempts);
    let durable = store
        .builder(&engine.sched)
        .handler_async("command", move |fire| run::fire(for_command.clone(), fire))
        .handler_async("http", move |fire| run::fire(for_http.clone(), fire))
        .lease(engine.defaults.lease)
        .retry(retry)
        .retention(settings.retention)
        .start()
        .await
        .map_err(|e| format!("cannot start the durable timers: {e}"))?;
    Ok(Timers { durable, summary: tokio::sync::Mutex::new(None) })
}

impl Timers {
    /// Counts, next due and failed timers, at most [`FRESH`] old.
    pub(crate) async fn summary(&self) -> Result<Value, String> {
        let mut cached = self.summary.lock().await;
        if let Some((at, summary)) = cached.as_ref()
            && at.elapsed() < FRESH
        {
            return Ok(summary.clone());
        }
        let (pending, capped) = self.count(State::Pending).await?;
        let (running, _) = self.count(State::Running).await?;
        let (failed, _) = self.count(State::Failed).await?;
        let next = self.durable.list(State::Pending, 1).await.map_err(|e| e.to_string())?;
        crate::metrics::timers_pending(pending as f64);
        let summary = json!({
            "available": true,
            "pending": pending,
            "pending_at_least": capped,
            "running": running,
            "running_here": self.durable.running(),
            "failed": failed,
            "next_due": next.first().map(|t| view(t)["due"].clone()),
        });
        *cached = Some((Instant::now(), summary.clone()));
        Ok(summary)
    }

    /// How many timers are in `state` (up to [`COUNT_CAP`]; `true` when capped).
    async fn count(&self, state: State) -> Result<(u64, bool), String> {
        let mut n = 0u64;
        let mut page = self.durable.list(state, PAGE).await.map_err(|e| e.to_string())?;
        loop {
            n += page.len() as u64;
            if n >= COUNT_CAP {
                return Ok((n, true));
            }
            match page.last() {
                Some(last) if page.len() == PAGE => {
                    page = self.durable.list_after(state, last, PAGE).await.map_err(|e| e.to_string())?;
                }
                _ => return Ok((n, false)),
            }
        }
    }

    /// Keeps `chime_timers_pending` current; ends with the daemon.
    pub(crate) async fn refresh_loop(self: std::sync::Arc<Self>, engine: Engine) {
        let mut every = tokio::time::interval(REFRESH);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !engine.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            every.tick().await;
            if let Err(e) = self.summary().await {
                tracing::warn!(error = %e, "cannot count the durable timers");
            }
        }
    }
}

/// A timer as the API shows it.
pub(crate) fn view(timer: &DurableTimer) -> Value {
    let payload: Value = serde_json::from_slice(timer.payload()).unwrap_or(Value::Null);
    let ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    };
    json!({
        "key": timer.key(),
        "kind": timer.handler(),
        "state": timer.state().name(),
        "due": jiff::Timestamp::from_millisecond(ms(timer.due())).ok().map(|t| t.to_string()),
        "attempt": timer.attempt(),
        "fence": timer.fence(),
        "error": timer.error(),
        "grace": timer.grace().map(crate::config::values::format_duration),
        "request": payload["request"],
        "definition": payload["run"],
    })
}
