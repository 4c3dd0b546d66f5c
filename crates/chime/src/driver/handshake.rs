//! The handshake between the threads that arm and the driver's task (ground rules 7 and 8): when an
//! arm must wake the driver, and who runs the driver after it parks. Free of tokio: the caller turns
//! a [`Wake`] into a notification or a new task, so the loom tests drive this very code.

use std::sync::atomic::Ordering;

use crate::sync::{AtomicBool, AtomicU64};

/// What an arm must do after its entry became visible under its shard's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The driver sleeps until a deadline at or before this one, or is awake: nothing.
    Nothing,
    /// Notify the driver (it keeps the permit if it is not waiting yet).
    Notify,
    /// The driver had parked and this arm un-parked it: notify, and start its task again.
    Respawn,
}

/// The driver's side of rules 7 and 8, shared with every arming thread.
pub(crate) struct Handshake {
    /// The deadline the driver sleeps until; `u64::MAX` while it is awake (or parked).
    wake_at: AtomicU64,
    /// The driver's task has ended, to be started again by the next arm.
    parked: AtomicBool,
}

impl Default for Handshake {
    fn default() -> Self {
        Handshake { wake_at: AtomicU64::new(u64::MAX), parked: AtomicBool::new(false) }
    }
}

impl Handshake {
    /// Rule 7, the driver: a pass begins; from now on every arm notifies.
    pub(crate) fn awake(&self) {
        self.wake_at.store(u64::MAX, Ordering::SeqCst);
    }

    /// Rule 7, the driver: after looking at every shard, it sleeps until `at`.
    pub(crate) fn sleeping_until(&self, at: u64) {
        self.wake_at.store(at, Ordering::SeqCst);
    }

    /// Rules 7 and 8, an arming thread, after it armed `deadline` and released the shard's lock.
    pub(crate) fn armed(&self, deadline: u64) -> Wake {
        if deadline > self.wake_at.load(Ordering::SeqCst) {
            return Wake::Nothing;
        }
        self.wake_at.fetch_min(deadline, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) && self.parked.swap(false, Ordering::SeqCst) {
            Wake::Respawn
        } else {
            Wake::Notify
        }
    }

    /// Rule 8, the driver, with nothing pending: parks unless `pending()` (a look at every shard
    /// under its lock) finds something armed meanwhile. `true` when the task is to end: parked, or an
    /// arm already won the swap and started the next task.
    pub(crate) fn park(&self, pending: impl FnOnce() -> bool) -> bool {
        self.parked.store(true, Ordering::SeqCst);
        // An arm that missed `parked` made its entry visible under a shard lock taken before this look.
        if pending() {
            // Whoever swaps `parked` back runs the driver: this task, or the one an arm spawned.
            return !self.parked.swap(false, Ordering::SeqCst);
        }
        true
    }
}
