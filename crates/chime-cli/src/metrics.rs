//! Prometheus metrics, named as kube-state-metrics names CronJob's so alerts port over; labelled by
//! job name (never by command). Each replica reports what it saw and did.
//!
//! The two process-wide gauges go through the `metrics` facade and its Prometheus exporter. The
//! per-job families are kept here, as plain numbers in one table by job name, and rendered after
//! the exporter's text with its formatting helpers: through the exporter's registry each job cost
//! about 2.5 KiB (a key with owned label strings per series, handles, a histogram's sample buckets
//! and its distribution), 30 MB for the daemon workload's 11k jobs; here it costs about 300 bytes.
//! A series appears once it was first set, as with the exporter.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use metrics::{describe_gauge, gauge};
use metrics_exporter_prometheus::formatting::{sanitize_label_value, write_help_line, write_type_line};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub(crate) const RUNS: &str = "chime_job_runs_total";
pub(crate) const DURATION: &str = "chime_job_run_duration_seconds";
pub(crate) const LAST_SUCCESS: &str = "chime_job_last_success_timestamp_seconds";
pub(crate) const NEXT_RUN: &str = "chime_job_next_run_timestamp_seconds";
pub(crate) const RUNNING: &str = "chime_job_running";
pub(crate) const MISSED: &str = "chime_job_ticks_missed_total";
pub(crate) const CLAIMS: &str = "chime_job_claims_total";
pub(crate) const STORE_UP: &str = "chime_store_up";
pub(crate) const TIMERS_PENDING: &str = "chime_timers_pending";

/// The duration histogram's upper bounds, in seconds.
const BUCKETS: [f64; 12] = [0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0];

const OUTCOMES: [&str; 7] =
    ["success", "failure", "timeout", "lease_lost", "stopped", "abandoned", "running"];
const REASONS: [&str; 3] = ["misfire", "overlap", "store_unavailable"];
const RESULTS: [&str; 3] = ["won", "lost", "error"];

/// Installs the process-wide recorder; with [`render`] its handle renders `/metrics`.
pub(crate) fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    describe_gauge!(STORE_UP, "1 while the store answers, 0 while it does not.");
    describe_gauge!(TIMERS_PENDING, "Durable timers pending in the store.");
    gauge!(STORE_UP).set(0.0);
    gauge!(TIMERS_PENDING).set(0.0);
    Ok(handle)
}

/// A job's figures (no allocation of their own: a job's entry is its name and this).
#[derive(Clone, Copy, Default)]
struct Figures {
    runs: [Option<u64>; OUTCOMES.len()],
    claims: [Option<u64>; RESULTS.len()],
    missed: [Option<u64>; REASONS.len()],
    running: Option<f64>,
    next_run: Option<f64>,
    last_success: Option<f64>,
    duration: Option<Durations>,
}

/// A histogram: cumulative counts per bound of [`BUCKETS`], the sum and the count.
#[derive(Clone, Copy, Default)]
struct Durations {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

type Table = BTreeMap<Arc<str>, Figures>;

/// A per-job family: its name, type, help text, and whether a job has a series in it.
type Family<'a> = (&'a str, &'a str, &'a str, &'a dyn Fn(&Figures) -> bool);

fn table() -> MutexGuard<'static, Table> {
    static JOBS: OnceLock<Mutex<Table>> = OnceLock::new();
    JOBS.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner)
}

/// Changes `job`'s figures.
fn with(job: &str, change: impl FnOnce(&mut Figures)) {
    let mut jobs = table();
    match jobs.get_mut(job) {
        Some(figures) => change(figures),
        None => change(jobs.entry(job.into()).or_default()),
    }
}

fn index(names: &[&str], name: &str) -> usize {
    names.iter().position(|n| *n == name).unwrap_or(0)
}

fn add(slot: &mut Option<u64>, n: u64) {
    *slot = Some(slot.unwrap_or(0) + n);
}

pub(crate) fn run_finished(job: &str, outcome: &'static str, seconds: f64, success_at: Option<f64>) {
    with(job, |f| {
        add(&mut f.runs[index(&OUTCOMES, outcome)], 1);
        let d = f.duration.get_or_insert_with(Durations::default);
        for (count, bound) in d.buckets.iter_mut().zip(BUCKETS) {
            *count += u64::from(seconds <= bound);
        }
        d.sum += seconds;
        d.count += 1;
        if success_at.is_some() {
            f.last_success = success_at;
        }
    });
}

pub(crate) fn running(job: &str, delta: f64) {
    with(job, |f| f.running = Some(f.running.unwrap_or(0.0) + delta));
}

/// Sets when the job's next tick fires; a scheduled job also shows `chime_job_running` (0 until a
/// run starts here), so that every replica has the series.
pub(crate) fn next_run(job: &str, at: Option<f64>) {
    with(job, |f| {
        f.next_run = Some(at.unwrap_or(0.0));
        f.running.get_or_insert(0.0);
    });
}

pub(crate) fn missed(job: &str, reason: &'static str, n: u64) {
    with(job, |f| add(&mut f.missed[index(&REASONS, reason)], n));
}

pub(crate) fn claim(job: &str, result: &'static str) {
    with(job, |f| add(&mut f.claims[index(&RESULTS, result)], 1));
}

pub(crate) fn timers_pending(n: f64) {
    gauge!(TIMERS_PENDING).set(n);
}

pub(crate) fn store_up(up: bool) {
    gauge!(STORE_UP).set(if up { 1.0 } else { 0.0 });
}

/// The `/metrics` text: the exporter's, then the per-job families.
pub(crate) fn render(handle: &PrometheusHandle) -> String {
    let mut out = handle.render();
    // A copy of the figures (names are shared), so that runs do not wait while the text is made.
    let jobs: Vec<(Arc<str>, Figures)> = table().iter().map(|(k, v)| (k.clone(), *v)).collect();
    let jobs: Vec<(String, &Figures)> =
        jobs.iter().map(|(name, f)| (sanitize_label_value(name), f)).collect();
    let labelled = |out: &mut String,
                    name: &str,
                    label: &str,
                    values: &[&str],
                    pick: &dyn Fn(&Figures) -> &[Option<u64>]| {
        for (job, f) in &jobs {
            for (value, n) in values.iter().zip(pick(f)) {
                if let Some(n) = n {
                    let _ = writeln!(out, "{name}{{job=\"{job}\",{label}=\"{value}\"}} {n}");
                }
            }
        }
    };
    let gauge = |out: &mut String, name: &str, pick: &dyn Fn(&Figures) -> Option<f64>| {
        for (job, f) in &jobs {
            if let Some(v) = pick(f) {
                let _ = writeln!(out, "{name}{{job=\"{job}\"}} {v}");
            }
        }
    };
    let families: [Family<'_>; 7] = [
        (
            RUNS,
            "counter",
            "Runs this replica finished, by job and outcome (success, failure, timeout, lease_lost, stopped).",
            &|f| f.runs.iter().any(Option::is_some),
        ),
        (CLAIMS, "counter", "Claims this replica made, by job and result (won, lost, error).", &|f| {
            f.claims.iter().any(Option::is_some)
        }),
        (
            MISSED,
            "counter",
            "Ticks this replica saw go unrun, by job and reason (misfire, overlap, store_unavailable).",
            &|f| f.missed.iter().any(Option::is_some),
        ),
        (RUNNING, "gauge", "Runs of the job going on this replica.", &|f| f.running.is_some()),
        (NEXT_RUN, "gauge", "When the job's next tick fires (Unix time).", &|f| f.next_run.is_some()),
        (LAST_SUCCESS, "gauge", "When the job last succeeded on this replica (Unix time).", &|f| {
            f.last_success.is_some()
        }),
        (DURATION, "histogram", "How long runs took, by job.", &|f| f.duration.is_some()),
    ];
    for (name, kind, help, any) in families {
        if !jobs.iter().any(|(_, f)| any(f)) {
            continue;
        }
        write_help_line(&mut out, name, None, None, help);
        write_type_line(&mut out, name, None, None, kind);
        match name {
            RUNS => labelled(&mut out, name, "outcome", &OUTCOMES, &|f| &f.runs),
            CLAIMS => labelled(&mut out, name, "result", &RESULTS, &|f| &f.claims),
            MISSED => labelled(&mut out, name, "reason", &REASONS, &|f| &f.missed),
            RUNNING => gauge(&mut out, name, &|f| f.running),
            NEXT_RUN => gauge(&mut out, name, &|f| f.next_run),
            LAST_SUCCESS => gauge(&mut out, name, &|f| f.last_success),
            _ => {
                for (job, f) in &jobs {
                    let Some(d) = &f.duration else { continue };
                    for (bound, count) in BUCKETS.iter().zip(d.buckets) {
                        let _ = writeln!(out, "{name}_bucket{{job=\"{job}\",le=\"{bound}\"}} {count}");
                    }
                    let _ = writeln!(out, "{name}_bucket{{job=\"{job}\",le=\"+Inf\"}} {}", d.count);
                    let _ = writeln!(out, "{name}_sum{{job=\"{job}\"}} {}", d.sum);
                    let _ = writeln!(out, "{name}_count{{job=\"{job}\"}} {}", d.count);
                }
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_families_render_as_the_exporter_would() {
        let job = "render-test \"quoted\"";
        run_finished(job, "success", 0.3, Some(1_700_000_000.0));
        run_finished(job, "failure", 20.0, None);
        claim(job, "won");
        running(job, 1.0);
        running(job, -1.0);
        next_run(job, Some(1_700_000_060.0));
        let handle = PrometheusBuilder::new().build_recorder().handle();
        let text = render(&handle);
        let label = "job=\"render-test \\\"quoted\\\"\"";
        for line in [
            "# TYPE chime_job_runs_total counter".to_string(),
            format!("chime_job_runs_total{{{label},outcome=\"success\"}} 1"),
            format!("chime_job_runs_total{{{label},outcome=\"failure\"}} 1"),
            format!("chime_job_claims_total{{{label},result=\"won\"}} 1"),
            format!("chime_job_running{{{label}}} 0"),
            format!("chime_job_next_run_timestamp_seconds{{{label}}} 1700000060"),
            format!("chime_job_last_success_timestamp_seconds{{{label}}} 1700000000"),
            "# TYPE chime_job_run_duration_seconds histogram".to_string(),
            format!("chime_job_run_duration_seconds_bucket{{{label},le=\"0.1\"}} 0"),
            format!("chime_job_run_duration_seconds_bucket{{{label},le=\"0.5\"}} 1"),
            format!("chime_job_run_duration_seconds_bucket{{{label},le=\"30\"}} 2"),
            format!("chime_job_run_duration_seconds_bucket{{{label},le=\"+Inf\"}} 2"),
            format!("chime_job_run_duration_seconds_sum{{{label}}} 20.3"),
            format!("chime_job_run_duration_seconds_count{{{label}}} 2"),
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing from:\n{text}");
        }
        assert!(!text.contains(&format!("{label},outcome=\"timeout\"")), "unset series are left out");
    }
}
