//! What a handler sees of a run ([`DurableFire`]), the handlers themselves, and what a durable
//! scheduler [reports](Report).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::timer::system_time;
use crate::Error;

/// A handler's error, as the retry policy and the reports see it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type SyncFn = dyn Fn(&DurableFire) -> Result<(), BoxError> + Send + Sync;
type AsyncFn =
    dyn Fn(DurableFire) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> + Send + Sync;

/// A registered handler: sync (runs on a blocking thread) or async (a task).
#[derive(Clone)]
pub(crate) enum Handler {
    Sync(Arc<SyncFn>),
    Async(Arc<AsyncFn>),
}

impl Handler {
    pub(crate) fn sync<F, E>(f: F) -> Handler
    where
        F: Fn(&DurableFire) -> Result<(), E> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        Handler::Sync(Arc::new(move |fire: &DurableFire| f(fire).map_err(Into::into)))
    }

    pub(crate) fn asynchronous<F, Fut, E>(f: F) -> Handler
    where
        F: Fn(DurableFire) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Handler::Async(Arc::new(move |fire: DurableFire| {
            let run = f(fire);
            Box::pin(async move { run.await.map_err(Into::into) })
        }))
    }
}

/// One run of a durable timer, as its handler sees it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use std::time::Duration;
/// use chime::durable::DurableFire;
/// let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
///     .handler("remind", move |fire: &DurableFire| tx.send(fire.clone()))
///     .start().await?;
/// timers.after("invoice-42", Duration::from_secs(60), "remind", b"pay".to_vec()).await?;
/// let fire = rx.recv().await.unwrap();
/// assert_eq!((fire.key(), fire.handler(), fire.payload()), ("invoice-42", "remind", &b"pay"[..]));
/// assert_eq!((fire.attempt(), fire.fence()), (1, 1));
/// assert_eq!(Some(fire.due()), timers.get("invoice-42").await?.map(|t| t.due()));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableFire {
    pub(crate) key: String,
    pub(crate) handler: String,
    pub(crate) payload: Arc<[u8]>,
    pub(crate) due_ms: i64,
    pub(crate) fence: u64,
    pub(crate) attempt: u32,
}

impl DurableFire {
    /// The timer's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The handler's name.
    pub fn handler(&self) -> &str {
        &self.handler
    }

    /// The payload it was created with.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// When it was due (wall-clock time, to the millisecond).
    pub fn due(&self) -> SystemTime {
        system_time(self.due_ms)
    }

    /// The run's fencing token: strictly increasing per timer (and per store). Pass it to whatever
    /// the run writes, so a stale run (one whose lease ran out) can be refused.
    pub fn fence(&self) -> u64 {
        self.fence
    }

    /// Which attempt this is: 1 for the first run, more after failures or a run whose scheduler died.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// What a durable scheduler reports (through `tracing`, and the hook set with
/// [`DurableBuilder::on_report`](super::DurableBuilder::on_report)).
///
/// ```
/// use chime::durable::Report;
/// let r = Report::UnknownHandler { handler: "bill".into(), timers: 3 };
/// assert_eq!(r.to_string(), "3 due timers wait for handler `bill`, which no scheduler here knows");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Report {
    /// A handler failed; it is tried again after `delay`.
    Retrying {
        /// The timer.
        key: String,
        /// The attempt that failed.
        attempt: u32,
        /// What the handler said (or the panic's message).
        error: String,
        /// The backoff before the next attempt.
        delay: Duration,
    },
    /// A timer failed for good: its last attempt failed or never finished. It is kept, `Failed`.
    Failed {
        /// The timer.
        key: String,
        /// Attempts made.
        attempt: u32,
        /// Why.
        error: String,
    },
    /// A timer's first run would have started later than its grace: it was skipped.
    Skipped {
        /// The timer.
        key: String,
        /// Why, with how late it was.
        reason: String,
    },
    /// A run's lease ran out or was lost (the store was unreachable for too long): an async run was
    /// stopped, a sync run's result was refused; another run takes the timer over after the lease.
    LeaseLost {
        /// The timer.
        key: String,
        /// The run's fence.
        fence: u64,
    },
    /// Timers are due for a handler this scheduler does not know: they stay pending until a
    /// scheduler that knows it runs them.
    UnknownHandler {
        /// The handler's name.
        handler: String,
        /// How many of its timers are due.
        timers: u64,
    },
    /// A store call failed or timed out; it is tried again.
    Store(Error),
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Report::Retrying { key, attempt, error, delay } => {
                write!(f, "timer `{key}`: attempt {attempt} failed ({error}); retrying in {delay:?}")
            }
            Report::Failed { key, attempt, error } => {
                write!(f, "timer `{key}` failed after {attempt} attempts: {error}")
            }
            Report::Skipped { key, reason } => write!(f, "timer `{key}` {reason}"),
            Report::LeaseLost { key, fence } => {
                write!(f, "timer `{key}`: the lease of run {fence} was lost; the run does not count")
            }
            Report::UnknownHandler { handler, timers } => {
                write!(f, "{timers} due timers wait for handler `{handler}`, which no scheduler here knows")
            }
            Report::Store(error) => write!(f, "{error}"),
        }
    }
}
