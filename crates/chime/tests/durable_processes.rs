//! Durable timers across real processes: schedulers are this test binary re-run as children. The
//! first creates 300 timers due over the next 6 s and runs them; the orchestrator kills it with
//! SIGKILL in the middle of its runs, waits past the lease, and starts a second, which it later
//! freezes with SIGSTOP past its lease while a third takes over, then thaws (Redis and PostgreSQL:
//! on SQLite a process frozen inside a transaction holds the file's write lock, which stalls the
//! machine's other schedulers until it resumes or dies, so there the freeze is not tested). From
//! the schedulers' shared append-only log and a fenced sink (an append-only file replayed in order:
//! a write counts only with a fence higher than every earlier write of its timer), it checks: every
//! timer's effect is in the sink, none ran before its due time, fences increase per timer, only runs
//! caught by the kill or the freeze ran again (with the next attempt), the frozen scheduler's late
//! write was refused, and the timers that came due while nobody ran ran promptly after the restart.
//!
//! Backends: SQLite always; Redis and PostgreSQL when built with their features and pointed at a
//! server by `CHIME_REDIS_URL` / `CHIME_POSTGRES_URL` (otherwise they are skipped, loudly).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chime::Scheduler;
use chime::durable::{DurableFire, NewTimer};

#[path = "common/freeze.rs"]
mod freeze;
use freeze::freeze;

const TIMERS: u64 = 300;
const SPREAD_MS: u64 = 6_000;
const LEASE_MS: u64 = 1_000;
const POLL_MS: u64 = 100;
const WORK_MS: u64 = 20;
const FROZEN_MS: u64 = LEASE_MS * 2 + 500;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn main() {
    if let Ok(store) = std::env::var("CHIME_DURABLE_STORE") {
        member(&store);
        return;
    }
    let (mut passed, mut failed) = (0, 0);
    for (name, store) in backends() {
        eprintln!("durable_processes: {name} ...");
        match scenario(&name, &store) {
            Ok(summary) => {
                eprintln!("durable_processes: {name} ok: {summary}");
                passed += 1;
            }
            Err(why) => {
                eprintln!("durable_processes: {name} FAILED: {why}");
                failed += 1;
            }
        }
    }
    println!("durable_processes: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// (name, store spec for the children)
fn backends() -> Vec<(String, String)> {
    let dir = std::env::temp_dir().join(format!("chime-durable-processes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut backends = vec![("sqlite".to_string(), format!("sqlite:{}", dir.join("timers.db").display()))];
    for (feature, enabled, var) in [
        ("redis", cfg!(feature = "redis"), "CHIME_REDIS_URL"),
        ("postgres", cfg!(feature = "postgres"), "CHIME_POSTGRES_URL"),
    ] {
        match std::env::var(var) {
            Ok(url) if enabled => backends.push((feature.to_string(), format!("{feature}:{url}"))),
            _ => eprintln!(
                "\n*** durable_processes: SKIPPING {feature}: build with --features {feature} and set {var} to a server ***\n"
            ),
        }
    }
    backends
}

/// One log line: (wall ms, event, member, key, fence, attempt).
type Event = (u64, String, String, String, u64, u64);

fn read_log(path: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() != 6 {
                return None; // a line still being written
            }
            Some((
                f[0].parse().ok()?,
                f[1].into(),
                f[2].into(),
                f[3].into(),
                f[4].parse().ok()?,
                f[5].parse().ok()?,
            ))
        })
        .collect()
}

fn spawn(store: &str, name: &str, dir: &Path, create: Option<(String, u64)>) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env("CHIME_DURABLE_STORE", store)
        .env("CHIME_DURABLE_NAME", name)
        .env("CHIME_DURABLE_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.err"))).unwrap());
    if let Some((prefix, base)) = create {
        command.env("CHIME_DURABLE_CREATE", format!("{prefix} {base}"));
    }
    command.spawn().expect("spawn a scheduler")
}

fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, sig).unwrap_or_else(|e| panic!("kill({pid:?}, {sig:?}): {e}"));
}

/// Waits until `member` is inside a run (a start with no end yet); returns its key and fence.
fn inside_a_run(log: &Path, member: &str, timeout: Duration) -> Result<(String, u64), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let events = read_log(log);
        if let Some(start) = events.iter().rev().find(|e| e.1 == "start" && e.2 == member)
            && !events.iter().any(|e| e.1 == "end" && e.3 == start.3 && e.4 == start.4)
        {
            return Ok((start.3.clone(), start.4));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(format!("{member} was not caught inside a run"))
}

fn scenario(name: &str, store: &str) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!(
        "chime-durable-processes-{}-{name}-{}",
        std::process::id(),
        now_ms()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("events.log");
    let prefix = format!("p{:08x}", rand::random::<u32>());
    let base = now_ms() + 1_000;
    let mut children = BTreeMap::new();
    children.insert("m1", spawn(store, "m1", &dir, Some((prefix.clone(), base))));
    let result = drive(store, &dir, &log, &mut children)
        .and_then(|facts| check(&read_log(&log), &replay_sink(&dir.join("sink.log")), &prefix, base, &facts));
    for child in children.values_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    match &result {
        Ok(_) => drop(std::fs::remove_dir_all(&dir)),
        Err(_) => eprintln!("durable_processes: the log is kept at {}", log.display()),
    }
    result
}

struct Facts {
    killed_at: u64,
    restarted_at: u64,
    /// The frozen run (key, fence), when there was a freeze.
    frozen: Option<(String, u64)>,
    frozen_at: u64,
}

fn drive(store: &str, dir: &Path, log: &Path, children: &mut BTreeMap<&str, Child>) -> Result<Facts, String> {
    let freezes = !store.starts_with("sqlite:");
    // m1 runs about a third of the timers, then dies in the middle of one.
    let deadline = Instant::now() + Duration::from_secs(30);
    while read_log(log).iter().filter(|e| e.1 == "end").count() < (TIMERS / 3) as usize {
        if Instant::now() > deadline {
            return Err("m1 did not get through a third of the timers".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    inside_a_run(log, "m1", Duration::from_secs(5))?;
    signal(&children["m1"], rustix::process::Signal::KILL);
    let killed_at = now_ms();
    std::thread::sleep(Duration::from_millis(LEASE_MS + 500)); // nobody runs: timers come due unrun
    children.insert("m2", spawn(store, "m2", dir, None));
    let restarted_at = now_ms();
    // m2 catches up; then it freezes mid-run, past its lease, while m3 takes over.
    std::thread::sleep(Duration::from_millis(800));
    let (mut frozen, mut frozen_at) = (None, u64::MAX);
    if freezes {
        // A run lasts WORK_MS: if this thread was held back past its write, the freeze missed it;
        // let m2 go on and catch another.
        let run = loop {
            let run = inside_a_run(log, "m2", Duration::from_secs(10))?;
            if !freeze(&children["m2"]) {
                return Err("m2 did not stop".into());
            }
            let written = std::fs::read_to_string(dir.join("sink.log")).unwrap_or_default();
            if !written.lines().any(|l| l == format!("{} {}", run.0, run.1)) {
                break run;
            }
            signal(&children["m2"], rustix::process::Signal::CONT);
        };
        (frozen, frozen_at) = (Some(run), now_ms());
        children.insert("m3", spawn(store, "m3", dir, None));
        std::thread::sleep(Duration::from_millis(FROZEN_MS));
        signal(&children["m2"], rustix::process::Signal::CONT);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = read_log(log);
        let ended: std::collections::BTreeSet<&str> =
            events.iter().filter(|e| e.1 == "end").map(|e| e.3.as_str()).collect();
        let thawed_wrote = frozen
            .as_ref()
            .is_none_or(|f: &(String, u64)| events.iter().any(|e| e.2 == "m2" && e.3 == f.0 && e.1 == "end"));
        if ended.len() as u64 >= TIMERS && thawed_wrote {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {} timers completed", ended.len()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    Ok(Facts { killed_at, restarted_at, frozen, frozen_at })
}

/// The fenced sink, replayed: per timer, the writes it accepted (a fence higher than every earlier
/// write of that timer) and refused, as (key, fence) -> accepted.
fn replay_sink(sink: &Path) -> BTreeMap<(String, u64), bool> {
    let mut highest: BTreeMap<String, u64> = BTreeMap::new();
    let mut answers = BTreeMap::new();
    for line in std::fs::read_to_string(sink).unwrap_or_default().lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(key), Some(Ok(fence))) = (f.first(), f.get(1).map(|f| f.parse::<u64>())) else { continue };
        let top = highest.entry(key.to_string()).or_insert(0);
        let accepted = fence > *top;
        *top = (*top).max(fence);
        answers.insert((key.to_string(), fence), accepted);
    }
    answers
}

fn check(
    events: &[Event],
    sink: &BTreeMap<(String, u64), bool>,
    prefix: &str,
    base: u64,
    facts: &Facts,
) -> Result<String, String> {
    let due = |key: &str| -> u64 {
        base + key.rsplit('-').next().unwrap().parse::<u64>().unwrap() * SPREAD_MS / TIMERS
    };
    let mut per_key: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    events
        .iter()
        .filter(|e| e.3.starts_with(prefix))
        .for_each(|e| per_key.entry(e.3.as_str()).or_default().push(e));
    if per_key.len() as u64 != TIMERS {
        return Err(format!("{} of {TIMERS} timers ran", per_key.len()));
    }
    let mut again = 0;
    for (key, evs) in &per_key {
        let starts: Vec<&&Event> = evs.iter().filter(|e| e.1 == "start").collect();
        if let Some(early) = starts.iter().find(|e| e.0 < due(key)) {
            return Err(format!("{key} started at {} before its due time {}", early.0, due(key)));
        }
        let fences: Vec<u64> = starts.iter().map(|e| e.4).collect();
        if !fences.windows(2).all(|w| w[0] < w[1]) {
            return Err(format!("{key}: fences {fences:?}"));
        }
        if !fences.iter().any(|f| sink.get(&(key.to_string(), *f)) == Some(&true)) {
            return Err(format!("{key}'s effect is not in the sink: {evs:?}"));
        }
        if starts.len() > 1 {
            again += 1;
            // Only a run caught by the kill (m1) or the freeze (m2) runs again, with the next attempt.
            let first = starts[0];
            // Caught by the freeze: started before it (give SIGSTOP a few ms to land), its end not
            // recorded in the store by then.
            let frozen_run = first.2 == "m2" && first.0 <= facts.frozen_at.saturating_add(50);
            if !(first.2 == "m1" || frozen_run) {
                return Err(format!("{key} ran again although its first run was not interrupted: {evs:?}"));
            }
            if starts[1].5 != first.5 + 1 {
                return Err(format!(
                    "{key}: the run after the interrupted one is not the next attempt: {evs:?}"
                ));
            }
        }
    }
    // The frozen scheduler's late write was refused by the sink.
    let mut frozen = "no freeze".to_string();
    if let Some((key, fence)) = &facts.frozen {
        let end = events.iter().find(|e| e.2 == "m2" && &e.3 == key && e.4 == *fence && e.1 == "end");
        match (end, sink.get(&(key.clone(), *fence))) {
            (Some(e), Some(false)) if e.0 >= facts.frozen_at + FROZEN_MS => {
                frozen = "the frozen write was refused".into()
            }
            other => return Err(format!("the frozen scheduler's late write: {other:?}")),
        }
    }
    // The timers that came due while nobody ran: all started soon after the restart.
    let overdue: Vec<u64> = per_key
        .iter()
        .filter(|(key, _)| due(key) > facts.killed_at && due(key) < facts.restarted_at)
        .filter_map(|(_, evs)| evs.iter().find(|e| e.1 == "start" && e.0 >= facts.restarted_at).map(|e| e.0))
        .collect();
    let last_overdue = overdue.iter().max().map_or(0, |t| t - facts.restarted_at);
    if last_overdue > 5_000 {
        return Err(format!("the last overdue timer started {last_overdue} ms after the restart"));
    }
    Ok(format!(
        "{TIMERS} timers, each effect in the sink, none early; {again} ran again after the kill or the freeze; \
         {} overdue at the restart, the last started {last_overdue} ms after it (the process start included); {frozen}",
        overdue.len()
    ))
}

/// A scheduler: a sync handler that logs, works (blocking) and writes to the fenced sink.
fn member(store: &str) {
    let var =
        |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by the orchestrator"));
    let (name, dir) = (var("CHIME_DURABLE_NAME"), PathBuf::from(var("CHIME_DURABLE_DIR")));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let sched = Scheduler::start();
        let (log, sink, me) = (dir.join("events.log"), dir.join("sink.log"), name.clone());
        let builder = match store.split_once(':') {
            Some(("sqlite", path)) => sched.durable(chime::cluster::Sqlite::open(path).unwrap()),
            #[cfg(feature = "redis")]
            Some(("redis", url)) => sched.durable(chime::cluster::Redis::connect(url).await.unwrap()),
            #[cfg(feature = "postgres")]
            Some(("postgres", url)) => sched.durable(chime::cluster::Postgres::connect(url).await.unwrap()),
            other => panic!("unknown store {other:?}"),
        };
        let timers = builder
            .handler("work", move |f: &DurableFire| {
                let attempt = u64::from(f.attempt());
                append(&log, &format!("start {me} {} {} {attempt}", f.key(), f.fence()));
                std::thread::sleep(Duration::from_millis(WORK_MS)); // SIGKILL and SIGSTOP land here
                append(&sink, &format!("{} {}", f.key(), f.fence())); // the effect, with its fence
                append(&log, &format!("end {me} {} {} {attempt}", f.key(), f.fence()));
                Ok::<_, std::io::Error>(())
            })
            .lease(Duration::from_millis(LEASE_MS))
            .poll(Duration::from_millis(POLL_MS))
            .max_running(8)
            .start()
            .await
            .unwrap();
        if let Ok(create) = std::env::var("CHIME_DURABLE_CREATE") {
            let (prefix, base) = create.split_once(' ').unwrap();
            let base: u64 = base.parse().unwrap();
            let batch = (0..TIMERS).map(|i| {
                let due = UNIX_EPOCH + Duration::from_millis(base + i * SPREAD_MS / TIMERS);
                NewTimer::at(format!("{prefix}-{i}"), due, "work", Vec::new())
            });
            timers.create_many(batch).await.unwrap();
        }
        std::future::pending::<()>().await;
    });
}

/// Appends one line with one `write` (O_APPEND: lines from several processes never interleave).
fn append(path: &Path, line: &str) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    let stamped =
        if path.ends_with("events.log") { format!("{} {line}\n", now_ms()) } else { format!("{line}\n") };
    file.write_all(stamped.as_bytes()).unwrap();
}
