//! Sleeping and bounding futures on chime's wheel: [`Sleep`], [`Timeout`], and the scheduler methods
//! that make them (TINN's `wait`, timeouts, Copas' `waitforcondition`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use crate::driver::{Driver, SleepKey};
use crate::error::Elapsed;
use crate::scheduler::Scheduler;

impl Scheduler {
    /// A future that completes `duration` from now, on chime's wheel (tokio's clock).
    ///
    /// After [`shutdown`](Self::shutdown) a sleep completes at once, so tasks waiting on chime's clock
    /// can finish.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let start = tokio::time::Instant::now();
    /// sched.sleep(std::time::Duration::from_millis(500)).await;
    /// assert_eq!(start.elapsed(), std::time::Duration::from_millis(500));
    /// # }
    /// ```
    ///
    /// TINN's `wait(500)`, which suspends the current fiber for that many milliseconds.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        let now = self.driver().time.arm_now();
        let deadline = crate::clock::nanos(duration).map_or(u64::MAX, |d| now.saturating_add(d));
        Sleep::new(self.driver().clone(), deadline, duration.is_zero())
    }

    /// A future that completes at `deadline` (on tokio's clock).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let at = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    /// sched.sleep_until(at).await;
    /// assert_eq!(tokio::time::Instant::now(), at);
    /// # }
    /// ```
    ///
    /// TINN's `yieldUntilTime(atime)`.
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        let time = self.driver().time;
        let deadline = time.to_nanos(deadline);
        Sleep::new(self.driver().clone(), deadline, deadline <= time.now())
    }

    /// Bounds `future` by `duration`: its output, or [`Elapsed`] if the time passes first.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// assert_eq!(sched.timeout(ms(5), async { 1u8 }).await, Ok(1));
    /// let slow = sched.sleep(ms(10));
    /// assert!(sched.timeout(ms(5), slow).await.is_err());
    /// # }
    /// ```
    ///
    /// TINN bounds an I/O operation with a timer that cancels it
    /// (`Timer {Delay = 1000, TimerFunc = cancel(op)}`); here the operation is any future.
    pub fn timeout<F: Future>(&self, duration: Duration, future: F) -> Timeout<F> {
        Timeout::new(self.sleep(duration), future)
    }

    /// Checks `condition` now and then every `interval` until it holds (`Ok`) or `timeout` passes
    /// (`Err(Elapsed)`).
    ///
    /// # Errors
    ///
    /// [`Elapsed`] when `timeout` passes before `condition` holds, or once the scheduler has shut
    /// down (the condition is checked once more, not waited for).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// let sched = chime::Scheduler::start();
    /// let ready = Arc::new(AtomicBool::new(false));
    /// let flag = ready.clone();
    /// sched.after(ms(30), move |_| flag.store(true, Ordering::SeqCst))?;
    /// let start = tokio::time::Instant::now();
    /// let ok = sched.wait_for(ms(10), ms(1000), || ready.load(Ordering::SeqCst)).await;
    /// assert_eq!((ok, start.elapsed()), (Ok(()), ms(30)));
    /// let never = sched.wait_for(ms(10), ms(100), || false).await;
    /// assert!(never.is_err());
    /// # Ok(()) }
    /// ```
    ///
    /// Copas' `copas.waitforcondition(interval, timeout, condition)`.
    pub async fn wait_for(
        &self,
        interval: Duration,
        timeout: Duration,
        mut condition: impl FnMut() -> bool,
    ) -> Result<(), Elapsed> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if condition() {
                return Ok(());
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) || self.is_shut_down() {
                return Err(Elapsed(()));
            }
            let next = now.checked_add(interval.max(Duration::from_nanos(1)));
            match (next, deadline) {
                (Some(next), Some(deadline)) => self.sleep_until(next.min(deadline)).await,
                (Some(next), None) => self.sleep_until(next).await,
                (None, _) => self.sleep(Duration::MAX).await,
            }
        }
    }
}

/// A future that completes at a deadline; made by [`Scheduler::sleep`](crate::Scheduler::sleep) and
/// [`Scheduler::sleep_until`](crate::Scheduler::sleep_until). It registers with the wheel when first polled and unregisters when
/// dropped.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let sched = chime::Scheduler::start();
/// let sleep = sched.sleep(std::time::Duration::from_secs(3));
/// assert!(!sleep.is_elapsed());
/// sleep.await;
/// # }
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    /// The driver, not a counted scheduler handle: a sleep first polled after every handle is gone
    /// starts a parked driver again (the driver's rule 8).
    driver: Arc<Driver>,
    /// Wheel nanoseconds; `u64::MAX` for "never".
    deadline: u64,
    state: State,
}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleep").field("deadline", &self.deadline()).field("state", &self.state).finish()
    }
}

/// Where a sleep stands. Kept as plain aligned fields rather than an enum around the key: the
/// packed enum layout cost a store-forwarding stall on every first poll (`perf annotate`).
#[derive(Debug, Clone, Copy)]
struct State {
    /// In the wheel under this key.
    armed: Option<SleepKey>,
    /// Complete (or due when made, so it never needs the wheel).
    done: bool,
}

impl Sleep {
    /// A sleep until `deadline` (wheel nanoseconds); `done` when it is due already (the caller
    /// read the clock once, or knows without reading it).
    pub(crate) fn new(driver: Arc<Driver>, deadline: u64, done: bool) -> Self {
        Sleep { driver, deadline, state: State { armed: None, done } }
    }

    /// When the sleep completes; `None` if further than tokio's `Instant` can count.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let sleep = sched.sleep(std::time::Duration::from_secs(3));
    /// assert_eq!(sleep.deadline(), Some(tokio::time::Instant::now() + std::time::Duration::from_secs(3)));
    /// # }
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        (self.deadline != u64::MAX).then(|| self.driver.time.to_instant(self.deadline))
    }

    /// Whether the deadline has passed (or the sleep completed).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let sleep = sched.sleep(std::time::Duration::ZERO);
    /// assert!(sleep.is_elapsed());
    /// # }
    /// ```
    pub fn is_elapsed(&self) -> bool {
        self.state.done || self.deadline <= self.driver.time.now()
    }

    /// Moves the deadline; the sleep is pending again until then.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let start = tokio::time::Instant::now();
    /// let mut sleep = sched.sleep(ms(3000));
    /// sleep.reset(start + ms(1000));
    /// (&mut sleep).await;
    /// assert_eq!(start.elapsed(), ms(1000));
    /// assert!(sleep.is_elapsed());
    /// # }
    /// ```
    pub fn reset(&mut self, deadline: Instant) {
        self.unarm();
        self.deadline = self.driver.time.to_nanos(deadline);
        self.state = State { armed: None, done: self.deadline <= self.driver.time.now() };
    }

    fn unarm(&mut self) {
        if let Some(key) = self.state.armed.take() {
            self.driver.cancel_sleep(key);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let driver = &this.driver;
        if this.state.done {
            return Poll::Ready(());
        }
        let ready = match this.state.armed {
            Some(key) => driver.poll_sleep(key, cx.waker()),
            // Not due when made; if it is by now, the driver wakes it at once.
            None => match driver.insert_sleep(this.deadline, cx.waker().clone()) {
                Ok(key) => {
                    this.state.armed = Some(key);
                    false
                }
                Err(_shutdown) => true,
            },
        };
        if ready {
            this.state = State { armed: None, done: true };
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unarm();
    }
}

pin_project_lite::pin_project! {
    /// A future bounded by a deadline; made by [`Scheduler::timeout`](crate::Scheduler::timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let never = std::future::pending::<()>();
    /// assert!(sched.timeout(std::time::Duration::from_millis(5), never).await.is_err());
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

impl<F> Timeout<F> {
    pub(crate) fn new(sleep: Sleep, future: F) -> Self {
        Timeout { future, sleep }
    }

    /// The wrapped future.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let t = sched.timeout(std::time::Duration::from_secs(1), std::future::ready(3));
    /// assert_eq!(t.into_inner().await, 3);
    /// # }
    /// ```
    pub fn into_inner(self) -> F {
        self.future
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        Pin::new(this.sleep).poll(cx).map(|()| Err(Elapsed(())))
    }
}
