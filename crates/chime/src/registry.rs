//! What a scheduler keeps of its workers, event buses and fd watches, so shutdown can reach them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use crate::events::{Bus, Lifecycle};
use crate::worker::WorkerControl;

type Workers = Vec<(Weak<dyn WorkerControl>, bool)>;

/// A scheduler's workers (weakly: a worker nobody holds is not kept alive), its lifecycle bus and
/// its fd watches.
pub(crate) struct Registry {
    workers: Mutex<Workers>,
    pub(crate) lifecycle: Arc<Bus<Lifecycle>>,
    watches: Mutex<HashMap<u64, tokio::task::AbortHandle>>,
    next_watch: AtomicU64,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            workers: Mutex::new(Vec::new()),
            lifecycle: Arc::new(Bus::default()),
            watches: Mutex::new(HashMap::new()),
            next_watch: AtomicU64::new(1),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    pub(crate) fn add_worker(&self, worker: Weak<dyn WorkerControl>, lifecycle: bool) {
        let mut workers = lock(&self.workers);
        workers.retain(|(w, _)| w.strong_count() > 0);
        workers.push((worker, lifecycle));
    }

    /// Closes every live worker (the lifecycle handlers, or the others) and waits for them to end.
    /// Returns how many were closed and how many items they left unprocessed.
    pub(crate) async fn close_workers(&self, lifecycle: bool) -> (usize, usize) {
        let workers: Vec<_> = lock(&self.workers)
            .iter()
            .filter(|(_, l)| *l == lifecycle)
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

    /// Registers the task `spawn` starts for a new watch id. The lock is held across the spawn, so a
    /// task that ends at once cannot forget its id before it is registered.
    pub(crate) fn add_watch(&self, spawn: impl FnOnce(u64) -> tokio::task::AbortHandle) -> u64 {
        let id = self.next_watch.fetch_add(1, Ordering::Relaxed);
        let mut watches = lock(&self.watches);
        watches.insert(id, spawn(id));
        id
    }

    /// Stops watch `id`; `false` if it is gone.
    pub(crate) fn remove_watch(&self, id: u64) -> bool {
        let task = lock(&self.watches).remove(&id);
        task.map(|t| t.abort()).is_some()
    }

    /// Forgets a watch whose task ended by itself.
    pub(crate) fn forget_watch(&self, id: u64) {
        lock(&self.watches).remove(&id);
    }

    pub(crate) fn stop_watches(&self) -> usize {
        let watches: Vec<_> = lock(&self.watches).drain().collect();
        watches.iter().for_each(|(_, t)| t.abort());
        watches.len()
    }
}
