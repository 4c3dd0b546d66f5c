//! [`Ticket`]: one pushed item's fate, observable and cancellable while it waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

/// Where a pushed item is.
///
/// # Examples
///
/// ```
/// assert!(chime::ItemState::Completed.is_final());
/// assert!(!chime::ItemState::Queued.is_final());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ItemState {
    /// Waiting in the queue.
    Queued,
    /// Taken by the worker, which is working on it.
    Running,
    /// The worker took the next item (or returned) after it: done.
    Completed,
    /// Cancelled while queued; the worker never saw it.
    Cancelled,
    /// The worker panicked while holding it.
    Failed,
    /// Never taken: the worker stopped first and handed it back through
    /// [`Worker::join`](crate::Worker::join).
    Returned,
}

impl ItemState {
    /// Whether the state can no longer change.
    ///
    /// # Examples
    ///
    /// ```
    /// use chime::ItemState;
    /// assert!(ItemState::Cancelled.is_final());
    /// assert!(ItemState::Returned.is_final());
    /// assert!(!ItemState::Running.is_final());
    /// ```
    pub fn is_final(self) -> bool {
        !matches!(self, ItemState::Queued | ItemState::Running)
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => ItemState::Queued,
            1 => ItemState::Running,
            2 => ItemState::Completed,
            3 => ItemState::Cancelled,
            4 => ItemState::Failed,
            _ => ItemState::Returned,
        }
    }
}

/// Shared between a queued item and its [`Ticket`].
#[derive(Debug, Default)]
pub(crate) struct TicketState {
    state: AtomicU8,
    changed: Notify,
}

impl TicketState {
    pub(crate) fn get(&self) -> ItemState {
        ItemState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Moves from `from` to `to`; `false` if the item was not in `from`.
    pub(crate) fn advance(&self, from: ItemState, to: ItemState) -> bool {
        let ok =
            self.state.compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire).is_ok();
        if ok {
            self.changed.notify_waiters();
        }
        ok
    }
}

/// The handle [`Worker::push`](crate::Worker::push) returns: the item's state, a way to cancel it
/// while it is still queued, and a future of its final state.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
/// let sched = chime::Scheduler::start();
/// let worker = sched.worker(|mut queue: chime::Queue<u32>| async move {
///     while let Some(n) = queue.pop().await { let _ = n; }
/// });
/// let ticket = worker.push(7)?;
/// assert_eq!(ticket.done().await, chime::ItemState::Completed);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Ticket {
    pub(crate) state: Arc<TicketState>,
}

impl Ticket {
    pub(crate) fn new() -> (Ticket, Arc<TicketState>) {
        let state = Arc::new(TicketState::default());
        (Ticket { state: state.clone() }, state)
    }

    /// The item's state now.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::{ItemState, Queue};
    /// let sched = chime::Scheduler::start();
    /// let worker = sched.worker(|mut queue: Queue<u32>| async move { while queue.pop().await.is_some() {} });
    /// let ticket = worker.push(1)?;
    /// assert_eq!(ticket.state(), ItemState::Queued);
    /// ticket.done().await;
    /// assert_eq!(ticket.state(), ItemState::Completed);
    /// # Ok(()) }
    /// ```
    pub fn state(&self) -> ItemState {
        self.state.get()
    }

    /// Cancels the item if the worker has not taken it yet; `true` if it was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::{ItemState, Queue};
    /// let sched = chime::Scheduler::start();
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let worker = sched.worker(move |mut queue: Queue<u32>| async move {
    ///     while let Some(n) = queue.pop().await { let _ = tx.send(n); }
    /// });
    /// worker.push(1)?;
    /// let second = worker.push(2)?;
    /// assert!(second.cancel(), "still queued: cancelled");
    /// worker.close();
    /// assert_eq!(rx.recv().await, Some(1));
    /// assert_eq!(rx.recv().await, None, "the worker never saw 2");
    /// assert_eq!(second.state(), ItemState::Cancelled);
    /// assert!(!second.cancel());
    /// # Ok(()) }
    /// ```
    pub fn cancel(&self) -> bool {
        self.state.advance(ItemState::Queued, ItemState::Cancelled)
    }

    /// Waits until the item's state is final, and returns it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::{ItemState, Queue};
    /// let sched = chime::Scheduler::start();
    /// let worker = sched.worker(|mut queue: Queue<u32>| async move {
    ///     while let Some(n) = queue.pop().await {
    ///         if n == 0 { panic!("division by zero") }
    ///     }
    /// });
    /// let ok = worker.push(4)?;
    /// let bad = worker.push(0)?;
    /// let never = worker.push(5)?;
    /// assert_eq!(ok.done().await, ItemState::Completed);
    /// assert_eq!(bad.done().await, ItemState::Failed);
    /// assert_eq!(never.done().await, ItemState::Returned, "the worker ended first");
    /// # Ok(()) }
    /// ```
    pub async fn done(&self) -> ItemState {
        loop {
            let changed = self.state.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let state = self.state.get();
            if state.is_final() {
                return state;
            }
            changed.await;
        }
    }
}
