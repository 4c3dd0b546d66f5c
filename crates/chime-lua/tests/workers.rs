//! `chime-lua --workers N`: real worker processes sharing a store. A node-wide resty.timer runs
//! once per tick across them and fails over when its worker is killed; Knot's map answers in
//! worker order; the parent forwards signals, exits with the first failure, leaves nothing behind.
//! The Redis and PostgreSQL store variants need CHIME_REDIS_URL / CHIME_POSTGRES_URL (CI sets
//! them) and skip loudly without them.
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TICKER: &str = r#"
local timer = require "resty.timer"
local key = arg[2] or "tick"
timer({ interval = 0.2, sub_interval = 0.05, recurring = true, immediate = true, detached = true,
  shm_name = "locks", key_name = key,
  expire = function() print(("tick %d %d %.3f"):format(ngx.worker.id(), ngx.worker.pid(), ngx.now())) end })
print(("up %d %d"):format(ngx.worker.id(), ngx.worker.pid()))
ngx.sleep(tonumber(arg[1]))
"#;

struct Tick {
    pid: u32,
    at: f64,
}

/// Starts a run and a thread that forwards its stdout lines.
fn start(options: &[&str], script: &str, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    start_in(options, script, args, None)
}

/// As [`start`], with `TMPDIR` (where the run's directory is made) set to `tmp`.
fn start_in(
    options: &[&str],
    script: &str,
    args: &[&str],
    tmp: Option<&std::path::Path>,
) -> (Child, mpsc::Receiver<String>) {
    let mut command = common::binary();
    if let Some(tmp) = tmp {
        command.env("TMPDIR", tmp);
    }
    let mut child = command
        .args(options)
        .arg(common::temp_script(&format!("workers-{}.lua", rand_suffix()), script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("chime-lua runs");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

fn rand_suffix() -> String {
    format!("{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], "")
}

fn next_tick(rx: &mpsc::Receiver<String>, within: Duration) -> Option<Tick> {
    let deadline = Instant::now() + within;
    loop {
        let line = rx.recv_timeout(deadline.checked_duration_since(Instant::now())?).ok()?;
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() == Some(&"tick") {
            return Some(Tick { pid: f[2].parse().ok()?, at: f[3].parse().ok()? });
        }
    }
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

fn kill(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Ticks of one key across three workers: one per tick (consecutive runs an interval apart, never
/// two on one tick), and after the running worker is killed another takes over within
/// interval + sub_interval (plus a tolerance for a loaded machine).
fn node_wide_timer_across_workers(store: &[&str], key: &str) {
    let mut options = vec!["--workers", "3", "--shdict", "locks"];
    options.extend_from_slice(store);
    let (mut child, rx) = start(&options, TICKER, &["3.5", key]);
    let mut ticks = Vec::new();
    while ticks.len() < 5 {
        ticks.push(next_tick(&rx, Duration::from_secs(10)).expect("the node-wide timer runs"));
    }
    for pair in ticks.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap > 0.08, "one run per tick across the workers, not one per worker: gap {gap:.3}");
    }
    // kill the worker that ran the last tick; another one takes over
    let victim = ticks.last().map(|t| t.pid).unwrap_or(0);
    kill(victim, rustix::process::Signal::KILL);
    let killed_at = ticks.last().map(|t| t.at).unwrap_or(0.0);
    let mut after = Vec::new();
    while after.len() < 3 {
        let tick = next_tick(&rx, Duration::from_secs(10)).expect("the timer goes on after the kill");
        if tick.pid != victim {
            after.push(tick);
        }
    }
    let takeover = after[0].at - killed_at;
    assert!(
        takeover < 0.2 + 0.05 + 0.5,
        "failover within interval + sub_interval (+ tolerance): {takeover:.3}"
    );
    let status = child.wait().expect("the run ends");
    assert_eq!(status.code(), Some(128 + 9), "the parent exits with the killed worker's status");
}

#[test]
fn node_wide_timer_runs_once_per_tick_and_fails_over() {
    node_wide_timer_across_workers(&[], "tick");
}

#[test]
fn redis_store() {
    let Ok(url) = std::env::var("CHIME_REDIS_URL") else {
        eprintln!("SKIPPED redis_store: CHIME_REDIS_URL is not set (CI sets it)");
        return;
    };
    if !cfg!(feature = "redis") {
        eprintln!("SKIPPED redis_store: chime-lua was built without its `redis` feature");
        return;
    }
    node_wide_timer_across_workers(&["--store", &url], &format!("redis-{}", rand_suffix()));
}

#[test]
fn postgres_store() {
    let Ok(url) = std::env::var("CHIME_POSTGRES_URL") else {
        eprintln!("SKIPPED postgres_store: CHIME_POSTGRES_URL is not set (CI sets it)");
        return;
    };
    if !cfg!(feature = "postgres") {
        eprintln!("SKIPPED postgres_store: chime-lua was built without its `postgres` feature");
        return;
    }
    node_wide_timer_across_workers(&["--store", &url], &format!("pg-{}", rand_suffix()));
}

#[test]
fn map_answers_in_worker_order() {
    let (mut child, rx) = start(
        &["--workers", "3", "--knot"],
        r#"
        if worker.id == 0 then
          worker.coroutine(function()
            local r = map('worker.id * 10')
            print('map', r.n, r[1], r[2], r[3])
            local t = map('{ id = worker.id, count = worker.count }')
            print('tables', t[2].id, t[3].count)
          end)
        end
        "#,
        &[],
    );
    let lines: Vec<String> = rx.iter().collect();
    assert!(child.wait().unwrap().success());
    assert_eq!(lines, vec!["map\t3\t0\t10\t20", "tables\t1\t3"]);
}

#[test]
fn the_parent_forwards_signals_and_leaves_no_worker_behind() {
    let (mut child, rx) = start(&["--workers", "3", "--shdict", "locks"], TICKER, &["30", "signals"]);
    let mut pids = Vec::new();
    while pids.len() < 3 {
        let line = rx.recv_timeout(Duration::from_secs(10)).expect("the workers start");
        if let Some(rest) = line.strip_prefix("up ") {
            pids.push(rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()).unwrap());
        }
    }
    kill(child.id(), rustix::process::Signal::TERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15), "the workers got the SIGTERM");
    for pid in pids {
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            !alive(pid)
        });
        assert!(gone, "worker {pid} is gone");
    }
}

#[test]
fn a_killed_parent_takes_its_workers_along() {
    // a parent killed with SIGKILL cannot remove its run directory: keep it in one of ours
    let tmp = std::env::temp_dir().join(format!("chime-lua-orphans-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let (mut child, rx) =
        start_in(&["--workers", "2", "--shdict", "locks"], TICKER, &["30", "orphans"], Some(&tmp));
    let mut pids = Vec::new();
    while pids.len() < 2 {
        let line = rx.recv_timeout(Duration::from_secs(10)).expect("the workers start");
        if let Some(rest) = line.strip_prefix("up ") {
            pids.push(rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()).unwrap());
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    for pid in pids {
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            !alive(pid)
        });
        assert!(gone, "worker {pid} died with its parent");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn the_first_failing_worker_sets_the_status() {
    let out = common::binary()
        .args(["--workers", "3"])
        .arg(common::temp_script(
            "fails.lua",
            "local id = require('ngx').worker.id() if id == 1 then os.exit(3) end print('worker', id)",
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 2, "the other workers ran: {stdout}");
}

/// A run holds its claim until its Lua callback ends: callbacks that outlast the interval never
/// overlap across workers, and their fences increase. The lease is the interval: 600 ms gives each
/// renewal (a third of it, fsynced to a SQLite file three workers share) room on a loaded machine.
#[test]
fn node_wide_runs_never_overlap_and_carry_fences() {
    let (mut child, rx) = start(
        &["--workers", "3", "--shdict", "locks"],
        r#"
        local timer = require "resty.timer"
        local t
        t = timer({ interval = 0.6, sub_interval = 0.05, recurring = true, immediate = true, detached = true,
          shm_name = "locks", key_name = "slow",
          expire = function()
            local fence, start = t.fence, ngx.now()
            ngx.sleep(1.0)
            print(("run %d %.3f %.3f"):format(fence, start, ngx.now()))
          end })
        ngx.sleep(4.4)
        "#,
        &[],
    );
    let lines: Vec<String> = rx.iter().collect();
    assert!(child.wait().unwrap().success());
    let mut runs: Vec<(u64, f64, f64)> = lines
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&"run"))
                .then(|| (f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap()))
        })
        .collect();
    runs.sort_by(|a, b| a.1.total_cmp(&b.1));
    assert!(runs.len() >= 3, "{lines:?}");
    for pair in runs.windows(2) {
        assert!(pair[1].1 >= pair[0].2 - 0.005, "runs overlap: {pair:?}");
        assert!(pair[1].0 > pair[0].0, "fences increase: {pair:?}");
    }
}
