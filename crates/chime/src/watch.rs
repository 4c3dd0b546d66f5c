//! fd watches: Knot Resolver's `event.socket`. A callback runs each time a file descriptor is ready.

use std::os::fd::{AsFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use tokio::io::unix::AsyncFd;

use crate::error::Error;
use crate::id::WatchId;
use crate::scheduler::Scheduler;
use crate::unwind::PanicReport;

pub use tokio::io::Interest;

/// What a watched descriptor is ready for.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
/// use std::io::Write;
/// let sched = chime::Scheduler::start();
/// let (reader, mut writer) = std::io::pipe().unwrap();
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// let id = sched.watch(&reader, chime::Interest::READABLE, move |_, ready: chime::Readiness| {
///     let _ = tx.send(ready);
/// })?;
/// writer.write_all(b"x").unwrap();
/// let ready = rx.recv().await.unwrap();
/// assert!(ready.readable && !ready.error);
/// sched.unwatch(id)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Readiness {
    /// Data can be read (or the read side is at end of file).
    pub readable: bool,
    /// Data can be written.
    pub writable: bool,
    /// The peer closed its end (read or write side).
    pub hangup: bool,
    /// The descriptor has an error pending.
    pub error: bool,
}

impl Scheduler {
    /// Calls `callback` with the watch's id and the readiness each time `fd` is ready for
    /// `interest`. Level-triggered: while the descriptor stays ready (the callback did not consume what
    /// made it ready), the callback is called again, after a yield. The watch holds its own duplicate
    /// of the descriptor, so it stays valid whatever the caller does with theirs. A panicking callback
    /// stops its watch (and is reported), nothing else.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the descriptor cannot be duplicated or registered with tokio's reactor (a
    /// regular file, for instance, or a runtime built without I/O); [`Error::Shutdown`] after
    /// shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use std::io::Write;
    /// use chime::{Interest, Readiness, WatchId};
    /// let sched = chime::Scheduler::start();
    /// let (reader, mut writer) = std::io::pipe().unwrap();
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let id = sched.watch(&reader, Interest::READABLE, move |id: WatchId, ready: Readiness| {
    ///     let _ = tx.send((id, ready.readable));
    /// })?;
    /// writer.write_all(b"x").unwrap();
    /// assert_eq!(rx.recv().await, Some((id, true)));
    /// sched.unwatch(id)?;
    /// # Ok(()) }
    /// ```
    ///
    /// Knot's `event.socket(fd, function(e, status, nevents) ... end)`, which likewise calls back with
    /// the event id first.
    pub fn watch(
        &self,
        fd: impl AsFd,
        interest: Interest,
        mut callback: impl FnMut(WatchId, Readiness) + Send + 'static,
    ) -> Result<WatchId, Error> {
        if self.is_shut_down() {
            return Err(Error::Shutdown);
        }
        let owned: OwnedFd = fd.as_fd().try_clone_to_owned().map_err(|e| Error::io("dup", e))?;
        let driver = self.driver();
        let _runtime = driver.runtime.enter();
        // `AsyncFd::with_interest` is deprecated because a generic `T` might report another
        // descriptor over time; this `OwnedFd` is ours alone and reports the one it owns until dropped.
        #[allow(deprecated)]
        let fd = crate::unwind::register("registering the descriptor", || {
            AsyncFd::with_interest(owned, interest)
        })?;
        let hooks = driver.hooks.clone();
        let shared = Arc::downgrade(&self.shared);
        let id = self.shared.registry.add_task(|id| {
            let watch = WatchId(id);
            driver
                .runtime
                .spawn(async move {
                    loop {
                        let Ok(mut guard) = fd.ready(interest).await else { break };
                        let ready = guard.ready();
                        let readiness = Readiness {
                            readable: ready.is_readable(),
                            writable: ready.is_writable(),
                            hangup: ready.is_read_closed() || ready.is_write_closed(),
                            error: ready.is_error(),
                        };
                        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| callback(watch, readiness))) {
                            hooks.report(&PanicReport::new(None, watch.to_string(), &*payload));
                            break;
                        }
                        if still_ready(fd.get_ref(), interest) {
                            tokio::task::yield_now().await;
                        } else {
                            guard.clear_ready();
                        }
                    }
                    if let Some(shared) = shared.upgrade() {
                        shared.registry.forget_task(id);
                    }
                })
                .abort_handle()
        });
        Ok(WatchId(id))
    }

    /// Stops a watch: its callback is not called again.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownWatch`] for a watch that is gone (stopped, or its callback panicked).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use std::io::Write;
    /// let sched = chime::Scheduler::start();
    /// let (reader, mut writer) = std::io::pipe().unwrap();
    /// let id = sched.watch(&reader, chime::Interest::READABLE, |_, _| {})?;
    /// sched.unwatch(id)?;
    /// assert_eq!(sched.unwatch(id), Err(chime::Error::UnknownWatch(id)));
    /// writer.write_all(b"x").unwrap();   // nobody is called
    /// # Ok(()) }
    /// ```
    ///
    /// Knot's `event.cancel(e)` on a socket event.
    pub fn unwatch(&self, id: WatchId) -> Result<(), Error> {
        if self.shared.registry.remove_task(id.0) { Ok(()) } else { Err(Error::UnknownWatch(id)) }
    }
}

/// Whether `fd` is ready for `interest` right now (a zero-timeout `poll(2)`).
fn still_ready(fd: &OwnedFd, interest: Interest) -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut flags = PollFlags::empty();
    if interest.is_readable() {
        flags |= PollFlags::IN;
    }
    if interest.is_writable() {
        flags |= PollFlags::OUT;
    }
    let mut fds = [PollFd::new(fd, flags)];
    let zero = rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 };
    matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0) && fds[0].revents().intersects(flags)
}
