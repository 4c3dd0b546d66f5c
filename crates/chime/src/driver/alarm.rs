//! How the driver's task sleeps until its next deadline: on tokio's timer when tokio's clock was
//! paused at the start (tests advance it) or when the deadline is near, and otherwise on an *alarm
//! thread* that wakes it to the kernel's timer slack (about 50 µs).
//!
//! Why a thread: tokio's timer rounds every deadline up to its next millisecond, so a driver
//! sleeping on it runs a timer up to a millisecond late (half a millisecond on average) before any
//! wake-up latency. A `timerfd` on tokio's reactor would need no thread, but tokio panics instead
//! of failing when a runtime has no I/O driver, and a scheduler starts on any runtime with time
//! enabled. The thread blocks on a condition variable with a timeout (a `futex` wait), is told only
//! when the deadline moves earlier (a later one it finds when it wakes), and ends when the driver's
//! task does. Should it fail to start, the driver sleeps on tokio's timer.
//!
//! Why only for sleeps of [`PRECISE_FROM`] or more: a wake through the thread costs two threads'
//! wake-ups (the alarm's, then the worker's that runs the driver), about 20 µs of CPU on a virtual
//! machine. Timers due close together would wake the driver once each (a million due within 200
//! ms cost 40-80 ns more CPU per timer, measured); on tokio's timer they share a wake per
//! millisecond, as before. So a driver that sleeps a millisecond or more wakes on time, and one
//! with deadlines crowding in batches them on tokio's steps: precise wakes never exceed a thousand
//! a second.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::time::Sleep;

/// The shortest sleep the alarm thread serves; nearer deadlines wait on tokio's timer.
pub(crate) const PRECISE_FROM: Duration = Duration::from_millis(1);

/// The driver's way to sleep until a deadline (see the module documentation).
pub(crate) struct Alarm {
    /// tokio's timer: for a paused clock, for near deadlines, and when no thread could be started.
    tokio: Pin<Box<Sleep>>,
    /// The alarm thread (it ends by itself once the alarm drops); `None` under a paused clock.
    thread: Option<Arc<Shared>>,
}

/// What the driver's task and the alarm thread share.
struct Shared {
    state: Mutex<State>,
    /// Signalled when the deadline moves earlier, or the alarm closes.
    changed: Condvar,
    /// Where the thread rings; the driver's task awaits it.
    rung: Notify,
}

#[derive(Default)]
struct State {
    /// The deadline to ring at; `None` once rung (or before the first).
    at: Option<Instant>,
    /// The driver's task is gone: the thread ends.
    closed: bool,
}

impl Alarm {
    /// An alarm for a driver whose clock is the real one (`real_time`), or tokio's paused clock.
    pub(crate) fn new(real_time: bool) -> Alarm {
        let tokio = Box::pin(tokio::time::sleep_until(tokio::time::Instant::now()));
        Alarm { tokio, thread: if real_time { start_thread() } else { None } }
    }

    /// Whether an alarm thread serves this alarm (for tests).
    #[cfg(all(test, not(chime_loom)))]
    pub(crate) fn is_precise(&self) -> bool {
        self.thread.is_some()
    }

    /// For tests: whether the alarm or its thread still holds what they share (false once both
    /// are gone).
    #[cfg(all(test, not(chime_loom)))]
    pub(crate) fn held(&self) -> impl Fn() -> bool + use<> {
        let shared = self.thread.as_ref().map(Arc::downgrade);
        move || shared.as_ref().is_some_and(|shared| shared.strong_count() > 0)
    }

    /// Sleeps until `at` (or a little after). Dropping the future before it completes is safe: the
    /// next call sets the deadline again; at worst a ring meant for an earlier deadline ends a later
    /// sleep early, and the driver's loop looks once more and sleeps again.
    pub(crate) fn sleep_until(&mut self, at: tokio::time::Instant) -> impl Future<Output = ()> + '_ {
        let far = at.saturating_duration_since(tokio::time::Instant::now()) >= PRECISE_FROM;
        let notified = match &self.thread {
            Some(shared) if far => {
                shared.set(Some(at.into_std()));
                Some(shared.rung.notified())
            }
            Some(shared) => {
                shared.set(None); // whatever the thread still waits for would only ring stale
                None
            }
            None => None,
        };
        let mut tokio = self.tokio.as_mut();
        if notified.is_none() {
            tokio.as_mut().reset(at);
        }
        async move {
            match notified {
                Some(notified) => notified.await,
                None => tokio.await,
            }
        }
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        if let Some(shared) = &self.thread {
            shared.lock().closed = true;
            shared.changed.notify_one();
        }
    }
}

fn start_thread() -> Option<Arc<Shared>> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        changed: Condvar::new(),
        rung: Notify::new(),
    });
    let theirs = shared.clone();
    match std::thread::Builder::new().name("chime-alarm".into()).spawn(move || theirs.ring()) {
        Ok(_) => Some(shared),
        Err(err) => {
            tracing::debug!(
                "chime: no alarm thread ({err}); the driver sleeps on tokio's timer (1 ms steps)"
            );
            None
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The driver's task: ring at `at` (`None`: not at all). The thread is woken only when that is
    /// earlier than what it waits for: a later deadline, or none, it finds when its wait ends.
    fn set(&self, at: Option<Instant>) {
        let mut state = self.lock();
        let earlier = at.is_some_and(|at| state.at.is_none_or(|old| at < old));
        state.at = at;
        drop(state);
        if earlier {
            self.changed.notify_one();
        }
    }

    /// The alarm thread's loop.
    fn ring(&self) {
        let mut state = self.lock();
        while !state.closed {
            state = match state.at {
                None => self.changed.wait(state).unwrap_or_else(PoisonError::into_inner),
                Some(at) => match at.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => {
                        self.changed.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0
                    }
                    _ => {
                        state.at = None;
                        self.rung.notify_one();
                        state
                    }
                },
            };
        }
    }
}

#[cfg(all(test, not(chime_loom)))]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{Alarm, PRECISE_FROM};

    #[tokio::test(start_paused = true)]
    async fn a_paused_clock_sleeps_on_tokio_s_timer() {
        let mut alarm = Alarm::new(false);
        assert!(!alarm.is_precise());
        let start = Instant::now();
        alarm.sleep_until(start + Duration::from_secs(3600)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3600), "the test's clock, to the nanosecond");
    }

    #[tokio::test]
    async fn the_alarm_thread_rings_at_the_deadline_never_before() {
        let mut alarm = Alarm::new(true);
        assert!(alarm.is_precise());
        for delay_ms in [2, 5, 20] {
            let at = Instant::now() + Duration::from_millis(delay_ms);
            alarm.sleep_until(at).await;
            let late = Instant::now().checked_duration_since(at).expect("rung before the deadline");
            // A loaded 2-core machine can hold a thread back for milliseconds; the point is that
            // nothing here waits for a timer wheel's next tick.
            assert!(late < Duration::from_secs(1), "rung {late:?} late");
        }
    }

    #[tokio::test]
    async fn a_near_deadline_waits_on_tokio_s_timer_never_before_it() {
        let mut alarm = Alarm::new(true);
        let held = alarm.held();
        let at = Instant::now() + PRECISE_FROM / 2;
        alarm.sleep_until(at).await;
        assert!(Instant::now() >= at);
        assert!(held(), "the alarm thread stays for later, farther deadlines");
    }

    #[tokio::test]
    async fn an_earlier_deadline_wakes_the_thread_and_a_dropped_sleep_is_harmless() {
        let mut alarm = Alarm::new(true);
        let far = Instant::now() + Duration::from_secs(3600);
        // Set an hour out, then dropped (as when a notification wins the driver's select).
        let pending = tokio::time::timeout(Duration::from_millis(1), alarm.sleep_until(far)).await;
        assert!(pending.is_err());
        let start = Instant::now();
        alarm.sleep_until(start + Duration::from_millis(10)).await;
        assert!(start.elapsed() >= Duration::from_millis(10));
        assert!(start.elapsed() < Duration::from_secs(60), "the hour's wait was cut short");
    }

    #[tokio::test]
    async fn the_thread_ends_with_its_alarm() {
        let alarm = Alarm::new(true);
        let held = alarm.held();
        assert!(held());
        drop(alarm);
        let start = std::time::Instant::now();
        while held() {
            assert!(start.elapsed() < Duration::from_secs(10), "the alarm thread outlived its alarm");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}
