//! chime's errors: one enum for the scheduler and its timers, plus [`Elapsed`] for timeouts.

use std::fmt;

/// What went wrong with a scheduler call.
///
/// ```
/// use chime::Error;
///
/// let err = Error::invalid("jitter", "must be smaller than 584 years");
/// assert_eq!(err.to_string(), "invalid option `jitter`: must be smaller than 584 years");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option, or a combination of options, that cannot work; names the option.
    #[error("{0}")]
    InvalidOption(InvalidOption),
    /// The timer was cancelled before (its cancel callback already ran).
    #[error("the timer was already cancelled")]
    AlreadyCancelled,
    /// No timer has this id any more: it fired (one-shot, detached), was cancelled, or never existed.
    /// Ids are never reused, so a stale id can never reach another timer.
    #[error("no timer with this id: it finished, was cancelled, or never existed")]
    NotFound,
    /// The scheduler has shut down; it accepts no more work.
    #[error("the scheduler has shut down")]
    Shutdown,
    /// The worker has stopped (closed, panicked or shut down) and takes no more items.
    #[error("the worker has stopped")]
    WorkerGone,
    /// A bounded worker's queue is full.
    #[error("the worker's queue is full")]
    QueueFull,
    /// An event name a named bus was not declared with.
    #[error("unknown event `{0}`: the bus was not declared with it")]
    UnknownEvent(String),
    /// A [`Ticker`](crate::Ticker) read with nothing counted and nothing armed: it would wait forever.
    #[error("the ticker is not armed and has no expirations to report")]
    NotArmed,
    /// The realtime clock jumped (it was set) under a ticker armed at an absolute wall-clock deadline
    /// (`timerfd`'s `TFD_TIMER_CANCEL_ON_SET`). Arm the ticker again to go on.
    #[error("the realtime clock was changed; the ticker's absolute deadline no longer holds")]
    ClockChanged,
    /// A cluster coordinator's store failed (unreachable, refused, corrupt). Cluster timers fail
    /// closed: the tick does not run.
    #[error("{backend} store: {message}")]
    Store {
        /// `sqlite`, `redis`, `postgres`, or a custom coordinator's name.
        backend: &'static str,
        /// What the store said.
        message: String,
    },
    /// A system call failed.
    #[error("{op} failed: {message}")]
    Io {
        /// The operation, e.g. `timerfd_create`.
        op: &'static str,
        /// The kind of the underlying `std::io::Error`.
        kind: std::io::ErrorKind,
        /// The underlying error's message.
        message: String,
    },
}

impl Error {
    /// An [`Error::InvalidOption`] naming `option` and why it was refused.
    ///
    /// ```
    /// let err = chime::Error::invalid("interval", "a recurring timer needs a non-zero interval");
    /// assert!(matches!(err, chime::Error::InvalidOption(ref o) if o.option() == "interval"));
    /// ```
    pub fn invalid(option: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidOption(InvalidOption { option, reason: reason.into() })
    }
}

impl Error {
    /// An [`Error::Store`] from a coordinator's backend.
    pub fn store(backend: &'static str, message: impl std::fmt::Display) -> Self {
        Error::Store { backend, message: message.to_string() }
    }

    pub(crate) fn io(op: &'static str, err: std::io::Error) -> Self {
        Error::Io { op, kind: err.kind(), message: err.to_string() }
    }
}

/// The option that was refused, and why.
///
/// ```
/// let chime::Error::InvalidOption(option) = chime::Error::invalid("jitter", "too large") else { unreachable!() };
/// assert_eq!(option.option(), "jitter");
/// assert_eq!(option.reason(), "too large");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOption {
    option: &'static str,
    reason: String,
}

impl InvalidOption {
    /// The option's name, as the builder method that sets it.
    pub fn option(&self) -> &'static str {
        self.option
    }

    /// Why the option was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for InvalidOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid option `{}`: {}", self.option, self.reason)
    }
}

/// The deadline of a [`Scheduler::timeout`](crate::Scheduler::timeout) or
/// [`Scheduler::wait_for`](crate::Scheduler::wait_for) passed first.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let sched = chime::Scheduler::start();
/// let slow = std::future::pending::<()>();
/// let err = sched.timeout(std::time::Duration::from_millis(5), slow).await.unwrap_err();
/// assert_eq!(err.to_string(), "deadline has elapsed");
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline has elapsed")]
pub struct Elapsed(pub(crate) ());
