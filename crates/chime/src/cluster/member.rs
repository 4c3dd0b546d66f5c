//! A cluster timer's member: on each check it works out which tick is due, claims it, runs it under
//! the lease (renewing it while an async run goes on), and releases it.
//!
//! The checks are driven by an ordinary recurring wheel timer (the *heartbeat*, every `sub_interval`,
//! rescheduled after each check to the next tick's due time when that comes first), so a cluster
//! timer is cancelled, dropped and shut down like any other, and its cancel callback runs as usual.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::plan::ClusterPlan;
use super::protocol::{Claim, ClaimOutcome, Lease};
use super::{Coordinator, Misfire, member_id};
use crate::driver::Driver;
use crate::error::Error;
use crate::id::TimerId;
use crate::record::{CancelReason, Run};
use crate::scheduler::Scheduler;

/// One member's state for one key.
pub(crate) struct Member {
    driver: Weak<Driver>,
    pub(super) coordinator: Arc<dyn Coordinator>,
    pub(super) key: String,
    member: String,
    interval_ms: i64,
    sub_interval_ms: i64,
    /// When tick 0 is due (wall-clock ms); tick `t` is due at `anchor_ms + t * interval_ms`.
    anchor_ms: i64,
    pub(super) lease_ms: i64,
    misfire: Misfire,
    state: Mutex<State>,
}

pub(super) struct State {
    pub(super) run: Option<Run>,
    /// The latest tick known to be claimed (by anyone).
    pub(super) known_last: Option<u64>,
    pub(super) runs: u64,
    /// A check is in progress (its task handle, to abort at cancel).
    pub(super) task: Option<tokio::task::AbortHandle>,
    /// The lease this member holds, if a run is going.
    pub(super) lease: Option<Lease>,
    /// A sync callback is running on a blocking thread: it cannot be stopped, so its lease is kept
    /// (and renewed) until it returns, even if the timer is cancelled meanwhile.
    pub(super) sync_running: bool,
    /// The timer was cancelled (or shut down): no more claims.
    pub(super) cancelled: bool,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Member {
    /// A member for `plan` (validated: key and coordinator present).
    pub(crate) fn new(sched: &Scheduler, plan: ClusterPlan, interval: Duration, run: Run) -> Arc<Member> {
        let interval_ms = ms(interval).max(1);
        let sub_interval_ms = plan.sub_interval.map_or(interval_ms, ms).max(1);
        Arc::new(Member {
            driver: Arc::downgrade(sched.driver()),
            coordinator: plan.coordinator.expect("validated"),
            key: plan.key.expect("validated"),
            member: member_id(),
            interval_ms,
            sub_interval_ms,
            anchor_ms: plan.anchor_ms.unwrap_or(0),
            lease_ms: plan.lease.map_or(interval_ms.max(sub_interval_ms), ms).max(1),
            misfire: plan.misfire,
            state: Mutex::new(State {
                run: Some(run),
                known_last: None,
                runs: 0,
                task: None,
                lease: None,
                sync_running: false,
                cancelled: false,
            }),
        })
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Delay from wall time `now_ms` to the next check: the next tick's due time or the next
    /// `sub_interval` boundary, whichever comes first.
    pub(crate) fn next_check(&self, now_ms: i64) -> Duration {
        let now_ms = now_ms - self.anchor_ms;
        let next_due = (now_ms.div_euclid(self.interval_ms) + 1) * self.interval_ms;
        let next_sub = (now_ms.div_euclid(self.sub_interval_ms) + 1) * self.sub_interval_ms;
        Duration::from_millis(u64::try_from(next_due.min(next_sub) - now_ms).unwrap_or(1))
    }

    /// The heartbeat fired: start a check unless one is going.
    pub(crate) fn on_heartbeat(self: &Arc<Self>, heartbeat: TimerId) {
        let Some(driver) = self.driver.upgrade() else { return };
        let mut state = self.lock();
        if state.cancelled || state.task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let member = self.clone();
        let task = driver.runtime.spawn(async move { member.check(heartbeat).await });
        state.task = Some(task.abort_handle());
    }

    /// The timer was cancelled: no more claims; an async run is stopped and its lease handed back at
    /// once. A sync run cannot be stopped, so it keeps its lease (renewed) until it returns, and its
    /// task releases it then: runs never overlap across members.
    pub(crate) fn on_cancel(self: &Arc<Self>, _reason: CancelReason) {
        let (task, lease) = {
            let mut state = self.lock();
            state.cancelled = true;
            if state.sync_running {
                return;
            }
            (state.task.take(), state.lease.take())
        };
        if let Some(task) = task {
            task.abort();
        }
        if let (Some(lease), Some(driver)) = (lease, self.driver.upgrade()) {
            let member = self.clone();
            let runtime = driver.runtime.clone();
            runtime.spawn(async move { member.release(&driver, &lease).await });
        }
    }

    /// The tick to claim at `now_ms`, if any: the latest due tick, unless it is known to be claimed or
    /// is past the misfire window.
    fn due_tick(&self, now_ms: i64, known_last: Option<u64>) -> Option<u64> {
        let now_ms = now_ms - self.anchor_ms;
        let tick = u64::try_from(now_ms.div_euclid(self.interval_ms)).ok()?;
        if known_last.is_some_and(|last| last >= tick) {
            return None;
        }
        let late = now_ms - i64::try_from(tick).ok()? * self.interval_ms;
        let window = match self.misfire {
            Misfire::Skip => self.sub_interval_ms,
            Misfire::FireOnce { grace } => ms(grace).max(self.sub_interval_ms),
        };
        (late < window).then_some(tick)
    }

    /// One check: claims the due tick, if any, and runs it when granted; then schedules the next
    /// check on the heartbeat.
    async fn check(self: Arc<Self>, heartbeat: TimerId) {
        let Some(driver) = self.driver.upgrade() else { return };
        let now_ms = driver.time.wall_ms();
        let asked = Instant::now();
        let (known_last, cancelled) = {
            let state = self.lock();
            (state.known_last, state.cancelled)
        };
        if let Some(tick) = self.due_tick(now_ms, known_last).filter(|_| !cancelled) {
            let claim = Claim {
                key: self.key.clone(),
                tick,
                member: self.member.clone(),
                lease_ms: self.lease_ms,
                now_ms,
            };
            match self.bounded("claim", self.coordinator.claim(&claim)).await {
                // The grant came back after its lease could have run out: another member may already
                // hold the tick's successor. Fail closed.
                Ok(ClaimOutcome::Granted(lease)) if asked.elapsed() >= self.lease_for() => {
                    let late =
                        self.store_error("the grant arrived after its lease ran out; the tick was not run");
                    driver.hooks.report_cluster_error(&self.key, &late);
                    self.release(&driver, &lease).await;
                }
                Ok(ClaimOutcome::Granted(lease)) => {
                    // Due at `tick * interval` of wall time: that many ms before `asked`.
                    let late = Duration::from_millis(
                        u64::try_from(now_ms - self.anchor_ms - tick as i64 * self.interval_ms).unwrap_or(0),
                    );
                    let scheduled = asked.checked_sub(late).unwrap_or(asked);
                    // A run starts only while its lease is trusted: a process frozen (or starved)
                    // between the grant and the start must not run on a lease that ran out.
                    let trusted_until = asked + self.lease_for() * 9 / 10;
                    self.run(&driver, heartbeat, lease, known_last, scheduled, trusted_until).await;
                }
                Ok(ClaimOutcome::Taken { last_tick }) => {
                    let mut state = self.lock();
                    state.known_last = state.known_last.max(Some(last_tick));
                }
                Ok(ClaimOutcome::Busy { .. }) => {}
                Err(error) => driver.hooks.report_cluster_error(&self.key, &error),
            }
        }
        // The next check: at the next tick or sub-interval boundary, on the wall clock.
        let delay = self.next_check(driver.time.wall_ms());
        let _ = driver.reschedule(heartbeat, delay);
    }

    /// How long a lease lasts; also the bound on every store call.
    pub(super) fn lease_for(&self) -> Duration {
        Duration::from_millis(self.lease_ms.unsigned_abs())
    }

    /// A store call bounded by the lease: one that outlasts it is a store error (fail closed).
    /// tokio's clock, not this scheduler's: after a shutdown its sleeps end at once, and a run may
    /// outlive a shutdown.
    pub(super) async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.lease_for(), call)
            .await
            .unwrap_or_else(|_| Err(self.store_error(&format!("the {what} timed out"))))
    }

    pub(super) fn store_error(&self, message: &str) -> Error {
        Error::store(self.coordinator.backend(), message)
    }
}
