//! Reading a ticker: the expirations since the last read, waiting for one, not waiting, or polled
//! by hand; and the ticker as a stream of counts.

use std::pin::Pin;
use std::task::{Context, Poll};

use super::{Engine, Ticker};
use crate::error::Error;

impl Ticker {
    /// The expirations since the last read, resetting the count; waits for the next expiration when
    /// there are none.
    ///
    /// # Errors
    ///
    /// [`Error::NotArmed`] with nothing counted and nothing armed (it would wait forever);
    /// [`Error::ClockChanged`] after a wall-clock change under [`settime_at_system`](Self::settime_at_system);
    /// [`Error::Shutdown`] if a wheel ticker's scheduler shuts down while it waits; [`Error::Io`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let secs = Duration::from_secs;
    /// let sched = chime::Scheduler::start();
    /// let start = tokio::time::Instant::now();
    /// let mut ticker = sched.ticker();
    /// ticker.settime(Some(secs(5)), Some(secs(5)))?;
    /// sched.sleep(secs(60)).await;           // 60 seconds of processing
    /// assert_eq!(ticker.read().await?, 12);     // right away
    /// assert_eq!(ticker.read().await?, 1);      // waits for the next tick
    /// assert_eq!(start.elapsed(), secs(65));
    /// assert_eq!(sched.ticker().read().await, Err(chime::Error::NotArmed));
    /// # Ok(()) }
    /// ```
    ///
    /// Ratchet's `tfd:read()`: "would return 12 right away", then "pauses thread until next 5
    /// second tick".
    pub async fn read(&mut self) -> Result<u64, Error> {
        std::future::poll_fn(|cx| self.poll_read(cx)).await
    }

    /// [`read`](Self::read) without waiting: 0 when nothing has expired.
    ///
    /// # Errors
    ///
    /// [`Error::ClockChanged`] and [`Error::Io`] as [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let mut ticker = sched.ticker();
    /// ticker.settime(Some(ms(100)), Some(ms(100)))?;
    /// assert_eq!(ticker.try_read()?, 0);
    /// sched.sleep(ms(250)).await;
    /// assert_eq!(ticker.try_read()?, 2);
    /// assert_eq!(ticker.try_read()?, 0, "the count was reset");
    /// # Ok(()) }
    /// ```
    pub fn try_read(&mut self) -> Result<u64, Error> {
        match &mut self.engine {
            Engine::Wheel(w) => Ok(w.try_read()),
            #[cfg(target_os = "linux")]
            Engine::Kernel(k) => k.try_read(),
        }
    }

    /// The polling form of [`read`](Self::read), for hand-written futures.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let mut ticker = sched.ticker();
    /// ticker.settime(Some(ms(10)), None)?;
    /// let count = std::future::poll_fn(|cx| ticker.poll_read(cx)).await?;
    /// assert_eq!(count, 1);
    /// let spent = std::future::poll_fn(|cx| ticker.poll_read(cx)).await;
    /// assert_eq!(spent, Err(chime::Error::NotArmed), "a spent one-shot");
    /// # Ok(()) }
    /// ```
    pub fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<u64, Error>> {
        match &mut self.engine {
            Engine::Wheel(w) => w.poll_read(cx),
            #[cfg(target_os = "linux")]
            Engine::Kernel(k) => k.poll_read(cx),
        }
    }
}

/// The counts, one per [`read`](Ticker::read); the stream ends when the ticker is disarmed with
/// nothing left to count, and yields the error otherwise.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use futures_core::Stream;
/// let sched = chime::Scheduler::start();
/// let mut ticker = sched.ticker();
/// ticker.settime(Some(std::time::Duration::from_millis(10)), None)?;
/// let mut ticker = std::pin::pin!(ticker);
/// let first = std::future::poll_fn(|cx| ticker.as_mut().poll_next(cx)).await;
/// assert_eq!(first, Some(Ok(1)));
/// let end = std::future::poll_fn(|cx| ticker.as_mut().poll_next(cx)).await;
/// assert_eq!(end, None, "a spent one-shot ends the stream");
/// # Ok(()) }
/// ```
impl futures_core::Stream for Ticker {
    type Item = Result<u64, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut().poll_read(cx) {
            Poll::Ready(Err(Error::NotArmed)) => Poll::Ready(None),
            other => other.map(Some),
        }
    }
}
