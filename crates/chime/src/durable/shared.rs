//! What a [`DurableTimers`](super::DurableTimers) handle and its runner share: the store, the
//! handlers, the settings, the store's clock as this scheduler tracks it, and the stop signals.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::fire::{Handler, Report};
use super::retry::RetryPolicy;
use super::store::DurableStore;
use crate::clock::TimeBase;
use crate::driver::Driver;
use crate::{Error, Scheduler};

pub(crate) type ReportHook = Arc<dyn Fn(&Report) + Send + Sync>;

/// A durable scheduler's settings.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) lease: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) grace: Option<Duration>,
    pub(crate) retention: Duration,
    pub(crate) max_running: usize,
    pub(crate) poll: Duration,
    pub(crate) store_timeout: Duration,
    pub(crate) on_report: Option<ReportHook>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lease: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            grace: None,
            retention: Duration::from_secs(24 * 3600),
            max_running: 64,
            poll: Duration::from_secs(1),
            store_timeout: Duration::from_secs(10),
            on_report: None,
        }
    }
}

/// What the handle and its runner share.
pub(crate) struct Shared {
    pub(crate) driver: std::sync::Weak<Driver>,
    pub(crate) time: TimeBase,
    pub(crate) store: Arc<dyn DurableStore>,
    pub(crate) member: String,
    pub(crate) handlers: HashMap<String, Handler>,
    pub(crate) names: Vec<String>,
    pub(crate) config: Config,
    /// The store's clock minus this scheduler's wall clock, in ms, as the last claim measured it.
    offset_ms: AtomicI64,
    /// When the runner next asks the store (store clock, ms): a create due sooner pokes it. While a
    /// claim is on its way it is `i64::MAX` (every create pokes: the claim may have missed it), and
    /// while the store fails `i64::MIN` (the runner retries on its own backoff).
    pub(crate) next_claim_ms: AtomicI64,
    /// Runs in flight here.
    pub(crate) running: AtomicUsize,
    /// A timer was created here that may be due before the runner's next claim.
    pub(crate) poke: Notify,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) stopped: watch::Sender<bool>,
    pub(crate) subscription: Mutex<Option<crate::Subscription>>,
}

impl Shared {
    pub(crate) fn new(
        sched: &Scheduler,
        store: Arc<dyn DurableStore>,
        handlers: HashMap<String, Handler>,
        config: Config,
    ) -> Arc<Shared> {
        let mut names: Vec<String> = handlers.keys().cloned().collect();
        names.sort();
        Arc::new(Shared {
            driver: Arc::downgrade(sched.driver()),
            time: sched.driver().time,
            store,
            member: crate::cluster::member_id(),
            handlers,
            names,
            config,
            offset_ms: AtomicI64::new(0),
            next_claim_ms: AtomicI64::new(i64::MAX),
            running: AtomicUsize::new(0),
            poke: Notify::new(),
            stop: watch::channel(false).0,
            stopped: watch::channel(false).0,
            subscription: Mutex::new(None),
        })
    }

    /// This scheduler's wall clock, ms since the Unix epoch.
    pub(crate) fn local_ms(&self) -> i64 {
        self.time.wall_ms()
    }

    /// The store's clock as this scheduler tracks it.
    pub(crate) fn store_ms(&self) -> i64 {
        self.local_ms().saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Takes a claim's measure of the store's clock: it answered `store_ms` to a call sent at local
    /// `sent_ms` that took `elapsed_ms`. An offset within the measure's uncertainty counts as none
    /// (a store without a clock answers with the caller's own).
    pub(crate) fn observe_clock(&self, store_ms: i64, sent_ms: i64, elapsed_ms: i64) {
        let offset = store_ms - (sent_ms + elapsed_ms / 2);
        let offset = if offset.abs() <= elapsed_ms / 2 + 1 { 0 } else { offset };
        self.offset_ms.store(offset, Ordering::Relaxed);
    }

    /// The tokio instant at which the store's clock reads `store_ms`.
    pub(crate) fn instant_of(&self, store_ms: i64) -> Instant {
        let wait = u64::try_from(store_ms.saturating_sub(self.store_ms())).unwrap_or(0);
        Instant::now() + Duration::from_millis(wait)
    }

    /// Logs `report` and passes it to the hook.
    pub(crate) fn report(&self, report: Report) {
        match &report {
            Report::Store(_) | Report::LeaseLost { .. } | Report::UnknownHandler { .. } => {
                tracing::warn!(member = %self.member, "chime durable timers: {report}");
            }
            Report::Failed { .. } => tracing::error!(member = %self.member, "chime durable timers: {report}"),
            _ => tracing::info!(member = %self.member, "chime durable timers: {report}"),
        }
        if let Some(hook) = &self.config.on_report
            && std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&report))).is_err()
        {
            tracing::error!("chime durable report hook panicked");
        }
    }

    /// Runs a store call with the handle's timeout.
    pub(crate) async fn call<T>(&self, call: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        match tokio::time::timeout(self.config.store_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(Error::store(self.store.backend(), "the store did not answer in time")),
        }
    }
}
