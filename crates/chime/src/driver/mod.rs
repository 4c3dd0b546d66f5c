//! The driver: runs the wheels on tokio, following tokio's clock.
//!
//! A scheduler's driver owns a fixed number of [shards](shard), each a lock around two
//! [wheels](crate::wheel) (timers and sleeping tasks). A thread always arms into the same shard, so the
//! hot path (arm, cancel) takes one uncontended lock and touches no shared cache line: there is no
//! global lock. A [`TimerId`] names its shard, so a cancel from any thread goes straight to it. One
//! tokio task (the [loop](run)) sleeps until the earliest deadline of all shards, and runs what is
//! due with no lock held, so callbacks may arm, cancel and reschedule anything, their own timer
//! included. The driver knows nothing of workers, events or watches: the scheduler does, around it.
//!
//! # Ground rules
//!
//! A timer's record ([`Record`]) is in one of these states; with extras, [`RunState`] says which:
//! *armed* (it has a deadline in its wheel; `Idle`), *lent* (the driver holds its callback for a
//! run not started yet; `Lent`), *running* (`Running`), or *idle* (an owned one-shot after its run,
//! no deadline; `Idle`). A plain one-shot without extras is armed, or lent-or-running.
//!
//! 1. **Only the driver lends.** Under the shard's lock, the firing pass takes a due entry out of
//!    the wheel (it loses its deadline), swaps its callback for a placeholder, counts the run and
//!    marks it `Lent` ([`state::lend`]). Runs are lent in batches, then started one by one.
//! 2. **A lent run is checked just before it starts** ([`state::start`]), under the lock: if the
//!    record is gone (cancelled by an earlier callback of the batch, another thread, or shutdown)
//!    the run does not happen; if it has a deadline again (re-armed), the callback, the count and the
//!    missed ticks go back and the run does not happen; otherwise it becomes `Running`. Every
//!    operation that can make a lent run stale (cancel, reschedule, re-arm, detach, stop) moves its
//!    shard's *epoch* under the lock; a plain one-shot (no state to mark) whose shard's epoch has
//!    not moved since it was lent starts without taking the lock.
//! 3. **The driver hands back** after a run ([`state::finish`]), under the lock: a record cancelled
//!    meanwhile leaves the callback an orphan; one re-armed meanwhile keeps its new deadline; a panic
//!    under `cancel_on_panic` removes it (cancel callback with `Panicked`); a recurring one takes its
//!    next grid deadline; an owned one-shot stays idle; anything else is removed.
//! 4. **Anyone may cancel, in any state** ([`state::cancel`]): the record leaves the wheel under the
//!    lock, and its cancel callback runs (once, unlocked) only if a run was still to come: armed,
//!    recurring, or lent. A one-shot cancelled while running has nothing left to cancel.
//! 5. **Anyone may re-arm, in any state** (`reschedule`, `Timer::arm`): a new deadline under the
//!    lock, the state left as it is; rules 2 and 3 then see the deadline.
//! 6. **No user code runs under a shard lock**, and no user closure is dropped under one: callbacks,
//!    arm and cancel callbacks, and the destructors of removed records run unlocked.
//! 7. **The `wake_at` handshake** ([`handshake`], [`Driver::wake_if_earlier`]): at the start of each pass the
//!    driver stores `wake_at = u64::MAX`; before it sleeps, it stores the earliest deadline it found
//!    under the locks. An arm whose deadline is at or before `wake_at` lowers it and notifies; the
//!    notification keeps a permit, so one sent between the driver's look and its sleep is not lost.
//!    While the driver is awake every arm notifies, so nothing armed during a pass is missed.
//! 8. **Parking.** With no [`Scheduler`](crate::Scheduler) handle left and nothing pending, the
//!    driver's task ends (it *parks*) instead of waiting; nothing wakes periodically. It stores
//!    `parked`, then looks at the shards once more; an arm that finds `parked` set (rule 7's slow
//!    path) swaps it back and spawns the driver again. Exactly one of the two wins the swap, so the
//!    driver runs once or not at all. Stray holders (a [`Sleep`](crate::Sleep), a
//!    [`Timer`](crate::Timer), a ticker) can therefore arm after every handle is gone.
//! 9. **Stop is final.** [`Driver::stop`] sets `stopped` and empties every shard, running pending
//!    cancel callbacks with `Shutdown` and waking sleeping tasks; every operation checks `stopped`
//!    under the shard's lock and refuses with [`Error::Shutdown`] once it is set.
//!
//! The wheel's level table is documented in [`crate::wheel`].

mod alarm;
mod config;
mod fire;
mod handshake;
pub(crate) mod run;
mod shard;
mod sleeps;
pub(crate) mod spawned;
mod state;
mod timers;

pub(crate) use config::{Config, Hooks};
pub(crate) use sleeps::SleepKey;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::{TimeBase, nanos};
use crate::error::Error;
use crate::id::TimerId;
use crate::unwind::PanicReport;
use handshake::{Handshake, Wake};
use shard::{Shard, thread_number};

/// Everything a scheduler's driver shares between the handles that arm and its task.
pub(crate) struct Driver {
    pub(crate) time: TimeBase,
    shards: Box<[Shard]>,
    /// Rules 7 and 8: when arms wake the driver, who runs it after it parks.
    handshake: Handshake,
    notify: Notify,
    stopped: AtomicBool,
    /// `shutdown` has begun (a second call only waits for the first).
    shutting_down: AtomicBool,
    /// The last [`Scheduler`](crate::Scheduler) handle is gone: the driver may park (rule 8).
    handles_gone: AtomicBool,
    pub(crate) hooks: Hooks,
    /// The driver's task has ended for good (after a stop).
    task_done: AtomicBool,
    task_exit: Notify,
    /// Passes of the driver's loop, for tests of its idleness.
    passes: AtomicU64,
    /// The runtime the driver runs on: async runs, workers and watches are spawned there.
    pub(crate) runtime: tokio::runtime::Handle,
}

impl Driver {
    /// A driver with `config.shards` rounded up to a power of two (a thread finds its shard with a
    /// mask). Its task is not running yet: see [`run::spawn`].
    pub(crate) fn new(config: Config, runtime: tokio::runtime::Handle) -> Self {
        let Config { shards, hooks, wall, source } = config;
        Driver {
            time: TimeBase::new(wall, source),
            shards: (0..shards.max(1).next_power_of_two()).map(|_| Shard::default()).collect(),
            handshake: Handshake::default(),
            notify: Notify::new(),
            stopped: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            handles_gone: AtomicBool::new(false),
            hooks,
            task_done: AtomicBool::new(false),
            task_exit: Notify::new(),
            passes: AtomicU64::new(0),
            runtime,
        }
    }

    /// Marks the start of a shutdown; `true` if one had already begun (or the driver stopped).
    pub(crate) fn begin_shutdown(&self) -> bool {
        self.shutting_down.swap(true, Ordering::AcqRel) || self.is_stopped()
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// The last scheduler handle is gone: the driver parks once nothing is pending (rule 8).
    pub(crate) fn release_handles(&self) {
        self.handles_gone.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    fn local_shard(&self) -> (u32, &Shard) {
        let n = thread_number() & (self.shards.len() - 1);
        (n as u32, &self.shards[n])
    }

    fn shard(&self, id: TimerId) -> Result<&Shard, Error> {
        self.shards.get(id.shard as usize).ok_or_else(|| Error::NotFound)
    }

    /// The deadline `delay` from now, in wheel nanoseconds.
    pub(crate) fn deadline_in(&self, option: &'static str, delay: Duration) -> Result<u64, Error> {
        nanos(delay)
            .and_then(|d| self.time.arm_now().checked_add(d))
            .ok_or_else(|| Error::out_of_range(option))
    }

    /// Rule 7: tells the driver about a deadline it may not be sleeping for, and starts it again if
    /// it parked (rule 8).
    pub(crate) fn wake_if_earlier(self: &Arc<Self>, deadline: u64) {
        match self.handshake.armed(deadline) {
            Wake::Nothing => {}
            Wake::Notify => self.notify.notify_one(),
            Wake::Respawn => {
                self.notify.notify_one();
                run::respawn(self);
            }
        }
    }

    /// Reports a timer callback panic through `tracing` and the scheduler's hook.
    pub(crate) fn report_panic(&self, timer: Option<TimerId>, payload: &(dyn std::any::Any + Send)) {
        let source = timer.map_or_else(|| "timer arm callback".to_string(), |id| id.to_string());
        self.hooks.report(&PanicReport::new(timer, source, payload));
    }

    /// Timers and sleeps pending in every shard.
    pub(crate) fn pending(&self) -> usize {
        self.shards.iter().map(|s| s.with(|w| w.timers.len() + w.sleeps.len())).sum()
    }

    /// Rule 9: stops for good. Every pending timer's cancel callback runs with `Shutdown`, every
    /// sleeping task wakes. Returns the number of timers cancelled; 0 when already stopped.
    pub(crate) fn stop(&self) -> usize {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return 0;
        }
        let mut cancelled = 0;
        for (n, shard) in self.shards.iter().enumerate() {
            let (records, wakers) = shard.with(|wheels| {
                shard.bump(wheels);
                let keys: Vec<_> = wheels.timers.keys().collect();
                let records: Vec<_> = keys
                    .into_iter()
                    .filter_map(|key| state::cancel(&mut wheels.timers, key).map(|taken| (key, taken)))
                    .collect();
                let keys: Vec<_> = wheels.sleeps.keys().collect();
                let wakers: Vec<_> = keys.into_iter().filter_map(|key| wheels.sleeps.remove(key)).collect();
                (records, wakers)
            });
            for (key, (record, pending)) in records {
                let id = TimerId { shard: n as u32, key };
                self.finish_cancelled(id, record, pending, crate::record::CancelReason::Shutdown);
                cancelled += usize::from(pending);
            }
            wakers.into_iter().for_each(std::task::Waker::wake);
        }
        self.notify.notify_one();
        cancelled
    }
}

#[cfg(all(test, not(chime_loom)))]
mod tests;

#[cfg(all(test, chime_loom))]
mod loom_tests;
