//! Ids: [`TimerId`], where a timer lives (its shard and its key in that shard's wheel), and
//! [`WatchId`], an fd watch; as every layer above the wheel names them. Neither is ever reused.

use std::fmt;

use crate::wheel::Key;

/// The id of a timer. Ids are generational: once the timer is gone, its id answers
/// [`Error::NotFound`](crate::Error::NotFound) forever and can never reach a newer timer.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// let sched = chime::Scheduler::start();
/// let id = sched.after(std::time::Duration::from_secs(1), |_| {})?;
/// sched.cancel(id)?;
/// assert_eq!(sched.cancel(id), Err(chime::Error::NotFound));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId {
    pub(crate) shard: u32,
    pub(crate) key: Key,
}

impl fmt::Debug for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimerId({}:{}v{})", self.shard, self.key.index(), self.key.generation())
    }
}

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timer {}:{}v{}", self.shard, self.key.index(), self.key.generation())
    }
}

/// The id of an fd watch (Knot's `event.socket`); ids are never reused.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
/// let sched = chime::Scheduler::start();
/// let (reader, _writer) = std::io::pipe().unwrap();
/// let id: chime::WatchId = sched.watch(&reader, chime::Interest::READABLE, |_, _| {})?;
/// sched.unwatch(id)?;
/// assert_eq!(sched.unwatch(id), Err(chime::Error::UnknownWatch(id)));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchId(pub(crate) u64);

impl fmt::Display for WatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "watch {}", self.0)
    }
}
