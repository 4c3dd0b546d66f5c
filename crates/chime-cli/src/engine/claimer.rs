//! The claimer: claims the ticks the dispatcher found due, many at a time, and starts the runs it
//! wins. On SQLite a chunk of up to [`CHUNK`] claims is one transaction
//! ([`Coordinator::claim_many`]); on Redis and PostgreSQL the claims of a chunk go out together
//! (up to [`IN_FLIGHT`] at once) on the coordinator's connection.
//!
//! It claims only what this replica can start soon: while [`MAX_STARTING`] granted runs still wait
//! to start (process starts are bounded by the machine, see `process`), it waits, and the ticks
//! keep waiting here, unclaimed, one per job: a newer tick of a job replaces a waiting one (which
//! counts as missed, `misfire`), so the queue never holds more than the job count. Leases are then
//! taken just before runs can start (none expires in a queue), and replicas sharing a store split
//! a burst by what each can start.
//!
//! A claim the store answers `Busy` under an overlap policy other than `skip` (and a `queue` job
//! whose earlier tick still waits its turn) goes on in [`claim::scheduled`], tick by tick.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chime::cluster::{Claim, ClaimOutcome};
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::plan::{Tick, runs_late};
use super::run::{self, Granted};
use super::{Engine, claim, lock};
use crate::job::{JobSpec, Overlap};
use crate::metrics;
use crate::store::Trigger;

/// The most claims in one store transaction (bounds how long it holds SQLite's write lock).
pub(crate) const CHUNK: usize = 1000;
/// Granted runs allowed to wait for their start before the claimer waits too.
pub(crate) const MAX_STARTING: usize = 2000;
/// Claims in flight at once on Redis and PostgreSQL.
const IN_FLIGHT: usize = 64;

/// A tick to claim.
pub(crate) struct Pending {
    pub(crate) spec: Arc<JobSpec>,
    pub(crate) tick: Tick,
    pub(crate) lane: Arc<tokio::sync::Mutex<()>>,
}

/// The claimer's mailbox.
#[derive(Clone)]
pub(crate) struct Claimer {
    tx: mpsc::UnboundedSender<Vec<Pending>>,
}

impl Claimer {
    pub(crate) fn new() -> (Claimer, mpsc::UnboundedReceiver<Vec<Pending>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Claimer { tx }, rx)
    }

    pub(crate) fn send(&self, ticks: Vec<Pending>) {
        let _ = self.tx.send(ticks);
    }
}

/// Ticks waiting to be claimed, one per job, oldest first.
#[derive(Default)]
struct Waiting {
    order: VecDeque<String>,
    ticks: HashMap<String, Pending>,
}

impl Waiting {
    fn add(&mut self, engine: &Engine, pending: Pending) {
        match self.ticks.get_mut(&pending.spec.name) {
            Some(older) => {
                let replaced = std::mem::replace(older, pending);
                engine.missed(&replaced.spec, replaced.tick.nominal, "misfire", 1);
            }
            None => {
                self.order.push_back(pending.spec.name.clone());
                self.ticks.insert(pending.spec.name.clone(), pending);
            }
        }
    }

    fn take(&mut self, n: usize) -> Vec<Pending> {
        let n = n.min(self.order.len());
        self.order.drain(..n).filter_map(|name| self.ticks.remove(&name)).collect()
    }
}

/// The claimer's task; ends when the engine stops.
pub(crate) async fn claimer(engine: Engine, mut rx: mpsc::UnboundedReceiver<Vec<Pending>>) {
    let mut waiting = Waiting::default();
    loop {
        if waiting.order.is_empty() {
            match rx.recv().await {
                Some(batch) => batch.into_iter().for_each(|p| waiting.add(&engine, p)),
                None => return,
            }
        }
        while let Ok(batch) = rx.try_recv() {
            batch.into_iter().for_each(|p| waiting.add(&engine, p));
        }
        // Room for a chunk worth a transaction: once the runs waiting to start fill the room, the
        // claimer waits for a quarter chunk of them to start (or for room for every tick waiting)
        // rather than claiming each time one starts, which made a burst a transaction (and a
        // sync to disk) per handful of ticks.
        let worth = waiting.order.len().clamp(1, CHUNK / 4);
        let room = loop {
            let started = engine.started.notified();
            let room = MAX_STARTING.saturating_sub(engine.starting.load(Ordering::SeqCst));
            if room >= worth {
                break room;
            }
            started.await;
        };
        if engine.stopping.load(Ordering::SeqCst) {
            return;
        }
        let now = Timestamp::now();
        let mut chunk = Vec::new();
        for p in waiting.take(room.min(CHUNK)) {
            let seen = lock(&engine.seen).get(&p.spec.name).copied();
            if engine.is_paused(&p.spec.name) {
                continue;
            }
            if !runs_late(&p.spec, p.tick, now, seen) {
                engine.missed(&p.spec, p.tick.nominal, "misfire", 1);
                continue;
            }
            if p.spec.overlap == Overlap::Queue {
                // In order: behind a tick of the same job that still waits for its turn.
                let Ok(turn) = p.lane.clone().try_lock_owned() else {
                    tokio::spawn(claim::scheduled(engine.clone(), p.spec, p.tick, p.lane));
                    continue;
                };
                drop(turn);
            }
            chunk.push(p);
        }
        if !chunk.is_empty() {
            claim_chunk(&engine, chunk).await;
        }
    }
}

/// Claims a chunk and acts on each answer.
async fn claim_chunk(engine: &Engine, chunk: Vec<Pending>) {
    let member = engine.replica.id.clone();
    let claims: Vec<Claim> = chunk
        .iter()
        .map(|p| Claim {
            key: p.spec.name.clone(),
            tick: p.tick.key(),
            member: member.clone(),
            lease_ms: p.spec.lease.as_millis() as i64,
            now_ms: Timestamp::now().as_millisecond(),
        })
        .collect();
    let asked = Instant::now();
    let outcomes = ask(engine, &chunk, &claims).await;
    let took = asked.elapsed();
    tracing::debug!(claims = claims.len(), took_us = took.as_micros() as u64, "claim chunk");
    for ((p, claim), outcome) in chunk.into_iter().zip(claims).zip(outcomes) {
        let outcome = match outcome {
            // A grant that arrives after its lease could have run out is handed back (another
            // replica may hold the next tick by then).
            Ok(ClaimOutcome::Granted(lease)) if took >= p.spec.lease => {
                let spec = p.spec.clone();
                let engine = engine.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(spec.lease, engine.release_lease(&spec, &lease)).await;
                });
                Err("the grant arrived after its lease ran out".to_string())
            }
            other => other,
        };
        match outcome {
            Ok(ClaimOutcome::Granted(lease)) => {
                engine.store_answered();
                metrics::claim(&p.spec.name, "won");
                let granted = Granted::new(p.spec, lease, p.tick.nominal, p.tick.fire, Trigger::Schedule);
                run::start(engine, granted);
            }
            Ok(ClaimOutcome::Taken { .. }) => {
                engine.store_answered();
                metrics::claim(&p.spec.name, "lost");
            }
            Ok(ClaimOutcome::Busy { owner, .. }) => {
                engine.store_answered();
                if p.spec.overlap != Overlap::Skip {
                    // Retried, replaced or queued tick by tick.
                    tokio::spawn(claim::scheduled(engine.clone(), p.spec, p.tick, p.lane));
                    continue;
                }
                metrics::claim(&p.spec.name, "lost");
                if owner == claim.member {
                    engine.missed(&p.spec, p.tick.nominal, "overlap", 1);
                }
            }
            Err(error) => {
                metrics::claim(&p.spec.name, "error");
                tracing::error!(job = %p.spec.name, tick = %p.tick.nominal, %error, "the claim failed: the tick does not run here (fail closed)");
                engine.missed(&p.spec, p.tick.nominal, "store_unavailable", 1);
            }
        }
    }
}

/// The store's answers, one per claim, in order; each bounded by the shortest lease in the chunk.
async fn ask(engine: &Engine, chunk: &[Pending], claims: &[Claim]) -> Vec<Result<ClaimOutcome, String>> {
    let limit = chunk.iter().map(|p| p.spec.lease).min().unwrap_or(Duration::from_secs(10));
    let timed_out = || {
        format!("the claim took longer than the lease ({})", crate::config::values::format_duration(limit))
    };
    let (local, shared): (Vec<usize>, Vec<usize>) = (0..chunk.len()).partition(|&i| chunk[i].spec.local);
    let mut answers: Vec<Option<Result<ClaimOutcome, String>>> = (0..chunk.len()).map(|_| None).collect();
    for i in local {
        answers[i] = Some(engine.local.claim(&claims[i]).await.map_err(|e| e.to_string()));
    }
    if engine.batcher.is_some() {
        let asks: Vec<Claim> = shared.iter().map(|&i| claims[i].clone()).collect();
        match tokio::time::timeout(limit, engine.coordinator.claim_many(&asks)).await {
            Ok(Ok(outcomes)) => {
                for (&i, o) in shared.iter().zip(outcomes) {
                    answers[i] = Some(Ok(o));
                }
            }
            Ok(Err(e)) => shared.iter().for_each(|&i| answers[i] = Some(Err(e.to_string()))),
            Err(_) => shared.iter().for_each(|&i| answers[i] = Some(Err(timed_out()))),
        }
    } else {
        let mut set = tokio::task::JoinSet::new();
        let mut next = shared.into_iter();
        loop {
            while set.len() < IN_FLIGHT {
                let Some(i) = next.next() else { break };
                let (coordinator, claim) = (engine.coordinator.clone(), claims[i].clone());
                set.spawn(async move {
                    let answer = tokio::time::timeout(limit, coordinator.claim(&claim)).await;
                    (i, answer)
                });
            }
            let Some(done) = set.join_next().await else { break };
            match done {
                Ok((i, Ok(answer))) => answers[i] = Some(answer.map_err(|e| e.to_string())),
                Ok((i, Err(_))) => answers[i] = Some(Err(timed_out())),
                Err(e) => tracing::error!("a claim task failed: {e}"),
            }
        }
    }
    answers.into_iter().map(|a| a.unwrap_or_else(|| Err("no answer".into()))).collect()
}
