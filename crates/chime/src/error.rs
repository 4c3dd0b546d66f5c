//! chime's errors: one enum for the scheduler and its facilities, plus [`Elapsed`] for timeouts.
//! Errors of operations that take a value hand it back in their own types (see
//! [`PushError`](crate::PushError) and [`SendError`](crate::SendError)).

use std::fmt;
use std::sync::Arc;

use crate::id::WatchId;

/// What went wrong with a scheduler call.
///
/// # Examples
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
    /// No fd watch has this id any more: it was stopped, or its callback panicked.
    #[error("no {0}: it was stopped, or its callback panicked")]
    UnknownWatch(WatchId),
    /// A worker group has no member at this index.
    #[error("no member {index} in a worker group of {members}")]
    NoSuchMember {
        /// The index asked for.
        index: usize,
        /// How many members the group has.
        members: usize,
    },
    /// A scheduler was started outside a tokio runtime.
    #[error("no tokio runtime here: start a scheduler from async code or inside `Runtime::enter`")]
    NoRuntime,
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
        /// What the store said, or what went wrong on the way to it.
        message: String,
        /// The underlying error (the driver's), when there is one: what
        /// [`source`](std::error::Error::source) returns.
        #[source]
        source: Option<Cause>,
    },
    /// A system call failed.
    #[error("{op} failed: {source}")]
    Io {
        /// The operation, e.g. `timerfd_create`.
        op: &'static str,
        /// The kind of the underlying `std::io::Error`.
        kind: std::io::ErrorKind,
        /// The underlying `std::io::Error`: what [`source`](std::error::Error::source) returns.
        #[source]
        source: Cause,
    },
}

impl Error {
    /// An [`Error::InvalidOption`] naming `option` and why it was refused.
    ///
    /// # Examples
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
    /// An [`Error::Store`] from a coordinator's backend, saying what went wrong in words (no
    /// underlying error).
    ///
    /// # Examples
    ///
    /// ```
    /// let err = chime::Error::store("redis", "the claim timed out");
    /// assert_eq!(err.to_string(), "redis store: the claim timed out");
    /// assert!(std::error::Error::source(&err).is_none());
    /// ```
    pub fn store(backend: &'static str, message: impl fmt::Display) -> Self {
        Error::Store { backend, message: message.to_string(), source: None }
    }

    /// An [`Error::Store`] caused by `err`, the store driver's error, which
    /// [`source`](std::error::Error::source) then returns. The message is `err` and its own causes,
    /// joined (some drivers' errors say only "db error" without theirs).
    ///
    /// # Examples
    ///
    /// ```
    /// let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
    /// let err = chime::Error::store_error("postgres", io);
    /// assert_eq!(err.to_string(), "postgres store: reset by peer");
    /// let cause = std::error::Error::source(&err).unwrap();
    /// assert_eq!(cause.to_string(), "reset by peer");
    /// ```
    pub fn store_error(backend: &'static str, err: impl std::error::Error + Send + Sync + 'static) -> Self {
        let mut message = err.to_string();
        let mut cause = err.source();
        while let Some(inner) = cause {
            message.push_str(": ");
            message.push_str(&inner.to_string());
            cause = inner.source();
        }
        Error::Store { backend, message, source: Some(Cause::new(err)) }
    }

    /// An [`Error::InvalidOption`] for a duration or deadline past chime's range: the wheel counts
    /// `u64` nanoseconds from the scheduler's start, about 584 years.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = chime::Error::out_of_range("delay");
    /// assert_eq!(err.to_string(), "invalid option `delay`: exceeds chime's range of 584 years from the scheduler's start");
    /// ```
    // Cold and out of line: arming paths check ranges on every call and should not carry the
    // message's construction in their frame.
    #[cold]
    #[inline(never)]
    pub fn out_of_range(option: &'static str) -> Self {
        Error::invalid(option, "exceeds chime's range of 584 years from the scheduler's start")
    }

    pub(crate) fn io(op: &'static str, err: std::io::Error) -> Self {
        Error::Io { op, kind: err.kind(), source: Cause::new(err) }
    }
}

/// The underlying error of an [`Error::Io`] or [`Error::Store`], shared so that [`Error`] stays
/// `Clone`. It displays as the error it wraps; [`get_ref`](Self::get_ref) reaches it, for downcasting.
///
/// # Examples
///
/// ```
/// use std::error::Error as _;
/// let err = chime::Error::store_error("sqlite", std::io::Error::other("disk full"));
/// let cause = err.source().unwrap().downcast_ref::<chime::Cause>().unwrap();
/// assert!(cause.get_ref().downcast_ref::<std::io::Error>().is_some());
/// ```
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(Arc::new(err))
    }

    /// The underlying error.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = chime::Error::store_error("redis", std::io::Error::other("gone"));
    /// let chime::Error::Store { source: Some(cause), .. } = err else { unreachable!() };
    /// assert_eq!(cause.get_ref().to_string(), "gone");
    /// ```
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Two causes are equal when they say the same thing (errors have no equality of their own).
impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.to_string() == other.to_string()
    }
}

impl Eq for Cause {}

/// The option that was refused, and why.
///
/// # Examples
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
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let refused = sched.timer(std::time::Duration::ZERO).recurring().on_expire(|_| {}).arm();
    /// let Err(chime::Error::InvalidOption(invalid)) = refused else { unreachable!() };
    /// assert_eq!(invalid.option(), "interval");
    /// # }
    /// ```
    pub fn option(&self) -> &'static str {
        self.option
    }

    /// Why the option was refused.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let refused = sched.timer(std::time::Duration::ZERO).recurring().on_expire(|_| {}).arm();
    /// let Err(chime::Error::InvalidOption(invalid)) = refused else { unreachable!() };
    /// assert_eq!(invalid.reason(), "a recurring timer needs a non-zero interval");
    /// # }
    /// ```
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
/// # Examples
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
