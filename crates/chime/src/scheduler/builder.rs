//! [`SchedulerBuilder`]: a scheduler's settings, turned into the driver's [`Config`] at start.

use std::sync::Arc;

use super::registry::Registry;
use super::{Lifecycle, Scheduler, Shared};
use crate::clock::WallClock;
use crate::driver::{self, Config, Driver, Hooks};
use crate::error::Error;
use crate::unwind::PanicReport;

/// The most shards a scheduler may have.
const MAX_SHARDS: usize = 1024;

/// Configures a [`Scheduler`] before it starts.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sched = chime::Scheduler::builder()
///     .shards(4)
///     .on_panic(|report| eprintln!("timer {:?} panicked: {}", report.timer(), report.message()))
///     .start();
/// # drop(sched); }
/// ```
#[derive(Default)]
#[must_use = "a builder does nothing until started"]
pub struct SchedulerBuilder {
    shards: Option<usize>,
    hooks: Hooks,
    wall: WallClock,
}

impl std::fmt::Debug for SchedulerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerBuilder").field("shards", &self.shards).finish_non_exhaustive()
    }
}

impl SchedulerBuilder {
    /// Number of shards (each a lock around a wheel; a thread always uses the same one), rounded up to
    /// a power of two. Default: twice the available parallelism, at most 64. Between 1 and 1024:
    /// another number is refused when the scheduler starts ([`Error::InvalidOption`] naming `shards`).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Called with every callback panic (after it is logged through `tracing`), on the thread where it
    /// was caught. A panic inside the hook itself is logged and otherwise ignored.
    pub fn on_panic(mut self, hook: impl Fn(&PanicReport) + Send + Sync + 'static) -> Self {
        self.hooks.on_panic = Some(Arc::new(hook));
        self
    }

    /// Called with the key and the error each time a cluster timer's store fails, so the tick did not
    /// run (after it is logged through `tracing`).
    pub fn on_cluster_error(mut self, hook: impl Fn(&str, &Error) + Send + Sync + 'static) -> Self {
        self.hooks.on_cluster_error = Some(Arc::new(hook));
        self
    }

    /// Where wall-clock time comes from (cluster timers number their ticks on it); default
    /// [`WallClock::System`]. Tests under tokio's paused clock use [`WallClock::FollowTokio`].
    pub fn wall_clock(mut self, wall: WallClock) -> Self {
        self.wall = wall;
        self
    }

    /// Starts the scheduler: spawns its driver on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Panics outside a tokio runtime, or with a number of [`shards`](Self::shards) out of range;
    /// [`try_start`](Self::try_start) returns the error instead.
    pub fn start(self) -> Scheduler {
        self.try_start().unwrap_or_else(|err| panic!("chime::SchedulerBuilder::start: {err}"))
    }

    /// Starts the scheduler on the current tokio runtime, or fails outside one.
    ///
    /// # Errors
    ///
    /// [`Error::NoRuntime`] when called outside a tokio runtime.
    ///
    /// ```
    /// assert!(chime::Scheduler::builder().try_start().is_err(), "no runtime here");
    /// ```
    pub fn try_start(self) -> Result<Scheduler, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        if let Some(shards) = self.shards.filter(|n| !(1..=MAX_SHARDS).contains(n)) {
            return Err(Error::invalid(
                "shards",
                format!("must be between 1 and {MAX_SHARDS}, not {shards}"),
            ));
        }
        let shards = self.shards.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            (cores * 2).min(64)
        });
        let config = Config { shards, hooks: self.hooks, wall: self.wall };
        let driver = Arc::new(Driver::new(config, runtime.clone()));
        let run = driver::run::run(driver.clone());
        let shared = Arc::new(Shared { driver, registry: Registry::default() });
        // The lifecycle's first stages are announced when the driver first runs, so a handler
        // subscribed before the caller's first `.await` sees them.
        let announcer = Arc::downgrade(&shared);
        runtime.spawn(async move {
            if let Some(shared) = announcer.upgrade() {
                for stage in [Lifecycle::Starting, Lifecycle::Started] {
                    drop(shared.registry.announce(stage));
                }
            }
            run.await;
        });
        Ok(Scheduler { shared })
    }
}
