//! Timer records: what a shard's wheel stores for each timer, what a callback sees of a run, and the
//! pure arithmetic of a timer's schedule. This layer knows nothing of tokio or of the driver's
//! locks; the driver moves records between the states of [`RunState`] by the rules written at the
//! top of [`crate::driver`].
//!
//! A plain detached one-shot (Knot's `after`) is just its callback; everything else lives in a boxed
//! [`Extras`] beside the wheel ([`Timers`]), allocated only for timers that use it, so the common
//! entry stays small (40 bytes). A one-shot owned by a [`Timer`](crate::Timer) handle with no other
//! option (Copas' and resty.timer's common case) is its callback too, marked [`Owned`]: its extras
//! are made only when something needs them.

mod fire;
pub(crate) mod plan;
mod side;
mod timers;

pub use fire::{CancelReason, Fire, Missed};
pub(crate) use plan::{Grid, Plan, draw};
pub(crate) use timers::Timers;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// A synchronous expire callback, run on the driver.
pub(crate) type ExpireFn = Box<dyn Expire>;
/// A cancel callback: runs at most once.
pub(crate) type CancelFn = Box<dyn FnOnce(CancelReason) + Send>;
/// Copas' arm callback.
pub(crate) type ArmFn = Box<dyn FnMut() + Send>;
/// The arm callback as a timer keeps it: shared, so re-arms from two threads both run it.
pub(crate) type SharedArmFn = Arc<Mutex<ArmFn>>;
/// An asynchronous expire callback: each run is a future.
pub(crate) type AsyncRun = Box<dyn FnMut(Fire) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A timer's expire callback as the builder collects it: synchronous (run on the driver) or
/// asynchronous (each run spawned as a task).
pub(crate) enum Run {
    Sync(ExpireFn),
    Async(AsyncRun),
}

/// An expire callback as a record holds it: the user's closure, perhaps marked [`Owned`].
pub(crate) trait Expire: Send {
    fn call(&mut self, fire: &Fire);

    /// Whether a record with no extras belongs to a [`Timer`](crate::Timer) handle.
    fn owned(&self) -> bool {
        false
    }
}

impl<F: FnMut(&Fire) + Send> Expire for F {
    fn call(&mut self, fire: &Fire) {
        self(fire);
    }
}

/// The builder's expire callback. The mark lives in the vtable, so an owned one-shot with no other
/// option needs no [`Extras`] (a malloc and a free on every arm + drop) and no wider entry, and a
/// zero-sized closure stays unallocated. Records with extras ignore it: `extras.owned` decides.
pub(crate) struct Owned<F>(pub(crate) F);

impl<F: FnMut(&Fire) + Send> Expire for Owned<F> {
    fn call(&mut self, fire: &Fire) {
        (self.0)(fire);
    }

    fn owned(&self) -> bool {
        true
    }
}

/// One timer taken whole: as it is armed, and as it leaves the wheel. In the wheel, its callback is
/// the entry's value and its extras sit beside it ([`Timers`]).
pub(crate) struct Record {
    pub(crate) expire: ExpireFn,
    pub(crate) extras: Option<Box<Extras>>,
}

/// Where a timer's run stands. Only the driver's ground rules (see [`crate::driver`]) move a record
/// from one state to another, always under its shard's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum RunState {
    /// No run in hand: the timer is armed, or it is an idle one-shot.
    #[default]
    Idle,
    /// The driver has taken the callback for a run that has not started: the run is still to come
    /// (a cancel now prevents it and runs the cancel callback; a re-arm takes it back).
    Lent,
    /// The run has started: for a one-shot, nothing is left to come.
    Running,
}

/// Everything but the callback, for timers that need more than a plain one-shot.
#[derive(Default)]
pub(crate) struct Extras {
    pub(crate) plan: Plan,
    /// The recurring grid; `None` for a one-shot.
    pub(crate) grid: Option<Grid>,
    /// Runs so far.
    pub(crate) count: u64,
    /// Ticks skipped before the armed run.
    pub(crate) missed: u64,
    pub(crate) on_cancel: Option<CancelFn>,
    pub(crate) on_arm: Option<SharedArmFn>,
    pub(crate) cancel_on_panic: bool,
    pub(crate) state: RunState,
    /// A cluster timer's heartbeat: its interval belongs to the cluster's grid and cannot be re-armed.
    pub(crate) fixed: bool,
    /// A [`Timer`](crate::Timer) handle owns it: a fired one-shot stays, idle, to be armed again.
    pub(crate) owned: bool,
    /// Made after arming for an [`Owned`] one-shot: `plan.interval` is unknown here, and the handle
    /// answers with the interval it was built with, until a re-arm sets a new one.
    pub(crate) interval_in_handle: bool,
}

impl Extras {
    /// Whether a run is still to come for a timer in this state (`armed`: it has a deadline): armed,
    /// recurring, or lent to the driver but not started. What a cancel callback and shutdown count.
    pub(crate) fn is_pending(&self, armed: bool) -> bool {
        armed || self.grid.is_some() || self.state == RunState::Lent
    }
}
