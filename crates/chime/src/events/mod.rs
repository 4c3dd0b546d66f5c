//! The event bus: Copas' eventer, with Rust types. Handlers run as [workers](crate::Worker), each
//! with its own queue of events; a [`Dispatch`] tells when every handler has finished with an event.
//!
//! A handler has finished with an event when it takes the next one from its queue (or ends), as in
//! Copas, where a handler's `pop` marks the previous event handled.

mod dispatch;
mod named;

pub use dispatch::{Dispatch, Subscription};
pub use named::{NamedEvent, NamedEvents};

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use crate::scheduler::registry::{Announce, BoxFuture};
use crate::scheduler::{Lifecycle, Scheduler};
use crate::worker::{Queue, Ticket, Worker};

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
        Box::pin(async move { dispatch::all_done(&tickets).await })
    }
}

/// A typed event bus; made by [`Scheduler::events`]. Cheap to clone; clones share subscribers.
///
/// # Examples
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
/// events.dispatch(MyEvent::Stop).wait().await;
/// assert_eq!(*seen.lock().unwrap(), vec![MyEvent::Start, MyEvent::Stop]);
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
    /// A new typed event bus, with no subscriber yet; each call makes a bus of its own.
    ///
    /// In Copas this is `copas.eventer.decorate(obj, {"start", "stop"})`; here the events are the
    /// values of a Rust type (for a bus named by strings, see [`named_events`](Self::named_events)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// #[derive(Clone)]
    /// enum Module { Start, Stop }
    ///
    /// let sched = chime::Scheduler::start();
    /// let events = sched.events::<Module>();
    /// assert_eq!(events.subscribers(), 0);
    /// assert_eq!(events.dispatch(Module::Start).delivered(), 0, "nobody listens yet");
    /// assert_eq!(sched.events::<Module>().dispatch(Module::Stop).delivered(), 0);
    /// # }
    /// ```
    pub fn events<E: Clone + Send + 'static>(&self) -> Events<E> {
        Events { sched: self.clone(), bus: Arc::new(Bus::default()), lifecycle: false }
    }

    /// The scheduler's own lifecycle events: [`Lifecycle::Starting`] and [`Lifecycle::Started`] when
    /// the driver first runs (subscribe before the first `.await` after starting to see them),
    /// [`Lifecycle::Stopping`] and [`Lifecycle::Stopped`] during [`shutdown`](Self::shutdown), which
    /// waits for the handlers of each.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use std::sync::{Arc, Mutex};
    /// use chime::Lifecycle;
    /// let sched = chime::Scheduler::start();
    /// let stages = Arc::new(Mutex::new(Vec::new()));
    /// let log = stages.clone();
    /// let _sub = sched.lifecycle().subscribe(move |mut queue: chime::Queue<Lifecycle>| async move {
    ///     while let Some(stage) = queue.pop().await { log.lock().unwrap().push(stage); }
    /// });
    /// sched.sleep(std::time::Duration::from_millis(10)).await;   // the program runs
    /// sched.shutdown().await;
    /// use Lifecycle::*;
    /// assert_eq!(*stages.lock().unwrap(), [Starting, Started, Stopping, Stopped]);
    /// # }
    /// ```
    ///
    /// These are Copas' own events, which it dispatches once the eventer is loaded, as its loop
    /// starts and stops.
    pub fn lifecycle(&self) -> Events<Lifecycle> {
        let bus = self.shared.registry.lifecycle(Bus::<Lifecycle>::default);
        Events { sched: self.clone(), bus, lifecycle: true }
    }
}

impl<E: Clone + Send + 'static> Events<E> {
    /// Runs `handler` as a worker that receives every event dispatched from now on; unsubscribes when
    /// the returned [`Subscription`] is dropped (the handler then drains what it was sent, and ends).
    ///
    /// Copas' `copas:subscribe(obj, handler)`: the handler is a worker popping its own queue.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let events = sched.events::<u32>();
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let subscription = events.subscribe(move |mut queue: chime::Queue<u32>| async move {
    ///     while let Some(n) = queue.pop().await {
    ///         let _ = tx.send(n * 10);
    ///     }
    /// });
    /// assert_eq!(events.dispatch(4).delivered(), 1);
    /// assert_eq!(rx.recv().await, Some(40));
    /// drop(subscription);                  // unsubscribes: the handler ends
    /// assert_eq!(rx.recv().await, None);
    /// # }
    /// ```
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

    /// Sends `event` to every subscriber: a clone each, queued for its handler; it does not wait for
    /// them. The [`Dispatch`] tells when they have all finished with it.
    ///
    /// Copas' `obj:dispatch(event, ...)`, whose handlers likewise run later, as workers.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::{Arc, Mutex};
    /// let sched = chime::Scheduler::start();
    /// let events = sched.events::<&'static str>();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let mut subscriptions = Vec::new();
    /// for _ in 0..2 {
    ///     let log = seen.clone();
    ///     subscriptions.push(events.subscribe(move |mut queue: chime::Queue<&'static str>| async move {
    ///         while let Some(event) = queue.pop().await { log.lock().unwrap().push(event); }
    ///     }));
    /// }
    /// let dispatch = events.dispatch("start");
    /// assert_eq!(dispatch.delivered(), 2);
    /// dispatch.wait().await;
    /// assert_eq!(*seen.lock().unwrap(), ["start", "start"]);
    /// # }
    /// ```
    pub fn dispatch(&self, event: E) -> Dispatch {
        Dispatch { tickets: self.bus.deliver(&event), sched: self.sched.clone() }
    }

    /// Current subscribers.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let events = sched.events::<()>();
    /// let subscription = events.subscribe(|mut queue: chime::Queue<()>| async move {
    ///     while queue.pop().await.is_some() {}
    /// });
    /// assert_eq!(events.subscribers(), 1);
    /// assert_eq!(events.clone().subscribers(), 1, "clones share subscribers");
    /// drop(subscription);
    /// assert_eq!(events.subscribers(), 0);
    /// # }
    /// ```
    pub fn subscribers(&self) -> usize {
        self.bus.lock().len()
    }
}
