//! Shutdown: the order in which a scheduler stops its facilities and its driver, and what it reports.

use super::registry::Phase;
use super::{Lifecycle, Scheduler};

/// What [`Scheduler::shutdown`] did.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// let sched = chime::Scheduler::start();
/// sched.recurrent(std::time::Duration::from_secs(1), |_| {})?;
/// assert_eq!(sched.shutdown().await.timers_cancelled, 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Pending timers cancelled with [`CancelReason::Shutdown`](crate::CancelReason::Shutdown).
    pub timers_cancelled: usize,
    /// Workers closed and drained (event handlers included).
    pub workers_closed: usize,
    /// Items the workers left unprocessed: handed back through each [`Worker::join`](crate::Worker::join).
    pub items_unprocessed: usize,
    /// fd watches stopped.
    pub watches_stopped: usize,
}

impl Scheduler {
    /// Stops the scheduler, in this order: [`Lifecycle::Stopping`](crate::Lifecycle::Stopping) is
    /// dispatched and its handlers waited for; every pending timer's cancel callback runs with
    /// [`CancelReason::Shutdown`](crate::CancelReason::Shutdown) and sleeping tasks wake; workers are closed and drained (what they
    /// did not process is handed back through their [`Worker::join`](crate::Worker::join)); fd watches
    /// stop; [`Lifecycle::Stopped`](crate::Lifecycle::Stopped) is dispatched and its handlers waited
    /// for; the driver exits. Later calls that arm or cancel return [`Error::Shutdown`](crate::Error::Shutdown); a second
    /// shutdown reports nothing.
    ///
    /// Shutdown waits for every worker to end, as Copas' workers drain: a worker that keeps running
    /// after its `pop` returned `None` holds shutdown up (bound it with
    /// [`timeout`](Self::timeout) if that can happen).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// sched.after(std::time::Duration::from_secs(1), |_| {})?;
    /// assert_eq!(sched.shutdown().await.timers_cancelled, 1);
    /// assert_eq!(sched.after(std::time::Duration::from_secs(1), |_| {}), Err(chime::Error::Shutdown));
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(&self) -> ShutdownReport {
        let driver = self.driver();
        let registry = &self.shared.registry;
        if driver.begin_shutdown() {
            driver.task_exited().await;
            return ShutdownReport::default();
        }
        registry.announce_start(); // a shutdown before the driver's first run comes after its start
        registry.announce(Lifecycle::Stopping).await;
        let timers_cancelled = driver.stop();
        let (workers, items_unprocessed) = registry.close_workers(Phase::Work).await;
        let watches_stopped = registry.stop_tasks();
        registry.announce(Lifecycle::Stopped).await;
        let (handlers, _) = registry.close_workers(Phase::Lifecycle).await;
        driver.task_exited().await;
        ShutdownReport {
            timers_cancelled,
            workers_closed: workers + handlers,
            items_unprocessed,
            watches_stopped,
        }
    }
}
