//! Workers: Copas' background workers, each a task with its own queue that runs only while it has
//! data; and worker [groups](Group) (Knot's `map` over forks, within one process).

mod builder;
mod error;
mod group;
mod queue;
mod ticket;

pub use builder::WorkerBuilder;
pub use error::{PushError, SendError};
pub use group::Group;
pub use queue::Queue;
pub use ticket::{ItemState, Ticket};

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use queue::Shared;

/// A handle to a worker: push items to its queue, close it, join it. Clones push to the same worker;
/// when the last handle is dropped, the queue closes and the worker drains it and ends.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
/// use chime::{Queue, Worker};
/// let sched = chime::Scheduler::start();
/// let worker: Worker<String> = sched.worker(|mut queue: Queue<String>| async move {
///     while let Some(item) = queue.pop().await {
///         println!("got {item}");
///         queue.pause().await;
///     }
/// });
/// worker.push("data".to_string())?;
/// worker.close();
/// let exit = worker.join().await;
/// assert!(exit.unprocessed.is_empty() && exit.panic.is_none());
/// # Ok(()) }
/// ```
pub struct Worker<T> {
    shared: Arc<Shared<T>>,
}

impl<T> fmt::Debug for Worker<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker").field("name", &self.shared.name).finish_non_exhaustive()
    }
}

impl<T> Clone for Worker<T> {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Worker { shared: self.shared.clone() }
    }
}

impl<T> Drop for Worker<T> {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.close();
        }
    }
}

/// How a worker ended, from [`Worker::join`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sched = chime::Scheduler::start();
/// let worker = sched.worker(|mut queue: chime::Queue<u8>| async move {
///     if queue.pop().await == Some(0) { panic!("zero") }
/// });
/// worker.push(0).unwrap();
/// worker.push(1).unwrap();
/// let exit: chime::WorkerExit<u8> = worker.join().await;
/// assert_eq!(exit.panic.as_deref(), Some("zero"));
/// assert_eq!(exit.unprocessed, [1]);
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct WorkerExit<T> {
    /// Items it never took, in queue order: handed back, never dropped silently.
    pub unprocessed: Vec<T>,
    /// The panic that stopped it, if one did (after any restarts).
    pub panic: Option<String>,
}

impl<T: Send + 'static> Worker<T> {
    /// Queues `item`, without waiting; the returned [`Ticket`] follows it.
    ///
    /// # Errors
    ///
    /// [`PushError::Gone`] once the worker is closed or ended, [`PushError::Full`] when a bounded
    /// worker's queue is full; both hand the item back.
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
    /// assert_eq!(ticket.done().await, ItemState::Completed);
    /// worker.close();
    /// assert_eq!(worker.push(2).unwrap_err().into_inner(), 2);
    /// # Ok(()) }
    /// ```
    ///
    /// Copas' `w:push(data)`.
    pub fn push(&self, item: T) -> Result<Ticket, PushError<T>> {
        let mut state = self.shared.lock();
        if state.closed {
            return Err(PushError::Gone(item));
        }
        let mut cancelled = Vec::new();
        if state.items.len() >= state.limit(self.shared.capacity) {
            // Cancelled items hold no place in a bounded queue.
            let (kept, gone): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut state.items)
                .into_iter()
                .partition(|(_, t)| t.get() != ItemState::Cancelled);
            state.items = kept;
            cancelled.extend(gone);
            if state.items.len() >= state.limit(self.shared.capacity) {
                drop(state);
                drop(cancelled); // user items are dropped with no lock held
                return Err(PushError::Full(item));
            }
        }
        let (ticket, shared) = Ticket::new();
        state.items.push_back((item, shared));
        drop(state);
        drop(cancelled);
        self.shared.available.notify_one();
        Ok(ticket)
    }

    /// Queues `item`, waiting for room on a bounded worker (on a rendezvous worker, for the worker
    /// to wait in [`pop`](Queue::pop)).
    ///
    /// # Errors
    ///
    /// [`SendError`] (with the item) if the worker closes or ends first: waiting for room is the
    /// only other way a send could fail, and it waits.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::{ItemState, Queue};
    /// let sched = chime::Scheduler::start();
    /// let worker = sched.worker_builder().bounded(1).spawn(|mut queue: Queue<u32>| async move {
    ///     while queue.pop().await.is_some() {}
    /// });
    /// worker.push(1)?;
    /// assert!(worker.push(2).unwrap_err().is_full());
    /// let ticket = worker.send(2).await?;   // waits until the worker takes 1
    /// assert_eq!(ticket.done().await, ItemState::Completed);
    /// # Ok(()) }
    /// ```
    pub async fn send(&self, mut item: T) -> Result<Ticket, SendError<T>> {
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.push(item) {
                Ok(ticket) => return Ok(ticket),
                Err(PushError::Full(back)) => item = back,
                Err(PushError::Gone(back)) => return Err(SendError(back)),
            }
            room.await;
        }
    }

    /// Closes the queue: no more pushes; the worker drains what is queued, then `pop` returns `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::Queue;
    /// let sched = chime::Scheduler::start();
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let worker = sched.worker(move |mut queue: Queue<u32>| async move {
    ///     while let Some(n) = queue.pop().await { let _ = tx.send(n); }
    /// });
    /// worker.push(1)?;
    /// worker.close();
    /// assert!(worker.push(2).unwrap_err().is_gone());
    /// assert_eq!(rx.recv().await, Some(1), "what was queued is still processed");
    /// assert_eq!(rx.recv().await, None, "then the worker ends");
    /// # Ok(()) }
    /// ```
    pub fn close(&self) {
        self.shared.close();
    }

    /// Whether the queue is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use chime::Queue;
    /// let sched = chime::Scheduler::start();
    /// let worker = sched.worker(|mut queue: Queue<u32>| async move { while queue.pop().await.is_some() {} });
    /// assert!(!worker.is_closed());
    /// worker.close();
    /// assert!(worker.is_closed());
    /// # }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Whether the worker's task has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::Queue;
    /// let sched = chime::Scheduler::start();
    /// let worker = sched.worker(|mut queue: Queue<u8>| async move {
    ///     let _one = queue.pop().await;   // handles one item, then returns
    /// });
    /// assert!(!worker.is_finished());
    /// worker.push(1)?.done().await;
    /// assert!(worker.is_finished());
    /// # Ok(()) }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.shared.lock().finished
    }

    /// Items waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::Queue;
    /// let sched = chime::Scheduler::start();
    /// let worker = sched.worker(|mut queue: Queue<u32>| async move { while queue.pop().await.is_some() {} });
    /// worker.push(1)?;
    /// worker.push(2)?;
    /// assert_eq!(worker.len(), 2, "the worker has not run yet");
    /// worker.push(3)?.done().await;
    /// assert_eq!(worker.len(), 0);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.shared.lock().items.len()
    }

    /// Whether no item is waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::Queue;
    /// let sched = chime::Scheduler::start();
    /// let worker = sched.worker(|mut queue: Queue<u32>| async move { while queue.pop().await.is_some() {} });
    /// assert!(worker.is_empty());
    /// let ticket = worker.push(1)?;
    /// assert!(!worker.is_empty());
    /// ticket.done().await;
    /// assert!(worker.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits for the worker's task to end (it does once closed and drained, if it returns, or if it
    /// panics) and takes what it left. Does not close the worker.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::Queue;
    /// let sched = chime::Scheduler::start();
    /// let worker = sched.worker(|mut queue: Queue<u32>| async move {
    ///     let _first = queue.pop().await;   // takes one item, then returns
    /// });
    /// for n in 1..=3 {
    ///     worker.push(n)?;
    /// }
    /// let exit = worker.join().await;
    /// assert_eq!(exit.unprocessed, [2, 3], "handed back, not dropped");
    /// assert!(exit.panic.is_none());
    /// # Ok(()) }
    /// ```
    pub async fn join(self) -> WorkerExit<T> {
        self.shared.wait_finished().await;
        let mut state = self.shared.lock();
        WorkerExit { unprocessed: std::mem::take(&mut state.unprocessed), panic: state.panic.clone() }
    }
}
