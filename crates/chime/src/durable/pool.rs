//! Where sync handlers run: blocking threads that take runs from one queue until it is empty.
//!
//! A `spawn_blocking` per run costs a thread wake-up (or a new thread) each; a burst of a thousand
//! overdue timers would spend more on that than on the handlers. Here a few workers (twice the CPUs)
//! drain the queue; a run that waits longer than [`STUCK`] (every worker is inside a slow handler)
//! brings in as many more workers as there are runs waiting, up to `max_running`, so a slow handler
//! never holds up the others for long.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// How long a queued run may wait for a worker before more workers are started.
pub(crate) const STUCK: Duration = Duration::from_millis(10);

type Job = Box<dyn FnOnce() + Send>;

struct State {
    queue: VecDeque<(Job, Instant)>,
    workers: usize,
    busy: usize,
}

/// The sync-handler workers of one runner.
pub(crate) struct SyncPool {
    state: Mutex<State>,
    /// At most this many workers (the runner's `max_running`).
    cap: usize,
    /// Workers started without waiting.
    eager: usize,
    runtime: tokio::runtime::Handle,
}

impl SyncPool {
    pub(crate) fn new(cap: usize, runtime: tokio::runtime::Handle) -> Arc<SyncPool> {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        Arc::new(SyncPool {
            state: Mutex::new(State { queue: VecDeque::new(), workers: 0, busy: 0 }),
            cap,
            eager: (2 * cpus).min(cap).max(1),
            runtime,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a run; starts a worker when none is free to take it (up to the eager count).
    pub(crate) fn submit(self: &Arc<Self>, job: impl FnOnce() + Send + 'static) {
        let start = {
            let mut state = self.lock();
            state.queue.push_back((Box::new(job), Instant::now()));
            let free = state.workers - state.busy;
            let start = state.queue.len() > free && state.workers < self.eager;
            state.workers += usize::from(start);
            start
        };
        if start {
            self.start_worker();
        }
    }

    /// When the oldest queued run waited too long: starts a worker for every run waiting. Returns
    /// when to look again (the oldest run's [`STUCK`] deadline), if any run is queued.
    pub(crate) fn unstick(self: &Arc<Self>) -> Option<Instant> {
        let (start, next) = {
            let mut state = self.lock();
            let oldest = state.queue.front().map(|(_, queued)| *queued)?;
            if oldest.elapsed() < STUCK {
                return Some(oldest + STUCK);
            }
            let start = state.queue.len().min(self.cap.saturating_sub(state.workers));
            state.workers += start;
            (start, oldest + STUCK)
        };
        for _ in 0..start {
            self.start_worker();
        }
        // Still waiting after that means every worker there may be is busy: look again later.
        Some(next.max(Instant::now() + STUCK))
    }

    fn start_worker(self: &Arc<Self>) {
        let pool = self.clone();
        self.runtime.spawn_blocking(move || {
            loop {
                let job = {
                    let mut state = pool.lock();
                    match state.queue.pop_front() {
                        Some((job, _)) => {
                            state.busy += 1;
                            job
                        }
                        None => {
                            state.workers -= 1;
                            return;
                        }
                    }
                };
                job(); // the runner's closure catches the handler's panics
                pool.lock().busy -= 1;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_run_does_not_hold_the_others_up_for_long() {
        let pool = SyncPool::new(64, tokio::runtime::Handle::current());
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..pool.eager {
            // Slow enough that a bound of half of it cannot be met by waiting for them, and leaves
            // a loaded machine hundreds of milliseconds to start the helper workers.
            pool.submit(|| std::thread::sleep(Duration::from_millis(1_500)));
        }
        let started = std::time::Instant::now();
        for _ in 0..10 {
            let done = done.clone();
            pool.submit(move || {
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        while done.load(Ordering::SeqCst) < 10 {
            if let Some(at) = pool.unstick() {
                tokio::time::sleep_until(at).await;
            }
        }
        assert!(
            started.elapsed() < Duration::from_millis(750),
            "the quick runs waited {:?}",
            started.elapsed()
        );
        assert!(pool.lock().workers <= 64);
    }
}
