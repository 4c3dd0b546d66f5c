//! The ticker on a real Linux `timerfd`, registered with tokio's reactor.
//!
//! The kernel counts expirations; reading the descriptor returns the count and resets it, which is
//! exactly Ratchet's `read`. Absolute realtime deadlines use `TFD_TIMER_CANCEL_ON_SET`, so a change
//! of the wall clock comes out of `read` as [`Error::ClockChanged`] instead of an error nobody expects.

use std::os::fd::OwnedFd;
use std::task::{Context, Poll, ready};
use std::time::{Duration, UNIX_EPOCH};

use rustix::io::Errno;
use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create, timerfd_gettime,
    timerfd_settime,
};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use super::times::{Arming, Start, Times};
use crate::clock::Clock;
use crate::error::Error;

/// A ticker backed by a kernel `timerfd`.
#[derive(Debug)]
pub(crate) struct KernelTicker {
    fd: AsyncFd<OwnedFd>,
    clock: Clock,
    /// An error the next read reports instead of reading (tests inject `ECANCELED` this way).
    #[cfg(test)]
    fault: Option<Errno>,
}

fn clock_id(clock: Clock) -> TimerfdClockId {
    match clock {
        Clock::Monotonic => TimerfdClockId::Monotonic,
        Clock::Realtime => TimerfdClockId::Realtime,
        Clock::Boottime => TimerfdClockId::Boottime,
    }
}

fn errno(op: &'static str, errno: Errno) -> Error {
    Error::io(op, std::io::Error::from(errno))
}

/// `duration` as a `timespec`, refusing what the kernel's `time_t` cannot hold.
fn timespec(option: &'static str, duration: Duration) -> Result<Timespec, Error> {
    let tv_sec = i64::try_from(duration.as_secs())
        .map_err(|_| Error::invalid(option, "does not fit the kernel's timespec (time_t seconds)"))?;
    Ok(Timespec { tv_sec, tv_nsec: i64::from(duration.subsec_nanos()) })
}

/// A `timespec` the kernel reports; zero (disarmed, or a one-shot's interval) is `None`.
fn duration(spec: &Timespec) -> Option<Duration> {
    let d = Duration::new(u64::try_from(spec.tv_sec).ok()?, u32::try_from(spec.tv_nsec).ok()?);
    (!d.is_zero()).then_some(d)
}

fn times(spec: &Itimerspec) -> Times {
    Times { remaining: duration(&spec.it_value), interval: duration(&spec.it_interval) }
}

const ZERO: Timespec = Timespec { tv_sec: 0, tv_nsec: 0 };

impl KernelTicker {
    /// A disarmed `timerfd` on `clock`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the kernel refuses (an old kernel without the clock, no descriptors left),
    /// or outside a tokio runtime with I/O enabled.
    pub(crate) fn new(clock: Clock) -> Result<Self, Error> {
        let fd = timerfd_create(clock_id(clock), TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)
            .map_err(|e| errno("timerfd_create", e))?;
        // `AsyncFd::new` is deprecated because a generic `T` might report a different descriptor over
        // time; an `OwnedFd` reports the one it owns until dropped, and the ticker never swaps it.
        #[allow(deprecated)]
        let fd = crate::unwind::register("registering the timerfd with tokio", || AsyncFd::new(fd))?;
        Ok(KernelTicker {
            fd,
            clock,
            #[cfg(test)]
            fault: None,
        })
    }

    pub(crate) fn clock(&self) -> Clock {
        self.clock
    }

    /// Arms (or disarms) the timerfd; the kernel resets its count. Returns the previous times.
    pub(crate) fn arm(&mut self, arming: Arming) -> Result<Times, Error> {
        let (flags, value) = match arming.start {
            Start::Disarm => (TimerfdTimerFlags::empty(), ZERO),
            Start::After(initial) => (TimerfdTimerFlags::empty(), timespec("initial", initial)?),
            Start::At(deadline) => (TimerfdTimerFlags::ABSTIME, self.on_own_clock(deadline)?),
            Start::AtSystem(deadline) => {
                if self.clock != Clock::Realtime {
                    return Err(Error::invalid(
                        "deadline",
                        "a SystemTime deadline needs a Clock::Realtime ticker",
                    ));
                }
                let since_epoch = deadline
                    .duration_since(UNIX_EPOCH)
                    .map_err(|_| Error::invalid("deadline", "is before 1970 (the realtime clock's epoch)"))?;
                let value = timespec("deadline", since_epoch.max(Duration::from_nanos(1)))?;
                (TimerfdTimerFlags::ABSTIME | TimerfdTimerFlags::CANCEL_ON_SET, value)
            }
        };
        let it_interval = arming.interval.map_or(Ok(ZERO), |interval| timespec("interval", interval))?;
        let new = Itimerspec { it_interval, it_value: value };
        let old = timerfd_settime(&self.fd, flags, &new).map_err(|e| errno("timerfd_settime", e))?;
        Ok(times(&old))
    }

    /// An instant of the monotonic clock (tokio's `Instant`) as an absolute time of this ticker's
    /// clock.
    fn on_own_clock(&self, deadline: Instant) -> Result<Timespec, Error> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let now = rustix::time::clock_gettime(match self.clock {
            Clock::Monotonic => rustix::time::ClockId::Monotonic,
            Clock::Realtime => rustix::time::ClockId::Realtime,
            Clock::Boottime => rustix::time::ClockId::Boottime,
        });
        let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
        let at =
            now.checked_add(remaining).ok_or_else(|| Error::invalid("deadline", "overflows the clock"))?;
        timespec("deadline", at.max(Duration::from_nanos(1)))
    }

    pub(crate) fn gettime(&self) -> Times {
        timerfd_gettime(&self.fd).map(|spec| times(&spec)).unwrap_or_default()
    }

    /// One non-blocking read: `Ok(None)` when nothing has expired yet.
    fn read_now(&mut self) -> Result<Option<u64>, Error> {
        #[cfg(test)]
        if let Some(fault) = self.fault.take() {
            return Err(read_error(fault));
        }
        let mut buf = [0u8; 8];
        match rustix::io::read(self.fd.get_ref(), &mut buf) {
            Ok(8) => Ok(Some(u64::from_ne_bytes(buf))),
            Ok(n) => Err(Error::io(
                "read(timerfd)",
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("read {n} of 8 bytes")),
            )),
            Err(Errno::AGAIN) => Ok(None),
            Err(e) => Err(read_error(e)),
        }
    }

    pub(crate) fn try_read(&mut self) -> Result<u64, Error> {
        Ok(self.read_now()?.unwrap_or(0))
    }

    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<u64, Error>> {
        loop {
            if let Some(count) = self.read_now()? {
                return Poll::Ready(Ok(count));
            }
            if self.gettime().remaining.is_none() {
                return Poll::Ready(Err(Error::NotArmed));
            }
            let mut guard =
                ready!(self.fd.poll_read_ready(cx)).map_err(|e| Error::io("waiting on the timerfd", e))?;
            guard.clear_ready();
        }
    }

    #[cfg(test)]
    pub(crate) fn inject_read_error(&mut self, errno: Errno) {
        self.fault = Some(errno);
    }
}

/// What a failed `read` on the timerfd means.
fn read_error(e: Errno) -> Error {
    match e {
        Errno::CANCELED => Error::ClockChanged,
        e => errno("read(timerfd)", e),
    }
}
