//! The firing pass: take what is due out of every shard, run it with no lock held, re-arm.

use std::mem;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::task::Waker;

use super::Inner;
use super::shard::Wheels;
use crate::timer::record::{CancelFn, ExpireFn, Record};
use crate::timer::{CancelReason, Fire, Missed, TimerId};
use crate::wheel::Key;

/// Entries taken from one shard per pass, so a storm of expiries never holds a lock for long.
const BATCH: usize = 1024;

enum Job {
    Wake(Waker),
    Expire { key: Key, expire: ExpireFn, count: u64, missed: u64 },
}

struct Due {
    deadline: u64,
    shard: u32,
    job: Job,
}

/// A run that finished: what the driver hands back to its shard.
struct Ran {
    shard: u32,
    key: Key,
    expire: ExpireFn,
    panicked: bool,
}

fn placeholder(_: &Fire) {}

impl Inner {
    /// Runs what is due at `now`, in deadline order across shards. Returns `true` when it stopped
    /// with more due, so the caller yields to the runtime before the next pass (a callback that keeps
    /// re-arming itself at once must not starve every other task).
    pub(crate) fn fire_due(&self, now: u64) -> bool {
        const ROUNDS: usize = 16;
        let mut due = Vec::new();
        let mut ran = Vec::new();
        for _ in 0..ROUNDS {
            for (n, shard) in self.shards.iter().enumerate() {
                take_due(&mut shard.lock(), n as u32, now, &mut due);
            }
            if due.is_empty() {
                return false;
            }
            if !due.is_sorted_by_key(|d| d.deadline) {
                due.sort_by_key(|d| d.deadline);
            }
            for Due { deadline, shard, job } in due.drain(..) {
                match job {
                    Job::Wake(waker) => waker.wake(),
                    Job::Expire { key, mut expire, count, missed } => {
                        let id = TimerId { shard, key };
                        // The run was lent out with the batch: a callback earlier in it, or another
                        // thread, may have cancelled or re-armed the timer since. Then it must not run.
                        match self.start_run(id, expire, missed) {
                            Ok(lent) => expire = lent,
                            Err(Some(orphan)) => {
                                drop(orphan); // cancelled: its callback goes, outside the lock
                                continue;
                            }
                            Err(None) => continue, // re-armed: the callback is back in its entry
                        }
                        let fire = Fire {
                            id,
                            count,
                            missed,
                            scheduled: self.time.to_instant(deadline),
                            fence: None,
                            tick: None,
                        };
                        let panicked = match catch_unwind(AssertUnwindSafe(|| expire(&fire))) {
                            Ok(()) => false,
                            Err(payload) => {
                                self.report_panic(Some(id), &*payload);
                                true
                            }
                        };
                        ran.push(Ran { shard, key, expire, panicked });
                    }
                }
            }
            self.hand_back(&mut ran);
            if self.stopped.load(Ordering::Acquire) {
                return false;
            }
        }
        true
    }

    /// Marks a lent run as started, if its timer is still there and still unarmed. Otherwise: a
    /// cancelled timer's callback comes back as `Err(Some)` to be dropped; a re-armed timer gets its
    /// callback (and the run count and missed ticks the loan took) back, `Err(None)`.
    fn start_run(&self, id: TimerId, expire: ExpireFn, missed: u64) -> Result<ExpireFn, Option<ExpireFn>> {
        let mut wheels = self.shards[id.shard as usize].lock();
        let armed = wheels.timers.deadline(id.key).is_some();
        let Some(record) = wheels.timers.get_mut(id.key) else { return Err(Some(expire)) };
        if armed {
            record.expire = expire;
            if let Some(extras) = record.extras.as_mut() {
                extras.count -= 1;
                extras.missed += missed;
                extras.lent = false;
            }
            return Err(None);
        }
        if let Some(extras) = record.extras.as_mut() {
            extras.lent = false;
            extras.running = true;
        }
        Ok(expire)
    }

    /// Gives each run's callback back to its entry and re-arms what recurs.
    fn hand_back(&self, ran: &mut Vec<Ran>) {
        let now = self.time.now();
        let mut cancels: Vec<(TimerId, CancelFn)> = Vec::new();
        let mut dropped: Vec<Record> = Vec::new();
        let mut orphans: Vec<ExpireFn> = Vec::new();
        for (n, shard) in self.shards.iter().enumerate() {
            if !ran.iter().any(|r| r.shard as usize == n) {
                continue;
            }
            let mut wheels = shard.lock();
            for run in ran.iter_mut().filter(|r| r.shard as usize == n) {
                let expire = mem::replace(&mut run.expire, Box::new(placeholder));
                let id = TimerId { shard: run.shard, key: run.key };
                match finish(&mut wheels, id, expire, run.panicked, now) {
                    Finished::Kept => {}
                    Finished::Orphan(expire) => orphans.push(expire),
                    Finished::Removed(record) => dropped.push(record),
                    Finished::Cancelled(mut record) => {
                        if let Some(on_cancel) = record.extras.as_mut().and_then(|e| e.on_cancel.take()) {
                            cancels.push((id, on_cancel));
                        }
                        dropped.push(record);
                    }
                }
            }
        }
        ran.clear();
        for (id, on_cancel) in cancels {
            self.run_cancel(id, on_cancel, CancelReason::Panicked);
        }
        // User closures are dropped here, with no lock held: their destructors may call back in.
        drop((dropped, orphans));
    }
}

/// Moves what is due in one shard into `due`, lending each timer's callback to the driver.
fn take_due(wheels: &mut Wheels, shard: u32, now: u64, due: &mut Vec<Due>) {
    let limit = due.len() + BATCH;
    while due.len() < limit {
        let Some(key) = wheels.sleeps.poll(now) else { break };
        let deadline = wheels.sleeps.scheduled(key).unwrap_or(now);
        if let Some(waker) = wheels.sleeps.remove(key) {
            due.push(Due { deadline, shard, job: Job::Wake(waker) });
        }
    }
    let limit = due.len() + BATCH;
    while due.len() < limit {
        let Some(key) = wheels.timers.poll(now) else { break };
        let mut deadline = wheels.timers.scheduled(key).unwrap_or(now);
        let Some(record) = wheels.timers.get_mut(key) else { continue };
        let expire = mem::replace(&mut record.expire, Box::new(placeholder));
        let (count, missed) = match record.extras.as_mut() {
            Some(extras) => {
                let mut missed = mem::take(&mut extras.missed);
                if let (Some(grid), Missed::Skip) = (extras.grid.as_mut(), extras.plan.missed)
                    && let Some((latest, skipped)) = grid.catch_up(extras.plan.interval, now)
                {
                    deadline = latest;
                    missed += skipped;
                }
                extras.count += 1;
                extras.lent = true;
                (extras.count, missed)
            }
            None => (1, 0),
        };
        due.push(Due { deadline, shard, job: Job::Expire { key, expire, count, missed } });
    }
}

enum Finished {
    /// The entry stays: re-armed, or an owned one-shot now idle.
    Kept,
    /// The entry is gone (cancelled during its run): the callback has no home.
    Orphan(ExpireFn),
    /// The entry is done and removed.
    Removed(Record),
    /// Cancelled because its callback panicked: run its cancel callback.
    Cancelled(Record),
}

/// Decides a timer's future after a run that ended at `now`.
fn finish(wheels: &mut Wheels, id: TimerId, expire: ExpireFn, panicked: bool, now: u64) -> Finished {
    let timers = &mut wheels.timers;
    let Some(record) = timers.get_mut(id.key) else { return Finished::Orphan(expire) };
    record.expire = expire;
    let rearmed = timers.deadline(id.key).is_some();
    let record = timers.get_mut(id.key).expect("checked above");
    let Some(extras) = record.extras.as_mut() else {
        return if rearmed {
            Finished::Kept
        } else {
            Finished::Removed(timers.remove(id.key).expect("present"))
        };
    };
    extras.running = false;
    if rearmed {
        return Finished::Kept; // rescheduled or re-armed from inside its own run
    }
    if panicked && extras.cancel_on_panic {
        return Finished::Cancelled(timers.remove(id.key).expect("present"));
    }
    if let Some(grid) = extras.grid.as_mut() {
        let (deadline, missed) = grid.advance(extras.plan.interval, extras.plan.missed, now);
        extras.missed = missed;
        timers.rearm(id.key, deadline);
        return Finished::Kept;
    }
    if extras.owned { Finished::Kept } else { Finished::Removed(timers.remove(id.key).expect("present")) }
}
