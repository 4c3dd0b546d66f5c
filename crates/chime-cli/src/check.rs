//! `chime check`, and the table `chime run` prints on a terminal: each job with its next runs in its
//! own time zone.

use std::fmt::Write as _;

use jiff::Timestamp;

use crate::config::Config;
use crate::engine::plan::Tick;
use crate::job::{JobSpec, Target};

fn target(spec: &JobSpec) -> String {
    match &spec.target {
        Target::Command { command: crate::job::Command::Argv(argv), .. } => argv.join(" "),
        Target::Command { command: crate::job::Command::Shell(line), .. } => line.clone(),
        Target::Http(http) => format!("{} {}", http.method, http.url),
    }
}

fn local(spec: &JobSpec, at: Timestamp) -> String {
    at.to_zoned(spec.timezone.clone()).strftime("%Y-%m-%d %H:%M:%S %Z (%:z)").to_string()
}

/// The report of `chime check`: every job and its next `n` runs.
pub(crate) fn report(config: &Config, now: Timestamp, n: usize) -> String {
    let mut out = String::new();
    let file = config.path.display();
    if config.jobs.is_empty() {
        let _ = writeln!(out, "{file}: valid, no jobs");
        return out;
    }
    let _ = writeln!(
        out,
        "{file}: valid, {} job{}",
        config.jobs.len(),
        if config.jobs.len() == 1 { "" } else { "s" }
    );
    for spec in &config.jobs {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}  `{}` in {}  ({}, overlap {})  {}",
            spec.name,
            spec.schedule_text,
            spec.timezone_name,
            spec.scope(),
            serde_json::to_value(spec.overlap)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            target(spec)
        );
        for tick in spec.schedule.upcoming(now, &spec.timezone, n) {
            let fire = Tick::of(spec, tick).fire;
            let delay = tick.duration_until(fire);
            let jitter = if delay.is_zero() { String::new() } else { format!("  (+{delay:#} jitter)") };
            let _ = writeln!(out, "  {}  = {tick}{jitter}", local(spec, tick));
        }
    }
    out
}

/// The startup table: job, schedule, zone, scope, next run (in the job's zone) and how soon.
pub(crate) fn table(specs: &[JobSpec], now: Timestamp) -> String {
    let mut rows = vec![[
        "JOB".to_string(),
        "SCHEDULE".into(),
        "ZONE".into(),
        "SCOPE".into(),
        "NEXT RUN".into(),
        "IN".into(),
    ]];
    for spec in specs {
        let next = spec.schedule.next_after(now, &spec.timezone).map(|t| Tick::of(spec, t).fire);
        let (when, soon) = match next {
            Some(at) => {
                let secs = now.duration_until(at).as_secs().max(0);
                let soon = if secs < 120 {
                    format!("{secs}s")
                } else if secs < 7200 {
                    format!("{}m", secs / 60)
                } else if secs < 172_800 {
                    format!("{}h", secs / 3600)
                } else {
                    format!("{}d", secs / 86_400)
                };
                (local(spec, at), soon)
            }
            None => ("never".into(), "-".into()),
        };
        rows.push([
            spec.name.clone(),
            spec.schedule_text.clone(),
            spec.timezone_name.clone(),
            spec.scope().into(),
            when,
            soon,
        ]);
    }
    let widths: Vec<usize> =
        (0..6).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}
