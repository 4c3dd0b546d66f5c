//! Timer records: what a shard's wheel stores for each timer, what a callback sees of a run, and the
//! pure arithmetic of a timer's schedule. This layer knows nothing of tokio or of the driver's
//! locks; the driver moves records between the states of [`RunState`] by the rules written at the
//! top of [`crate::driver`].
//!
//! A plain detached one-shot (Knot's `after`) is just its callback; everything else lives in a boxed
//! [`Extras`], allocated only for timers that use it, so the common entry stays small.

mod fire;
pub(crate) mod plan;

pub use fire::{CancelReason, Fire, Missed};
pub(crate) use plan::{Grid, Plan, draw};

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// A synchronous expire callback, run on the driver.
pub(crate) type ExpireFn = Box<dyn FnMut(&Fire) + Send>;
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

/// One timer in the wheel.
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
}

impl Extras {
    /// Whether a run is still to come for a timer in this state (`armed`: it has a deadline): armed,
    /// recurring, or lent to the driver but not started. What a cancel callback and shutdown count.
    pub(crate) fn is_pending(&self, armed: bool) -> bool {
        armed || self.grid.is_some() || self.state == RunState::Lent
    }
}
