//! Cluster timers across real processes: members are this test binary re-run as children. The
//! orchestrator kills a member with SIGKILL in the middle of its run, freezes another with SIGSTOP
//! past its lease and thaws it, optionally restarts the store, and then reads the members' shared
//! append-only log to check: at most one start per tick, fences increasing with ticks, failover
//! within `lease + sub_interval` (plus an interval and slack for a loaded machine), and the frozen
//! member's late write refused by a sink that checks fences.
//!
//! Backends: SQLite always; Redis and PostgreSQL when built with their features and pointed at a
//! server by `CHIME_REDIS_URL` / `CHIME_POSTGRES_URL` (otherwise they are skipped, loudly).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chime::{Fire, Scheduler};

#[path = "common/freeze.rs"]
mod freeze;
use freeze::freeze;

const INTERVAL_MS: u64 = 300;
const SUB_INTERVAL_MS: u64 = 50;
const LEASE_MS: u64 = 600;
const RUN_MS: u64 = 150;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn main() {
    if let Ok(store) = std::env::var("CHIME_MEMBER_STORE") {
        member(&store);
        return;
    }
    let mut passed = 0;
    let mut failed = 0;
    for (name, store, restart) in backends() {
        eprintln!("cluster_processes: {name} ...");
        match scenario(&name, &store, restart.as_deref()) {
            Ok(summary) => {
                eprintln!("cluster_processes: {name} ok: {summary}");
                passed += 1;
            }
            Err(why) => {
                eprintln!("cluster_processes: {name} FAILED: {why}");
                failed += 1;
            }
        }
    }
    println!("cluster_processes: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// (name, store spec for members, command that restarts the store)
fn backends() -> Vec<(String, String, Option<String>)> {
    let dir = std::env::temp_dir().join(format!("chime-processes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut backends =
        vec![("sqlite".to_string(), format!("sqlite:{}", dir.join("claims.db").display()), None)];
    for (feature, enabled, var) in [
        ("redis", cfg!(feature = "redis"), "CHIME_REDIS_URL"),
        ("postgres", cfg!(feature = "postgres"), "CHIME_POSTGRES_URL"),
    ] {
        match std::env::var(var) {
            Ok(url) if enabled => {
                let restart = std::env::var(format!("{var}_RESTART")).ok();
                backends.push((feature.to_string(), format!("{feature}:{url}"), restart));
            }
            _ => eprintln!(
                "\n*** cluster_processes: SKIPPING {feature}: build with --features {feature} and set {var} to a server ***\n"
            ),
        }
    }
    backends
}

/// One log line: (wall ms, event, member, tick, fence).
type Event = (u64, String, String, u64, u64);

fn read_log(path: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() != 5 {
                return None; // a line still being written
            }
            Some((
                f[0].parse().ok()?,
                f[1].to_string(),
                f[2].to_string(),
                f[3].parse().ok()?,
                f[4].parse().ok()?,
            ))
        })
        .collect()
}

fn spawn_member(store: &str, key: &str, name: &str, log: &Path, sink: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env("CHIME_MEMBER_STORE", store)
        .env("CHIME_MEMBER_KEY", key)
        .env("CHIME_MEMBER_NAME", name)
        .env("CHIME_MEMBER_LOG", log)
        .env("CHIME_MEMBER_SINK", sink)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log.with_extension(format!("{name}.err"))).unwrap())
        .spawn()
        .expect("spawn a member")
}

fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, sig).unwrap_or_else(|e| panic!("kill({pid:?}, {sig:?}): {e}"));
}

/// Waits until some member is inside its run (a `start` with no `end` yet); returns its name, tick
/// and fence.
fn wait_for_a_run(log: &Path, not: &[&str], timeout: Duration) -> Result<(String, u64, u64), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let events = read_log(log);
        if let Some(start) = events.iter().rev().find(|e| e.1 == "start" && !not.contains(&e.2.as_str()))
            && !events.iter().any(|e| e.1 == "end" && e.2 == start.2 && e.3 == start.3)
            && now_ms().saturating_sub(start.0) < RUN_MS / 3
        {
            return Ok((start.2.clone(), start.3, start.4));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err("no member was caught inside a run".into())
}

fn scenario(name: &str, store: &str, restart: Option<&str>) -> Result<String, String> {
    let dir =
        std::env::temp_dir().join(format!("chime-processes-{}-{name}-{}", std::process::id(), now_ms()));
    std::fs::create_dir_all(&dir).unwrap();
    let (log, sink) = (dir.join("events.log"), dir.join("sink.db"));
    let key = format!("processes-{name}-{}", now_ms());
    let mut members: BTreeMap<String, Child> = BTreeMap::new();
    for m in ["m0", "m1", "m2"] {
        members.insert(m.to_string(), spawn_member(store, &key, m, &log, &sink));
    }
    let result = drive(store, &key, &log, &sink, &mut members, restart);
    for child in members.values_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let verdict =
        result.and_then(|facts| check(&read_log(&log), &facts, restart.is_some() && name == "redis"));
    if verdict.is_ok() {
        std::fs::remove_dir_all(&dir).ok();
    } else {
        eprintln!("cluster_processes: the log is kept at {}", log.display());
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|e| e == "err") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                if !text.trim().is_empty() {
                    eprintln!("--- {}:\n{text}", entry.path().display());
                }
            }
        }
    }
    verdict
}

/// What the orchestrator did and when.
struct Facts {
    killed: (String, u64, u64),
    killed_at: u64,
    frozen: (String, u64, u64),
    /// Just before SIGSTOP was sent; the member stays frozen for `FROZEN_MS`.
    frozen_at: u64,
}

/// How long the frozen member stays stopped: past its lease, twice over.
const FROZEN_MS: u64 = LEASE_MS * 2 + 300;

fn drive(
    store: &str,
    key: &str,
    log: &Path,
    sink: &Path,
    members: &mut BTreeMap<String, Child>,
    restart: Option<&str>,
) -> Result<Facts, String> {
    let ready = Instant::now() + Duration::from_secs(30);
    while read_log(log).iter().filter(|e| e.1 == "ready").count() < 3 {
        if Instant::now() > ready {
            return Err("the members did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));

    let killed = wait_for_a_run(log, &[], Duration::from_secs(10))?;
    signal(&members[&killed.0], rustix::process::Signal::KILL);
    let killed_at = now_ms();
    members.insert("m3".into(), spawn_member(store, key, "m3", log, sink));
    std::thread::sleep(Duration::from_millis(2000));

    if let Some(command) = restart {
        let status = Command::new("sh").arg("-c").arg(command).status().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("restarting the store failed: {command}"));
        }
        std::thread::sleep(Duration::from_millis(1500));
    }

    // Caught in the first third of its run. If this thread was held back all the same, the freeze
    // may have missed the run's sleep: landed after its write, or inside the write's transaction
    // (which then holds the sink's lock, so the write is rightly accepted at the thaw). Only a
    // freeze known to have landed in the first half of the sleep counts: otherwise let the member go
    // on and catch another run.
    let (frozen, frozen_at) = loop {
        let run = wait_for_a_run(log, &[killed.0.as_str()], Duration::from_secs(10))?;
        let at = now_ms();
        if !freeze(&members[&run.0]) {
            return Err(format!("{} did not stop", run.0));
        }
        let stopped = now_ms();
        let events = read_log(log);
        let this_run = |e: &&Event| e.2 == run.0 && e.3 == run.1 && e.4 == run.2;
        let started = events.iter().filter(this_run).find(|e| e.1 == "start").map_or(0, |e| e.0);
        let wrote = events.iter().filter(this_run).any(|e| e.1.starts_with("sink-"));
        if !wrote && stopped < started + RUN_MS / 2 {
            break (run, at);
        }
        signal(&members[&run.0], rustix::process::Signal::CONT);
    };
    std::thread::sleep(Duration::from_millis(FROZEN_MS));
    signal(&members[&frozen.0], rustix::process::Signal::CONT);
    std::thread::sleep(Duration::from_millis(1500));
    Ok(Facts { killed, killed_at, frozen, frozen_at })
}

fn check(events: &[Event], facts: &Facts, restarted_redis: bool) -> Result<String, String> {
    let starts: Vec<&Event> = events.iter().filter(|e| e.1 == "start").collect();
    let mut per_tick: BTreeMap<u64, Vec<&Event>> = BTreeMap::new();
    starts.iter().for_each(|e| per_tick.entry(e.3).or_default().push(e));
    if !restarted_redis && let Some((tick, runs)) = per_tick.iter().find(|(_, runs)| runs.len() > 1) {
        return Err(format!("tick {tick} started {} times: {runs:?}", runs.len()));
    }
    let fences: Vec<u64> = per_tick.values().map(|runs| runs[0].4).collect();
    if !fences.windows(2).all(|w| w[0] < w[1]) {
        return Err(format!("fences do not increase with ticks: {fences:?}"));
    }
    // Failover: the next start after the SIGKILL, within lease + sub_interval (+ an interval for the
    // next tick to come due, + slack for a loaded machine).
    let bound = LEASE_MS + SUB_INTERVAL_MS + INTERVAL_MS + 1500;
    let next = starts.iter().find(|e| e.3 > facts.killed.1 && e.0 >= facts.killed_at);
    let failover = next.map(|e| e.0 - facts.killed_at).ok_or("no run after the member was killed")?;
    if failover > bound {
        return Err(format!("failover took {failover} ms (bound {bound} ms)"));
    }
    // The frozen member's run ended after it was thawed; its write carried an old fence. A frozen
    // process writes nothing, so a write stamped later than the freeze began came after the thaw.
    let (who, tick, fence) = &facts.frozen;
    let thawed = facts.frozen_at + FROZEN_MS;
    let late =
        events.iter().find(|e| e.1.starts_with("sink-") && &e.2 == who && e.3 == *tick && e.4 == *fence);
    match late {
        Some(e) if e.0 >= thawed && e.1 == "sink-rejected" => {}
        Some(e) if e.0 >= thawed => {
            return Err(format!("the frozen member's late write was accepted: {e:?}"));
        }
        Some(e) => {
            let when = e.0 as i64 - facts.frozen_at as i64;
            return Err(format!("the member wrote before the freeze took hold ({when} ms after): {e:?}"));
        }
        None => return Err(format!("no write from the frozen member {who} for tick {tick}")),
    }
    let others_meanwhile =
        starts.iter().filter(|e| &e.2 != who && e.0 > facts.frozen_at && e.0 < thawed).count();
    if others_meanwhile == 0 {
        return Err("nobody ran while a member was frozen".into());
    }
    Ok(format!("{} ticks, failover {failover} ms, late write rejected", per_tick.len()))
}

/// A member: a cluster timer whose run logs, works (blocking) and writes to the fenced sink.
fn member(store: &str) {
    let var =
        |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by the orchestrator"));
    let (key, name) = (var("CHIME_MEMBER_KEY"), var("CHIME_MEMBER_NAME"));
    let (log, sink) = (PathBuf::from(var("CHIME_MEMBER_LOG")), PathBuf::from(var("CHIME_MEMBER_SINK")));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let sched = Scheduler::start();
        let ms = Duration::from_millis;
        let builder = sched
            .timer(ms(INTERVAL_MS))
            .recurring()
            .key(key)
            .sub_interval(ms(SUB_INTERVAL_MS))
            .lease(ms(LEASE_MS));
        let builder = match store.split_once(':') {
            Some(("sqlite", path)) => builder.coordinator(chime::cluster::Sqlite::open(path).unwrap()),
            #[cfg(feature = "redis")]
            Some(("redis", url)) => builder.coordinator(chime::cluster::Redis::connect(url).await.unwrap()),
            #[cfg(feature = "postgres")]
            Some(("postgres", url)) => {
                builder.coordinator(chime::cluster::Postgres::connect(url).await.unwrap())
            }
            other => panic!("unknown store {other:?}"),
        };
        let (log_path, me) = (log.clone(), name.clone());
        let _timer = builder
            .on_expire(move |fire: &Fire| {
                let (tick, fence) = (fire.tick().unwrap(), fire.fence().unwrap());
                append(&log_path, "start", &me, tick, fence);
                std::thread::sleep(ms(RUN_MS)); // the work; SIGSTOP lands here
                let event = if fenced_write(&sink, fence) { "sink-accepted" } else { "sink-rejected" };
                append(&log_path, event, &me, tick, fence);
                append(&log_path, "end", &me, tick, fence);
            })
            .arm()
            .unwrap();
        append(&log, "ready", &name, 0, 0);
        std::future::pending::<()>().await;
    });
}

fn append(log: &Path, event: &str, member: &str, tick: u64, fence: u64) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    file.write_all(format!("{} {event} {member} {tick} {fence}\n", now_ms()).as_bytes()).unwrap();
}

/// The downstream system: accepts a write only if its fence is the highest it has seen.
fn fenced_write(sink: &Path, fence: u64) -> bool {
    let mut db = rusqlite::Connection::open(sink).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute_batch("CREATE TABLE IF NOT EXISTS writes (fence INTEGER NOT NULL)").unwrap();
    let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
    let highest: i64 = tx.query_row("SELECT COALESCE(MAX(fence), 0) FROM writes", [], |r| r.get(0)).unwrap();
    let accepted = (fence as i64) > highest;
    if accepted {
        tx.execute("INSERT INTO writes (fence) VALUES (?1)", [fence as i64]).unwrap();
    }
    tx.commit().unwrap();
    accepted
}
