//! One run of a durable timer: its command (with `CHIME_TIMER`, `CHIME_TICK`, `CHIME_FENCE`,
//! `CHIME_RUN_ID`, `CHIME_DEADLINE`, `CHIME_ATTEMPT`) or its request (with `Chime-Fence`,
//! `Chime-Scheduled-At`, `Idempotency-Key: timer/<key>`, `Chime-Run-Id`, `Chime-Deadline`,
//! `Chime-Attempt`), bounded by its timeout. chime holds the run's lease; when it is lost (or the
//! daemon stops) chime drops this future, and the command's process group is stopped as it drops
//! (fail closed). An `Err` is a failed attempt, retried by chime's retry policy.

use std::sync::{Arc, Mutex};

use chime::durable::DurableFire;
use jiff::{SignedDuration, Timestamp};

use super::body::run_spec;
use crate::engine::{Engine, http, lock, new_run_id, output, process};
use crate::job::Target;

/// How much of a failed run's output its error keeps (the status page shows it).
const ERROR_TAIL: usize = 300;

pub(super) async fn fire(engine: Engine, fire: DurableFire) -> Result<(), String> {
    let payload: serde_json::Value = serde_json::from_slice(fire.payload())
        .map_err(|e| format!("the timer's stored definition is not JSON: {e}"))?;
    let spec = run_spec(&payload["run"], &engine.defaults)
        .map_err(|e| format!("the timer's stored definition is invalid: {e}"))?;
    let key = fire.key();
    let run_id = new_run_id();
    let due = Timestamp::try_from(fire.due()).unwrap_or(Timestamp::UNIX_EPOCH);
    let started = Timestamp::now();
    let deadline = started
        .checked_add(SignedDuration::try_from(spec.timeout).unwrap_or(SignedDuration::MAX))
        .unwrap_or(started);
    let (fence, attempt) = (fire.fence(), fire.attempt());
    tracing::info!(timer = %key, due = %due, fence, attempt, run_id = %run_id, "timer run started");
    let tail = Arc::new(Mutex::new(output::Tail::default()));
    let result = match &spec.target {
        Target::Command { command, shell } => {
            let env = [
                ("CHIME_TIMER", key.to_string()),
                ("CHIME_TICK", due.to_string()),
                ("CHIME_FENCE", fence.to_string()),
                ("CHIME_RUN_ID", run_id.clone()),
                ("CHIME_DEADLINE", deadline.to_string()),
                ("CHIME_ATTEMPT", attempt.to_string()),
            ];
            let log = output::RunLog {
                job: format!("timer:{key}").into(),
                tick: due.to_string().into(),
                fence,
                run_id: run_id.as_str().into(),
            };
            let mut child = process::spawn(&spec, command, shell, &env, &log, &tail).await?;
            let ended = tokio::select! {
                exit = child.wait() => match (exit.code, exit.signal) {
                    (Some(0), _) => Ok(()),
                    (Some(code), _) => Err(format!("exited with status {code}")),
                    (None, Some(signal)) => Err(format!("killed by signal {signal}")),
                    (None, None) => Err("its end could not be read".to_string()),
                },
                () = tokio::time::sleep(spec.timeout) => {
                    child.stop(spec.kill_grace).await;
                    Err(format!("timed out after {}", crate::config::values::format_duration(spec.timeout)))
                }
            };
            child.finish(spec.kill_grace).await;
            ended
        }
        Target::Http(target) => {
            let _place = http::place().await;
            let headers = http::RunHeaders {
                fence,
                scheduled_at: due.to_string(),
                idempotency_key: format!("timer/{key}"),
                run_id: run_id.clone(),
                deadline: deadline.to_string(),
                attempt: Some(attempt),
            };
            let mut local = output::Tail::default();
            let sent =
                tokio::time::timeout(spec.timeout, http::send(&engine.http, target, &headers, &mut local));
            let ended = match sent.await {
                Ok(Ok(r)) if r.ok => Ok(()),
                Ok(Ok(r)) => Err(format!("status {} is not one of the expected", r.status)),
                Ok(Err(e)) => Err(e),
                Err(_) => {
                    Err(format!("timed out after {}", crate::config::values::format_duration(spec.timeout)))
                }
            };
            let (text, _) = local.take();
            if !text.is_empty() {
                tracing::info!(target: "chime::job", timer = %key, fence, run_id = %run_id, stream = "http", "{}", text.trim_end());
                lock(&tail).push(&text);
            }
            ended
        }
    };
    let took_ms = Timestamp::now().duration_since(started).as_millis() as u64;
    match &result {
        Ok(()) => {
            tracing::info!(timer = %key, fence, attempt, run_id = %run_id, outcome = "success", duration_ms = took_ms, "timer run finished")
        }
        Err(error) => {
            tracing::warn!(timer = %key, fence, attempt, run_id = %run_id, outcome = "failure", duration_ms = took_ms, %error, "timer run finished")
        }
    }
    result.map_err(|error| {
        let (output, _) = lock(&tail).take();
        let output = output.trim_end();
        if output.is_empty() {
            return error;
        }
        let mut cut = output.len().saturating_sub(ERROR_TAIL);
        while !output.is_char_boundary(cut) {
            cut += 1;
        }
        format!("{error}; output: {}", &output[cut..])
    })
}
