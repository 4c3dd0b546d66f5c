//! Keeping leases and recording ends: renewals in batches, the watchdog that gives up runs whose
//! lease can no longer be trusted, the batched record of how runs ended, purges, reports of unknown
//! handlers, and the graceful stop.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::{Instant, sleep_until, timeout};

use super::{PURGE_BATCH, Runner, UNKNOWN_EVERY, ms};
use crate::Error;
use crate::durable::fire::Report;
use crate::durable::machine::Outcome;
use crate::durable::store::Finish;

impl Runner {
    /// Gives up runs whose lease can no longer be trusted: async runs are stopped, sync runs (which
    /// cannot be) are no longer renewed.
    pub(super) fn watchdog(&mut self, now: Instant) {
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
    pub(super) fn lose(&mut self, key: &str) {
        if let Some(flight) = self.flights.remove(key) {
            if let Some(task) = flight.abort {
                task.abort();
            }
            self.shared.report(Report::LeaseLost { key: key.to_string(), fence: flight.fence });
        }
    }

    pub(super) async fn renew(&mut self) {
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
    pub(super) async fn flush(&mut self) {
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

    pub(super) fn flush_failed(&mut self, error: Error) {
        self.shared.report(Report::Store(error));
        self.next_flush = self.back_off();
    }

    pub(super) async fn purge(&mut self) {
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

    pub(super) async fn unknown(&mut self) {
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
    pub(super) async fn stop(&mut self) {
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
