//! The driver's operations on one timer, from any thread: arm, cancel, reschedule, re-arm, detach,
//! and the queries behind the [`Timer`](crate::Timer) handle. Each takes the timer's shard lock once
//! or twice, follows the ground rules (rules 4, 5 and 7), and runs user code only unlocked.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use super::{Driver, state};
use crate::clock::nanos;
use crate::error::Error;
use crate::id::TimerId;
use crate::record::{CancelFn, CancelReason, Extras, Grid, Plan, Record, RunState, draw};

/// Where a timer stands, for the [`Timer`](crate::Timer) handle's queries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimerState {
    pub(crate) deadline: Option<u64>,
    /// `None` for an owned one-shot still on the interval it was built with: the handle knows it.
    pub(crate) interval: Option<u64>,
    pub(crate) count: u64,
}

impl Driver {
    /// Arms `record` at `deadline` in this thread's shard.
    pub(crate) fn insert(self: &Arc<Self>, deadline: u64, record: Record) -> Result<TimerId, Error> {
        let (shard_no, shard) = self.local_shard();
        let mut wheels = shard.lock();
        if self.is_stopped() {
            drop(wheels);
            drop(record); // rule 6: user closures are never dropped under the lock
            return Err(Error::Shutdown);
        }
        let key = wheels.timers.insert(deadline, record);
        drop(wheels);
        self.wake_if_earlier(deadline);
        Ok(TimerId { shard: shard_no, key })
    }

    /// Rule 4: removes a timer; runs its cancel callback if a run was still to come.
    pub(crate) fn cancel(&self, id: TimerId, reason: CancelReason) -> Result<(), Error> {
        let shard = self.shard(id)?;
        let mut wheels = shard.lock();
        if self.is_stopped() {
            return Err(Error::Shutdown);
        }
        let (record, pending) = state::cancel(&mut wheels.timers, id.key).ok_or_else(|| Error::NotFound)?;
        shard.bump(&mut wheels);
        drop(wheels);
        self.finish_cancelled(id, record, pending, reason);
        Ok(())
    }

    /// After a record left its wheel by cancellation (unlocked): its cancel callback, if a run was
    /// still to come; then the record's closures are dropped.
    pub(crate) fn finish_cancelled(&self, id: TimerId, record: Record, pending: bool, reason: CancelReason) {
        let on_cancel = record.extras.and_then(|mut extras| extras.on_cancel.take());
        if let Some(on_cancel) = on_cancel.filter(|_| pending) {
            self.run_cancel(id, on_cancel, reason);
        }
    }

    pub(crate) fn run_cancel(&self, id: TimerId, on_cancel: CancelFn, reason: CancelReason) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| on_cancel(reason))) {
            self.report_panic(Some(id), &*payload);
        }
    }

    /// Knot's `reschedule` (rule 5): the next run at now + `delay`; a recurring timer continues from
    /// there.
    pub(crate) fn reschedule(self: &Arc<Self>, id: TimerId, delay: Duration) -> Result<(), Error> {
        let deadline = self.deadline_in("delay", delay)?;
        let shard = self.shard(id)?;
        let mut wheels = shard.lock();
        if self.is_stopped() {
            return Err(Error::Shutdown);
        }
        if !wheels.timers.contains(id.key) {
            return Err(Error::NotFound);
        }
        let armed = wheels.timers.deadline(id.key).is_some();
        match wheels.timers.extras_mut(id.key) {
            Some(extras) => {
                if let Some(grid) = extras.grid.as_mut() {
                    *grid = Grid::restart_at(deadline);
                }
                extras.missed = 0;
            }
            // A plain one-shot rescheduled: it now counts its runs. Unarmed, it is in its own run.
            None => {
                let (count, state) = if armed { (0, RunState::Idle) } else { (1, RunState::Running) };
                wheels.timers.attach(id.key, Box::new(Extras { count, state, ..Extras::default() }));
            }
        }
        wheels.timers.rearm(id.key, deadline);
        shard.bump(&mut wheels);
        drop(wheels);
        self.wake_if_earlier(deadline);
        Ok(())
    }

    /// [`Timer::arm`](crate::Timer::arm) (rule 5): restart with a new interval, as if newly armed.
    /// The arm callback runs first (Copas' order), with no shard lock held; concurrent re-arms each
    /// run it, one at a time (it sits behind its own mutex).
    pub(crate) fn rearm(self: &Arc<Self>, id: TimerId, interval: Duration) -> Result<(), Error> {
        let interval = nanos(interval).ok_or_else(|| Error::out_of_range("interval"))?;
        let on_arm = self.update(id, |extras| {
            if extras.fixed {
                return Err(Error::invalid(
                    "interval",
                    "a cluster timer's grid is shared: cancel it and build a new one",
                ));
            }
            Plan { interval, ..extras.plan }.validate()?;
            Ok((extras.on_arm.clone(), None))
        })?;
        if let Some(on_arm) = on_arm {
            let mut on_arm = on_arm.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(payload) = catch_unwind(AssertUnwindSafe(&mut *on_arm)) {
                self.report_panic(Some(id), &*payload);
            }
        }
        // A timer cancelled while its arm callback ran is `AlreadyCancelled` here.
        let deadline = self.update(id, |extras| {
            let plan = Plan { interval, ..extras.plan };
            let (deadline, grid) = plan.start(self.time.arm_now(), draw(plan.jitter))?;
            extras.plan = plan;
            extras.interval_in_handle = false;
            extras.grid = grid;
            extras.missed = 0;
            Ok((deadline, Some(deadline)))
        })?;
        self.wake_if_earlier(deadline);
        Ok(())
    }

    /// Runs `f` on a handle-owned timer's extras under its shard's lock, and re-arms the timer at
    /// the deadline `f` returns, if any, in the same critical section. A timer that is gone is
    /// [`Error::AlreadyCancelled`] (a handle's timer can only have been cancelled).
    fn update<R>(
        &self,
        id: TimerId,
        f: impl FnOnce(&mut Extras) -> Result<(R, Option<u64>), Error>,
    ) -> Result<R, Error> {
        let shard = self.shard(id)?;
        let mut wheels = shard.lock();
        if self.is_stopped() {
            return Err(Error::Shutdown);
        }
        let extras = wheels.timers.extras_mut(id.key);
        let (result, deadline) = f(extras.ok_or_else(|| Error::AlreadyCancelled)?)?;
        if let Some(deadline) = deadline {
            wheels.timers.rearm(id.key, deadline);
            shard.bump(&mut wheels);
        }
        Ok(result)
    }

    /// Hands a timer over from its [`Timer`](crate::Timer) handle to the scheduler.
    pub(crate) fn detach(&self, id: TimerId) {
        let Ok(shard) = self.shard(id) else { return };
        let mut wheels = shard.lock();
        let armed = wheels.timers.deadline(id.key).is_some();
        let idle = match wheels.timers.extras_mut(id.key) {
            Some(extras) => {
                extras.owned = false;
                !extras.is_pending(armed) && extras.state == RunState::Idle
            }
            None => return,
        };
        // An idle one-shot has nothing left to run: nobody could reach it any more.
        if idle {
            let record = wheels.timers.remove(id.key);
            shard.bump(&mut wheels);
            drop(wheels);
            drop(record);
        }
    }

    /// Whether the timer was built with `cancel_on_panic`.
    pub(crate) fn cancel_on_panic(&self, id: TimerId) -> bool {
        let Ok(shard) = self.shard(id) else { return false };
        shard.with(|w| w.timers.extras(id.key).is_some_and(|e| e.cancel_on_panic))
    }

    pub(crate) fn timer_state(&self, id: TimerId) -> Result<TimerState, Error> {
        let wheels = self.shard(id)?.lock();
        if !wheels.timers.contains(id.key) {
            return Err(Error::NotFound);
        }
        let (interval, count) = wheels
            .timers
            .extras(id.key)
            .map_or((None, 0), |e| ((!e.interval_in_handle).then_some(e.plan.interval), e.count));
        Ok(TimerState { deadline: wheels.timers.deadline(id.key), interval, count })
    }
}
