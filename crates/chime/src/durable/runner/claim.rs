//! Claiming due timers in batches, starting their runs, and taking their ends.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::{Instant, timeout};

use super::{Done, Flight, Runner, ms};
use crate::Error;
use crate::durable::fire::{DurableFire, Handler, Report};
use crate::durable::machine::{ClaimRules, Decision, Outcome, Row};
use crate::durable::shared::Shared;
use crate::durable::store::{ClaimRequest, Finish};
use crate::unwind::CatchUnwind;

impl Runner {
    pub(super) async fn claim(&mut self) {
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
        // Creates committed from now on may be missing from the reply: they poke the runner.
        shared.next_claim_ms.store(i64::MAX, Ordering::SeqCst);
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
        shared.next_claim_ms.store(shared.store_ms().saturating_add(ms(until)), Ordering::SeqCst);
    }

    pub(super) fn claim_failed(&mut self, error: Error) {
        self.shared.report(Report::Store(error));
        self.next_claim = self.back_off();
        self.shared.next_claim_ms.store(i64::MIN, Ordering::SeqCst);
    }

    /// Starts a granted run: a sync handler on a blocking thread, an async one as a task.
    pub(super) fn start(&mut self, row: Row, valid_until: Instant) {
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
        // A run starts only while its lease is trusted: one that could not start in time (its
        // process was stopped, its worker slow to come) is handed back unstarted.
        let abort = match handler {
            Handler::Sync(run) => {
                self.pool.submit(move || {
                    let result = (Instant::now() < valid_until).then(|| {
                        match catch_unwind(AssertUnwindSafe(|| run(&fire))) {
                            Ok(result) => result.map_err(|e| e.to_string()),
                            Err(payload) => Err(panicked(&shared, &fire.key, &*payload)),
                        }
                    });
                    let _ = tx.send(Done { key: fire.key, fence: fire.fence, result });
                });
                None
            }
            Handler::Async(run) => {
                let task = tokio::spawn(async move {
                    let key = fire.key.clone();
                    let result = if Instant::now() < valid_until {
                        // The handler's closure may panic before its future does.
                        let outcome = match catch_unwind(AssertUnwindSafe(|| run(fire))) {
                            Ok(work) => CatchUnwind(work).await,
                            Err(payload) => Err(payload),
                        };
                        Some(match outcome {
                            Ok(result) => result.map_err(|e| e.to_string()),
                            Err(payload) => Err(panicked(&shared, &key, &*payload)),
                        })
                    } else {
                        None
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
    pub(super) fn record(&mut self, done: Done) {
        let Some(flight) = self.flights.get_mut(&done.key).filter(|f| f.fence == done.fence) else { return };
        flight.abort = None;
        flight.ended_at = Some(Instant::now());
        flight.outcome = Some(match done.result {
            None => Outcome::Released,
            Some(Ok(())) => Outcome::Fired,
            Some(Err(error)) => match self.shared.config.retry.delay(flight.attempt) {
                Some(delay) => Outcome::Retry { delay_ms: ms(delay), error },
                None => Outcome::Failed { error },
            },
        });
    }
}

/// Reports a handler's panic to the scheduler's panic hook; the message, as the run's error.
fn panicked(shared: &Shared, key: &str, payload: &(dyn std::any::Any + Send)) -> String {
    let message = crate::unwind::message(payload);
    if let Some(driver) = shared.driver.upgrade() {
        driver.hooks.report(&crate::unwind::PanicReport::new(
            None,
            format!("durable timer `{key}`"),
            payload,
        ));
    }
    format!("panicked: {message}")
}
