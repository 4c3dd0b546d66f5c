//! The runner: one task per [`DurableTimers`](super::DurableTimers) that claims due timers from the
//! store in batches, runs them under their leases, renews the leases in batches, records how the runs
//! ended in batches, purges, and reports.
//!
//! It holds only the runs in flight (at most `max_running`) and the time of the next claimable
//! timer, which each claim returns: however many timers the store holds, the scheduler's memory does
//! not grow with them. A run's lease is trusted locally only until `sent + lease * 9/10` of the claim
//! or renewal that last extended it (the store counts the lease from when it received the call, which
//! is later): past that an async run is stopped, so it can never overlap the next holder's run.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::{Instant, sleep_until, timeout};

use super::fire::{DurableFire, Handler, Report};
use super::handle::Shared;
use super::machine::{ClaimRules, Decision, Outcome, Row};
use super::pool::SyncPool;
use super::store::{ClaimRequest, Finish};
use crate::unwind::CatchUnwind;
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
    let runner = Runner::new(shared.clone(), sched.inner.runtime.clone());
    sched.inner.runtime.spawn(runner.run());
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
    result: Result<(), String>,
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

    fn store_error(&self, what: &str) -> Error {
        Error::store(self.shared.store.backend(), format!("{what} did not answer in time"))
    }

    /// After a failed store call: wait longer each time, up to the poll interval.
    fn back_off(&mut self) -> Instant {
        let floor = Duration::from_millis(10).min(self.shared.config.poll);
        self.backoff = (self.backoff * 2).clamp(floor, self.shared.config.poll);
        Instant::now() + self.backoff
    }

    async fn claim(&mut self) {
        let shared = self.shared.clone();
        let config = &shared.config;
        let limit = config.max_running - self.flights.len();
        let rules = ClaimRules {
            member: shared.member.clone(),
            lease_ms: ms(self.lease),
            max_attempts: config.retry.attempts(),
            grace_ms: config.grace.map(ms),
        };
        let sent_ms = shared.local_ms();
        let request = ClaimRequest { rules, handlers: shared.names.clone(), limit, now_ms: sent_ms };
        let sent = Instant::now();
        let reply = match timeout(self.lease / 2, shared.store.claim(&request)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(error)) => return self.claim_failed(error),
            Err(_) => return self.claim_failed(self.store_error("a claim")),
        };
        let elapsed = sent.elapsed();
        shared.observe_clock(reply.now_ms, sent_ms, ms(elapsed));
        let valid_until = sent + self.lease * 9 / 10;
        let (mut runs, mut handed_back) = (0, Vec::new());
        for claimed in reply.claimed {
            let row = claimed.row;
            match claimed.decision {
                Decision::Run if elapsed >= self.lease / 2 => {
                    // Too little of the lease is left to trust: hand the run back unstarted.
                    handed_back.push(Finish { key: row.key, fence: row.fence, outcome: Outcome::Released });
                }
                Decision::Run => {
                    runs += 1;
                    self.start(row, valid_until);
                }
                Decision::Skipped => {
                    shared.report(Report::Skipped { key: row.key, reason: row.error.unwrap_or_default() });
                }
                Decision::Exhausted => shared.report(Report::Failed {
                    key: row.key,
                    attempt: row.attempt,
                    error: row.error.unwrap_or_default(),
                }),
            }
        }
        if !handed_back.is_empty() {
            let late =
                format!("a claim's reply took {elapsed:?}, over half the lease; its runs were handed back");
            shared.report(Report::Store(Error::store(shared.store.backend(), late)));
            let _ =
                timeout(self.lease / 2, shared.store.finish(&shared.member, &handed_back, shared.local_ms()))
                    .await;
        }
        let now = Instant::now();
        self.next_claim = match reply.next_ready_ms {
            Some(_) if runs == limit => now,
            Some(ready) if ready <= reply.now_ms && runs == 0 => self.back_off(),
            Some(ready) => {
                self.backoff = Duration::ZERO;
                shared.instant_of(ready).min(now + config.poll)
            }
            None => now + config.poll,
        };
        let until = self.next_claim.saturating_duration_since(now);
        shared.next_claim_ms.store(shared.store_ms().saturating_add(ms(until)), Ordering::Relaxed);
    }

    fn claim_failed(&mut self, error: Error) {
        self.shared.report(Report::Store(error));
        self.next_claim = self.back_off();
        self.shared.next_claim_ms.store(i64::MIN, Ordering::Relaxed);
    }

    /// Starts a granted run: a sync handler on a blocking thread, an async one as a task.
    fn start(&mut self, row: Row, valid_until: Instant) {
        let Some(handler) = self.shared.handlers.get(&row.handler).cloned() else { return };
        let (key, fence) = (row.key.clone(), row.fence);
        let fire = DurableFire {
            key: row.key.clone(),
            handler: row.handler,
            payload: row.payload.into(),
            due_ms: row.due_ms,
            fence,
            attempt: row.attempt,
        };
        let (tx, shared) = (self.done_tx.clone(), self.shared.clone());
        let abort = match handler {
            Handler::Sync(run) => {
                self.pool.submit(move || {
                    let result = match catch_unwind(AssertUnwindSafe(|| run(&fire))) {
                        Ok(result) => result.map_err(|e| e.to_string()),
                        Err(payload) => Err(panicked(&shared, &fire.key, &*payload)),
                    };
                    let _ = tx.send(Done { key: fire.key, fence: fire.fence, result });
                });
                None
            }
            Handler::Async(run) => {
                let key = fire.key.clone();
                let work = CatchUnwind(run(fire));
                let task = tokio::spawn(async move {
                    let result = match work.await {
                        Ok(result) => result.map_err(|e| e.to_string()),
                        Err(payload) => Err(panicked(&shared, &key, &*payload)),
                    };
                    let _ = tx.send(Done { key, fence, result });
                });
                Some(task.abort_handle())
            }
        };
        self.flights.insert(
            key,
            Flight {
                fence,
                attempt: row.attempt,
                valid_until,
                abort,
                outcome: None,
                ended_at: None,
                abandoned: false,
            },
        );
    }

    /// A run ended: what to record, by the retry policy.
    fn record(&mut self, done: Done) {
        let Some(flight) = self.flights.get_mut(&done.key).filter(|f| f.fence == done.fence) else { return };
        flight.abort = None;
        flight.ended_at = Some(Instant::now());
        flight.outcome = Some(match done.result {
            Ok(()) => Outcome::Fired,
            Err(error) => match self.shared.config.retry.delay(flight.attempt) {
                Some(delay) => Outcome::Retry { delay_ms: ms(delay), error },
                None => Outcome::Failed { error },
            },
        });
    }

    /// Gives up runs whose lease can no longer be trusted: async runs are stopped, sync runs (which
    /// cannot be) are no longer renewed.
    fn watchdog(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .flights
            .iter()
            .filter(|(_, f)| !f.abandoned && f.outcome.is_none() && f.valid_until <= now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in expired {
            match self.flights.get_mut(&key) {
                Some(flight) if flight.abort.is_none() => {
                    flight.abandoned = true;
                    let fence = flight.fence;
                    self.shared.report(Report::LeaseLost { key, fence });
                }
                _ => self.lose(&key),
            }
        }
    }

    /// Gives a run up: its lease is lost (an async run is stopped; a sync run's end is ignored).
    fn lose(&mut self, key: &str) {
        if let Some(flight) = self.flights.remove(key) {
            if let Some(task) = flight.abort {
                task.abort();
            }
            self.shared.report(Report::LeaseLost { key: key.to_string(), fence: flight.fence });
        }
    }

    async fn renew(&mut self) {
        let shared = self.shared.clone();
        let runs: Vec<(String, u64)> =
            self.flights.iter().filter(|(_, f)| !f.abandoned).map(|(k, f)| (k.clone(), f.fence)).collect();
        if runs.is_empty() {
            self.next_renew = Instant::now() + self.lease / 3;
            return;
        }
        let sent = Instant::now();
        self.next_renew = sent + self.lease / 3;
        let call = shared.store.renew(&shared.member, &runs, ms(self.lease), shared.local_ms());
        match timeout(self.lease / 3, call).await {
            Ok(Ok(held)) => {
                for ((key, fence), held) in runs.iter().zip(held) {
                    match self.flights.get_mut(key).filter(|f| f.fence == *fence) {
                        Some(flight) if held => flight.valid_until = sent + self.lease * 9 / 10,
                        Some(_) => self.lose(key),
                        None => {}
                    }
                }
            }
            Ok(Err(error)) => shared.report(Report::Store(error)),
            Err(_) => shared.report(Report::Store(self.store_error("renewing the leases"))),
        }
    }

    /// Records the runs that ended, in one call.
    async fn flush(&mut self) {
        let shared = self.shared.clone();
        let ended: Vec<Finish> = self
            .flights
            .iter()
            .filter_map(|(key, f)| {
                f.outcome.clone().map(|outcome| Finish { key: key.clone(), fence: f.fence, outcome })
            })
            .collect();
        let call = shared.store.finish(&shared.member, &ended, shared.local_ms());
        let recorded = match timeout(self.lease / 3, call).await {
            Ok(Ok(recorded)) => recorded,
            Ok(Err(error)) => return self.flush_failed(error),
            Err(_) => return self.flush_failed(self.store_error("recording the runs' ends")),
        };
        for (finish, recorded) in ended.into_iter().zip(recorded) {
            let Some(flight) = self.flights.remove(&finish.key) else { continue };
            let (key, attempt) = (finish.key, flight.attempt);
            match finish.outcome {
                _ if !recorded && flight.abandoned => {} // reported when it was abandoned
                _ if !recorded => shared.report(Report::LeaseLost { key, fence: finish.fence }),
                Outcome::Retry { delay_ms, error } => {
                    let delay = Duration::from_millis(u64::try_from(delay_ms).unwrap_or(0));
                    shared.report(Report::Retrying { key, attempt, error, delay });
                }
                Outcome::Failed { error } => shared.report(Report::Failed { key, attempt, error }),
                Outcome::Fired | Outcome::Released => {}
            }
        }
        // A retry may be due before the next claim this runner knew of.
        self.next_claim = self.next_claim.min(Instant::now() + Duration::from_millis(1));
    }

    fn flush_failed(&mut self, error: Error) {
        self.shared.report(Report::Store(error));
        self.next_flush = self.back_off();
    }

    async fn purge(&mut self) {
        let shared = self.shared.clone();
        let every = (shared.config.retention / 2).clamp(shared.config.poll, Duration::from_secs(600));
        self.next_purge = Instant::now() + every;
        let cutoff = shared.store_ms().saturating_sub(ms(shared.config.retention));
        for _ in 0..10 {
            match timeout(self.lease / 3, shared.store.purge(cutoff, PURGE_BATCH)).await {
                Ok(Ok(n)) if n == PURGE_BATCH => continue,
                Ok(Ok(_)) => return,
                Ok(Err(error)) => return shared.report(Report::Store(error)),
                Err(_) => return shared.report(Report::Store(self.store_error("a purge"))),
            }
        }
    }

    async fn unknown(&mut self) {
        let shared = self.shared.clone();
        self.next_unknown = Instant::now() + UNKNOWN_EVERY;
        match timeout(self.lease / 3, shared.store.unknown(&shared.names, shared.store_ms())).await {
            Ok(Ok(unknown)) => {
                for (handler, timers) in unknown {
                    shared.report(Report::UnknownHandler { handler, timers });
                }
            }
            Ok(Err(error)) => shared.report(Report::Store(error)),
            Err(_) => shared.report(Report::Store(self.store_error("counting unknown handlers"))),
        }
    }

    /// Stops serving: async runs are stopped and handed back, sync runs waited for (their leases
    /// renewed meanwhile), and every end recorded (tried for up to one lease).
    async fn stop(&mut self) {
        for flight in self.flights.values_mut().filter(|f| f.outcome.is_none()) {
            if let Some(task) = flight.abort.take() {
                task.abort();
                flight.outcome = Some(Outcome::Released);
                flight.ended_at = Some(Instant::now());
            }
        }
        while self.flights.values().any(|f| f.outcome.is_none()) {
            tokio::select! {
                Some(done) = self.done_rx.recv() => self.record(done),
                () = sleep_until(self.next_renew) => self.renew().await,
            }
        }
        let give_up = Instant::now() + self.lease;
        while !self.flights.is_empty() && Instant::now() < give_up {
            self.flush().await;
            if !self.flights.is_empty() {
                sleep_until(self.next_flush.min(give_up)).await;
            }
        }
        self.shared.running.store(0, Ordering::Relaxed);
    }
}

/// Reports a handler's panic to the scheduler's panic hook; the message, as the run's error.
fn panicked(shared: &Shared, key: &str, payload: &(dyn std::any::Any + Send)) -> String {
    let message = crate::unwind::message(payload);
    if let Some(inner) = shared.inner.upgrade() {
        inner.report(crate::PanicReport::new(None, format!("durable timer `{key}`"), payload));
    }
    format!("panicked: {message}")
}
