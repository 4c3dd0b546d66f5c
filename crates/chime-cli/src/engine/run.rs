//! One granted run: recorded as started, executed under its lease (renewed every third of it on a
//! task of its own, so renewals go on while a run is being stopped), bounded by the job's timeout,
//! stopped when the lease is lost (fail closed) or the daemon asks, recorded when it ends, and its
//! lease released.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chime::cluster::{Coordinator, Lease};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::{oneshot, watch};

use super::output::{RunLog, Tail};
use super::process::{self, Exit};
use super::{Engine, RunSlot, StopWhy, http, lock};
use crate::job::{JobSpec, Overlap, Target};
use crate::metrics;
use crate::store::{Outcome, RunRecord, Trigger, Write};

/// A claim that was granted, ready to run.
pub(crate) struct Granted {
    pub(crate) spec: Arc<JobSpec>,
    pub(crate) lease: Lease,
    pub(crate) run_id: String,
    /// The nominal tick, or when a manual run was asked for.
    pub(crate) tick: Timestamp,
    /// When it was due to start (the tick plus its jitter).
    pub(crate) due: Timestamp,
    /// When the claim was granted.
    pub(crate) claimed: Timestamp,
    pub(crate) trigger: Trigger,
}

impl Granted {
    pub(crate) fn new(
        spec: Arc<JobSpec>,
        lease: Lease,
        tick: Timestamp,
        due: Timestamp,
        trigger: Trigger,
    ) -> Granted {
        let run_id = super::new_run_id();
        Granted { spec, lease, run_id, tick, due, claimed: Timestamp::now(), trigger }
    }
}

/// What ended a run.
struct Ended {
    outcome: Outcome,
    exit: Option<Exit>,
    http_status: Option<u16>,
    error: Option<String>,
}

/// Counts a granted run until its job has started (or could not be): the claimer claims more only
/// while few wait.
struct Starting(Option<Engine>);

impl Starting {
    fn new(engine: &Engine) -> Starting {
        engine.starting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Starting(Some(engine.clone()))
    }

    fn done(&mut self) {
        if let Some(engine) = self.0.take() {
            engine.starting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            engine.started.notify_waiters();
        }
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        self.done();
    }
}

/// Starts running `granted` on a task of its own.
pub(crate) fn start(engine: &Engine, granted: Granted) {
    let starting = Starting::new(engine);
    tokio::spawn(run(engine.clone(), granted, starting));
}

/// Runs `granted` to its end.
async fn run(engine: Engine, granted: Granted, mut starting: Starting) {
    let Granted { spec, lease, run_id, tick, due, claimed, trigger } = granted;
    let coordinator = engine.coordinator_for(&spec);
    let holds = spec.overlap != Overlap::Allow;
    if !holds {
        // Overlapping runs are allowed: the lease only made this start unique.
        Box::pin(release(&engine, &spec, &lease)).await;
    }
    let started = Timestamp::now();
    let deadline = started
        .checked_add(SignedDuration::try_from(spec.timeout).unwrap_or(SignedDuration::MAX))
        .unwrap_or(started);
    let (stop_tx, stop_rx) = watch::channel(None);
    lock(&engine.runs)
        .insert(run_id.clone(), RunSlot { job: spec.name.clone(), fence: lease.fence, stop: stop_tx });
    metrics::running(&spec.name, 1.0);
    let mut record = RunRecord {
        run_id: run_id.clone(),
        job: spec.name.clone(),
        tick: tick.to_string(),
        tick_ms: tick.as_millisecond(),
        fence: lease.fence,
        replica: engine.replica.id.clone(),
        trigger,
        due_ms: due.as_millisecond(),
        claimed_ms: claimed.as_millisecond(),
        started_ms: started.as_millisecond(),
        finished_ms: None,
        outcome: Outcome::Running,
        duration_ms: None,
        exit_code: None,
        signal: None,
        http_status: None,
        error: None,
        output: String::new(),
        output_truncated: false,
    };
    // Recorded once the job is started (its process exists, or its request is about to go).
    let mut announce = |record: &mut RunRecord| {
        starting.done();
        record.started_ms = Timestamp::now().as_millisecond();
        engine.history.write(Write::Started(record.clone()));
        tracing::info!(job = %spec.name, tick = %tick, fence = lease.fence, run_id = %run_id, ?trigger, "run started");
    };

    let (lost_tx, lost_rx) = oneshot::channel();
    let renewals = holds.then(|| tokio::spawn(keep(coordinator.clone(), lease.clone(), lost_tx)));
    let tail = Arc::new(Mutex::new(Tail::default()));
    // The futures that start and watch the job are boxed: a run's task stays small (1.4 KiB rather
    // than 2.5) while it waits for its start, as thousands do in a burst.
    let ended = match &spec.target {
        Target::Command { command, shell } => {
            let log = RunLog {
                job: spec.name.as_str().into(),
                tick: tick.to_string().into(),
                fence: lease.fence,
                run_id: run_id.as_str().into(),
            };
            let env = [
                ("CHIME_JOB", spec.name.clone()),
                ("CHIME_TICK", tick.to_string()),
                ("CHIME_FENCE", lease.fence.to_string()),
                ("CHIME_RUN_ID", run_id.clone()),
                ("CHIME_DEADLINE", deadline.to_string()),
            ];
            match Box::pin(process::spawn(&spec, command, shell, &env, &log, &tail)).await {
                Ok(child) => {
                    announce(&mut record);
                    Box::pin(command_run(&spec, child, stop_rx, lost_rx)).await
                }
                Err(error) => {
                    Ended { outcome: Outcome::Failure, exit: None, http_status: None, error: Some(error) }
                }
            }
        }
        Target::Http(target) => {
            // Requests in flight are bounded; a run starts when it has its place.
            let _place = http::place().await;
            let headers = http::RunHeaders {
                fence: lease.fence,
                scheduled_at: tick.to_string(),
                idempotency_key: match trigger {
                    Trigger::Schedule => format!("{}/{}", spec.name, tick),
                    Trigger::Manual => format!("{}/manual/{}", spec.name, run_id),
                },
                run_id: run_id.clone(),
                deadline: deadline.to_string(),
                attempt: None,
            };
            announce(&mut record);
            Box::pin(http_run(&engine, &spec, target, &headers, &tail, stop_rx, lost_rx)).await
        }
    };
    if let Some(renewals) = renewals {
        renewals.abort();
    }
    if holds {
        Box::pin(release(&engine, &spec, &lease)).await;
    }

    let finished = Timestamp::now();
    let duration = SignedDuration::from_millis(finished.as_millisecond() - record.started_ms);
    let (output, truncated) = lock(&tail).take();
    record.finished_ms = Some(finished.as_millisecond());
    record.outcome = ended.outcome;
    record.duration_ms = Some(duration.as_millis().max(0) as u64);
    record.exit_code = ended.exit.and_then(|e| e.code);
    record.signal = ended.exit.and_then(|e| e.signal);
    record.http_status = ended.http_status;
    record.error = ended.error.clone();
    record.output = output;
    record.output_truncated = truncated;
    let success_at = (ended.outcome == Outcome::Success).then(|| finished.as_millisecond() as f64 / 1000.0);
    metrics::run_finished(&spec.name, ended.outcome.as_str(), duration.as_secs_f64(), success_at);
    metrics::running(&spec.name, -1.0);
    engine.history.write(Write::Finished(record));
    tracing::info!(
        job = %spec.name, tick = %tick, fence = lease.fence, run_id = %run_id,
        outcome = ended.outcome.as_str(), duration_ms = duration.as_millis() as u64,
        exit_code = ended.exit.and_then(|e| e.code), error = ended.error.as_deref(),
        "run finished"
    );
    lock(&engine.runs).remove(&run_id);
    engine.runs_changed.notify_waiters();
}

async fn command_run(
    spec: &JobSpec,
    mut child: process::Running,
    mut stop: watch::Receiver<Option<StopWhy>>,
    mut lost: oneshot::Receiver<String>,
) -> Ended {
    let ended = tokio::select! {
        exit = child.wait() => {
            let outcome = if exit.code == Some(0) { Outcome::Success } else { Outcome::Failure };
            let error = match (exit.code, exit.signal) {
                (Some(0), _) => None,
                (Some(code), _) => Some(format!("exited with status {code}")),
                (None, Some(signal)) => Some(format!("killed by signal {signal}")),
                (None, None) => Some("its end could not be read".to_string()),
            };
            Ended { outcome, exit: Some(exit), http_status: None, error }
        }
        () = tokio::time::sleep(spec.timeout) => {
            let exit = child.stop(spec.kill_grace).await;
            let error = format!("timed out after {}", crate::config::values::format_duration(spec.timeout));
            Ended { outcome: Outcome::Timeout, exit: Some(exit), http_status: None, error: Some(error) }
        }
        Ok(why) = &mut lost => {
            let exit = child.stop(spec.kill_grace).await;
            Ended { outcome: Outcome::LeaseLost, exit: Some(exit), http_status: None, error: Some(why) }
        }
        why = stopped(&mut stop) => {
            let exit = child.stop(spec.kill_grace).await;
            Ended { outcome: Outcome::Stopped, exit: Some(exit), http_status: None, error: Some(why) }
        }
    };
    child.finish(spec.kill_grace).await;
    ended
}

async fn http_run(
    engine: &Engine,
    spec: &JobSpec,
    target: &crate::job::HttpTarget,
    headers: &http::RunHeaders,
    tail: &Arc<Mutex<Tail>>,
    mut stop: watch::Receiver<Option<StopWhy>>,
    mut lost: oneshot::Receiver<String>,
) -> Ended {
    let mut local_tail = Tail::default();
    let ended = tokio::select! {
        response = http::send(&engine.http, target, headers, &mut local_tail) => match response {
            Ok(r) if r.ok => Ended { outcome: Outcome::Success, exit: None, http_status: Some(r.status), error: None },
            Ok(r) => Ended {
                outcome: Outcome::Failure, exit: None, http_status: Some(r.status),
                error: Some(format!("status {} is not one of the expected", r.status)),
            },
            Err(e) => Ended { outcome: Outcome::Failure, exit: None, http_status: None, error: Some(e) },
        },
        () = tokio::time::sleep(spec.timeout) => Ended {
            outcome: Outcome::Timeout, exit: None, http_status: None,
            error: Some(format!("timed out after {}", crate::config::values::format_duration(spec.timeout))),
        },
        Ok(why) = &mut lost => Ended { outcome: Outcome::LeaseLost, exit: None, http_status: None, error: Some(why) },
        why = stopped(&mut stop) => Ended { outcome: Outcome::Stopped, exit: None, http_status: None, error: Some(why) },
    };
    let (text, _) = local_tail.take();
    if !text.is_empty() {
        tracing::info!(target: "chime::job", job = %spec.name, tick = %headers.scheduled_at, fence = headers.fence, stream = "http", "{}", text.trim_end());
        lock(tail).push(&text);
    }
    ended
}

async fn stopped(stop: &mut watch::Receiver<Option<StopWhy>>) -> String {
    loop {
        if let Some(why) = *stop.borrow_and_update() {
            return match why {
                StopWhy::Replaced => "stopped: a newer run replaces it".to_string(),
                StopWhy::Shutdown => "stopped: the daemon is shutting down".to_string(),
            };
        }
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Renews `lease` every third of its length until aborted; reports a loss through `lost`: the
/// store answered that another replica holds it, or no renewal got through for two thirds of it.
async fn keep(coordinator: Arc<dyn Coordinator>, lease: Lease, lost: oneshot::Sender<String>) {
    let length = Duration::from_millis(lease.lease_ms.max(1) as u64);
    let every = length / 3;
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let now_ms = Timestamp::now().as_millisecond();
        match tokio::time::timeout(every, coordinator.renew(&lease, now_ms)).await {
            Ok(Ok(true)) => renewed = tokio::time::Instant::now(),
            Ok(Ok(false)) => {
                let _ = lost.send("the lease was lost to another replica".into());
                return;
            }
            Ok(Err(e)) if renewed.elapsed() >= length * 2 / 3 => {
                let _ = lost.send(format!("the lease could not be renewed: {e}"));
                return;
            }
            Err(_) if renewed.elapsed() >= length * 2 / 3 => {
                let _ = lost.send("renewing the lease timed out".into());
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(job = %lease.key, error = %e, "renewing the lease failed; trying again")
            }
            Err(_) => tracing::warn!(job = %lease.key, "renewing the lease timed out; trying again"),
        }
    }
}

async fn release(engine: &Engine, spec: &JobSpec, lease: &Lease) {
    match tokio::time::timeout(Duration::from_secs(5), engine.release_lease(spec, lease)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(job = %lease.key, error = %e, "the lease could not be released; it will expire")
        }
        Err(_) => tracing::warn!(job = %lease.key, "releasing the lease timed out; it will expire"),
    }
}
