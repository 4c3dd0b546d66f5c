//! Claiming a tick through chime's coordinator (one start per tick cluster-wide, a fence per run),
//! and what each overlap policy does when a run still holds the job's lease:
//!
//! - `skip`: the tick is not run (the replica running the job counts it missed, reason `overlap`);
//! - `allow`: runs release the lease as they start, so the next claim is free; a claim that meets
//!   one being taken at that instant tries again for a moment;
//! - `replace`: the replica running the job stops its run (SIGTERM, then SIGKILL after the grace)
//!   and releases the lease; every replica keeps claiming the tick until one wins;
//! - `queue`: the tick waits for the running one to end and then runs, within the missed-policy's
//!   grace; a job's queued ticks claim in order.
//!
//! Manual runs claim a tick of their own between two scheduled ones ([`manual_tick`]).

use std::sync::Arc;
use std::time::Duration;

use chime::cluster::{Claim, ClaimOutcome, Lease};
use jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

use super::plan::Tick;
use super::run::{self, Granted};
use super::{Engine, StopWhy};
use crate::job::{JobSpec, Overlap};
use crate::metrics;
use crate::store::Trigger;

/// How often a waiting claim asks again.
const RETRY: Duration = Duration::from_millis(100);

/// Claims `tick` (on a replica whose timer fired for it) and starts the run when granted.
pub(crate) async fn scheduled(
    engine: Engine,
    spec: Arc<JobSpec>,
    tick: Tick,
    lane: Arc<tokio::sync::Mutex<()>>,
) {
    let _in_order = if spec.overlap == Overlap::Queue { Some(lane.lock().await) } else { None };
    let give_up = match spec.overlap {
        Overlap::Skip => tick.fire,
        Overlap::Allow => tick.fire + SignedDuration::from_secs(2),
        Overlap::Replace => tick.fire + sd(spec.kill_grace) + SignedDuration::from_secs(5),
        Overlap::Queue => tick.nominal + sd(spec.grace),
    };
    loop {
        if engine.stopping.load(std::sync::atomic::Ordering::SeqCst) || engine.is_paused(&spec.name) {
            return;
        }
        match claim(&engine, &spec, tick.key()).await {
            Ok(ClaimOutcome::Granted(lease)) => {
                metrics::claim(&spec.name, "won");
                let granted = Granted::new(spec, lease, tick.nominal, tick.fire, Trigger::Schedule);
                run::start(&engine, granted);
                return;
            }
            Ok(ClaimOutcome::Taken { .. }) => {
                metrics::claim(&spec.name, "lost");
                return;
            }
            Ok(ClaimOutcome::Busy { owner, .. }) => {
                let mine = owner == engine.replica.id;
                if spec.overlap == Overlap::Replace && engine.runs_job(&spec.name) {
                    engine.stop_runs(&spec.name, None, StopWhy::Replaced).await;
                    continue;
                }
                if spec.overlap == Overlap::Skip || Timestamp::now() >= give_up {
                    metrics::claim(&spec.name, "lost");
                    if mine {
                        engine.missed(&spec, tick.nominal, "overlap", 1);
                    }
                    return;
                }
                tokio::time::sleep(RETRY).await;
            }
            Err(error) => {
                metrics::claim(&spec.name, "error");
                tracing::error!(job = %spec.name, tick = %tick.nominal, %error, "the claim failed: the tick does not run here (fail closed)");
                engine.missed(&spec, tick.nominal, "store_unavailable", 1);
                return;
            }
        }
    }
}

fn sd(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// One claim, bounded by the lease: a grant that arrives after its lease could have run out is
/// handed back (another replica may hold the next tick by then).
pub(crate) async fn claim(engine: &Engine, spec: &JobSpec, tick: u64) -> Result<ClaimOutcome, String> {
    let lease_for = spec.lease;
    let claim = Claim {
        key: spec.name.clone(),
        tick,
        member: engine.replica.id.clone(),
        lease_ms: lease_for.as_millis() as i64,
        now_ms: Timestamp::now().as_millisecond(),
    };
    let asked = Instant::now();
    match tokio::time::timeout(lease_for, engine.claim_tick(spec, claim)).await {
        Ok(Ok(ClaimOutcome::Granted(lease))) if asked.elapsed() >= lease_for => {
            let _ = tokio::time::timeout(lease_for, engine.release_lease(spec, &lease)).await;
            Err("the grant arrived after its lease ran out".into())
        }
        Ok(Ok(outcome)) => {
            engine.store_answered();
            tracing::debug!(
                job = %spec.name, tick, claim_us = asked.elapsed().as_micros() as u64,
                granted = matches!(outcome, ClaimOutcome::Granted(_)), "claimed"
            );
            Ok(outcome)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "the claim took longer than the lease ({})",
            crate::config::values::format_duration(lease_for)
        )),
    }
}

/// What `POST /v1/jobs/{name}/run` came to.
#[derive(Debug)]
pub(crate) enum Manual {
    /// The run started, with its own fence.
    Started { run_id: String, fence: u64, tick: String },
    /// The job is running; the manual run waits its turn (`queue`) or for the running one to stop
    /// (`replace`).
    Queued,
}

/// Why a manual run was refused.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The job is running and its overlap policy is `skip`.
    Running,
    /// 999 manual runs since the last scheduled tick.
    TooMany,
    Store(String),
}

/// The tick a manual run claims: one past the last claimed, so it takes none of the scheduled
/// ticks (which are multiples of 1000, see `Tick::key`). `None`: no room before the next one.
fn manual_tick(last: u64) -> Option<u64> {
    let next = last + 1;
    (!next.is_multiple_of(1000)).then_some(next)
}

/// Starts a manual run of `spec` now, honouring its overlap policy.
pub(crate) async fn manual(engine: &Engine, spec: Arc<JobSpec>) -> Result<Manual, Refused> {
    let requested = Timestamp::now();
    // Tick 0 is granted only on a key never claimed; otherwise it tells the last tick claimed.
    let mut tick = 0;
    for _ in 0..20 {
        match claim(engine, &spec, tick).await.map_err(Refused::Store)? {
            ClaimOutcome::Granted(lease) => return Ok(start_manual(engine, spec, lease, requested)),
            ClaimOutcome::Taken { last_tick } => tick = manual_tick(last_tick).ok_or(Refused::TooMany)?,
            ClaimOutcome::Busy { .. } => {
                return match spec.overlap {
                    Overlap::Skip => Err(Refused::Running),
                    Overlap::Allow => {
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                    Overlap::Replace | Overlap::Queue => {
                        if spec.overlap == Overlap::Replace {
                            request_stop(engine, &spec).await?;
                        }
                        tokio::spawn(wait_and_run(engine.clone(), spec, requested));
                        Ok(Manual::Queued)
                    }
                };
            }
        }
    }
    Err(Refused::Store("the job's claims kept changing under 20 tries".into()))
}

/// Asks whichever replica runs the job to stop it: this one directly, another through the store.
async fn request_stop(engine: &Engine, spec: &JobSpec) -> Result<(), Refused> {
    if engine.runs_job(&spec.name) {
        engine.stop_runs(&spec.name, None, StopWhy::Replaced).await;
        return Ok(());
    }
    let running = engine.meta.running().await.map_err(|e| Refused::Store(e.to_string()))?;
    if let Some(fence) = running.iter().filter(|r| r.job == spec.name).map(|r| r.fence).max() {
        engine.meta.request_stop(&spec.name, fence).await.map_err(|e| Refused::Store(e.to_string()))?;
    }
    Ok(())
}

/// A queued manual run: claims until granted, within the missed grace (at least a minute).
async fn wait_and_run(engine: Engine, spec: Arc<JobSpec>, requested: Timestamp) {
    let give_up = Instant::now() + spec.grace.max(Duration::from_secs(60));
    while Instant::now() < give_up && !engine.stopping.load(std::sync::atomic::Ordering::SeqCst) {
        match manual_claim(&engine, &spec).await {
            Ok(Some(lease)) => {
                start_manual(&engine, spec, lease, requested);
                return;
            }
            Ok(None) => tokio::time::sleep(RETRY).await,
            Err(e) => {
                tracing::error!(job = %spec.name, error = %e, "a queued manual run could not be claimed");
                return;
            }
        }
    }
    tracing::warn!(job = %spec.name, "a queued manual run gave up waiting for the running one");
}

async fn manual_claim(engine: &Engine, spec: &JobSpec) -> Result<Option<Lease>, String> {
    let mut tick = 0;
    for _ in 0..20 {
        match claim(engine, spec, tick).await? {
            ClaimOutcome::Granted(lease) => return Ok(Some(lease)),
            ClaimOutcome::Taken { last_tick } => {
                tick = manual_tick(last_tick).ok_or("999 manual runs since the last tick")?;
            }
            ClaimOutcome::Busy { .. } => return Ok(None),
        }
    }
    Ok(None)
}

fn start_manual(engine: &Engine, spec: Arc<JobSpec>, lease: Lease, requested: Timestamp) -> Manual {
    metrics::claim(&spec.name, "won");
    let granted = Granted::new(spec, lease, requested, requested, Trigger::Manual);
    let started = Manual::Started {
        run_id: granted.run_id.clone(),
        fence: granted.lease.fence,
        tick: requested.to_string(),
    };
    run::start(engine, granted);
    started
}

#[cfg(test)]
mod tests {
    use super::manual_tick;

    #[test]
    fn manual_ticks_fit_between_scheduled_ones() {
        assert_eq!(manual_tick(1_700_000_000_000_000), Some(1_700_000_000_000_001));
        assert_eq!(manual_tick(1_700_000_000_000_998), Some(1_700_000_000_000_999));
        assert_eq!(manual_tick(1_700_000_000_000_999), None);
    }
}
