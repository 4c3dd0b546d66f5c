//! The timer builder's callbacks: Copas' arm callback, the expire callback (sync or async), the
//! cancel callback, and what a panic in the expire callback does.

use super::TimerBuilder;
use crate::error::Error;
use crate::record::{AsyncRun, CancelReason, Fire, Owned, Run};

impl TimerBuilder<'_> {
    /// A callback that runs each time the timer is armed ([`arm`](Self::arm) and [`Timer::arm`](crate::Timer::arm)(crate::Timer::arm)),
    /// just before it is armed.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// let arms = Arc::new(AtomicU32::new(0));
    /// let counter = arms.clone();
    /// let timer = sched
    ///     .timer(ms(100))
    ///     .on_arm(move || { counter.fetch_add(1, Ordering::SeqCst); })
    ///     .on_expire(|_| {})
    ///     .arm()?;
    /// assert_eq!(arms.load(Ordering::SeqCst), 1);
    /// timer.arm(ms(50))?;
    /// assert_eq!(arms.load(Ordering::SeqCst), 2);
    /// # Ok(()) }
    /// ```
    ///
    /// Copas' `arm_cb` of `copas.newtimer(arm_cb, expire_cb, cancel_cb, recurring)`.
    #[inline]
    pub fn on_arm(mut self, on_arm: impl FnMut() + Send + 'static) -> Self {
        self.on_arm = Some(Box::new(on_arm));
        self
    }

    /// The expire callback: short and synchronous, it runs on the driver at each run, with the
    /// run's [`Fire`]. A timer has exactly one expire callback: this one or
    /// [`on_expire_async`](Self::on_expire_async).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use std::sync::{Arc, Mutex};
    /// let runs = Arc::new(Mutex::new(Vec::new()));
    /// let log = runs.clone();
    /// let _timer = sched
    ///     .timer(ms(10))
    ///     .recurring()
    ///     .on_expire(move |fire: &chime::Fire| log.lock().unwrap().push(fire.count()))
    ///     .arm()?;
    /// sched.sleep(ms(35)).await;
    /// assert_eq!(*runs.lock().unwrap(), [1, 2, 3]);
    /// assert!(sched.timer(ms(10)).on_expire(|_| {}).on_expire(|_| {}).arm().is_err(), "two callbacks");
    /// # Ok(()) }
    /// ```
    ///
    /// Copas' `expire_cb`, resty.timer's `expire`, TINN's `TimerFunc`.
    #[inline]
    pub fn on_expire(mut self, on_expire: impl FnMut(&Fire) + Send + 'static) -> Self {
        if self.expire.is_some() {
            self.conflict =
                Some(Box::new(Error::invalid("on_expire", "set twice (or with .on_expire_async)")));
        }
        self.expire = Some(Run::Sync(Box::new(Owned(on_expire))));
        self
    }

    /// An asynchronous expire callback: each run is spawned as a tokio task, by the driver when the
    /// run is due, on the runtime the scheduler was started on; so this builder works from any thread,
    /// inside a runtime or not. Runs of one timer never overlap: a tick that comes while the previous
    /// run is still going is skipped and counted in the next run's [`Fire::missed`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use std::sync::{Arc, Mutex};
    /// let missed = Arc::new(Mutex::new(Vec::new()));
    /// let log = missed.clone();
    /// let _timer = sched
    ///     .timer(ms(10))
    ///     .recurring()
    ///     .on_expire_async(move |fire: chime::Fire| {
    ///         let log = log.clone();
    ///         async move {
    ///             log.lock().unwrap().push(fire.missed());
    ///             tokio::time::sleep(ms(25)).await;   // a slow run
    ///         }
    ///     })
    ///     .arm()?;
    /// sched.sleep(ms(75)).await;
    /// assert_eq!(*missed.lock().unwrap(), [0, 2, 2]);   // runs at 10, 40 and 70 ms, never two at once
    /// # Ok(()) }
    /// ```
    ///
    /// The seeds' callbacks are coroutines that may yield; an async callback is their Rust form.
    pub fn on_expire_async<F, Fut>(mut self, on_expire: F) -> Self
    where
        F: FnMut(Fire) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if self.expire.is_some() {
            self.conflict =
                Some(Box::new(Error::invalid("on_expire_async", "set twice (or with .on_expire)")));
        }
        let mut on_expire = on_expire;
        let boxed: AsyncRun = Box::new(move |fire| Box::pin(on_expire(fire)));
        self.expire = Some(Run::Async(boxed));
        self
    }

    /// The cancel callback: runs once, with the reason, if the timer is cancelled while a run is
    /// still to come (armed, recurring, or due and not started yet; that run then does not happen).
    /// A one-shot cancelled during (or after) its only run has nothing left to cancel.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use std::sync::{Arc, Mutex};
    /// use chime::CancelReason;
    /// let reasons = Arc::new(Mutex::new(Vec::new()));
    /// let (log, log2) = (reasons.clone(), reasons.clone());
    /// let pending = sched.timer(ms(100)).on_expire(|_| {}).on_cancel(move |r| log.lock().unwrap().push(r)).arm()?;
    /// let done = sched.timer(ms(1)).on_expire(|_| {}).on_cancel(move |r| log2.lock().unwrap().push(r)).arm()?;
    /// sched.sleep(ms(2)).await;   // `done` has run its only run
    /// pending.cancel()?;
    /// done.cancel()?;
    /// assert_eq!(*reasons.lock().unwrap(), [CancelReason::User]);
    /// # Ok(()) }
    /// ```
    ///
    /// Copas' `cancel_cb`; resty.timer's `cancel` callback, `function(reason, ...)`.
    #[inline]
    pub fn on_cancel(mut self, on_cancel: impl FnOnce(CancelReason) + Send + 'static) -> Self {
        self.on_cancel = Some(Box::new(on_cancel));
        self
    }

    /// Cancel the timer (with [`CancelReason::Panicked`]) when its expire callback panics, instead of
    /// letting it run again. Either way the panic is caught and reported to the scheduler's
    /// [panic hook](crate::SchedulerBuilder::on_panic).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use std::sync::{Arc, Mutex};
    /// let reasons = Arc::new(Mutex::new(Vec::new()));
    /// let log = reasons.clone();
    /// let timer = sched
    ///     .timer(ms(10))
    ///     .recurring()
    ///     .cancel_on_panic()
    ///     .on_expire(|_| panic!("bad tick"))
    ///     .on_cancel(move |r| log.lock().unwrap().push(r))
    ///     .arm()?;
    /// sched.sleep(ms(35)).await;
    /// assert!(timer.is_cancelled());
    /// assert_eq!(*reasons.lock().unwrap(), [chime::CancelReason::Panicked]);
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn cancel_on_panic(mut self) -> Self {
        self.cancel_on_panic = true;
        self
    }
}
