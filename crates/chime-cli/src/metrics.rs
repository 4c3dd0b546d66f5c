//! Prometheus metrics, named as kube-state-metrics names CronJob's so alerts port over; labelled by
//! job name (never by command). Each replica reports what it saw and did.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use metrics::{
    Counter, Gauge, Histogram, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub(crate) const RUNS: &str = "chime_job_runs_total";
pub(crate) const DURATION: &str = "chime_job_run_duration_seconds";
pub(crate) const LAST_SUCCESS: &str = "chime_job_last_success_timestamp_seconds";
pub(crate) const NEXT_RUN: &str = "chime_job_next_run_timestamp_seconds";
pub(crate) const RUNNING: &str = "chime_job_running";
pub(crate) const MISSED: &str = "chime_job_ticks_missed_total";
pub(crate) const CLAIMS: &str = "chime_job_claims_total";
pub(crate) const STORE_UP: &str = "chime_store_up";
pub(crate) const TIMERS_PENDING: &str = "chime_timers_pending";

/// Installs the process-wide recorder; its handle renders `/metrics`.
pub(crate) fn install() -> Result<PrometheusHandle, String> {
    let buckets = [0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(DURATION.to_string()), &buckets)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    describe_counter!(
        RUNS,
        "Runs this replica finished, by job and outcome (success, failure, timeout, lease_lost, stopped)."
    );
    describe_histogram!(DURATION, metrics::Unit::Seconds, "How long runs took, by job.");
    describe_gauge!(
        LAST_SUCCESS,
        metrics::Unit::Seconds,
        "When the job last succeeded on this replica (Unix time)."
    );
    describe_gauge!(NEXT_RUN, metrics::Unit::Seconds, "When the job's next tick fires (Unix time).");
    describe_gauge!(RUNNING, "Runs of the job going on this replica.");
    describe_counter!(
        MISSED,
        "Ticks this replica saw go unrun, by job and reason (misfire, overlap, store_unavailable)."
    );
    describe_counter!(CLAIMS, "Claims this replica made, by job and result (won, lost, error).");
    describe_gauge!(STORE_UP, "1 while the store answers, 0 while it does not.");
    describe_gauge!(TIMERS_PENDING, "Durable timers pending in the store.");
    gauge!(STORE_UP).set(0.0);
    gauge!(TIMERS_PENDING).set(0.0);
    Ok(handle)
}

/// A job's metric handles, made once (on first use) rather than looked up by name and labels at
/// every run: a thousand runs a second would otherwise allocate and hash a label set per update.
#[derive(Default)]
struct JobMetrics {
    runs: [OnceLock<Counter>; OUTCOMES.len()],
    duration: OnceLock<Histogram>,
    last_success: OnceLock<Gauge>,
    next_run: OnceLock<Gauge>,
    running: OnceLock<Gauge>,
    missed: [OnceLock<Counter>; REASONS.len()],
    claims: [OnceLock<Counter>; RESULTS.len()],
}

const OUTCOMES: [&str; 7] =
    ["success", "failure", "timeout", "lease_lost", "stopped", "abandoned", "running"];
const REASONS: [&str; 3] = ["misfire", "overlap", "store_unavailable"];
const RESULTS: [&str; 3] = ["won", "lost", "error"];

fn job(name: &str) -> Arc<JobMetrics> {
    static JOBS: OnceLock<Mutex<HashMap<String, Arc<JobMetrics>>>> = OnceLock::new();
    let mut jobs = JOBS.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(m) = jobs.get(name) {
        return m.clone();
    }
    let m = Arc::new(JobMetrics::default());
    jobs.insert(name.to_string(), m.clone());
    m
}

fn index(names: &[&str], name: &str) -> usize {
    names.iter().position(|n| *n == name).unwrap_or(0)
}

pub(crate) fn run_finished(job_name: &str, outcome: &'static str, seconds: f64, success_at: Option<f64>) {
    let m = job(job_name);
    let i = index(&OUTCOMES, outcome);
    m.runs[i]
        .get_or_init(|| counter!(RUNS, "job" => job_name.to_string(), "outcome" => OUTCOMES[i]))
        .increment(1);
    m.duration.get_or_init(|| histogram!(DURATION, "job" => job_name.to_string())).record(seconds);
    if let Some(at) = success_at {
        m.last_success.get_or_init(|| gauge!(LAST_SUCCESS, "job" => job_name.to_string())).set(at);
    }
}

pub(crate) fn running(job_name: &str, delta: f64) {
    job(job_name).running.get_or_init(|| gauge!(RUNNING, "job" => job_name.to_string())).increment(delta);
}

pub(crate) fn next_run(job_name: &str, at: Option<f64>) {
    let m = job(job_name);
    m.next_run.get_or_init(|| gauge!(NEXT_RUN, "job" => job_name.to_string())).set(at.unwrap_or(0.0));
}

pub(crate) fn missed(job_name: &str, reason: &'static str, n: u64) {
    let i = index(&REASONS, reason);
    job(job_name).missed[i]
        .get_or_init(|| counter!(MISSED, "job" => job_name.to_string(), "reason" => REASONS[i]))
        .increment(n);
}

pub(crate) fn claim(job_name: &str, result: &'static str) {
    let i = index(&RESULTS, result);
    job(job_name).claims[i]
        .get_or_init(|| counter!(CLAIMS, "job" => job_name.to_string(), "result" => RESULTS[i]))
        .increment(1);
}

pub(crate) fn timers_pending(n: f64) {
    gauge!(TIMERS_PENDING).set(n);
}

pub(crate) fn store_up(up: bool) {
    gauge!(STORE_UP).set(if up { 1.0 } else { 0.0 });
}
