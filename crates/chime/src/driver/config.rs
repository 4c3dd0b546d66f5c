//! What a driver is started with ([`Config`]), and the hooks through which it reports what went
//! wrong in code it does not own: panics of callbacks, and cluster timers' store errors.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::clock::{TimeSource, WallClock};
use crate::error::Error;
use crate::unwind::PanicReport;

/// Called with every panic the scheduler catches.
pub(crate) type PanicHook = Arc<dyn Fn(&PanicReport) + Send + Sync>;
/// Called with a cluster timer's key and the store error that kept a tick from running.
pub(crate) type ClusterErrorHook = Arc<dyn Fn(&str, &Error) + Send + Sync>;

/// A driver's settings; [`SchedulerBuilder`](crate::SchedulerBuilder) fills them in.
pub(crate) struct Config {
    /// Shards to make (rounded up to a power of two).
    pub(crate) shards: usize,
    pub(crate) hooks: Hooks,
    pub(crate) wall: WallClock,
    pub(crate) source: TimeSource,
}

/// The user's hooks; each is optional, and a panic inside one is logged and otherwise ignored.
#[derive(Default, Clone)]
pub(crate) struct Hooks {
    pub(crate) on_panic: Option<PanicHook>,
    pub(crate) on_cluster_error: Option<ClusterErrorHook>,
}

impl Hooks {
    /// Reports a panic of anything the scheduler runs through `tracing` and the panic hook.
    pub(crate) fn report(&self, report: &PanicReport) {
        tracing::error!(source = %report.source(), "chime: panicked: {}", report.message());
        if let Some(hook) = &self.on_panic
            && catch_unwind(AssertUnwindSafe(|| hook(report))).is_err()
        {
            tracing::error!("chime panic hook panicked");
        }
    }

    /// Reports a cluster timer's store error (the tick did not run) through `tracing` and the hook.
    pub(crate) fn report_cluster_error(&self, key: &str, error: &Error) {
        tracing::warn!(key, "chime cluster timer: the tick did not run: {error}");
        if let Some(hook) = &self.on_cluster_error
            && catch_unwind(AssertUnwindSafe(|| hook(key, error))).is_err()
        {
            tracing::error!("chime cluster error hook panicked");
        }
    }
}
