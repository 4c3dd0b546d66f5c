//! A member's granted run: the user's callback run under the lease (renewed every third of its
//! length while it runs), then the lease released. A sync callback runs on a blocking thread, so
//! renewals go on beside it; an async one is stopped when its lease is lost (fail closed).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::member::Member;
use super::protocol::Lease;
use crate::driver::Driver;
use crate::id::TimerId;
use crate::record::{CancelReason, Fire, Run};
use crate::unwind::{CatchUnwind, Payload};

impl Member {
    /// Runs the granted tick under its lease, then releases it.
    pub(super) async fn run(
        &self,
        driver: &Arc<Driver>,
        heartbeat: TimerId,
        lease: Lease,
        known_last: Option<u64>,
        scheduled: Instant,
        trusted_until: Instant,
    ) {
        let Some((run, count)) = self.begin_run(&lease) else {
            // Cancelled while the claim was on its way: hand the tick back unrun.
            self.release(driver, &lease).await;
            return;
        };
        let tick = lease.tick;
        let fire = Fire {
            id: heartbeat,
            count,
            missed: lease.previous_tick.or(known_last).map_or(0, |last| tick.saturating_sub(last + 1)),
            scheduled,
            fence: Some(lease.fence),
            tick: Some(tick),
        };
        let (run, panicked) = self.execute(driver, run, fire, &lease, trusted_until).await;
        if let Some(payload) = panicked {
            driver.report_panic(Some(heartbeat), &*payload);
            if driver.cancel_on_panic(heartbeat) {
                let _ = driver.cancel(heartbeat, CancelReason::Panicked);
            }
        }
        self.end_run(run);
        self.release(driver, &lease).await;
    }

    /// Takes the callback for a run of `lease`, unless the timer was cancelled meanwhile; returns it
    /// with the run's number.
    fn begin_run(&self, lease: &Lease) -> Option<(Option<Run>, u64)> {
        let mut state = self.lock();
        state.known_last = state.known_last.max(Some(lease.tick));
        if state.cancelled {
            return None;
        }
        state.runs += 1;
        state.lease = Some(lease.clone());
        state.sync_running = matches!(state.run, Some(Run::Sync(_)));
        Some((state.run.take(), state.runs))
    }

    /// Gives the callback back after a run (`None` if it was lost with a runtime going away).
    fn end_run(&self, run: Option<Run>) {
        let mut state = self.lock();
        state.run = run;
        state.lease = None;
        state.sync_running = false;
    }

    /// Runs the callback under the lease, if it can start before `trusted_until`; returns it (to
    /// keep for the next run) and the panic it raised, if any.
    async fn execute(
        &self,
        driver: &Arc<Driver>,
        run: Option<Run>,
        fire: Fire,
        lease: &Lease,
        trusted_until: Instant,
    ) -> (Option<Run>, Option<Payload>) {
        match run {
            Some(Run::Sync(mut expire)) => {
                let work = driver.runtime.spawn_blocking(move || {
                    // Checked on the thread that runs it: the hand-over itself may be what was late.
                    if Instant::now() >= trusted_until {
                        return (expire, None);
                    }
                    let outcome = catch_unwind(AssertUnwindSafe(|| expire.call(&fire)));
                    (expire, Some(outcome))
                });
                // A blocking callback cannot be interrupted: if the lease is lost, it finishes
                // unrenewed (its fence tells the downstream systems it is stale).
                match self.under_lease(driver, work, lease, false).await {
                    Some(Ok((expire, Some(outcome)))) => (Some(Run::Sync(expire)), outcome.err()),
                    Some(Ok((expire, None))) => {
                        self.report_late_start(driver);
                        (Some(Run::Sync(expire)), None)
                    }
                    _ => (None, None), // the runtime is going away
                }
            }
            Some(Run::Async(start)) if Instant::now() >= trusted_until => {
                self.report_late_start(driver);
                (Some(Run::Async(start)), None)
            }
            Some(Run::Async(mut start)) => {
                let work = CatchUnwind(start(fire));
                let outcome = self.under_lease(driver, work, lease, true).await;
                (Some(Run::Async(start)), outcome.and_then(Result::err))
            }
            None => (None, None),
        }
    }

    /// A granted run that could not start while its lease was trusted did not run (fail closed).
    fn report_late_start(&self, driver: &Driver) {
        let late = self.store_error("the run could not start before its lease ran out; the tick was not run");
        driver.hooks.report_cluster_error(&self.key, &late);
    }

    /// Awaits `work` while renewing `lease` every third of its length, concurrently (a slow store
    /// never holds the work up). When the lease is lost, or a renewal fails or times out, the loss is
    /// reported and the work is dropped (`stop`) or left to finish; `None` when it was dropped.
    async fn under_lease<F: Future>(
        &self,
        driver: &Arc<Driver>,
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
                    tokio::time::timeout(every, self.coordinator.renew(lease, driver.time.wall_ms())).await;
                let lost = match renewed {
                    Ok(Ok(true)) => continue,
                    Ok(Ok(false)) => self.store_error("the lease was lost to another member"),
                    Ok(Err(error)) => error,
                    Err(_) => self.store_error("renewing the lease timed out"),
                };
                driver.hooks.report_cluster_error(&self.key, &lost);
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

    /// Ends `lease` now, so the next tick need not wait for it to expire; a failure is reported (the
    /// lease then runs out by itself).
    pub(super) async fn release(&self, driver: &Driver, lease: &Lease) {
        if let Err(error) = self.bounded("release", self.coordinator.release(lease)).await {
            driver.hooks.report_cluster_error(&self.key, &error);
        }
    }
}
