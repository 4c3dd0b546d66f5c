//! A bus whose events are named by strings from a fixed list: Copas'
//! `eventer.decorate(obj, {"start", "stop"})`, for dynamic callers such as a Lua bridge.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::{Dispatch, Events, Subscription};
use crate::error::Error;
use crate::scheduler::Scheduler;
use crate::worker::Queue;

/// An event of a [`NamedEvents`] bus: its name and its data.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
/// let sched = chime::Scheduler::start();
/// let bus = sched.named_events::<&'static str>(&["start", "stop"]);
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// let _sub = bus.subscribe(move |mut queue: chime::Queue<chime::NamedEvent<&'static str>>| async move {
///     while let Some(event) = queue.pop().await { let _ = tx.send(event); }
/// });
/// bus.dispatch("stop", "bye")?.wait().await;
/// let event = rx.recv().await.unwrap();
/// assert_eq!((event.name(), *event.data()), ("stop", "bye"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedEvent<D = ()> {
    name: Arc<str>,
    data: D,
}

impl<D> NamedEvent<D> {
    /// The event's name, one of the bus's declared names.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let bus = sched.named_events::<u32>(&["start", "stop"]);
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let _sub = bus.subscribe(move |mut queue: chime::Queue<chime::NamedEvent<u32>>| async move {
    ///     while let Some(event) = queue.pop().await { let _ = tx.send(event); }
    /// });
    /// bus.dispatch("start", 7)?.wait().await;
    /// let event = rx.recv().await.unwrap();
    /// assert_eq!(event.name(), "start");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The data dispatched with it (Copas passes it as the dispatch's extra arguments).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let bus = sched.named_events::<u32>(&["start", "stop"]);
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let _sub = bus.subscribe(move |mut queue: chime::Queue<chime::NamedEvent<u32>>| async move {
    ///     while let Some(event) = queue.pop().await { let _ = tx.send(event); }
    /// });
    /// bus.dispatch("start", 7)?.wait().await;
    /// let event = rx.recv().await.unwrap();
    /// assert_eq!(*event.data(), 7);
    /// # Ok(()) }
    /// ```
    pub fn data(&self) -> &D {
        &self.data
    }

    /// The data, by value.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let bus = sched.named_events::<u32>(&["start", "stop"]);
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let _sub = bus.subscribe(move |mut queue: chime::Queue<chime::NamedEvent<u32>>| async move {
    ///     while let Some(event) = queue.pop().await { let _ = tx.send(event); }
    /// });
    /// bus.dispatch("start", 7)?.wait().await;
    /// let event = rx.recv().await.unwrap();
    /// assert_eq!(event.into_data(), 7);
    /// # Ok(()) }
    /// ```
    pub fn into_data(self) -> D {
        self.data
    }
}

/// A bus declared with a fixed list of event names; an unknown name is an error, never a silent
/// no-op. Made by [`Scheduler::named_events`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
/// let sched = chime::Scheduler::start();
/// let module = sched.named_events::<String>(&["start", "txerror", "rxerror", "stop"]);
/// let _sub = module.subscribe(|mut queue: chime::Queue<chime::NamedEvent<String>>| async move {
///     while let Some(e) = queue.pop().await { println!("{}: {}", e.name(), e.data()); }
/// });
/// module.dispatch("start", "start data 1".to_string())?.wait().await;
/// assert!(module.dispatch("restart", String::new()).is_err());
/// # Ok(()) }
/// ```
pub struct NamedEvents<D = ()> {
    events: Events<NamedEvent<D>>,
    names: Arc<[Arc<str>]>,
}

impl<D> Clone for NamedEvents<D> {
    fn clone(&self) -> Self {
        NamedEvents { events: self.events.clone(), names: self.names.clone() }
    }
}

impl<D> fmt::Debug for NamedEvents<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedEvents").field("names", &self.names).finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A bus with the event names `names`, carrying data of type `D`; dispatching any other name
    /// is an error.
    ///
    /// Copas' `copas.eventer.decorate(my_module, {"start", "txerror", "rxerror", "stop"})`, for
    /// callers that name events at run time (a Lua bridge); Rust code may prefer a typed
    /// [`events`](Self::events) bus.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let module = sched.named_events::<()>(&["start", "stop"]);
    /// assert_eq!(module.names().collect::<Vec<_>>(), ["start", "stop"]);
    /// assert!(module.dispatch("start", ()).is_ok());
    /// assert!(module.dispatch("restart", ()).is_err());
    /// # }
    /// ```
    pub fn named_events<D: Clone + Send + 'static>(&self, names: &[&str]) -> NamedEvents<D> {
        NamedEvents { events: self.events(), names: names.iter().map(|&n| Arc::from(n)).collect() }
    }
}

impl<D: Clone + Send + 'static> NamedEvents<D> {
    /// The declared names, in declaration order.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let module = sched.named_events::<()>(&["start", "txerror", "rxerror", "stop"]);
    /// assert_eq!(module.names().last(), Some("stop"));
    /// # }
    /// ```
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }

    fn lookup(&self, name: &str) -> Result<Arc<str>, Error> {
        self.names
            .iter()
            .find(|n| &***n == name)
            .cloned()
            .ok_or_else(|| Error::UnknownEvent(name.to_string()))
    }

    /// Dispatches the event `name` with `data` to its subscribers.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownEvent`] for a name the bus was not declared with.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let module = sched.named_events::<String>(&["start", "stop"]);
    /// let _sub = module.subscribe(|mut queue: chime::Queue<chime::NamedEvent<String>>| async move {
    ///     while queue.pop().await.is_some() {}
    /// });
    /// let dispatch = module.dispatch("start", "start data 1".to_string())?;
    /// assert_eq!(dispatch.delivered(), 1);
    /// assert_eq!(
    ///     module.dispatch("restart", String::new()).unwrap_err(),
    ///     chime::Error::UnknownEvent("restart".to_string()),
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// In Copas: `self:dispatch("start", "start data 1")`.
    pub fn dispatch(&self, name: &str, data: D) -> Result<Dispatch, Error> {
        let name = self.lookup(name)?;
        Ok(self.events.dispatch(NamedEvent { name, data }))
    }

    /// Subscribes `handler` to every event of the bus (Copas' `copas:subscribe(obj, handler)`);
    /// dropping the [`Subscription`] unsubscribes.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use std::sync::{Arc, Mutex};
    /// let sched = chime::Scheduler::start();
    /// let module = sched.named_events::<()>(&["start", "stop"]);
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let _sub = module.subscribe(move |mut queue: chime::Queue<chime::NamedEvent>| async move {
    ///     while let Some(event) = queue.pop().await { log.lock().unwrap().push(event.name().to_string()); }
    /// });
    /// module.dispatch("start", ())?.wait().await;
    /// module.dispatch("stop", ())?.wait().await;
    /// assert_eq!(*seen.lock().unwrap(), ["start", "stop"]);
    /// # Ok(()) }
    /// ```
    pub fn subscribe<F, Fut>(&self, handler: F) -> Subscription
    where
        F: FnOnce(Queue<NamedEvent<D>>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.events.subscribe(handler)
    }

    /// Subscribes `handler` to the events named in `names` only.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownEvent`] naming the first name the bus was not declared with.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let module = sched.named_events::<()>(&["start", "txerror", "rxerror", "stop"]);
    /// let _errors = module.subscribe_to(&["txerror", "rxerror"], |mut queue: chime::Queue<chime::NamedEvent>| async move {
    ///     while let Some(event) = queue.pop().await { eprintln!("{} happened", event.name()); }
    /// })?;
    /// assert_eq!(module.dispatch("txerror", ())?.delivered(), 1);
    /// assert_eq!(module.dispatch("start", ())?.delivered(), 0, "not subscribed to");
    /// let typo = module.subscribe_to(&["stop", "tx_error"], |_queue: chime::Queue<chime::NamedEvent>| async {});
    /// assert_eq!(typo.unwrap_err(), chime::Error::UnknownEvent("tx_error".to_string()));
    /// # Ok(()) }
    /// ```
    ///
    /// Copas subscribes a handler to the events it names, as in
    /// `copas:subscribe(my_app, my_app.before_start, ...)`.
    pub fn subscribe_to<F, Fut>(&self, names: &[&str], handler: F) -> Result<Subscription, Error>
    where
        F: FnOnce(Queue<NamedEvent<D>>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let wanted: Vec<Arc<str>> = names.iter().map(|n| self.lookup(n)).collect::<Result<_, _>>()?;
        let filter = Arc::new(move |e: &NamedEvent<D>| wanted.iter().any(|w| Arc::ptr_eq(w, &e.name)));
        Ok(self.events.subscribe_filtered(Some(filter), handler))
    }
}
