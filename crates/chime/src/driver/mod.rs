//! The driver: runs the wheels on tokio, following tokio's clock.
//!
//! # Design
//!
//! A scheduler owns a fixed number of [shards](shard), each a mutex around two
//! [wheels](crate::wheel) (timers and sleeping tasks). A thread always arms into the same shard, so the
//! hot path (arm, cancel) takes one uncontended lock and touches no shared cache line: there is no
//! global lock. A [`TimerId`] names its shard, so a cancel from any thread goes straight to it.
//!
//! One tokio task (the [loop](run)) sleeps until the earliest deadline of all shards. To fire, it
//! moves due entries out of each shard under its lock, runs the callbacks with no lock held (so
//! callbacks may arm, cancel and reschedule anything, their own timer included), then takes each lock
//! once more to re-arm recurring timers. A timer stays in its wheel while its callback runs, unarmed,
//! with its callback lent to the driver: a cancel in that window removes the entry, a reschedule arms
//! it, and the driver, when it hands the callback back, sees which.
//!
//! Arming tells the driver only when the new deadline is earlier than the one it sleeps until
//! (`wake_at`); while it is awake, `wake_at` is `u64::MAX`, so anything armed meanwhile asks for
//! another pass and nothing is missed.
//!
//! The wheel's level table is documented in [`crate::wheel`].

mod fire;
pub(crate) mod run;
pub(crate) mod shard;
mod sleeps;

pub(crate) use sleeps::SleepKey;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::Error;
use crate::clock::{TimeBase, nanos};
use crate::timer::record::{CancelFn, Extras, Grid, Record};
use crate::timer::{CancelReason, PanicReport, TimerId};
use shard::{Shard, Wheels, thread_number};

pub(crate) type PanicHook = Arc<dyn Fn(&PanicReport) + Send + Sync>;
pub(crate) type ClusterErrorHook = Arc<dyn Fn(&str, &Error) + Send + Sync>;

/// Everything a scheduler shares between its handles and its driver task.
pub(crate) struct Inner {
    pub(crate) time: TimeBase,
    shards: Box<[Shard]>,
    /// The deadline the driver sleeps until; `u64::MAX` while it is awake or idle.
    wake_at: AtomicU64,
    notify: Notify,
    stopped: AtomicBool,
    /// `shutdown` has begun (a second call only waits for the first).
    shutting_down: AtomicBool,
    /// Live [`Scheduler`](crate::Scheduler) handles: with none and nothing pending, the driver exits.
    pub(crate) handles: AtomicUsize,
    on_panic: Option<PanicHook>,
    on_cluster_error: Option<ClusterErrorHook>,
    driver_done: AtomicBool,
    driver_exit: Notify,
    /// The runtime the driver runs on: workers and async runs are spawned there.
    pub(crate) runtime: tokio::runtime::Handle,
    /// Workers, event buses and fd watches, for shutdown.
    pub(crate) registry: crate::registry::Registry,
}

/// Where a timer stands, for the [`Timer`](crate::Timer) handle's queries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimerState {
    pub(crate) deadline: Option<u64>,
    pub(crate) interval: u64,
    pub(crate) count: u64,
}

impl Inner {
    /// `shards` is rounded up to a power of two, so a thread finds its shard with a mask.
    pub(crate) fn new(config: crate::scheduler::Config, runtime: tokio::runtime::Handle) -> Self {
        let crate::scheduler::Config { shards, on_panic, on_cluster_error, wall } = config;
        Inner {
            time: TimeBase::new(wall),
            shards: (0..shards.max(1).next_power_of_two()).map(|_| Shard::default()).collect(),
            wake_at: AtomicU64::new(u64::MAX),
            notify: Notify::new(),
            stopped: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            handles: AtomicUsize::new(0),
            on_panic,
            on_cluster_error,
            driver_done: AtomicBool::new(false),
            driver_exit: Notify::new(),
            runtime,
            registry: crate::registry::Registry::default(),
        }
    }

    /// Marks the start of a shutdown; `true` if one had already begun (or the driver stopped).
    pub(crate) fn begin_shutdown(&self) -> bool {
        self.shutting_down.swap(true, Ordering::AcqRel) || self.is_stopped()
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    fn local_shard(&self) -> (u32, &Shard) {
        let n = thread_number() & (self.shards.len() - 1);
        (n as u32, &self.shards[n])
    }

    fn shard(&self, id: TimerId) -> Result<&Shard, Error> {
        self.shards.get(id.shard as usize).ok_or(Error::NotFound)
    }

    /// The deadline `delay` from now, in wheel nanoseconds.
    pub(crate) fn deadline_in(&self, option: &'static str, delay: Duration) -> Result<u64, Error> {
        nanos(delay).and_then(|d| self.time.now().checked_add(d)).ok_or_else(|| {
            Error::invalid(option, "exceeds chime's range of 584 years from the scheduler's start")
        })
    }

    /// Tells the driver about a deadline it may not be sleeping for.
    pub(crate) fn wake_if_earlier(&self, deadline: u64) {
        if deadline <= self.wake_at.load(Ordering::SeqCst) {
            self.wake_at.fetch_min(deadline, Ordering::SeqCst);
            self.notify.notify_one();
        }
    }

    pub(crate) fn wake_driver(&self) {
        self.notify.notify_one();
    }

    /// Arms `record` at `deadline` in this thread's shard.
    pub(crate) fn insert(&self, deadline: u64, record: Record) -> Result<TimerId, Error> {
        let (shard_no, shard) = self.local_shard();
        let mut wheels = shard.lock();
        if self.is_stopped() {
            drop(wheels);
            drop(record); // user closures are never dropped under the lock
            return Err(Error::Shutdown);
        }
        let key = wheels.timers.insert(deadline, record);
        drop(wheels);
        self.wake_if_earlier(deadline);
        Ok(TimerId { shard: shard_no, key })
    }

    /// Removes a timer; runs its cancel callback if a run was still to come.
    pub(crate) fn cancel(&self, id: TimerId, reason: CancelReason) -> Result<(), Error> {
        let mut wheels = self.shard(id)?.lock();
        if self.is_stopped() {
            return Err(Error::Shutdown);
        }
        let armed = wheels.timers.deadline(id.key).is_some();
        let record = wheels.timers.remove(id.key).ok_or(Error::NotFound)?;
        drop(wheels);
        self.finish_cancelled(id, record, armed, reason);
        Ok(())
    }

    /// After a record left its wheel by cancellation: its cancel callback, if a run was still to come.
    /// Returns whether a run was still to come (what shutdown counts as cancelled).
    fn finish_cancelled(&self, id: TimerId, record: Record, armed: bool, reason: CancelReason) -> bool {
        let Some(mut extras) = record.extras else { return armed };
        let pending = is_pending(&extras, armed);
        if let Some(on_cancel) = extras.on_cancel.take().filter(|_| pending) {
            self.run_cancel(id, on_cancel, reason);
        }
        pending
    }

    pub(crate) fn run_cancel(&self, id: TimerId, on_cancel: CancelFn, reason: CancelReason) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| on_cancel(reason))) {
            self.report_panic(Some(id), &*payload);
        }
    }

    /// Knot's `reschedule`: the next run at now + `delay`; a recurring timer continues from there.
    pub(crate) fn reschedule(&self, id: TimerId, delay: Duration) -> Result<(), Error> {
        let deadline = self.deadline_in("delay", delay)?;
        let mut wheels = self.shard(id)?.lock();
        if self.is_stopped() {
            return Err(Error::Shutdown);
        }
        let armed = wheels.timers.deadline(id.key).is_some();
        let record = wheels.timers.get_mut(id.key).ok_or(Error::NotFound)?;
        match record.extras.as_mut() {
            Some(extras) => {
                if let Some(grid) = extras.grid.as_mut() {
                    *grid = Grid::restart_at(deadline);
                }
                extras.missed = 0;
            }
            // A plain one-shot rescheduled: it now counts its runs. Unarmed, it is in its own run.
            None => {
                let running = !armed;
                record.extras =
                    Some(Box::new(Extras { count: u64::from(running), running, ..Extras::default() }));
            }
        }
        wheels.timers.rearm(id.key, deadline);
        drop(wheels);
        self.wake_if_earlier(deadline);
        Ok(())
    }

    /// [`Timer::arm`](crate::Timer::arm): restart with a new interval, as if newly armed. The arm
    /// callback runs first (Copas' order), with no shard lock held; concurrent re-arms each run it,
    /// one at a time (it sits behind its own mutex).
    pub(crate) fn rearm(&self, id: TimerId, interval: Duration) -> Result<(), Error> {
        let interval = nanos(interval).ok_or_else(|| Error::invalid("interval", "exceeds 584 years"))?;
        let on_arm = {
            let mut wheels = self.shard(id)?.lock();
            if self.is_stopped() {
                return Err(Error::Shutdown);
            }
            let Some(extras) = wheels.timers.get_mut(id.key).and_then(|r| r.extras.as_mut()) else {
                return Err(Error::AlreadyCancelled);
            };
            if extras.fixed {
                return Err(Error::invalid(
                    "interval",
                    "a cluster timer's grid is shared: cancel it and build a new one",
                ));
            }
            crate::timer::record::Plan { interval, ..extras.plan }.validate()?;
            extras.on_arm.clone()
        };
        if let Some(on_arm) = on_arm {
            let mut on_arm = on_arm.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Err(payload) = catch_unwind(AssertUnwindSafe(&mut *on_arm)) {
                self.report_panic(Some(id), &*payload);
            }
        }
        let mut wheels = self.shard(id)?.lock();
        if self.is_stopped() {
            return Err(Error::Shutdown);
        }
        let Some(extras) = wheels.timers.get_mut(id.key).and_then(|r| r.extras.as_mut()) else {
            return Err(Error::AlreadyCancelled); // cancelled while its arm callback ran
        };
        let plan = crate::timer::record::Plan { interval, ..extras.plan };
        let (deadline, grid) = plan.start(self.time.now(), draw(plan.jitter))?;
        extras.plan = plan;
        extras.grid = grid;
        extras.missed = 0;
        wheels.timers.rearm(id.key, deadline);
        drop(wheels);
        self.wake_if_earlier(deadline);
        Ok(())
    }

    /// Hands a timer over from its [`Timer`](crate::Timer) handle to the scheduler.
    pub(crate) fn detach(&self, id: TimerId) {
        let Ok(shard) = self.shard(id) else { return };
        let mut wheels = shard.lock();
        let idle = match wheels.timers.get_mut(id.key).and_then(|r| r.extras.as_mut()) {
            Some(extras) => {
                extras.owned = false;
                extras.grid.is_none() && !extras.running && !extras.lent
            }
            None => return,
        };
        // An idle one-shot has nothing left to run: nobody could reach it any more.
        if idle && wheels.timers.deadline(id.key).is_none() {
            let record = wheels.timers.remove(id.key);
            drop(wheels);
            drop(record);
        }
    }

    /// Whether the timer was built with `cancel_on_panic`.
    pub(crate) fn cancel_on_panic(&self, id: TimerId) -> bool {
        let Ok(shard) = self.shard(id) else { return false };
        shard.lock().timers.get(id.key).and_then(|r| r.extras.as_ref()).is_some_and(|e| e.cancel_on_panic)
    }

    pub(crate) fn timer_state(&self, id: TimerId) -> Result<TimerState, Error> {
        let wheels = self.shard(id)?.lock();
        let record = wheels.timers.get(id.key).ok_or(Error::NotFound)?;
        let (interval, count) = record.extras.as_ref().map_or((0, 0), |e| (e.plan.interval, e.count));
        Ok(TimerState { deadline: wheels.timers.deadline(id.key), interval, count })
    }

    /// Reports a timer callback panic through `tracing` and the scheduler's hook.
    pub(crate) fn report_panic(&self, timer: Option<TimerId>, payload: &(dyn std::any::Any + Send)) {
        let source = timer.map_or_else(|| "timer arm callback".to_string(), |id| id.to_string());
        self.report(PanicReport::new(timer, source, payload));
    }

    /// Reports a panic of anything the scheduler runs through `tracing` and the scheduler's hook.
    pub(crate) fn report(&self, report: PanicReport) {
        tracing::error!(source = %report.source(), "chime: panicked: {}", report.message());
        if let Some(hook) = &self.on_panic
            && catch_unwind(AssertUnwindSafe(|| hook(&report))).is_err()
        {
            tracing::error!("chime panic hook panicked");
        }
    }

    /// Reports a cluster timer's store error (the tick did not run) through `tracing` and the hook.
    pub(crate) fn report_cluster_error(&self, key: &str, error: &Error) {
        tracing::warn!(key, "chime cluster timer: the tick did not run: {error}");
        if let Some(hook) = &self.on_cluster_error
            && catch_unwind(AssertUnwindSafe(|| hook(key, error))).is_err()
        {
            tracing::error!("chime cluster error hook panicked");
        }
    }

    /// Timers and sleeps pending in every shard.
    pub(crate) fn pending(&self) -> usize {
        self.shards.iter().map(|s| s.with(|w| w.timers.len() + w.sleeps.len())).sum()
    }

    /// Stops for good: every pending timer's cancel callback runs with `Shutdown`, every sleeping task
    /// wakes. Returns the number of timers cancelled; 0 when already stopped.
    pub(crate) fn stop(&self) -> usize {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return 0;
        }
        let mut cancelled = 0;
        for (n, shard) in self.shards.iter().enumerate() {
            let (records, wakers) = {
                let mut wheels = shard.lock();
                let Wheels { timers, sleeps } = &mut *wheels;
                let keys: Vec<_> = timers.keys().collect();
                let records: Vec<_> = keys
                    .into_iter()
                    .filter_map(|key| {
                        let armed = timers.deadline(key).is_some();
                        Some((key, armed, timers.remove(key)?))
                    })
                    .collect();
                let keys: Vec<_> = sleeps.keys().collect();
                let wakers: Vec<_> = keys.into_iter().filter_map(|key| sleeps.remove(key)).collect();
                (records, wakers)
            };
            for (key, armed, record) in records {
                let id = TimerId { shard: n as u32, key };
                cancelled += usize::from(self.finish_cancelled(id, record, armed, CancelReason::Shutdown));
            }
            wakers.into_iter().for_each(std::task::Waker::wake);
        }
        self.notify.notify_one();
        cancelled
    }

    /// Waits until the driver task has exited (after [`stop`](Self::stop)).
    pub(crate) async fn driver_exited(&self) {
        loop {
            let exited = self.driver_exit.notified();
            tokio::pin!(exited);
            exited.as_mut().enable();
            if self.driver_done.load(Ordering::Acquire) {
                return;
            }
            exited.await;
        }
    }
}

impl Shard {
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Wheels) -> R) -> R {
        f(&mut self.lock())
    }
}

/// Whether a timer still had a run to come: armed, recurring, or lent to the driver but not started.
fn is_pending(extras: &Extras, armed: bool) -> bool {
    armed || extras.grid.is_some() || extras.lent
}

/// A uniform draw in `[0, bound)`, or 0 without jitter.
pub(crate) fn draw(bound: u64) -> u64 {
    if bound == 0 { 0 } else { rand::random_range(0..bound) }
}
