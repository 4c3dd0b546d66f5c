//! What users create and read: [`NewTimer`] (checked against the limits before anything is stored),
//! [`DurableTimer`] (a stored timer) and [`Created`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::machine::{Row, State};
use crate::Error;

/// The longest key, in bytes (UTF-8). Keys are never empty.
pub const MAX_KEY_BYTES: usize = 256;
/// The longest handler name, in bytes (UTF-8). Names are never empty.
pub const MAX_HANDLER_BYTES: usize = 64;
/// The largest payload, in bytes (64 KiB): keep large data elsewhere and put its id in the payload.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// The latest due time, in milliseconds since the Unix epoch: chime's range of 2^64 ns (the year 2554).
pub const MAX_DUE_MS: i64 = (u64::MAX / 1_000_000) as i64;

/// When a new timer is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    After(Duration),
    At(SystemTime),
}

/// A timer to create, with per-timer options; for [`DurableTimers::create`](super::DurableTimers::create)
/// and [`create_many`](super::DurableTimers::create_many).
///
/// ```
/// use std::time::Duration;
/// use chime::durable::NewTimer;
/// let t = NewTimer::after("invoice-42", Duration::from_secs(3600), "remind", b"42".to_vec())
///     .grace(Duration::from_secs(600));     // skip it if it cannot start within 10 min of its due time
/// assert_eq!(t.key(), "invoice-42");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTimer {
    key: String,
    handler: String,
    payload: Vec<u8>,
    due: Due,
    grace: Option<Duration>,
}

impl NewTimer {
    /// A timer due `delay` from now (the store's clock, as the scheduler tracks it).
    ///
    /// ```
    /// let t = chime::durable::NewTimer::after("k", std::time::Duration::from_secs(1), "remind", Vec::new());
    /// assert_eq!(t.handler(), "remind");
    /// ```
    pub fn after(
        key: impl Into<String>,
        delay: Duration,
        handler: impl Into<String>,
        payload: Vec<u8>,
    ) -> NewTimer {
        NewTimer { key: key.into(), handler: handler.into(), payload, due: Due::After(delay), grace: None }
    }

    /// A timer due at wall-clock time `due` (a time already past runs at once).
    ///
    /// ```
    /// let due = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    /// let t = chime::durable::NewTimer::at("k", due, "remind", b"hello".to_vec());
    /// assert_eq!(t.payload(), b"hello");
    /// ```
    pub fn at(
        key: impl Into<String>,
        due: SystemTime,
        handler: impl Into<String>,
        payload: Vec<u8>,
    ) -> NewTimer {
        NewTimer { key: key.into(), handler: handler.into(), payload, due: Due::At(due), grace: None }
    }

    /// Skips the timer (reported, state [`Skipped`](State::Skipped)) when its first run would start
    /// more than `grace` after its due time; overrides the scheduler's
    /// [`grace`](super::DurableBuilder::grace).
    ///
    /// ```
    /// let t = chime::durable::NewTimer::after("k", std::time::Duration::ZERO, "remind", Vec::new())
    ///     .grace(std::time::Duration::from_secs(5));
    /// # drop(t);
    /// ```
    pub fn grace(mut self, grace: Duration) -> NewTimer {
        self.grace = Some(grace);
        self
    }

    /// The key.
    ///
    /// ```
    /// assert_eq!(chime::durable::NewTimer::after("k", std::time::Duration::ZERO, "h", Vec::new()).key(), "k");
    /// ```
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The handler's name.
    ///
    /// ```
    /// assert_eq!(chime::durable::NewTimer::after("k", std::time::Duration::ZERO, "h", Vec::new()).handler(), "h");
    /// ```
    pub fn handler(&self) -> &str {
        &self.handler
    }

    /// The payload.
    ///
    /// ```
    /// assert!(chime::durable::NewTimer::after("k", std::time::Duration::ZERO, "h", Vec::new()).payload().is_empty());
    /// ```
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Checks the limits and makes the row to store; `now_ms` is the store's clock as the scheduler
    /// tracks it. Errors name the field; `index` (in a batch) says which timer.
    pub(crate) fn into_row(
        self,
        now_ms: i64,
        index: Option<usize>,
        knows: impl Fn(&str) -> bool,
    ) -> Result<Row, Error> {
        let which = |reason: String| match index {
            Some(i) => format!("timer {i} of the batch: {reason}"),
            None => reason,
        };
        if self.key.is_empty() {
            return Err(Error::invalid("key", which("must not be empty".into())));
        }
        if self.key.len() > MAX_KEY_BYTES {
            let why = format!("is {} bytes; at most {MAX_KEY_BYTES}", self.key.len());
            return Err(Error::invalid("key", which(why)));
        }
        if !knows(&self.handler) {
            let why =
                format!("`{}` is not a handler of this scheduler (register it on the builder)", self.handler);
            return Err(Error::invalid("handler", which(why)));
        }
        if self.payload.len() > MAX_PAYLOAD_BYTES {
            let why = format!("is {} bytes; at most {MAX_PAYLOAD_BYTES} (64 KiB)", self.payload.len());
            return Err(Error::invalid("payload", which(why)));
        }
        let due_ms = match self.due {
            Due::At(at) => at
                .duration_since(UNIX_EPOCH)
                .ok()
                .and_then(|d| i64::try_from(d.as_millis()).ok())
                .filter(|&ms| ms <= MAX_DUE_MS)
                .ok_or_else(|| {
                    Error::invalid("due", which("must lie between the Unix epoch and the year 2554".into()))
                })?,
            Due::After(delay) => i64::try_from(delay.as_millis())
                .ok()
                .and_then(|d| now_ms.checked_add(d))
                .filter(|&ms| ms <= MAX_DUE_MS)
                .ok_or_else(|| {
                    Error::invalid("delay", which("ends past chime's range (the year 2554)".into()))
                })?,
        };
        let grace_ms = match self.grace {
            Some(g) => Some(
                i64::try_from(g.as_millis())
                    .map_err(|_| Error::invalid("grace", which("exceeds chime's range".into())))?,
            ),
            None => None,
        };
        Ok(Row::new(&self.key, &self.handler, self.payload, due_ms, grace_ms))
    }
}

/// A stored timer, as [`get`](super::DurableTimers::get) and [`list`](super::DurableTimers::list)
/// read it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use std::time::Duration;
/// use chime::durable::State;
/// let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
/// let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
///     .handler("remind", |_: &chime::durable::DurableFire| Ok::<_, std::io::Error>(()))
///     .start().await?;
/// timers.after("k", Duration::from_secs(60), "remind", b"hi".to_vec()).await?;
/// let t = timers.get("k").await?.expect("stored");
/// assert_eq!((t.key(), t.handler(), t.payload(), t.state()), ("k", "remind", &b"hi"[..], State::Pending));
/// assert_eq!((t.attempt(), t.fence(), t.error(), t.grace()), (0, 0, None, None));
/// assert!(t.due() > std::time::SystemTime::UNIX_EPOCH);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableTimer {
    pub(crate) row: Row,
}

pub(crate) fn system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

impl DurableTimer {
    /// The key.
    pub fn key(&self) -> &str {
        &self.row.key
    }

    /// The handler's name.
    pub fn handler(&self) -> &str {
        &self.row.handler
    }

    /// When it is (or was) due, to the millisecond.
    pub fn due(&self) -> SystemTime {
        system_time(self.row.due_ms)
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.row.payload
    }

    /// Where it stands.
    pub fn state(&self) -> State {
        self.row.state
    }

    /// Runs started so far.
    pub fn attempt(&self) -> u32 {
        self.row.attempt
    }

    /// The fence of its latest run (0 before the first).
    pub fn fence(&self) -> u64 {
        self.row.fence
    }

    /// The last error: a failed attempt (also while waiting for a retry), why it was skipped, or
    /// that a run's scheduler died.
    pub fn error(&self) -> Option<&str> {
        self.row.error.as_deref()
    }

    /// Its own grace, if it was created with one.
    pub fn grace(&self) -> Option<Duration> {
        self.row.grace_ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
    }

    /// The stored row, for diagnostics.
    pub fn row(&self) -> &Row {
        &self.row
    }
}

/// What creating a timer did: stored it, or found its key taken (then nothing changed).
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use std::time::Duration;
/// use chime::durable::Created;
/// let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
/// let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
///     .handler("remind", |_: &chime::durable::DurableFire| Ok::<_, std::io::Error>(()))
///     .start().await?;
/// assert_eq!(timers.after("k", Duration::from_secs(60), "remind", b"first".to_vec()).await?, Created::New);
/// let again = timers.after("k", Duration::from_secs(5), "remind", b"second".to_vec()).await?;
/// let Created::Exists(stored) = again else { panic!("the key is taken") };
/// assert_eq!(stored.payload(), b"first", "idempotent: the first one stays as it was");
/// assert!(!again_is_new(&Created::Exists(stored)));
/// # fn again_is_new(c: &Created) -> bool { c.is_new() }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Stored, durably.
    New,
    /// The key was taken: the stored timer, unchanged.
    Exists(DurableTimer),
}

impl Created {
    /// Whether the timer was stored by this call.
    pub fn is_new(&self) -> bool {
        matches!(self, Created::New)
    }
}
