//! What a replica keeps in step with the others, once a second: its heartbeat (which also tells
//! whether the store answers), pause flags and API jobs (when the store's generation moved), stop
//! requests for the runs it holds; every ten seconds, runs whose replica went silent are marked
//! abandoned; and the wall clock is watched, so a jump re-plans every job.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jiff::Timestamp;

use super::{Engine, StopWhy, lock};
use crate::job::Source;
use crate::metrics;
use crate::store::{Outcome, ReplicaInfo, Write, now_ms};

/// How often a replica checks in.
pub(crate) const PERIOD: Duration = Duration::from_secs(1);
/// A replica silent this long is taken for dead (its runs abandoned).
const SILENT_MS: i64 = 30_000;
/// The store counts as down when it has not answered for this long.
const DOWN_MS: i64 = 3_000;

impl Engine {
    /// Notes that the store just answered.
    pub(crate) fn store_answered(&self) {
        self.store_ok_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Whether the store answered recently.
    pub(crate) fn store_up(&self) -> bool {
        now_ms() - self.store_ok_ms.load(Ordering::Relaxed) < DOWN_MS
    }

    /// This replica's heartbeat record, now.
    pub(crate) fn replica_now(&self) -> ReplicaInfo {
        ReplicaInfo { heartbeat_ms: now_ms(), jobs: self.jobs().len(), ..self.replica.clone() }
    }

    /// Reads pause flags and first sightings from the store (at start, and when they change).
    pub(crate) async fn load_states(&self) -> Result<(), String> {
        let states = self.meta.states().await.map_err(|e| e.to_string())?;
        let paused: HashSet<String> = states.iter().filter(|s| s.paused).map(|s| s.job.clone()).collect();
        *lock(&self.paused) = paused;
        let mut seen = lock(&self.seen);
        for state in &states {
            if let Some(ms) = state.seen_ms {
                seen.insert(state.job.clone(), ms);
            }
        }
        Ok(())
    }

    /// Reads the API jobs and schedules them.
    pub(crate) async fn load_api_jobs(&self) -> Result<(), String> {
        let definitions = self.meta.api_jobs().await.map_err(|e| e.to_string())?;
        let mut specs = Vec::new();
        for (name, definition) in definitions {
            match crate::config::api_job(&name, &definition, &self.defaults) {
                Ok(spec) => specs.push(spec),
                Err(e) => {
                    tracing::error!(job = %name, error = %e, "an API job in the store cannot be read; skipped")
                }
            }
        }
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let unseen: Vec<String> =
            names.iter().filter(|n| !lock(&self.seen).contains_key(*n)).cloned().collect();
        if !unseen.is_empty() {
            self.see(&unseen).await;
        }
        let (added, changed, removed) = self.reconcile(&[Source::Api], specs);
        for (what, list) in [("added", added), ("changed", changed), ("removed", removed)] {
            for job in list {
                tracing::info!(job = %job, "API job {what}");
            }
        }
        Ok(())
    }

    /// Records when jobs were first scheduled (ticks before that are never caught up).
    pub(crate) async fn see(&self, names: &[String]) {
        let now = now_ms();
        if let Err(e) = self.meta.see(names, now).await {
            tracing::warn!(error = %e, "cannot record when jobs were first seen");
        }
        let mut seen = lock(&self.seen);
        for name in names {
            seen.entry(name.clone()).or_insert(now);
        }
    }

    async fn beat(&self, generation: &mut Option<u64>) {
        match self.meta.heartbeat(&self.replica_now()).await {
            Ok(()) => self.store_answered(),
            Err(e) => tracing::warn!(error = %e, "the heartbeat did not reach the store"),
        }
        metrics::store_up(self.store_up());
        let current = match self.meta.generation().await {
            Ok(g) => g,
            Err(_) => return,
        };
        if *generation == Some(current) {
            return;
        }
        let api = self.load_api_jobs().await;
        let states = self.load_states().await;
        let stops = self.meta.stop_requests().await;
        if let (Ok(()), Ok(()), Ok(stops)) = (&api, &states, &stops) {
            *generation = Some(current);
            for (job, fence) in stops {
                if self.runs_job(job) {
                    let engine = self.clone();
                    let (job, fence) = (job.clone(), *fence);
                    tokio::spawn(async move { engine.stop_runs(&job, Some(fence), StopWhy::Replaced).await });
                }
            }
        }
    }

    async fn abandon_silent(&self) {
        let (Ok(replicas), Ok(running)) = (self.meta.replicas().await, self.meta.running().await) else {
            return;
        };
        let now = now_ms();
        let alive: HashSet<&str> =
            replicas.iter().filter(|r| now - r.heartbeat_ms < SILENT_MS).map(|r| r.id.as_str()).collect();
        for mut run in running {
            if run.replica == self.replica.id
                || alive.contains(run.replica.as_str())
                || now - run.started_ms < SILENT_MS
            {
                continue;
            }
            tracing::warn!(job = %run.job, run_id = %run.run_id, replica = %run.replica, "the run's replica went silent; marking it abandoned");
            run.outcome = Outcome::Abandoned;
            run.finished_ms = Some(now);
            run.error = Some("its replica stopped sending heartbeats".into());
            self.history.write(Write::Finished(run));
        }
    }

    /// The sync loop; ends when the engine stops.
    pub(crate) async fn sync_loop(self) {
        let mut generation = None;
        let mut ticks: u64 = 0;
        let mut offset = clock_offset();
        let mut interval = tokio::time::interval(PERIOD);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.stopping.load(Ordering::SeqCst) {
            interval.tick().await;
            self.beat(&mut generation).await;
            ticks += 1;
            if ticks.is_multiple_of(10) {
                self.abandon_silent().await;
            }
            let now = clock_offset();
            if (now - offset).abs() > 1_000 {
                tracing::warn!(jump_ms = now - offset, "the wall clock jumped; re-planning every job");
                self.replan();
            }
            offset = now;
        }
    }
}

/// Wall clock minus the monotonic clock, in milliseconds: constant unless the wall clock is set.
fn clock_offset() -> i64 {
    static START: std::sync::OnceLock<(std::time::Instant, i64)> = std::sync::OnceLock::new();
    let (mono, wall) = *START.get_or_init(|| (std::time::Instant::now(), Timestamp::now().as_millisecond()));
    let mono_ms = mono.elapsed().as_millis() as i64;
    (Timestamp::now().as_millisecond() - wall) - mono_ms
}
