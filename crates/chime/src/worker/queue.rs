//! A worker's queue: the state its handles and its task share, and the [`Queue`] the task reads.

use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::ticket::{ItemState, TicketState};
use crate::scheduler::Scheduler;
use crate::scheduler::registry::{BoxFuture, Drain};

/// What a worker's handles, its task and the scheduler share.
pub(crate) struct Shared<T> {
    state: Mutex<State<T>>,
    /// An item was pushed, or the queue closed.
    pub(super) available: Notify,
    /// An item was taken (room on a bounded queue).
    pub(super) room: Notify,
    /// The task ended.
    pub(super) finished: Notify,
    pub(super) capacity: Option<usize>,
    /// Live [`Worker`](super::Worker) handles: the queue closes when the last one goes.
    pub(super) handles: AtomicUsize,
    pub(super) name: String,
}

pub(super) struct State<T> {
    pub(super) items: VecDeque<(T, Arc<TicketState>)>,
    /// The item the task took last and has not finished.
    pub(super) current: Option<Arc<TicketState>>,
    /// No more pushes; the task drains what is queued, then `pop` returns `None`.
    pub(super) closed: bool,
    /// The task has ended: what it left is in `exit`.
    pub(super) finished: bool,
    pub(super) unprocessed: Vec<T>,
    pub(super) panic: Option<String>,
    /// Pops waiting for an item: what a zero-capacity (rendezvous) worker has room for.
    pub(super) waiting: usize,
}

impl<T> State<T> {
    /// How many items a worker of `capacity` may hold now: unbounded, `capacity`, or, for a
    /// rendezvous worker (capacity 0), one per pop waiting for an item.
    pub(super) fn limit(&self, capacity: Option<usize>) -> usize {
        match capacity {
            None => usize::MAX,
            Some(0) => self.waiting,
            Some(capacity) => capacity,
        }
    }
}

impl<T> Shared<T> {
    pub(super) fn new(capacity: Option<usize>, name: String) -> Self {
        Shared {
            state: Mutex::new(State {
                items: VecDeque::new(),
                current: None,
                closed: false,
                finished: false,
                unprocessed: Vec::new(),
                panic: None,
                waiting: 0,
            }),
            available: Notify::new(),
            room: Notify::new(),
            finished: Notify::new(),
            capacity,
            handles: AtomicUsize::new(1),
            name,
        }
    }

    /// No user code runs under this lock (items are dropped after it is released).
    pub(super) fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.available.notify_waiters();
        self.room.notify_waiters();
    }

    /// The task ended (returned, or panicked with `panic`): settle the current item, hand back the
    /// queued ones.
    pub(super) fn finish(&self, panic: Option<String>) {
        let mut state = self.lock();
        if let Some(current) = state.current.take() {
            let end = if panic.is_some() { ItemState::Failed } else { ItemState::Completed };
            current.advance(ItemState::Running, end);
        }
        let mut cancelled = Vec::new();
        while let Some((item, ticket)) = state.items.pop_front() {
            if ticket.advance(ItemState::Queued, ItemState::Returned) {
                state.unprocessed.push(item);
            } else {
                cancelled.push(item);
            }
        }
        state.closed = true;
        state.finished = true;
        state.panic = panic;
        drop(state);
        drop(cancelled);
        self.finished.notify_waiters();
        self.room.notify_waiters();
    }

    /// A panicking run of a restartable worker: its current item failed; the queue goes on.
    pub(super) fn fail_current(&self) {
        if let Some(current) = self.lock().current.take() {
            current.advance(ItemState::Running, ItemState::Failed);
        }
    }

    pub(super) async fn wait_finished(&self) {
        loop {
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            if self.lock().finished {
                return;
            }
            finished.await;
        }
    }
}

/// A pop waiting for an item, counted while it waits (a rendezvous worker takes pushes only then).
struct Waiting<'a, T>(&'a Shared<T>);

impl<'a, T> Waiting<'a, T> {
    fn new(shared: &'a Shared<T>) -> Self {
        shared.lock().waiting += 1;
        shared.room.notify_waiters(); // a rendezvous sender may hand its item over now
        Waiting(shared)
    }
}

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        self.0.lock().waiting -= 1;
    }
}

/// A worker's own queue, handed to its task: Copas' `queue:pop()` and `queue:pause()`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use chime::Queue;
/// let sched = chime::Scheduler::start();
/// let worker = sched.worker(|mut queue: Queue<String>| async move {
///     while let Some(item) = queue.pop().await {      // takes the next item; the previous is done
///         println!("lengthy stuff on {item}");
///         queue.pause().await;                        // yields, without taking new data
///         queue.pause_for(std::time::Duration::from_millis(10)).await;
///     }
/// });
/// worker.push("data".to_string())?;
/// worker.close();
/// assert!(worker.join().await.unprocessed.is_empty());
/// # Ok(()) }
/// ```
pub struct Queue<T> {
    pub(super) shared: Arc<Shared<T>>,
    pub(super) sched: Scheduler,
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("worker", &self.shared.name).field("len", &self.len()).finish()
    }
}

impl<T> Queue<T> {
    /// Marks the previous item completed and takes the next one, waiting while the queue is empty;
    /// `None` once the worker is closed and drained.
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
    /// let first = worker.push(1)?;
    /// worker.push(2)?;
    /// assert_eq!(rx.recv().await, Some(1));
    /// assert_eq!(rx.recv().await, Some(2));
    /// assert_eq!(first.state(), ItemState::Completed, "taking 2 completed 1");
    /// worker.close();
    /// assert_eq!(rx.recv().await, None, "pop returned None: the worker ended");
    /// # Ok(()) }
    /// ```
    ///
    /// Copas' `queue:pop()`, which likewise yields until data comes.
    pub async fn pop(&mut self) -> Option<T> {
        loop {
            let available = self.shared.available.notified();
            tokio::pin!(available);
            available.as_mut().enable();
            let mut cancelled = Vec::new();
            let next = {
                let mut state = self.shared.lock();
                if let Some(done) = state.current.take() {
                    done.advance(ItemState::Running, ItemState::Completed);
                }
                let mut next = None;
                while let Some((item, ticket)) = state.items.pop_front() {
                    if ticket.advance(ItemState::Queued, ItemState::Running) {
                        state.current = Some(ticket);
                        next = Some(item);
                        break;
                    }
                    cancelled.push(item);
                }
                match next {
                    Some(item) => Ok(item),
                    None if state.closed => Err(true),
                    None => Err(false),
                }
            };
            if next.is_ok() || !cancelled.is_empty() {
                // Room for a bounded worker's waiting senders (cancelled items freed some too).
                self.shared.room.notify_waiters();
            }
            drop(cancelled);
            match next {
                Ok(item) => return Some(item),
                Err(true) => return None,
                Err(false) => {
                    let _waiting = Waiting::new(&self.shared);
                    available.await;
                }
            }
        }
    }

    /// Copas' `queue:pause()`: yields to the other tasks without taking new data.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::Queue;
    /// let sched = chime::Scheduler::start();
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let worker = sched.worker(move |mut queue: Queue<u8>| async move {
    ///     while let Some(n) = queue.pop().await {
    ///         queue.pause().await;   // other tasks run; no new item is taken
    ///         let _ = tx.send((n, queue.len()));
    ///     }
    /// });
    /// worker.push(1)?;
    /// worker.push(2)?;
    /// assert_eq!(rx.recv().await, Some((1, 1)), "2 still waits in the queue");
    /// assert_eq!(rx.recv().await, Some((2, 0)));
    /// # Ok(()) }
    /// ```
    pub async fn pause(&mut self) {
        tokio::task::yield_now().await;
    }

    /// Sleeps for `duration` on chime's wheel, without taking new data.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// use chime::Queue;
    /// let sched = chime::Scheduler::start();
    /// let start = tokio::time::Instant::now();
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let worker = sched.worker(move |mut queue: Queue<u64>| async move {
    ///     while let Some(ms) = queue.pop().await {
    ///         queue.pause_for(std::time::Duration::from_millis(ms)).await;
    ///         let _ = tx.send(start.elapsed());
    ///     }
    /// });
    /// worker.push(100)?;
    /// assert_eq!(rx.recv().await, Some(std::time::Duration::from_millis(100)));
    /// # Ok(()) }
    /// ```
    ///
    /// Knot's `worker.sleep(seconds)`.
    pub async fn pause_for(&mut self, duration: Duration) {
        self.sched.sleep(duration).await;
    }

    /// Items waiting (cancelled ones included until the task skips them).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::Queue;
    /// let sched = chime::Scheduler::start();
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let worker = sched.worker(move |mut queue: Queue<u8>| async move {
    ///     while queue.pop().await.is_some() { let _ = tx.send(queue.len()); }
    /// });
    /// for n in 0..3 {
    ///     worker.push(n)?;
    /// }
    /// assert_eq!(rx.recv().await, Some(2), "two more wait behind the first");
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
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let worker = sched.worker(move |mut queue: Queue<u8>| async move {
    ///     while queue.pop().await.is_some() { let _ = tx.send(queue.is_empty()); }
    /// });
    /// worker.push(1)?;
    /// worker.push(2)?;
    /// assert_eq!(rx.recv().await, Some(false));
    /// assert_eq!(rx.recv().await, Some(true));
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the worker was closed (it drains what is queued, then `pop` returns `None`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::Queue;
    /// let sched = chime::Scheduler::start();
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let worker = sched.worker(move |mut queue: Queue<u8>| async move {
    ///     while queue.pop().await.is_some() { let _ = tx.send(queue.is_closed()); }
    /// });
    /// worker.push(1)?;
    /// worker.close();
    /// assert_eq!(rx.recv().await, Some(true), "closed, and still draining");
    /// # Ok(()) }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// The scheduler the worker runs on.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::Queue;
    /// let sched = chime::Scheduler::start();
    /// let worker = sched.worker(|mut queue: Queue<u64>| async move {
    ///     while let Some(ms) = queue.pop().await {
    ///         queue.scheduler().after(std::time::Duration::from_millis(ms), |_| {}).unwrap();
    ///     }
    /// });
    /// worker.push(3_600_000)?.done().await; // an hour: still pending when asked
    /// assert_eq!(sched.pending(), 1, "the worker armed a timer");
    /// # Ok(()) }
    /// ```
    pub fn scheduler(&self) -> &Scheduler {
        &self.sched
    }
}

/// What the scheduler needs of any worker at shutdown, whatever its item type.
impl<T: Send> Drain for Shared<T> {
    fn close(&self) {
        Shared::close(self);
    }

    fn finished(&self) -> BoxFuture<'_, usize> {
        Box::pin(async move {
            self.wait_finished().await;
            self.lock().unprocessed.len()
        })
    }
}
