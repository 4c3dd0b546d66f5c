//! The event bus: Copas' eventer, with Rust types. Handlers run as [workers](crate::Worker), each
//! with its own queue of events; a [`Dispatch`] tells when every handler has finished with an event.
//!
//! A handler has finished with an event when it takes the next one from its queue (or ends), as in
//! Copas, where a handler's `pop` marks the previous event handled.

mod named;

pub use named::{NamedEvent, NamedEvents};

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use crate::error::Elapsed;
use crate::scheduler::registry::{Announce, BoxFuture};
use crate::scheduler::{Lifecycle, Scheduler};
use crate::worker::{ItemState, Queue, Ticket, Worker};

type Filter<E> = Arc<dyn Fn(&E) -> bool + Send + Sync>;

struct Subscriber<E> {
    id: u64,
    worker: Worker<E>,
    filter: Option<Filter<E>>,
}

/// The subscribers of one bus.
pub(crate) struct Bus<E> {
    subscribers: Mutex<Vec<Subscriber<E>>>,
    next_id: AtomicU64,
}

impl<E> Default for Bus<E> {
    fn default() -> Self {
        Bus { subscribers: Mutex::new(Vec::new()), next_id: AtomicU64::new(0) }
    }
}

impl<E: Clone + Send + 'static> Bus<E> {
    fn lock(&self) -> MutexGuard<'_, Vec<Subscriber<E>>> {
        self.subscribers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `event` for every subscriber whose filter takes it; one ticket per delivery.
    pub(crate) fn deliver(&self, event: &E) -> Vec<Ticket> {
        let workers: Vec<_> = self
            .lock()
            .iter()
            .filter(|s| s.filter.as_ref().is_none_or(|f| f(event)))
            .map(|s| s.worker.clone())
            .collect();
        workers.iter().filter_map(|w| w.push(event.clone()).ok()).collect()
    }

    fn remove(&self, id: u64) {
        let removed: Vec<_> = {
            let mut subscribers = self.lock();
            let (gone, kept) = std::mem::take(&mut *subscribers).into_iter().partition(|s| s.id == id);
            *subscribers = kept;
            gone
        };
        drop(removed); // the worker handle goes: its queue closes, it drains and ends
    }
}

impl Announce for Bus<Lifecycle> {
    fn announce(&self, stage: Lifecycle) -> BoxFuture<'static, ()> {
        let tickets = self.deliver(&stage);
        Box::pin(async move { all_done(&tickets).await })
    }
}

/// A typed event bus; made by [`Scheduler::events`]. Cheap to clone; clones share subscribers.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use chime::{Events, Queue};
/// #[derive(Clone, Debug, PartialEq)]
/// enum MyEvent { Start, Stop }
///
/// let sched = chime::Scheduler::start();
/// let events: Events<MyEvent> = sched.events();
/// let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let _subscription = events.subscribe(move |mut queue: Queue<MyEvent>| async move {
///     while let Some(event) = queue.pop().await { log.lock().unwrap().push(event); }
/// });
/// events.dispatch(MyEvent::Start).wait().await;   // the handler has finished with it
/// assert_eq!(*seen.lock().unwrap(), vec![MyEvent::Start]);
/// # }
/// ```
pub struct Events<E> {
    sched: Scheduler,
    bus: Arc<Bus<E>>,
    lifecycle: bool,
}

impl<E> Clone for Events<E> {
    fn clone(&self) -> Self {
        Events { sched: self.sched.clone(), bus: self.bus.clone(), lifecycle: self.lifecycle }
    }
}

impl<E> fmt::Debug for Events<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A new typed event bus (Copas' `eventer.decorate`, done with a Rust type).
    pub fn events<E: Clone + Send + 'static>(&self) -> Events<E> {
        Events { sched: self.clone(), bus: Arc::new(Bus::default()), lifecycle: false }
    }

    /// The scheduler's own lifecycle events: [`Lifecycle::Starting`] and [`Lifecycle::Started`] when
    /// the driver first runs (subscribe before the first `.await` after starting to see them),
    /// [`Lifecycle::Stopping`] and [`Lifecycle::Stopped`] during [`shutdown`](Self::shutdown).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let _sub = sched.lifecycle().subscribe(|mut queue: chime::Queue<chime::Lifecycle>| async move {
    ///     while let Some(stage) = queue.pop().await { println!("{stage:?}"); }
    /// });
    /// sched.shutdown().await;   // prints Starting, Started, Stopping, Stopped
    /// # }
    /// ```
    pub fn lifecycle(&self) -> Events<Lifecycle> {
        let bus = self.shared.registry.lifecycle(Bus::<Lifecycle>::default);
        Events { sched: self.clone(), bus, lifecycle: true }
    }
}

impl<E: Clone + Send + 'static> Events<E> {
    /// Runs `handler` as a worker that receives every event dispatched from now on; unsubscribes when
    /// the returned [`Subscription`] is dropped (the handler then drains what it was sent, and ends).
    pub fn subscribe<F, Fut>(&self, handler: F) -> Subscription
    where
        F: FnOnce(Queue<E>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.subscribe_filtered(None, handler)
    }

    pub(crate) fn subscribe_filtered<F, Fut>(&self, filter: Option<Filter<E>>, handler: F) -> Subscription
    where
        F: FnOnce(Queue<E>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut handler = Some(handler);
        let mut builder = self.sched.worker_builder().name("event handler");
        if self.lifecycle {
            builder = builder.for_lifecycle();
        }
        let worker = builder.spawn(move |queue| handler.take().expect("handlers are not restarted")(queue));
        let id = self.bus.next_id.fetch_add(1, Ordering::Relaxed);
        self.bus.lock().push(Subscriber { id, worker, filter });
        let bus: Weak<Bus<E>> = Arc::downgrade(&self.bus);
        Subscription {
            unsubscribe: Some(Box::new(move || {
                if let Some(bus) = bus.upgrade() {
                    bus.remove(id);
                }
            })),
        }
    }

    /// Sends `event` to every subscriber. The [`Dispatch`] tells when they have all finished with it.
    pub fn dispatch(&self, event: E) -> Dispatch {
        Dispatch { tickets: self.bus.deliver(&event), sched: self.sched.clone() }
    }

    /// Current subscribers.
    pub fn subscribers(&self) -> usize {
        self.bus.lock().len()
    }
}

/// A handler's subscription; dropping it unsubscribes.
#[must_use = "dropping a Subscription unsubscribes at once"]
pub struct Subscription {
    unsubscribe: Option<Box<dyn FnOnce() + Send>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Subscription {
    /// Unsubscribes now (the same as dropping).
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
#[derive(Debug)]
#[must_use = "a Dispatch does nothing; await .wait() to know the handlers finished"]
pub struct Dispatch {
    tickets: Vec<Ticket>,
    sched: Scheduler,
}

impl Dispatch {
    /// How many handlers it was delivered to.
    pub fn delivered(&self) -> usize {
        self.tickets.len()
    }

    /// Each delivery's state, in subscription order.
    pub fn states(&self) -> Vec<ItemState> {
        self.tickets.iter().map(Ticket::state).collect()
    }

    /// Waits until every handler has finished with the event (or will never: it was cancelled, the
    /// handler failed or ended without taking it).
    pub async fn wait(&self) {
        all_done(&self.tickets).await;
    }

    /// [`wait`](Self::wait), bounded by `timeout` on chime's wheel.
    ///
    /// # Errors
    ///
    /// [`Elapsed`] when a handler has not finished with the event in time (it is stuck, or never took
    /// it).
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<(), Elapsed> {
        self.sched.timeout(timeout, self.wait()).await
    }

    /// Withdraws the event from the handlers that have not taken it yet; returns how many.
    pub fn cancel(&self) -> usize {
        self.tickets.iter().filter(|t| t.cancel()).count()
    }
}

/// Waits until every delivery is over (handled, cancelled, or failed).
async fn all_done(tickets: &[Ticket]) {
    for ticket in tickets {
        ticket.done().await;
    }
}
