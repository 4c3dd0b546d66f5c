//! The engine: every job's next tick filed in the [agenda](dispatch), which wakes once per instant
//! that has ticks due; the dispatcher works out what is due ([`plan`]), arms the next ticks, and
//! hands the due ones to the [claimer], which claims them in batches; a granted claim becomes a
//! run ([`run`]). Jobs come from the file (replaced on reload) and from the API (kept in the
//! store, picked up by every replica, [`sync`]).

mod batch;
pub(crate) mod claim;
pub(crate) mod claimer;
pub(crate) mod dispatch;
pub(crate) mod guard;
mod history;
pub(crate) mod http;
pub(crate) mod output;
pub(crate) mod plan;
pub(crate) mod process;
pub(crate) mod run;
mod spawner;
pub(crate) mod sync;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chime::Scheduler;
use chime::cluster::{Claim, ClaimOutcome, Coordinator, Lease};
use jiff::Timestamp;
use tokio::sync::{Notify, watch};

use claimer::{Claimer, Pending};
use dispatch::{Agenda, Entry};
pub(crate) use history::History;
use plan::{Tick, plan, runs_late};

use crate::config::Defaults;
use crate::job::{JobSpec, Source};
use crate::metrics;
use crate::store::{MetaStore, MissedTick, ReplicaInfo, Write};

/// A new run id: the start in milliseconds and 20 random bits, in hex (sorts by start).
pub(crate) fn new_run_id() -> String {
    format!("{:011x}{:05x}", Timestamp::now().as_millisecond(), rand::random::<u32>() & 0xfffff)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One scheduled job.
struct Slot {
    spec: Arc<JobSpec>,
    /// Its name, shared with its agenda entries.
    name: Arc<str>,
    /// Bumped whenever the job changes or is re-planned: older agenda entries are stale.
    generation: u64,
    next: Option<Tick>,
    /// Held while a tick of this job waits for a queued claim, so queued ticks claim in order.
    lane: Arc<tokio::sync::Mutex<()>>,
}

/// Why the daemon stops a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopWhy {
    /// A newer tick replaces it (`overlap = "replace"`).
    Replaced,
    /// The daemon is shutting down.
    Shutdown,
}

/// A run going on this replica.
pub(crate) struct RunSlot {
    pub(crate) job: String,
    pub(crate) fence: u64,
    pub(crate) stop: watch::Sender<Option<StopWhy>>,
}

/// What the API shows of a scheduled job.
pub(crate) struct JobView {
    pub(crate) spec: Arc<JobSpec>,
    pub(crate) next: Option<Tick>,
    pub(crate) running: usize,
}

/// The engine's shared state.
pub(crate) struct Inner {
    pub(crate) sched: Scheduler,
    pub(crate) meta: Arc<dyn MetaStore>,
    pub(crate) coordinator: Arc<dyn Coordinator>,
    pub(crate) local: Arc<dyn Coordinator>,
    /// Batches claims and releases for an SQLite store.
    pub(crate) batcher: Option<batch::Batcher>,
    pub(crate) replica: ReplicaInfo,
    pub(crate) history: History,
    pub(crate) http: reqwest::Client,
    pub(crate) defaults: Defaults,
    jobs: Mutex<BTreeMap<String, Slot>>,
    agenda: Mutex<Agenda>,
    /// Wakes the dispatcher when a tick earlier than all others is filed.
    agenda_changed: Notify,
    claimer: Claimer,
    /// Runs granted but not started yet (their process or request); the claimer waits for room.
    pub(crate) starting: AtomicUsize,
    pub(crate) started: Notify,
    next_generation: AtomicU64,
    pub(crate) runs: Mutex<HashMap<String, RunSlot>>,
    pub(crate) runs_changed: Notify,
    pub(crate) paused: Mutex<HashSet<String>>,
    pub(crate) seen: Mutex<HashMap<String, i64>>,
    pub(crate) stopping: AtomicBool,
    /// When the store last answered (ms since the epoch; 0: never).
    pub(crate) store_ok_ms: AtomicI64,
}

/// The engine (cheap to clone).
#[derive(Clone)]
pub(crate) struct Engine(pub(crate) Arc<Inner>);

impl std::ops::Deref for Engine {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Engine {
    /// Starts the engine's tasks (dispatcher, history writer) on the current runtime. Jobs are
    /// added with [`Engine::reconcile`].
    pub(crate) fn new(
        meta: Arc<dyn MetaStore>,
        coordinator: Arc<dyn Coordinator>,
        replica: ReplicaInfo,
        defaults: Defaults,
        history: usize,
    ) -> Result<Engine, String> {
        let (claimer, claims) = Claimer::new();
        let inner = Inner {
            sched: Scheduler::start(),
            history: History::start(meta.clone(), history),
            meta,
            batcher: (coordinator.backend() == "sqlite").then(|| batch::Batcher::start(coordinator.clone())),
            coordinator,
            local: Arc::new(chime::cluster::Local::new()),
            replica,
            http: http::client()?,
            defaults,
            jobs: Mutex::new(BTreeMap::new()),
            agenda: Mutex::new(Agenda::default()),
            agenda_changed: Notify::new(),
            claimer,
            starting: AtomicUsize::new(0),
            started: Notify::new(),
            next_generation: AtomicU64::new(1),
            runs: Mutex::new(HashMap::new()),
            runs_changed: Notify::new(),
            paused: Mutex::new(HashSet::new()),
            seen: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            store_ok_ms: AtomicI64::new(0),
        };
        let engine = Engine(Arc::new(inner));
        tokio::spawn(dispatch::dispatch(engine.clone()));
        tokio::spawn(claimer::claimer(engine.clone(), claims));
        Ok(engine)
    }

    /// Makes the jobs from `sources` exactly `specs`: new ones armed, changed ones re-armed, gone
    /// ones dropped (a run going on is left to finish). A file job shadows an API job of the same
    /// name. Returns the names added, changed and removed.
    pub(crate) fn reconcile(
        &self,
        sources: &[Source],
        specs: Vec<JobSpec>,
    ) -> (Vec<String>, Vec<String>, Vec<String>) {
        let (mut added, mut changed, mut removed) = (Vec::new(), Vec::new(), Vec::new());
        let wanted: HashSet<String> = specs.iter().map(|s| s.name.clone()).collect();
        let mut jobs = lock(&self.jobs);
        let gone: Vec<String> = jobs
            .iter()
            .filter(|(name, slot)| sources.contains(&slot.spec.source) && !wanted.contains(*name))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if jobs.remove(&name).is_some() {
                metrics::next_run(&name, None);
                removed.push(name);
            }
        }
        for spec in specs {
            match jobs.get(&spec.name) {
                Some(slot) if slot.spec.source == Source::File && spec.source == Source::Api => {
                    tracing::warn!(job = %spec.name, "an API job has the name of a job in the file; the file's is kept");
                    continue;
                }
                Some(slot)
                    if slot.spec.definition() == spec.definition() && slot.spec.source == spec.source =>
                {
                    continue;
                }
                Some(_) => changed.push(spec.name.clone()),
                None => added.push(spec.name.clone()),
            }
            let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
            let lane = jobs.get(&spec.name).map_or_else(Default::default, |s| s.lane.clone());
            jobs.remove(&spec.name);
            let name: Arc<str> = spec.name.as_str().into();
            let mut slot = Slot { spec: Arc::new(spec), name, generation, next: None, lane };
            self.start_slot(&mut slot);
            jobs.insert(slot.spec.name.clone(), slot);
        }
        (added, changed, removed)
    }

    /// Arms a new slot: a tick that is due now (on time, or late within its grace) is claimed at
    /// once; otherwise the next tick's timer is armed.
    fn start_slot(&self, slot: &mut Slot) {
        let now = Timestamp::now();
        let p = plan(&slot.spec, now);
        let seen = lock(&self.seen).get(&slot.spec.name).copied().or(Some(now.as_millisecond()));
        if let Some(due) = p.due.filter(|d| runs_late(&slot.spec, *d, now, seen)) {
            self.arm(
                slot,
                slot.spec
                    .schedule
                    .next_after(due.nominal, &slot.spec.timezone)
                    .map(|n| Tick::of(&slot.spec, n)),
            );
            self.claimer.send(vec![Pending { spec: slot.spec.clone(), tick: due, lane: slot.lane.clone() }]);
        } else {
            self.arm(slot, p.next);
        }
    }

    /// Files the job's next tick in the agenda.
    fn arm(&self, slot: &mut Slot, next: Option<Tick>) {
        slot.next = next;
        metrics::next_run(&slot.spec.name, next.map(|t| t.fire.as_millisecond() as f64 / 1000.0));
        let Some(tick) = next else { return };
        let entry = Entry { job: slot.name.clone(), generation: slot.generation, tick };
        if lock(&self.agenda).insert(entry) {
            self.agenda_changed.notify_one();
        }
    }

    /// Re-plans every job from the wall clock (after the clock jumped).
    pub(crate) fn replan(&self) {
        let mut jobs = lock(&self.jobs);
        for slot in jobs.values_mut() {
            slot.generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
            self.start_slot(slot);
        }
    }

    /// Every job, by name.
    pub(crate) fn jobs(&self) -> Vec<JobView> {
        let running = self.running_counts();
        lock(&self.jobs)
            .values()
            .map(|s| JobView {
                spec: s.spec.clone(),
                next: s.next,
                running: running.get(&s.spec.name).copied().unwrap_or(0),
            })
            .collect()
    }

    pub(crate) fn job(&self, name: &str) -> Option<JobView> {
        let running = self.running_counts().get(name).copied().unwrap_or(0);
        lock(&self.jobs).get(name).map(|s| JobView { spec: s.spec.clone(), next: s.next, running })
    }

    fn running_counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for run in lock(&self.runs).values() {
            *counts.entry(run.job.clone()).or_default() += 1;
        }
        counts
    }

    pub(crate) fn is_paused(&self, job: &str) -> bool {
        lock(&self.paused).contains(job)
    }

    pub(crate) fn runs_job(&self, job: &str) -> bool {
        lock(&self.runs).values().any(|r| r.job == job)
    }

    /// The coordinator that claims `spec`'s ticks: the store's, or this process's for local jobs.
    pub(crate) fn coordinator_for(&self, spec: &JobSpec) -> Arc<dyn Coordinator> {
        if spec.local { self.local.clone() } else { self.coordinator.clone() }
    }

    /// Claims through the batcher (SQLite) or the coordinator directly.
    pub(crate) async fn claim_tick(&self, spec: &JobSpec, claim: Claim) -> Result<ClaimOutcome, String> {
        match (&self.batcher, spec.local) {
            (Some(batcher), false) => batcher.claim(claim).await,
            _ => self.coordinator_for(spec).claim(&claim).await.map_err(|e| e.to_string()),
        }
    }

    /// Releases through the batcher (SQLite) or the coordinator directly.
    pub(crate) async fn release_lease(&self, spec: &JobSpec, lease: &Lease) -> Result<(), String> {
        match (&self.batcher, spec.local) {
            (Some(batcher), false) => batcher.release(lease.clone()).await,
            _ => self.coordinator_for(spec).release(lease).await.map_err(|e| e.to_string()),
        }
    }

    /// Records a tick that went unrun.
    pub(crate) fn missed(&self, spec: &JobSpec, tick: Timestamp, reason: &'static str, count: u64) {
        if count == 0 {
            return;
        }
        metrics::missed(&spec.name, reason, count);
        tracing::warn!(job = %spec.name, tick = %tick, reason, count, "tick missed");
        self.history.write(Write::Missed(MissedTick {
            job: spec.name.clone(),
            tick: tick.to_string(),
            reason: reason.to_string(),
            replica: self.replica.id.clone(),
            at_ms: Timestamp::now().as_millisecond(),
        }));
    }

    /// Asks this replica's runs of `job` (with a fence up to `fence`, if given) to stop, and waits
    /// until they have.
    pub(crate) async fn stop_runs(&self, job: &str, fence: Option<u64>, why: StopWhy) {
        loop {
            let waiting = self.runs_changed.notified();
            let any = {
                let runs = lock(&self.runs);
                let mut any = false;
                for run in runs.values().filter(|r| r.job == job && fence.is_none_or(|f| r.fence <= f)) {
                    let _ = run.stop.send(Some(why));
                    any = true;
                }
                any
            };
            if !any {
                return;
            }
            waiting.await;
        }
    }

    /// Stops scheduling: no more ticks are claimed.
    pub(crate) fn stop_scheduling(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.agenda_changed.notify_one();
        self.claimer.send(Vec::new());
    }
}
