//! A shard: one lock around a wheel of timers and a wheel of sleeping tasks.
//!
//! Each thread arms into its own shard (chosen once per thread), so threads arming and cancelling at
//! once do not share a lock or a cache line; the driver visits every shard when it runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use crate::timer::record::Record;
use crate::wheel::Wheel;

/// The contents of a shard's lock.
#[derive(Default)]
pub(crate) struct Wheels {
    pub(crate) timers: Wheel<Record>,
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
#[derive(Default)]
pub(crate) struct Shard {
    wheels: Mutex<Wheels>,
}

impl Shard {
    /// Locks the shard. No user code ever runs under this lock, so it cannot be poisoned by a callback;
    /// should it be poisoned anyway, the wheels are still consistent (every operation on them is
    /// complete before any call that could panic), so the guard is taken back.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Wheels> {
        self.wheels.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// This thread's number, handed out once per thread; a scheduler maps it onto one of its shards.
pub(crate) fn thread_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|n| *n)
}
