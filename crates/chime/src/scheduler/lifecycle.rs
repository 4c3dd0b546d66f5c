//! The scheduler's own lifecycle events.

/// A stage of a scheduler's life, in order; delivered on [`Scheduler::lifecycle`](crate::Scheduler::lifecycle).
///
/// # Examples
///
/// ```
/// assert!(chime::Lifecycle::Starting < chime::Lifecycle::Stopped);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lifecycle {
    /// The driver is about to run.
    Starting,
    /// The driver runs: timers fire.
    Started,
    /// [`shutdown`](crate::Scheduler::shutdown) began; it waits for the handlers of this event before
    /// cancelling timers and draining workers.
    Stopping,
    /// Everything is cancelled, drained and handed back.
    Stopped,
}
