//! The errors of handing an item to a worker, one per operation, each handing the item back
//! (crossbeam-channel's way): [`PushError`] for [`Worker::push`](super::Worker::push), which never
//! waits, and [`SendError`] for [`Worker::send`](super::Worker::send), which waits for room.

use std::fmt;

use crate::error::Error;

/// A push that was refused; the item comes back with the reason.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sched = chime::Scheduler::start();
/// let worker = sched.worker(|_queue: chime::Queue<u8>| async {});
/// worker.close();
/// let refused = worker.push(5).unwrap_err();
/// assert!(refused.is_gone());
/// assert_eq!(refused.into_inner(), 5);
/// # }
/// ```
#[derive(PartialEq, Eq)]
pub enum PushError<T> {
    /// A bounded worker's queue is full.
    Full(T),
    /// The worker is closed or has ended (it returned, panicked, or the scheduler shut down).
    Gone(T),
}

impl<T> PushError<T> {
    /// The item that was not queued.
    ///
    /// # Examples
    ///
    /// ```
    /// let refused = chime::PushError::Full("job");
    /// assert_eq!(refused.into_inner(), "job");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(item) | PushError::Gone(item) => item,
        }
    }

    /// Whether the queue was full (a later push may succeed).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let worker = sched.worker_builder().bounded(1).spawn(|_queue: chime::Queue<u8>| std::future::pending());
    /// worker.push(1).unwrap();
    /// assert!(worker.push(2).unwrap_err().is_full());
    /// # }
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, PushError::Full(_))
    }

    /// Whether the worker is gone (no push will ever succeed).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(chime::PushError::Gone(1).is_gone());
    /// assert!(!chime::PushError::Full(1).is_gone());
    /// ```
    pub fn is_gone(&self) -> bool {
        matches!(self, PushError::Gone(_))
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "Full(..)",
            PushError::Gone(_) => "Gone(..)",
        })
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "the worker's queue is full",
            PushError::Gone(_) => "the worker has stopped",
        })
    }
}

impl<T> std::error::Error for PushError<T> {}

impl<T> From<PushError<T>> for Error {
    fn from(err: PushError<T>) -> Self {
        match err {
            PushError::Full(_) => Error::QueueFull,
            PushError::Gone(_) => Error::WorkerGone,
        }
    }
}

/// A send that could not be made because the worker is gone (closed, ended, panicked, or the
/// scheduler shut down); the item comes back.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sched = chime::Scheduler::start();
/// let worker = sched.worker(|_queue: chime::Queue<&str>| async {});
/// worker.close();
/// let refused = worker.send("report").await.unwrap_err();
/// assert_eq!(refused.to_string(), "the worker has stopped");
/// assert_eq!(refused.into_inner(), "report");
/// # }
/// ```
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The item that was not queued.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(chime::SendError(7).into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the worker has stopped")
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T> From<SendError<T>> for Error {
    fn from(_: SendError<T>) -> Self {
        Error::WorkerGone
    }
}
