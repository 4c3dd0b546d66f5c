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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedEvent<D = ()> {
    name: Arc<str>,
    data: D,
}

impl<D> NamedEvent<D> {
    /// The event's name, one of the bus's declared names.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The data dispatched with it.
    pub fn data(&self) -> &D {
        &self.data
    }

    /// The data, by value.
    pub fn into_data(self) -> D {
        self.data
    }
}

/// A bus declared with a fixed list of event names; an unknown name is an error, never a silent
/// no-op. Made by [`Scheduler::named_events`].
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
    /// A bus with the event names `names`, carrying data of type `D`.
    pub fn named_events<D: Clone + Send + 'static>(&self, names: &[&str]) -> NamedEvents<D> {
        NamedEvents { events: self.events(), names: names.iter().map(|&n| Arc::from(n)).collect() }
    }
}

impl<D: Clone + Send + 'static> NamedEvents<D> {
    /// The declared names.
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
    pub fn dispatch(&self, name: &str, data: D) -> Result<Dispatch, Error> {
        let name = self.lookup(name)?;
        Ok(self.events.dispatch(NamedEvent { name, data }))
    }

    /// Subscribes `handler` to every event of the bus.
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
