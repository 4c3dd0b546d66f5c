//! Workers: Copas' background workers, each a task with its own queue that runs only while it has
//! data; and worker [groups](Group) (Knot's `map` over forks, within one process).

mod error;
mod group;
mod queue;
mod ticket;

pub use error::{PushError, SendError};
pub use group::Group;
pub use queue::Queue;
pub use ticket::{ItemState, Ticket};

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use queue::Shared;

use crate::scheduler::Scheduler;
use crate::scheduler::registry::Phase;
use crate::unwind::{CatchUnwind, PanicReport};

/// A handle to a worker: push items to its queue, close it, join it. Clones push to the same worker;
/// when the last handle is dropped, the queue closes and the worker drains it and ends.
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
#[derive(Debug)]
#[non_exhaustive]
pub struct WorkerExit<T> {
    /// Items it never took, in queue order: handed back, never dropped silently.
    pub unprocessed: Vec<T>,
    /// The panic that stopped it, if one did (after any restarts).
    pub panic: Option<String>,
}

impl<T: Send + 'static> Worker<T> {
    /// Queues `item`; the returned [`Ticket`] follows it.
    ///
    /// # Errors
    ///
    /// [`PushError::Gone`] once the worker is closed or ended, [`PushError::Full`] when a bounded
    /// worker's queue is full; both hand the item back.
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
    pub fn close(&self) {
        self.shared.close();
    }

    /// Whether the queue is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Whether the worker's task has ended.
    pub fn is_finished(&self) -> bool {
        self.shared.lock().finished
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.shared.lock().items.len()
    }

    /// Whether no item is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits for the worker's task to end (it does once closed and drained, if it returns, or if it
    /// panics) and takes what it left. Does not close the worker.
    pub async fn join(self) -> WorkerExit<T> {
        self.shared.wait_finished().await;
        let mut state = self.shared.lock();
        WorkerExit { unprocessed: std::mem::take(&mut state.unprocessed), panic: state.panic.clone() }
    }
}

/// Configures a worker: a name, a bound, a restart policy. Made by [`Scheduler::worker_builder`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sched = chime::Scheduler::start();
/// let worker = sched
///     .worker_builder()
///     .name("indexer")
///     .bounded(100)
///     .restart_on_panic(3)
///     .spawn(|mut queue: chime::Queue<u64>| async move { while queue.pop().await.is_some() {} });
/// # drop(worker); }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a worker builder does nothing until spawned"]
pub struct WorkerBuilder {
    sched: Scheduler,
    name: Option<String>,
    capacity: Option<usize>,
    restarts: u32,
    /// Handles lifecycle events: closed last at shutdown, after `Stopped` is delivered.
    lifecycle: bool,
}

impl WorkerBuilder {
    /// A name for reports (panics, tracing).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// At most `capacity` queued items: [`Worker::push`] then answers [`PushError::Full`] and
    /// [`Worker::send`] waits. A capacity of 0 makes a rendezvous, as crossbeam's zero-capacity
    /// channel: a push succeeds only while the worker waits in [`Queue::pop`], and `send` waits for
    /// that.
    pub fn bounded(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Starts the worker function again, with the same queue, after a panic, up to `restarts` times;
    /// the item it held is marked [`ItemState::Failed`] each time.
    pub fn restart_on_panic(mut self, restarts: u32) -> Self {
        self.restarts = restarts;
        self
    }

    pub(crate) fn for_lifecycle(mut self) -> Self {
        self.lifecycle = true;
        self
    }

    /// Starts the worker: `run` is called with its queue (again after each allowed restart).
    pub fn spawn<T, F, Fut>(self, mut run: F) -> Worker<T>
    where
        T: Send + 'static,
        F: FnMut(Queue<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = self.name.unwrap_or_else(|| "worker".to_string());
        let shared = Arc::new(Shared::new(self.capacity, name));
        let sched = self.sched;
        let phase = if self.lifecycle { Phase::Lifecycle } else { Phase::Work };
        sched.shared.registry.add_worker(Arc::downgrade(&shared) as _, phase);
        let task_shared = shared.clone();
        let mut restarts = self.restarts;
        sched.driver().runtime.clone().spawn(async move {
            let shared = task_shared;
            let panic = loop {
                let queue = Queue { shared: shared.clone(), sched: sched.clone() };
                match CatchUnwind(Box::pin(run(queue))).await {
                    Ok(()) => break None,
                    Err(payload) => {
                        let source = format!("worker {:?}", shared.name);
                        let report = PanicReport::new(None, source, &*payload);
                        let message = report.message().to_string();
                        sched.driver().hooks.report(&report);
                        if restarts == 0 {
                            break Some(message);
                        }
                        restarts -= 1;
                        shared.fail_current();
                    }
                }
            };
            shared.finish(panic);
        });
        Worker { shared }
    }
}

impl Scheduler {
    /// Copas' `addworker`: starts a worker task with its own queue. It runs only while it has data:
    /// `queue.pop().await` waits for the next item.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let worker = sched.worker(|mut queue: chime::Queue<u32>| async move {
    ///     while let Some(n) = queue.pop().await { println!("{n}"); }
    /// });
    /// let ticket = worker.push(1)?;
    /// ticket.done().await;
    /// # Ok(()) }
    /// ```
    pub fn worker<T, F, Fut>(&self, run: F) -> Worker<T>
    where
        T: Send + 'static,
        F: FnOnce(Queue<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut run = Some(run);
        self.worker_builder().spawn(move |queue| {
            let run = run.take().expect("a worker without restarts runs once");
            run(queue)
        })
    }

    /// A builder for a worker with a name, a bound or a restart policy.
    pub fn worker_builder(&self) -> WorkerBuilder {
        WorkerBuilder { sched: self.clone(), name: None, capacity: None, restarts: 0, lifecycle: false }
    }
}
