//! Panics: catching them (in futures as in plain calls) and describing them as [`PanicReport`]s, so
//! a panicking callback, worker or watch is reported instead of lost.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::id::TimerId;

/// A panic's payload.
pub(crate) type Payload = Box<dyn std::any::Any + Send>;

/// A future whose panics come out as `Err(payload)`.
pub(crate) struct CatchUnwind<F: ?Sized>(pub(crate) Pin<Box<F>>);

impl<F: Future + ?Sized> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Payload>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// Registers a descriptor with tokio's reactor. tokio panics instead of failing when the runtime
/// here has no reactor (none at all, or one built without `enable_io`); that panic comes back as a
/// typed error naming the cause.
pub(crate) fn register<T>(
    op: &'static str,
    register: impl FnOnce() -> std::io::Result<T>,
) -> Result<T, crate::error::Error> {
    use crate::error::Error;
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::NoRuntime);
    }
    match catch_unwind(AssertUnwindSafe(register)) {
        Ok(registered) => registered.map_err(|e| Error::io(op, e)),
        Err(_) => Err(Error::io(
            op,
            std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "tokio's runtime has no I/O driver (build it with enable_io or enable_all)",
            ),
        )),
    }
}

/// The text of a panic payload (its `&str` or `String`), or a placeholder.
pub(crate) fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_string())
}

/// A callback panic, as the scheduler's panic hook sees it.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use std::sync::{Arc, Mutex};
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let hook = seen.clone();
/// let sched = chime::Scheduler::builder()
///     .on_panic(move |report: &chime::PanicReport| hook.lock().unwrap().push(report.message().to_string()))
///     .start();
/// sched.after(std::time::Duration::from_millis(1), |_| panic!("boom"))?;
/// tokio::time::sleep(std::time::Duration::from_millis(2)).await;
/// assert_eq!(*seen.lock().unwrap(), vec!["boom".to_string()]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PanicReport {
    timer: Option<TimerId>,
    source: String,
    message: String,
}

impl PanicReport {
    /// A report of `payload`, a panic of `source` (`timer 0:3v0`, `worker "name"`, `watch 4`, ...).
    pub(crate) fn new(timer: Option<TimerId>, source: String, payload: &(dyn std::any::Any + Send)) -> Self {
        PanicReport { timer, source, message: message(payload) }
    }

    /// The timer whose callback panicked, if the panic came from a timer.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(None));
    /// let hook = seen.clone();
    /// let sched = chime::Scheduler::builder().on_panic(move |r| *hook.lock().unwrap() = r.timer()).start();
    /// let id = sched.after(std::time::Duration::from_millis(1), |_| panic!("boom"))?;
    /// sched.sleep(std::time::Duration::from_millis(2)).await;
    /// assert_eq!(*seen.lock().unwrap(), Some(id));
    /// # Ok(()) }
    /// ```
    pub fn timer(&self) -> Option<TimerId> {
        self.timer
    }

    /// What panicked, in words: `timer 0:3v0`, `worker "name"`, `watch 4`, ...
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(String::new()));
    /// let hook = seen.clone();
    /// let sched = chime::Scheduler::builder().on_panic(move |r| *hook.lock().unwrap() = r.source().to_string()).start();
    /// let worker = sched.worker_builder().name("mailer").spawn(|_queue: chime::Queue<()>| async { panic!("boom") });
    /// let _ = worker.join().await;
    /// assert_eq!(*seen.lock().unwrap(), "worker \"mailer\"");
    /// # }
    /// ```
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The panic's message (its `&str` or `String` payload, or a placeholder).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(String::new()));
    /// let hook = seen.clone();
    /// let sched = chime::Scheduler::builder().on_panic(move |r| *hook.lock().unwrap() = r.message().to_string()).start();
    /// sched.after(std::time::Duration::from_millis(1), |_| std::panic::panic_any(7_u8))?;
    /// sched.sleep(std::time::Duration::from_millis(2)).await;
    /// assert_eq!(*seen.lock().unwrap(), "a panic with a non-string payload");
    /// # Ok(()) }
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}
