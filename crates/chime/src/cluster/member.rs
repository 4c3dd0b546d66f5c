//! A cluster timer's member: on each check it works out which tick is due, claims it, runs it under
//! the lease (renewing it while an async run goes on), and releases it.
//!
//! The checks are driven by an ordinary recurring wheel timer (the *heartbeat*, every `sub_interval`,
//! rescheduled after each check to the next tick's due time when that comes first), so a cluster
//! timer is cancelled, dropped and shut down like any other, and its cancel callback runs as usual.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use super::protocol::{Claim, ClaimOutcome, Lease};
use super::{Coordinator, Misfire, member_id};
use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::time::Instant;

use crate::driver::Inner;
use crate::timer::record::ExpireFn;
use crate::timer::{CancelReason, Fire, TimerId};
use crate::unwind::CatchUnwind;
use crate::{Error, Scheduler};

/// An async run of a cluster timer.
pub(crate) type AsyncRun = Box<dyn FnMut(Fire) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// What the builder collects for a cluster timer.
#[derive(Clone, Default)]
pub(crate) struct ClusterPlan {
    pub(crate) key: Option<String>,
    pub(crate) coordinator: Option<Arc<dyn Coordinator>>,
    pub(crate) sub_interval: Option<Duration>,
    pub(crate) lease: Option<Duration>,
    pub(crate) misfire: Misfire,
}

/// The user's callback, sync (runs in the member's task) or async (awaited under a renewed lease).
pub(crate) enum Run {
    Sync(ExpireFn),
    Async(AsyncRun),
}

/// One member's state for one key.
pub(crate) struct Member {
    inner: Weak<Inner>,
    coordinator: Arc<dyn Coordinator>,
    key: String,
    member: String,
    interval_ms: i64,
    sub_interval_ms: i64,
    lease_ms: i64,
    misfire: Misfire,
    state: Mutex<State>,
}

struct State {
    run: Option<Run>,
    /// The latest tick known to be claimed (by anyone).
    known_last: Option<u64>,
    runs: u64,
    /// A check is in progress (its task handle, to abort at cancel).
    task: Option<tokio::task::AbortHandle>,
    /// The lease this member holds, if a run is going.
    lease: Option<Lease>,
    /// A sync callback is running on a blocking thread: it cannot be stopped, so its lease is kept
    /// (and renewed) until it returns, even if the timer is cancelled meanwhile.
    sync_running: bool,
    /// The timer was cancelled (or shut down): no more claims.
    cancelled: bool,
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
            inner: Arc::downgrade(&sched.inner),
            coordinator: plan.coordinator.expect("validated"),
            key: plan.key.expect("validated"),
            member: member_id(),
            interval_ms,
            sub_interval_ms,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Delay from wall time `now_ms` to the next check: the next tick's due time or the next
    /// `sub_interval` boundary, whichever comes first.
    pub(crate) fn next_check(&self, now_ms: i64) -> Duration {
        let next_due = (now_ms.div_euclid(self.interval_ms) + 1) * self.interval_ms;
        let next_sub = (now_ms.div_euclid(self.sub_interval_ms) + 1) * self.sub_interval_ms;
        Duration::from_millis(u64::try_from(next_due.min(next_sub) - now_ms).unwrap_or(1))
    }

    /// The heartbeat fired: start a check unless one is going.
    pub(crate) fn on_heartbeat(self: &Arc<Self>, heartbeat: TimerId) {
        let Some(inner) = self.inner.upgrade() else { return };
        let mut state = self.lock();
        if state.cancelled || state.task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let member = self.clone();
        let task = inner.runtime.spawn(async move { member.check(heartbeat).await });
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
        if let (Some(lease), Some(inner)) = (lease, self.inner.upgrade()) {
            let coordinator = self.coordinator.clone();
            inner.runtime.spawn(async move { coordinator.release(&lease).await });
        }
    }

    /// The tick to claim at `now_ms`, if any: the latest due tick, unless it is known to be claimed or
    /// is past the misfire window.
    fn due_tick(&self, now_ms: i64, known_last: Option<u64>) -> Option<u64> {
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

    async fn check(self: Arc<Self>, heartbeat: TimerId) {
        let Some(inner) = self.inner.upgrade() else { return };
        let now_ms = inner.time.wall_ms();
        let asked = Instant::now();
        let (known_last, cancelled) = {
            let state = self.lock();
            (state.known_last, state.cancelled)
        };
        if cancelled {
            return;
        }
        if let Some(tick) = self.due_tick(now_ms, known_last) {
            let claim = Claim {
                key: self.key.clone(),
                tick,
                member: self.member.clone(),
                lease_ms: self.lease_ms,
                now_ms,
            };
            let lease_for = Duration::from_millis(self.lease_ms as u64);
            // tokio's clock, not this scheduler's: after shutdown its sleeps end at once.
            match tokio::time::timeout(lease_for, self.coordinator.claim(&claim)).await {
                Ok(Ok(ClaimOutcome::Granted(lease))) if asked.elapsed() >= lease_for => {
                    // The grant came back after its lease could have run out: another member may
                    // already hold the tick's successor. Fail closed.
                    let late =
                        self.store_error("the grant arrived after its lease ran out; the tick was not run");
                    inner.report_cluster_error(&self.key, &late);
                    let _ = tokio::time::timeout(lease_for, self.coordinator.release(&lease)).await;
                }
                Ok(Ok(ClaimOutcome::Granted(lease))) => {
                    // Due at `tick * interval` of wall time: that many ms before `asked`.
                    let late = Duration::from_millis(
                        u64::try_from(now_ms - tick as i64 * self.interval_ms).unwrap_or(0),
                    );
                    let scheduled = asked.checked_sub(late).unwrap_or(asked);
                    self.run(&inner, heartbeat, lease, known_last, scheduled).await;
                }
                Ok(Ok(ClaimOutcome::Taken { last_tick })) => {
                    let mut state = self.lock();
                    state.known_last = state.known_last.max(Some(last_tick));
                }
                Ok(Ok(ClaimOutcome::Busy { .. })) => {}
                Ok(Err(error)) => inner.report_cluster_error(&self.key, &error),
                Err(_) => inner.report_cluster_error(&self.key, &self.store_error("the claim timed out")),
            }
        }
        // The next check: at the next tick or sub-interval boundary, on the wall clock.
        let delay = self.next_check(inner.time.wall_ms());
        let _ = inner.reschedule(heartbeat, delay);
    }

    fn store_error(&self, message: &str) -> Error {
        Error::store(self.coordinator.backend(), message)
    }

    /// Runs the granted tick under its lease, then releases it. A sync callback runs on a blocking
    /// thread (it may take its time without holding up a runtime worker), so the lease is renewed
    /// meanwhile either way.
    async fn run(
        &self,
        inner: &Arc<Inner>,
        heartbeat: TimerId,
        lease: Lease,
        known_last: Option<u64>,
        scheduled: Instant,
    ) {
        let tick = lease.tick;
        let lease_for = Duration::from_millis(self.lease_ms as u64);
        let taken = {
            let mut state = self.lock();
            state.known_last = state.known_last.max(Some(tick));
            if state.cancelled {
                None
            } else {
                state.runs += 1;
                state.lease = Some(lease.clone());
                state.sync_running = matches!(state.run, Some(Run::Sync(_)));
                Some((state.run.take(), state.runs))
            }
        };
        let Some((run, runs)) = taken else {
            // Cancelled while the claim was on its way: hand the tick back unrun.
            let _ = tokio::time::timeout(lease_for, self.coordinator.release(&lease)).await;
            return;
        };
        let fire = Fire {
            id: heartbeat,
            count: runs,
            missed: lease.previous_tick.or(known_last).map_or(0, |last| tick.saturating_sub(last + 1)),
            scheduled,
            fence: Some(lease.fence),
            tick: Some(tick),
        };
        let (run, panicked) = match run {
            Some(Run::Sync(mut expire)) => {
                let work = inner.runtime.spawn_blocking(move || {
                    let outcome = catch_unwind(AssertUnwindSafe(|| expire(&fire)));
                    (expire, outcome)
                });
                // A blocking callback cannot be interrupted: if the lease is lost, it finishes
                // unrenewed (its fence tells the downstream systems it is stale).
                match self.under_lease(inner, work, &lease, false).await {
                    Some(Ok((expire, outcome))) => (Some(Run::Sync(expire)), outcome.err()),
                    _ => (None, None), // the runtime is going away
                }
            }
            Some(Run::Async(mut start)) => {
                let work = CatchUnwind(start(fire));
                // An async run is stopped (dropped) when its lease is lost: fail closed.
                let outcome = self.under_lease(inner, work, &lease, true).await;
                (Some(Run::Async(start)), outcome.and_then(Result::err))
            }
            None => (None, None),
        };
        if let Some(payload) = panicked {
            inner.report_panic(Some(heartbeat), &*payload);
            if inner.cancel_on_panic(heartbeat) {
                let _ = inner.cancel(heartbeat, crate::CancelReason::Panicked);
            }
        }
        {
            let mut state = self.lock();
            state.run = run;
            state.lease = None;
            state.sync_running = false;
        }
        match tokio::time::timeout(lease_for, self.coordinator.release(&lease)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => inner.report_cluster_error(&self.key, &error),
            Err(_) => inner.report_cluster_error(&self.key, &self.store_error("the release timed out")),
        }
    }

    /// Awaits `work` while renewing `lease` every third of its length, concurrently (a slow store
    /// never holds the work up). When the lease is lost, or a renewal fails or times out, the loss is
    /// reported and the work is dropped (`stop`) or left to finish; `None` when it was dropped.
    async fn under_lease<F: Future>(
        &self,
        inner: &Arc<Inner>,
        work: F,
        lease: &Lease,
        stop: bool,
    ) -> Option<F::Output> {
        let every = Duration::from_millis(u64::try_from(lease.lease_ms / 3).unwrap_or(1).max(1));
        let renewals = async {
            loop {
                // tokio's clock, not this scheduler's: a run may outlive a shutdown.
                tokio::time::sleep(every).await;
                let renewed =
                    tokio::time::timeout(every, self.coordinator.renew(lease, inner.time.wall_ms())).await;
                let lost = match renewed {
                    Ok(Ok(true)) => continue,
                    Ok(Ok(false)) => self.store_error("the lease was lost to another member"),
                    Ok(Err(error)) => error,
                    Err(_) => self.store_error("renewing the lease timed out"),
                };
                inner.report_cluster_error(&self.key, &lost);
                return;
            }
        };
        tokio::pin!(work);
        tokio::pin!(renewals);
        tokio::select! {
            output = &mut work => Some(output),
            () = &mut renewals => if stop { None } else { Some(work.await) },
        }
    }
}
