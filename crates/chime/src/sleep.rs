//! Sleeping and bounding futures on chime's wheel: [`Sleep`] and [`Timeout`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::Instant;

use crate::driver::SleepKey;
use crate::{Elapsed, Scheduler};

/// A future that completes at a deadline; made by [`Scheduler::sleep`] and
/// [`Scheduler::sleep_until`]. It registers with the wheel when first polled and unregisters when
/// dropped.
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
#[derive(Debug)]
pub struct Sleep {
    sched: Scheduler,
    /// `None`: further than `Instant` can count, so never.
    deadline: Option<Instant>,
    state: State,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Unarmed,
    Armed(SleepKey),
    Done,
}

impl Sleep {
    pub(crate) fn new(sched: Scheduler, deadline: Option<Instant>) -> Self {
        Sleep { sched, deadline, state: State::Unarmed }
    }

    /// When the sleep completes; `None` if further than tokio's `Instant` can count.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let sleep = sched.sleep(std::time::Duration::from_secs(3));
    /// assert_eq!(sleep.deadline(), Some(tokio::time::Instant::now() + std::time::Duration::from_secs(3)));
    /// # }
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the deadline has passed (or the sleep completed).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let sleep = sched.sleep(std::time::Duration::ZERO);
    /// assert!(sleep.is_elapsed());
    /// # }
    /// ```
    pub fn is_elapsed(&self) -> bool {
        matches!(self.state, State::Done) || self.deadline.is_some_and(|d| d <= Instant::now())
    }

    /// Moves the deadline; the sleep is pending again until then.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let mut sleep = sched.sleep(std::time::Duration::from_secs(3));
    /// sleep.reset(tokio::time::Instant::now() + std::time::Duration::from_secs(1));
    /// (&mut sleep).await;
    /// # }
    /// ```
    pub fn reset(&mut self, deadline: Instant) {
        self.unarm();
        self.deadline = Some(deadline);
        self.state = State::Unarmed;
    }

    fn unarm(&mut self) {
        if let State::Armed(key) = self.state {
            self.sched.inner.cancel_sleep(key);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let inner = &this.sched.inner;
        match this.state {
            State::Done => Poll::Ready(()),
            State::Armed(key) => {
                if inner.poll_sleep(key, cx.waker()) {
                    this.state = State::Done;
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }
            State::Unarmed => {
                let deadline = this.deadline.map_or(u64::MAX, |d| inner.time.to_nanos(d));
                if deadline <= inner.time.now() {
                    this.state = State::Done;
                    return Poll::Ready(());
                }
                match inner.insert_sleep(deadline, cx.waker().clone()) {
                    Ok(key) => {
                        this.state = State::Armed(key);
                        Poll::Pending
                    }
                    Err(_shutdown) => {
                        this.state = State::Done;
                        Poll::Ready(())
                    }
                }
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unarm();
    }
}

pin_project_lite::pin_project! {
    /// A future bounded by a deadline; made by [`Scheduler::timeout`].
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
