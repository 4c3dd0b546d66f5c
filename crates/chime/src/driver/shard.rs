//! A shard: one lock around a wheel of timers and a wheel of sleeping tasks.
//!
//! Each thread arms into its own shard (chosen once per thread), so threads arming and cancelling at
//! once do not share a lock or a cache line; the driver visits every shard when it runs.
//!
//! The lock is a spin lock that yields the thread while it waits. Its holders never run user code
//! and hold it for an O(1) wheel operation, or for one bounded batch of expiries (the driver), so a
//! waiter spins briefly; in exchange, releasing it is a plain store instead of the atomic
//! read-modify-write a parking mutex needs to look for sleepers, which measurably shortens arm and
//! cancel (`chime-bench`, workload 1).

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Waker;

use crate::sync::{AtomicU64, Lock};

use crate::record::Timers;
use crate::wheel::Wheel;

/// The contents of a shard's lock.
#[derive(Default)]
pub(crate) struct Wheels {
    pub(crate) timers: Timers,
    pub(crate) sleeps: Wheel<Waker>,
}

impl Wheels {
    /// The earliest time either wheel may have something due.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        match (self.timers.next_deadline(), self.sleeps.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Padded to its own cache lines so two threads' shards never share one.
#[repr(align(128))]
pub(crate) struct Shard {
    wheels: Lock<Wheels>,
    /// Counts the operations that can make a lent run stale (cancel, reschedule, re-arm, detach,
    /// stop). Changed only under the lock, read without it: a lent run of a plain timer whose
    /// shard's epoch has not moved since it was lent starts without taking the lock (rule 2).
    epoch: AtomicU64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { wheels: Lock::new(Wheels::default()), epoch: AtomicU64::new(0) }
    }
}

impl Shard {
    /// The shard's epoch (see the field).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Moves the epoch on; the caller holds the lock (`_held` proves it), so a load and a store
    /// suffice.
    pub(crate) fn bump(&self, _held: &mut Wheels) {
        self.epoch.store(self.epoch.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    /// Locks the shard. No user code ever runs under this lock.
    pub(crate) fn lock(&self) -> impl std::ops::DerefMut<Target = Wheels> + '_ {
        self.wheels.lock()
    }

    /// Runs `f` under the shard's lock.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Wheels) -> R) -> R {
        f(&mut self.lock())
    }
}

/// This thread's number, handed out once per thread; a scheduler maps it onto one of its shards.
///
/// A constant-initialised thread-local (no lazy-init state to check, no call on every arm); the
/// number is drawn on the thread's first arm.
#[inline]
pub(crate) fn thread_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    NUMBER.with(|n| match n.get() {
        usize::MAX => {
            let drawn = NEXT.fetch_add(1, Ordering::Relaxed) & (usize::MAX >> 1);
            n.set(drawn);
            drawn
        }
        drawn => drawn,
    })
}
