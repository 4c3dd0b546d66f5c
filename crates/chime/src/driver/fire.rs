//! The firing pass: take what is due out of every shard (rule 1), run it with no lock held after the
//! start-of-run check (rule 2), hand the callbacks back (rule 3).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::task::Waker;

use super::Driver;
use super::shard::Wheels;
use super::state::{self, Finished, Lent, Start};
use crate::id::TimerId;
use crate::record::{CancelFn, CancelReason, ExpireFn, Fire, Record};
use crate::wheel::Key;

/// Entries taken from one shard per pass, so a storm of expiries never holds a lock for long.
const BATCH: usize = 1024;
/// Batches per pass before the driver yields to the runtime.
const ROUNDS: usize = 16;

enum Job {
    Wake(Waker),
    /// `plain`: the record had no extras when lent; `epoch`: its shard's epoch then.
    Expire {
        key: Key,
        expire: ExpireFn,
        count: u64,
        missed: u64,
        plain: bool,
        epoch: u64,
    },
}

struct Due {
    deadline: u64,
    shard: u32,
    job: Job,
}

/// A run that finished: what the driver hands back to its shard.
struct Ran {
    id: TimerId,
    expire: ExpireFn,
    panicked: bool,
}

/// The firing pass's lists, kept by the driver's task from pass to pass (empty between passes).
///
/// Why kept: made anew, each pass grew them by doubling, and a request that large makes glibc's
/// malloc first merge every small block freed since (the callbacks just run), blocks the next arms
/// would have used again. The same goes for the sort's scratch space, hence the check before it.
#[derive(Default)]
pub(crate) struct Batches {
    due: Vec<Due>,
    ran: Vec<Ran>,
    /// Records done with, to be dropped unlocked (rule 6).
    dropped: Vec<Record>,
}

impl Batches {
    /// Room kept between passes: a full batch of sleeps and timers from one shard. A storm over many
    /// shards gives the rest back.
    const KEPT: usize = 2 * BATCH;

    fn trim(&mut self) {
        self.due.shrink_to(Self::KEPT);
        self.ran.shrink_to(Self::KEPT);
        self.dropped.shrink_to(Self::KEPT);
    }
}

impl Driver {
    /// Runs what is due at `now`, in deadline order across shards. Returns `true` when it stopped
    /// with more due, so the caller yields to the runtime before the next pass (a callback that keeps
    /// re-arming itself at once must not starve every other task).
    pub(crate) fn fire_due(&self, now: u64, batches: &mut Batches) -> bool {
        let more = self.fire_rounds(now, batches);
        batches.trim();
        more
    }

    fn fire_rounds(&self, now: u64, batches: &mut Batches) -> bool {
        let Batches { due, ran, dropped } = batches;
        for _ in 0..ROUNDS {
            for (n, shard) in self.shards.iter().enumerate() {
                let mut wheels = shard.lock();
                take_due(&mut wheels, n as u32, shard.epoch(), now, due);
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
                    Job::Expire { key, expire, count, missed, plain, epoch } => {
                        let id = TimerId { shard, key };
                        let shard_of = &self.shards[shard as usize];
                        // Rule 2 without the lock: nothing that could have cancelled or re-armed a
                        // plain timer happened in its shard since it was lent (a plain record has
                        // no state to mark Running).
                        let start = if plain && shard_of.epoch() == epoch {
                            Start::Run(expire)
                        } else {
                            shard_of.with(|w| state::start(&mut w.timers, key, expire, missed))
                        };
                        let mut expire = match start {
                            Start::Run(expire) => expire,
                            Start::Cancelled(orphan) => {
                                drop(orphan); // rule 6: dropped unlocked
                                continue;
                            }
                            Start::Rearmed => continue,
                        };
                        let scheduled = self.time.to_instant(deadline);
                        let fire = Fire { id, count, missed, scheduled, fence: None, tick: None };
                        let panicked = match catch_unwind(AssertUnwindSafe(|| expire.call(&fire))) {
                            Ok(()) => false,
                            Err(payload) => {
                                self.report_panic(Some(id), &*payload);
                                true
                            }
                        };
                        ran.push(Ran { id, expire, panicked });
                    }
                }
            }
            self.hand_back(ran, dropped);
            if self.stopped.load(Ordering::Acquire) {
                return false;
            }
        }
        true
    }

    /// Rule 3 for each run of the batch, one lock per shard; then, unlocked, the cancel callbacks of
    /// timers that panicked under `cancel_on_panic`, and the drops of what left the wheels.
    fn hand_back(&self, ran: &mut Vec<Ran>, dropped: &mut Vec<Record>) {
        let now = self.time.now();
        let mut cancels: Vec<(TimerId, CancelFn)> = Vec::new();
        let mut orphans: Vec<ExpireFn> = Vec::new();
        // Stable: within a shard, runs are handed back in the order they ran (equal deadlines stay
        // in arming order). Checked first, as a batch from one shard is sorted already: the sort
        // would allocate its scratch space all the same (see `Batches` for what that costs).
        if !ran.is_sorted_by_key(|r| r.id.shard) {
            ran.sort_by_key(|r| r.id.shard);
        }
        let mut runs = ran.drain(..).peekable();
        while let Some(first) = runs.next() {
            let shard = first.id.shard;
            let mut wheels = self.shards[shard as usize].lock();
            for run in
                std::iter::once(first).chain(std::iter::from_fn(|| runs.next_if(|r| r.id.shard == shard)))
            {
                match state::finish(&mut wheels.timers, run.id.key, run.expire, run.panicked, now) {
                    Finished::Kept => {}
                    Finished::Orphan(expire) => orphans.push(expire),
                    Finished::Removed(record) => dropped.push(record),
                    Finished::Cancelled(mut record) => {
                        if let Some(on_cancel) = record.extras.as_mut().and_then(|e| e.on_cancel.take()) {
                            cancels.push((run.id, on_cancel));
                        }
                        dropped.push(record);
                    }
                }
            }
        }
        for (id, on_cancel) in cancels {
            self.run_cancel(id, on_cancel, CancelReason::Panicked);
        }
        // Rule 6: user closures are dropped here, unlocked: their destructors may call back in.
        drop(orphans);
        dropped.clear();
    }
}

/// Moves what is due in one shard into `due`: sleeping tasks' wakers, and timers' callbacks lent to
/// the driver (rule 1).
fn take_due(wheels: &mut Wheels, shard: u32, epoch: u64, now: u64, due: &mut Vec<Due>) {
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
        if let Some(Lent { deadline, expire, count, missed, plain }) =
            state::lend(&mut wheels.timers, key, now)
        {
            due.push(Due { deadline, shard, job: Job::Expire { key, expire, count, missed, plain, epoch } });
        }
    }
}

#[cfg(all(test, not(chime_loom)))]
#[path = "fire_tests.rs"]
mod tests;
