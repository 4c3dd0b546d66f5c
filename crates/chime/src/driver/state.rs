//! The run state machine of a timer: the transitions of the ground rules (see the [driver](super)),
//! as pure functions over one shard's timer wheel. The caller holds the shard's lock; nothing here
//! runs user code or drops a user closure (they come back to the caller, to be dropped unlocked).

use std::mem;

use crate::record::{ExpireFn, Fire, Missed, Record, RunState, Timers};
use crate::wheel::Key;

/// The callback a record holds while the driver has lent its own out.
fn placeholder(_: &Fire) {}

/// A run taken out of the wheel (rule 1): the callback, the run's number and the ticks it stands for.
pub(crate) struct Lent {
    pub(crate) deadline: u64,
    pub(crate) expire: ExpireFn,
    pub(crate) count: u64,
    pub(crate) missed: u64,
    /// A plain one-shot (no extras): no state to track.
    pub(crate) plain: bool,
}

/// Rule 1: the driver lends itself the callback of `key`, just polled as due at `now` (its deadline
/// is gone). Under [`Missed::Skip`], a recurring timer found late runs once for the latest passed
/// tick and counts the others as missed.
pub(crate) fn lend(timers: &mut Timers, key: Key, now: u64) -> Option<Lent> {
    if let Some((deadline, expire)) = timers.lend_plain(key, Box::new(placeholder)) {
        return Some(Lent { deadline, expire, count: 1, missed: 0, plain: true });
    }
    let mut deadline = timers.scheduled(key).unwrap_or(now);
    // An owned one-shot gets its extras now, while its callback still carries the mark: from here
    // on it has a run state and a count like any timer with extras.
    let extras = timers.extras_mut(key);
    let plain = extras.is_none();
    let (count, missed) = match extras {
        Some(extras) => {
            let mut missed = mem::take(&mut extras.missed);
            if let (Some(grid), Missed::Skip) = (extras.grid.as_mut(), extras.plan.missed)
                && let Some((latest, skipped)) = grid.catch_up(extras.plan.interval, now)
            {
                deadline = latest;
                missed += skipped;
            }
            extras.count += 1;
            extras.state = RunState::Lent;
            (extras.count, missed)
        }
        None => (1, 0),
    };
    let expire = mem::replace(timers.expire_mut(key)?, Box::new(placeholder));
    Some(Lent { deadline, expire, count, missed, plain })
}

/// What rule 2 decided about a lent run.
pub(crate) enum Start {
    /// The run goes ahead with this callback; the record is `Running`.
    Run(ExpireFn),
    /// The timer was cancelled meanwhile: the run does not happen; drop the callback unlocked.
    Cancelled(ExpireFn),
    /// The timer was re-armed meanwhile: the run does not happen; the callback, the run count and the
    /// missed ticks went back to the record, which is `Idle` and armed.
    Rearmed,
}

/// Rule 2: just before a lent run starts, checks that its timer is still there and still unarmed.
pub(crate) fn start(timers: &mut Timers, key: Key, expire: ExpireFn, missed: u64) -> Start {
    let Some(record) = timers.get_mut(key) else { return Start::Cancelled(expire) };
    if record.armed {
        *record.expire = expire;
        if let Some(extras) = record.extras {
            extras.count -= 1;
            extras.missed += missed;
            extras.state = RunState::Idle;
        }
        return Start::Rearmed;
    }
    if let Some(extras) = record.extras {
        extras.state = RunState::Running;
    }
    Start::Run(expire)
}

/// What rule 3 decided after a run.
pub(crate) enum Finished {
    /// The entry stays: re-armed (during the run, or for its next tick), or an owned one-shot idle.
    Kept,
    /// The entry was cancelled during the run: the callback has no home; drop it unlocked.
    Orphan(ExpireFn),
    /// The entry is done and removed; drop it unlocked.
    Removed(Record),
    /// Its callback panicked under `cancel_on_panic`: removed; run its cancel callback unlocked.
    Cancelled(Record),
}

/// Rule 3: hands the callback back after a run that ended at `now`, and decides the timer's future.
pub(crate) fn finish(timers: &mut Timers, key: Key, expire: ExpireFn, panicked: bool, now: u64) -> Finished {
    let Some(record) = timers.get_mut(key) else { return Finished::Orphan(expire) };
    let rearmed = record.armed;
    *record.expire = expire;
    let Some(extras) = record.extras else {
        return if rearmed { Finished::Kept } else { Finished::Removed(remove(timers, key)) };
    };
    extras.state = RunState::Idle;
    if rearmed {
        return Finished::Kept; // rescheduled or re-armed while it ran
    }
    if panicked && extras.cancel_on_panic {
        return Finished::Cancelled(remove(timers, key));
    }
    if let Some(grid) = extras.grid.as_mut() {
        let (deadline, missed) = grid.advance(extras.plan.interval, extras.plan.missed, now);
        extras.missed = missed;
        timers.rearm(key, deadline);
        return Finished::Kept;
    }
    if extras.owned { Finished::Kept } else { Finished::Removed(remove(timers, key)) }
}

/// Rule 4: removes a cancelled timer; `Some((record, pending))` where `pending` says whether a run
/// was still to come (then its cancel callback runs, unlocked).
pub(crate) fn cancel(timers: &mut Timers, key: Key) -> Option<(Record, bool)> {
    let (record, armed) = timers.remove_armed(key)?;
    let pending = record.extras.as_ref().map_or(armed, |extras| extras.is_pending(armed));
    Some((record, pending))
}

fn remove(timers: &mut Timers, key: Key) -> Record {
    timers.remove(key).expect("the caller found the entry under the same lock")
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
