//! What subscribing and dispatching hand back: a [`Subscription`] (dropping it unsubscribes) and a
//! [`Dispatch`] (waiting on it, bounding the wait, withdrawing the event).

use std::fmt;
use std::time::Duration;

use crate::error::Elapsed;
use crate::scheduler::Scheduler;
use crate::worker::{ItemState, Ticket};

/// A handler's subscription; dropping it unsubscribes.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sched = chime::Scheduler::start();
/// let events = sched.events::<u8>();
/// let subscription = events.subscribe(|mut queue: chime::Queue<u8>| async move {
///     while queue.pop().await.is_some() {}
/// });
/// assert_eq!(events.subscribers(), 1);
/// drop(subscription);
/// assert_eq!(events.subscribers(), 0);
/// # }
/// ```
#[must_use = "dropping a Subscription unsubscribes at once"]
pub struct Subscription {
    pub(super) unsubscribe: Option<Box<dyn FnOnce() + Send>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Subscription {
    /// Unsubscribes now (the same as dropping): the handler gets no further event, drains what it
    /// was sent, and ends.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let events = sched.events::<u8>();
    /// let subscription = events.subscribe(|mut queue: chime::Queue<u8>| async move {
    ///     while queue.pop().await.is_some() {}
    /// });
    /// assert_eq!(events.dispatch(1).delivered(), 1);
    /// subscription.unsubscribe();
    /// assert_eq!(events.dispatch(2).delivered(), 0);
    /// # }
    /// ```
    pub fn unsubscribe(mut self) {
        if let Some(unsubscribe) = self.unsubscribe.take() {
            unsubscribe();
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(unsubscribe) = self.unsubscribe.take() {
            unsubscribe();
        }
    }
}

/// One dispatched event, on its way to every subscriber.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sched = chime::Scheduler::start();
/// let events = sched.events::<u8>();
/// let _subscription = events.subscribe(|mut queue: chime::Queue<u8>| async move {
///     while queue.pop().await.is_some() {}
/// });
/// let dispatch = events.dispatch(1);
/// assert_eq!(dispatch.delivered(), 1);
/// dispatch.wait().await;
/// assert_eq!(dispatch.states(), [chime::ItemState::Completed]);
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a Dispatch does nothing; await .wait() to know the handlers finished"]
pub struct Dispatch {
    pub(super) tickets: Vec<Ticket>,
    pub(super) sched: Scheduler,
}

impl Dispatch {
    /// How many handlers it was delivered to.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let events = sched.events::<u8>();
    /// assert_eq!(events.dispatch(1).delivered(), 0);
    /// let _subscription = events.subscribe(|mut queue: chime::Queue<u8>| async move {
    ///     while queue.pop().await.is_some() {}
    /// });
    /// assert_eq!(events.dispatch(2).delivered(), 1);
    /// # }
    /// ```
    pub fn delivered(&self) -> usize {
        self.tickets.len()
    }

    /// Each delivery's state, in subscription order.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use chime::ItemState;
    /// let sched = chime::Scheduler::start();
    /// let events = sched.events::<u8>();
    /// let _subscription = events.subscribe(|mut queue: chime::Queue<u8>| async move {
    ///     while queue.pop().await.is_some() {}
    /// });
    /// let dispatch = events.dispatch(1);
    /// assert_eq!(dispatch.states(), [ItemState::Queued]);      // the handler has not run yet
    /// dispatch.wait().await;
    /// assert_eq!(dispatch.states(), [ItemState::Completed]);   // it took the next (or ended)
    /// # }
    /// ```
    pub fn states(&self) -> Vec<ItemState> {
        self.tickets.iter().map(Ticket::state).collect()
    }

    /// Waits until every handler has finished with the event (or will never: it was cancelled, the
    /// handler failed or ended without taking it). A handler has finished with an event when it
    /// asks its queue for the next one, as in Copas, where a handler's `pop` marks the previous event
    /// handled.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// let sched = chime::Scheduler::start();
    /// let events = sched.events::<u32>();
    /// let total = Arc::new(AtomicU32::new(0));
    /// let sum = total.clone();
    /// let _subscription = events.subscribe(move |mut queue: chime::Queue<u32>| async move {
    ///     while let Some(n) = queue.pop().await {
    ///         tokio::task::yield_now().await;   // some work
    ///         sum.fetch_add(n, Ordering::SeqCst);
    ///     }
    /// });
    /// events.dispatch(5).wait().await;
    /// assert_eq!(total.load(Ordering::SeqCst), 5);
    /// # }
    /// ```
    pub async fn wait(&self) {
        all_done(&self.tickets).await;
    }

    /// [`wait`](Self::wait), bounded by `timeout` on chime's wheel.
    ///
    /// # Errors
    ///
    /// [`Elapsed`] when a handler has not finished with the event in time (it is stuck, or never took
    /// it).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use std::time::Duration;
    /// let sched = chime::Scheduler::start();
    /// let events = sched.events::<u8>();
    /// let _stuck = events.subscribe(|mut queue: chime::Queue<u8>| async move {
    ///     let _first = queue.pop().await;
    ///     std::future::pending::<()>().await;   // never asks for the next event
    /// });
    /// let dispatch = events.dispatch(1);
    /// assert!(dispatch.wait_timeout(Duration::from_secs(5)).await.is_err());
    /// assert_eq!(dispatch.states(), [chime::ItemState::Running]);
    /// # }
    /// ```
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<(), Elapsed> {
        self.sched.timeout(timeout, self.wait()).await
    }

    /// Withdraws the event from the handlers that have not taken it yet; returns how many.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use chime::ItemState;
    /// let sched = chime::Scheduler::start();
    /// let events = sched.events::<u8>();
    /// let _subscription = events.subscribe(|mut queue: chime::Queue<u8>| async move {
    ///     while queue.pop().await.is_some() {}
    /// });
    /// let dispatch = events.dispatch(1);
    /// assert_eq!(dispatch.cancel(), 1);                       // not taken yet: withdrawn
    /// assert_eq!(dispatch.states(), [ItemState::Cancelled]);
    /// assert_eq!(dispatch.cancel(), 0);
    /// # }
    /// ```
    pub fn cancel(&self) -> usize {
        self.tickets.iter().filter(|t| t.cancel()).count()
    }
}

/// Waits until every delivery is over (handled, cancelled, or failed).
pub(super) async fn all_done(tickets: &[Ticket]) {
    for ticket in tickets {
        ticket.done().await;
    }
}
