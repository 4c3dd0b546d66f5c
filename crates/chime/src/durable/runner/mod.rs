//! The runner: one task per [`DurableTimers`](crate::durable::DurableTimers) that claims due timers from the
//! store in batches, runs them under their leases, renews the leases in batches, records how the runs
//! ended in batches, purges, and reports.
//!
//! It holds only the runs in flight (at most `max_running`) and the time of the next claimable
//! timer, which each claim returns: however many timers the store holds, the scheduler's memory does
//! not grow with them. A run's lease is trusted locally only until `sent + lease * 9/10` of the claim
//! or renewal that last extended it (the store counts the lease from when it received the call, which
//! is later): past that an async run is stopped, so it can never overlap the next holder's run.

mod claim;
mod ends;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::{Instant, sleep_until};

use crate::durable::machine::Outcome;
use crate::durable::pool::SyncPool;
use crate::durable::shared::Shared;
use crate::{Error, Lifecycle, Scheduler};

/// How often timers waiting for an unknown handler are reported again.
const UNKNOWN_EVERY: Duration = Duration::from_secs(60);
/// Rows a purge deletes per call (a few calls per round).
const PURGE_BATCH: usize = 1000;
/// How long ended runs wait for others to end before their ends are recorded (one transaction, one
/// fsync on SQLite, for all of them), unless every run in flight has ended.
const GATHER: Duration = Duration::from_millis(5);

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Starts the runner of `shared` and ties it to the scheduler's shutdown.
pub(crate) fn spawn(sched: &Scheduler, shared: Arc<Shared>) {
    let runtime = sched.driver().runtime.clone();
    let runner = Runner::new(shared.clone(), runtime.clone());
    runtime.spawn(runner.run());
    let on_stop = shared.clone();
    let subscription = sched.lifecycle().subscribe(move |mut queue| async move {
        while let Some(stage) = queue.pop().await {
            if stage == Lifecycle::Stopping {
                on_stop.stop.send_replace(true);
                let _ = on_stop.stopped.subscribe().wait_for(|s| *s).await;
            }
        }
    });
    *shared.subscription.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(subscription);
}

/// One run in flight.
struct Flight {
    fence: u64,
    attempt: u32,
    /// The lease is trusted until then (see the module docs).
    valid_until: Instant,
    /// An async run's task, to stop it.
    abort: Option<AbortHandle>,
    /// How it ended, once it did, until the store has recorded it.
    outcome: Option<Outcome>,
    /// When it ended.
    ended_at: Option<Instant>,
    /// A sync run whose lease could not be confirmed in time: no longer renewed (so another scheduler
    /// can take the timer over after the lease); its end is still offered to the store, which refuses
    /// it if another run took the timer.
    abandoned: bool,
}

/// A run's end, sent by its task.
struct Done {
    key: String,
    fence: u64,
    /// What the handler returned; `None` when it was not started (its lease was no longer trusted).
    result: Option<Result<(), String>>,
}

struct Runner {
    shared: Arc<Shared>,
    lease: Duration,
    flights: HashMap<String, Flight>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    next_claim: Instant,
    next_renew: Instant,
    next_flush: Instant,
    next_purge: Instant,
    next_unknown: Instant,
    /// Grows while the store fails (or claims come back empty while something is due).
    backoff: Duration,
    /// Where sync handlers run.
    pool: Arc<SyncPool>,
    /// When to look at the sync runs waiting for a worker again.
    next_unstick: Option<Instant>,
}

impl Runner {
    fn new(shared: Arc<Shared>, runtime: tokio::runtime::Handle) -> Runner {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let now = Instant::now();
        Runner {
            pool: SyncPool::new(shared.config.max_running, runtime),
            next_unstick: None,
            lease: shared.config.lease,
            shared,
            flights: HashMap::new(),
            done_tx,
            done_rx,
            next_claim: now,
            next_renew: now,
            next_flush: now,
            next_purge: now,
            next_unknown: now,
            backoff: Duration::ZERO,
        }
    }

    async fn run(mut self) {
        let mut stop = self.shared.stop.subscribe();
        while !*stop.borrow_and_update() {
            self.step().await;
            let wake = self.next_wake();
            tokio::select! {
                () = sleep_until(wake) => {}
                Some(done) = self.done_rx.recv() => self.record(done),
                () = self.shared.poke.notified() => self.next_claim = Instant::now(),
                _ = stop.changed() => {}
            }
        }
        self.stop().await;
        self.shared.stopped.send_replace(true);
    }

    /// One round: whatever is due now.
    async fn step(&mut self) {
        while let Ok(done) = self.done_rx.try_recv() {
            self.record(done);
        }
        let now = Instant::now();
        self.watchdog(now);
        if self.flush_at().is_some_and(|at| now >= at) {
            self.flush().await;
        }
        if now >= self.next_renew && !self.flights.is_empty() {
            self.renew().await;
        }
        if now >= self.next_claim && self.flights.len() < self.shared.config.max_running {
            self.claim().await;
        }
        if now >= self.next_purge {
            self.purge().await;
        }
        if now >= self.next_unknown {
            self.unknown().await;
        }
        self.next_unstick = self.pool.unstick();
        self.shared.running.store(self.flights.len(), Ordering::Relaxed);
    }

    fn next_wake(&self) -> Instant {
        let mut wake = self.next_purge.min(self.next_unknown);
        if let Some(at) = self.next_unstick {
            wake = wake.min(at);
        }
        if self.flights.len() < self.shared.config.max_running {
            wake = wake.min(self.next_claim);
        }
        if !self.flights.is_empty() {
            wake = wake.min(self.next_renew);
        }
        if let Some(at) = self.flush_at() {
            wake = wake.min(at);
        }
        for flight in self.flights.values().filter(|f| !f.abandoned && f.outcome.is_none()) {
            wake = wake.min(flight.valid_until);
        }
        wake
    }

    /// When the ended runs' ends are to be recorded: once every run in flight has ended, else
    /// [`GATHER`] after the first ended, so one call records many (not before a failed call's backoff).
    fn flush_at(&self) -> Option<Instant> {
        let ended: Vec<Instant> =
            self.flights.values().filter_map(|f| f.ended_at.filter(|_| f.outcome.is_some())).collect();
        let first = ended.iter().min()?;
        let at = if ended.len() == self.flights.len() { *first } else { *first + GATHER };
        Some(at.max(self.next_flush))
    }

    pub(super) fn store_error(&self, what: &str) -> Error {
        Error::store(self.shared.store.backend(), format!("{what} did not answer in time"))
    }

    /// After a failed store call: wait longer each time, up to the poll interval.
    pub(super) fn back_off(&mut self) -> Instant {
        let floor = Duration::from_millis(10).min(self.shared.config.poll);
        self.backoff = (self.backoff * 2).clamp(floor, self.shared.config.poll);
        Instant::now() + self.backoff
    }
}
