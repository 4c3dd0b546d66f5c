//! Workload 8, crash: 100k durable timers due over the next 10 s on SQLite. A child process
//! (`durable-run`) serves them; about a third of the way through it is killed with SIGKILL; two
//! seconds later (past the 1 s lease) another starts. Every run appends `key fence attempt start`
//! to a sink file (one `write` with `O_APPEND` each), read back at the end: every timer's effect is
//! there, none started before its due time, and the timers that came due while nobody ran (plus the
//! runs the kill cut short) started within a second of the restart (process start included).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chime::Scheduler;
use chime::cluster::Sqlite;
use chime::durable::DurableFire;

use crate::Sizes;
use crate::durable::{Scratch, fill, wall_ms};
use crate::measure::{multi_thread, quantile, size_label};
use crate::report::{Better, Figure, Report, Unit};

const LEASE_MS: u64 = 1_000;
const MAX_RUNNING: usize = 1024;

fn spawn(path: &Path, sink: &Path, name: &str) -> std::io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .args(["durable-run", &path.display().to_string(), &sink.display().to_string(), name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
}

/// Workload 8, crash.
pub(crate) fn run(sizes: Sizes, report: &mut Report) {
    let n: usize = if sizes.quick { 10_000 } else { 100_000 };
    let spread: i64 = if sizes.quick { 3_000 } else { 10_000 };
    let scratch = Scratch::new("crash");
    let (path, sink) = (scratch.0.join("timers.db"), scratch.0.join("sink.log"));
    let base = wall_ms() + 2_000;
    let due = move |i: usize| base + (i as i64 * spread) / n as i64;
    multi_thread(2).block_on(fill(&Sqlite::open(&path).expect("open"), "c", "work", n, due));
    let result = (|| -> std::io::Result<(i64, i64, i64)> {
        let mut first = spawn(&path, &sink, "a")?;
        let kill_at = base + spread * 3 / 10;
        std::thread::sleep(Duration::from_millis((kill_at - wall_ms()).max(0) as u64));
        first.kill()?; // SIGKILL
        let killed_at = wall_ms();
        first.wait()?;
        std::thread::sleep(Duration::from_millis(LEASE_MS + 1_000));
        let restarted_at = wall_ms();
        let mut second = spawn(&path, &sink, "b")?;
        let give_up = base + spread + 20_000;
        while distinct_keys(&sink) < n && wall_ms() < give_up {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(500)); // a second run of anything would show now
        second.kill()?;
        second.wait()?;
        Ok((killed_at, restarted_at, wall_ms()))
    })();
    let (killed_at, restarted_at, _) = match result {
        Ok(times) => times,
        Err(e) => return report.note(format!("[8] crash: {e}")),
    };
    let runs = read_sink(&sink);
    let index = |key: &str| key.strip_prefix("c-").and_then(|i| i.parse::<usize>().ok());
    let mut per_key: HashMap<usize, Vec<(u64, u64, i64, String)>> = HashMap::new();
    for (key, fence, attempt, start, member) in runs {
        if let Some(i) = index(&key) {
            per_key.entry(i).or_default().push((fence, attempt, start, member));
        }
    }
    let done = per_key.len();
    let early = per_key
        .iter()
        .flat_map(|(i, r)| r.iter().map(move |run| (i, run)))
        .filter(|(i, run)| run.2 < due(**i))
        .count();
    let again: Vec<_> = per_key.values().filter(|r| r.len() > 1).collect();
    let again_ok = again.iter().all(|r| {
        let mut r = r.to_vec();
        r.sort();
        r[0].3 == "a" && r[1..].iter().all(|run| run.3 == "b" && run.1 >= 2)
    });
    // Overdue at the restart: due while nobody ran, or cut short by the kill.
    let overdue: Vec<i64> = per_key
        .iter()
        .filter(|(i, r)| (due(**i) > killed_at && due(**i) < restarted_at) || r.len() > 1)
        .filter_map(|(_, r)| r.iter().filter(|run| run.3 == "b").map(|run| run.2).min())
        .collect();
    let last_overdue = overdue.iter().max().map_or(0, |t| t - restarted_at);
    let mut lateness: Vec<i64> = per_key
        .iter()
        .filter(|(i, _)| due(**i) >= restarted_at + 1_000 || due(**i) < killed_at - 100)
        .filter_map(|(i, r)| r.iter().map(|run| run.2 - due(*i)).min())
        .collect();
    lateness.sort_unstable();
    let label = size_label(n);
    let secs = spread / 1000;
    report.push(
        Figure::new(
            8,
            format!("kill -9 + restart, {label} due over {secs} s: timers in the sink"),
            Unit::Count,
            Better::Higher,
            done as f64,
        )
        .goal_min(n as f64, format!("all {label}")),
    );
    report.push(
        Figure::new(8, "runs started before their due time", Unit::Count, Better::Lower, early as f64)
            .goal_max(0.0, "0"),
    );
    report.push(
        Figure::new(
            8,
            "last overdue timer started after the restart",
            Unit::Nanos,
            Better::Lower,
            last_overdue as f64 * 1e6,
        )
        .goal_max(1e9, "<= 1 s"),
    );
    report.note(format!(
        "[8] crash: {} timers overdue at the restart ({} due while nobody ran, {} cut short by the kill and run \
         again with the next attempt and a higher fence{}); on-time runs started p50 {} ms / p99 {} ms after their due time",
        overdue.len(),
        overdue.len() - again.len(),
        again.len(),
        if again_ok { "" } else { ": SOME RE-RUNS WERE NOT THE KILLED SCHEDULER'S" },
        quantile(&lateness, 0.5),
        quantile(&lateness, 0.99)
    ));
}

fn distinct_keys(sink: &Path) -> usize {
    read_sink(sink).into_iter().map(|r| r.0).collect::<std::collections::HashSet<_>>().len()
}

/// The sink's lines: (key, fence, attempt, start ms, member).
fn read_sink(sink: &Path) -> Vec<(String, u64, u64, i64, String)> {
    let text = std::fs::read_to_string(sink).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() != 5 {
                return None;
            }
            Some((
                f[0].to_string(),
                f[1].parse().ok()?,
                f[2].parse().ok()?,
                f[3].parse().ok()?,
                f[4].to_string(),
            ))
        })
        .collect()
}

/// The child side: serves the store at `path`, appending each run to `sink`, until it is killed.
pub(crate) fn run_child(path: &Path, sink: &Path, name: &str) -> ! {
    let file = Arc::new(std::fs::OpenOptions::new().create(true).append(true).open(sink).expect("the sink"));
    let name = name.to_string();
    multi_thread(2).block_on(async move {
        let sched = Scheduler::start();
        let timers = sched
            .durable(Sqlite::open(path).expect("open"))
            .handler("work", move |f: &DurableFire| {
                let line = format!("{} {} {} {} {name}\n", f.key(), f.fence(), f.attempt(), wall_ms());
                (&*file).write_all(line.as_bytes())
            })
            .lease(Duration::from_millis(LEASE_MS))
            .max_running(MAX_RUNNING)
            .start()
            .await
            .expect("started");
        std::mem::forget(timers);
        std::future::pending::<()>().await;
    });
    std::process::exit(0)
}
