//! [`WorkerBuilder`]: a worker's name, bound and restart policy, and how its task is started.

use std::future::Future;
use std::sync::Arc;

use super::queue::Shared;
use super::{Queue, Worker};
use crate::scheduler::Scheduler;
use crate::scheduler::registry::Phase;
use crate::unwind::{CatchUnwind, PanicReport};

/// Configures a worker: a name, a bound, a restart policy. Made by [`Scheduler::worker_builder`].
///
/// # Examples
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
/// assert_eq!(worker.push(1).unwrap().done().await, chime::ItemState::Completed);
/// # }
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
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(String::new()));
    /// let hook = seen.clone();
    /// let sched = chime::Scheduler::builder().on_panic(move |r| *hook.lock().unwrap() = r.source().to_string()).start();
    /// let worker = sched.worker_builder().name("mailer").spawn(|_queue: chime::Queue<()>| async { panic!("smtp down") });
    /// assert_eq!(worker.join().await.panic.as_deref(), Some("smtp down"));
    /// assert_eq!(*seen.lock().unwrap(), r#"worker "mailer""#);
    /// # }
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// At most `capacity` queued items: [`Worker::push`] then answers [`PushError::Full`](super::PushError::Full) and
    /// [`Worker::send`] waits. A capacity of 0 makes a rendezvous, as crossbeam's zero-capacity
    /// channel: a push succeeds only while the worker waits in [`Queue::pop`], and `send` waits for
    /// that.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::Queue;
    /// let sched = chime::Scheduler::start();
    /// let worker = sched.worker_builder().bounded(2).spawn(|mut queue: Queue<u8>| async move {
    ///     while queue.pop().await.is_some() {}
    /// });
    /// worker.push(1)?;
    /// worker.push(2)?;
    /// assert!(worker.push(3).unwrap_err().is_full());
    /// let rendezvous = sched.worker_builder().bounded(0).spawn(|mut queue: Queue<u8>| async move {
    ///     while queue.pop().await.is_some() {}
    /// });
    /// assert!(rendezvous.push(1).unwrap_err().is_full(), "the worker is not waiting in pop yet");
    /// rendezvous.send(1).await?;   // waits until it is
    /// # Ok(()) }
    /// ```
    pub fn bounded(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Starts the worker function again, with the same queue, after a panic, up to `restarts` times;
    /// the item it held is marked [`ItemState::Failed`](super::ItemState::Failed) each time.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::{ItemState, Queue};
    /// let sched = chime::Scheduler::start();
    /// let worker = sched.worker_builder().restart_on_panic(1).spawn(|mut queue: Queue<u32>| async move {
    ///     while let Some(n) = queue.pop().await {
    ///         if n == 13 { panic!("unlucky") }
    ///     }
    /// });
    /// let bad = worker.push(13)?;
    /// let good = worker.push(14)?;
    /// assert_eq!(bad.done().await, ItemState::Failed);
    /// assert_eq!(good.done().await, ItemState::Completed, "restarted on the same queue");
    /// # Ok(()) }
    /// ```
    pub fn restart_on_panic(mut self, restarts: u32) -> Self {
        self.restarts = restarts;
        self
    }

    pub(crate) fn for_lifecycle(mut self) -> Self {
        self.lifecycle = true;
        self
    }

    /// Starts the worker: `run` is called with its queue (again after each allowed restart).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::Queue;
    /// let sched = chime::Scheduler::start();
    /// let worker = sched.worker_builder().name("squares").spawn(|mut queue: Queue<(u64, tokio::sync::oneshot::Sender<u64>)>| async move {
    ///     while let Some((n, reply)) = queue.pop().await {
    ///         let _ = reply.send(n * n);
    ///     }
    /// });
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// worker.push((12, tx))?;
    /// assert_eq!(rx.await.unwrap(), 144);
    /// # Ok(()) }
    /// ```
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
    /// Starts a worker task with its own queue. It runs only while it has data:
    /// `queue.pop().await` waits for the next item.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::{ItemState, Queue};
    /// let sched = chime::Scheduler::start();
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let worker = sched.worker(move |mut queue: Queue<u32>| async move {
    ///     while let Some(n) = queue.pop().await { let _ = tx.send(n + 1); }
    /// });
    /// let ticket = worker.push(1)?;
    /// assert_eq!(rx.recv().await, Some(2));
    /// assert_eq!(ticket.done().await, ItemState::Completed);
    /// # Ok(()) }
    /// ```
    ///
    /// Copas' `copas.addworker(function(queue) ... end)`; Knot's `worker.coroutine(f)` is a worker
    /// with no items.
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
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::Queue;
    /// let sched = chime::Scheduler::start();
    /// let worker = sched.worker_builder().bounded(1).spawn(|mut queue: Queue<u8>| async move {
    ///     while queue.pop().await.is_some() {}
    /// });
    /// worker.push(1)?;
    /// assert!(worker.push(2).unwrap_err().is_full());
    /// # Ok(()) }
    /// ```
    pub fn worker_builder(&self) -> WorkerBuilder {
        WorkerBuilder { sched: self.clone(), name: None, capacity: None, restarts: 0, lifecycle: false }
    }
}
