//! What a scheduler keeps of the facilities built on it, so shutdown can reach them: workers (weakly:
//! a worker nobody holds is not kept alive), background tasks such as fd watches, and the bus that
//! announces the scheduler's [`Lifecycle`]. The facilities register themselves through the two small
//! traits here; the scheduler knows nothing else of them.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use super::Lifecycle;

/// A future a facility hands the scheduler.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something shutdown closes and waits for: a worker (event handlers are workers too).
pub(crate) trait Drain: Send + Sync {
    /// Takes no more work; what is queued is still processed.
    fn close(&self);
    /// Resolves once it has ended, with how many items it left unprocessed.
    fn finished(&self) -> BoxFuture<'_, usize>;
}

/// The bus that delivers the scheduler's lifecycle stages (made by the events facility).
pub(crate) trait Announce: Any + Send + Sync {
    /// Delivers `stage` now; the future resolves once every handler has finished with it.
    fn announce(&self, stage: Lifecycle) -> BoxFuture<'static, ()>;
}

/// Which shutdown step closes a worker: the lifecycle's own handlers close last, after `Stopped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Work,
    Lifecycle,
}

/// A scheduler's registry; see the [module](self).
#[derive(Default)]
pub(crate) struct Registry {
    workers: Mutex<Vec<(Weak<dyn Drain>, Phase)>>,
    tasks: Mutex<HashMap<u64, tokio::task::AbortHandle>>,
    next_task: AtomicU64,
    lifecycle: OnceLock<Arc<dyn Announce>>,
    /// `Starting` and `Started` were announced (by the driver's first run, or by a shutdown that came
    /// before it).
    started: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    pub(crate) fn add_worker(&self, worker: Weak<dyn Drain>, phase: Phase) {
        let mut workers = lock(&self.workers);
        workers.retain(|(w, _)| w.strong_count() > 0);
        workers.push((worker, phase));
    }

    /// Closes every live worker of `phase` and waits for them to end. Returns how many were closed
    /// and how many items they left unprocessed.
    pub(crate) async fn close_workers(&self, phase: Phase) -> (usize, usize) {
        let workers: Vec<_> = lock(&self.workers)
            .iter()
            .filter(|(_, p)| *p == phase)
            .filter_map(|(w, _)| w.upgrade())
            .collect();
        for worker in &workers {
            worker.close();
        }
        let mut unprocessed = 0;
        for worker in &workers {
            unprocessed += worker.finished().await;
        }
        (workers.len(), unprocessed)
    }

    /// Registers the task `spawn` starts under a new id (ids are never reused). The lock is held
    /// across the spawn, so a task that ends at once cannot forget its id before it is registered.
    pub(crate) fn add_task(&self, spawn: impl FnOnce(u64) -> tokio::task::AbortHandle) -> u64 {
        let id = self.next_task.fetch_add(1, Ordering::Relaxed) + 1;
        let mut tasks = lock(&self.tasks);
        tasks.insert(id, spawn(id));
        id
    }

    /// Stops task `id`; `false` if it is gone.
    pub(crate) fn remove_task(&self, id: u64) -> bool {
        let task = lock(&self.tasks).remove(&id);
        task.map(|t| t.abort()).is_some()
    }

    /// Forgets a task that ended by itself.
    pub(crate) fn forget_task(&self, id: u64) {
        lock(&self.tasks).remove(&id);
    }

    /// Stops every task; returns how many there were.
    pub(crate) fn stop_tasks(&self) -> usize {
        let tasks: Vec<_> = lock(&self.tasks).drain().collect();
        tasks.iter().for_each(|(_, t)| t.abort());
        tasks.len()
    }

    /// The lifecycle bus, made by `make` on first use.
    pub(crate) fn lifecycle<B: Announce>(&self, make: impl FnOnce() -> B) -> Arc<B> {
        let bus: Arc<dyn Announce> = self.lifecycle.get_or_init(|| Arc::new(make())).clone();
        let bus: Arc<dyn Any + Send + Sync> = bus;
        bus.downcast().unwrap_or_else(|_| unreachable!("one facility makes the lifecycle bus, of one type"))
    }

    /// Announces `Starting` and `Started`, once: whoever comes first, the driver's first run or a
    /// shutdown, so the stages always arrive in order.
    pub(crate) fn announce_start(&self) {
        if !self.started.swap(true, Ordering::AcqRel) {
            for stage in [Lifecycle::Starting, Lifecycle::Started] {
                drop(self.announce(stage));
            }
        }
    }

    /// Announces `stage` on the lifecycle bus, if anyone made it; resolves once its handlers are done.
    pub(crate) fn announce(&self, stage: Lifecycle) -> BoxFuture<'static, ()> {
        match self.lifecycle.get() {
            Some(bus) => bus.announce(stage),
            None => Box::pin(std::future::ready(())),
        }
    }
}
