//! The daemon workload (SPEC section 4): the `chime` binary in a child process with 10k jobs
//! `@every 1m` and 1k jobs `@every 1s` on one SQLite store, the jobs either HTTP requests to a small
//! sink in this process (the daemon's own cost per run) or processes (`true`, executed directly:
//! what starting a thousand processes a second costs on top). Measured from the outside over a
//! window that holds a minute boundary (the 11k burst): resident memory (`/proc/PID/status`), the
//! daemon's own CPU (`/proc/PID/stat` utime + stime, its children not counted) over the window and
//! in the quiet part of each second (0.5 s to 0.95 s past it) outside the minute's burst, and, from
//! the daemon's run history, two latencies per run, from the tick's fire time (its nominal instant;
//! these jobs have no jitter):
//!
//! - **claim latency**: until the store granted this replica the tick (the scheduling decision);
//! - **start latency**: until the job started (its process spawned, or its request handed to the
//!   HTTP client) — the "from nominal tick to the job's start".
//!
//! A tick due with a thousand others cannot start sooner than the machine can start a thousand
//! jobs, whatever schedules them; so each burst is also started by a bare program in the same run
//! ([`daemon_floor`]), and the daemon's start latency is printed against that
//! floor.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon_floor;
use crate::measure::quantile;
use crate::report::Machine;

/// Sizes of one run.
struct Plan {
    minute_jobs: usize,
    second_jobs: usize,
    /// Seconds measured after the warm-up.
    window: u64,
}

fn jiffies_and_rss(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3; utime and stime are fields 14 and 15.
    let cpu = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<u64>().ok())?;
    Some((cpu, rss * 1024))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// What each job does (the floor starts the same kind).
pub(crate) use super::daemon_floor::Jobs;

/// A minimal HTTP/1.1 sink: answers every request with 204, keeping connections open.
fn sink() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
            addr_tx
                .send(listener.local_addr().expect("an address").to_string())
                .expect("the address is sent");
            loop {
                let Ok((mut conn, _)) = listener.accept().await else { continue };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut have = 0;
                    loop {
                        match conn.read(&mut buf[have..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => have += n,
                        }
                        while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.copy_within(end + 4..have, 0);
                            have -= end + 4;
                            if conn
                                .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        if have == buf.len() {
                            return;
                        }
                    }
                });
            }
        });
    });
    addr_rx.recv().expect("the sink starts")
}

fn schedule(dir: &Path, plan: &Plan, jobs: Jobs, sink: &str) -> std::path::PathBuf {
    let action = match jobs {
        Jobs::Process => "command = [\"true\"]".to_string(),
        Jobs::Http => format!("http = {{ url = \"http://{sink}/\" }}"),
    };
    let mut text = String::from(
        "[store]\nurl = \"sqlite://store.db\"\n[server]\nlisten = \"127.0.0.1:0\"\nhistory = 200\n[defaults]\nlease = \"10s\"\n",
    );
    for i in 0..plan.minute_jobs {
        text.push_str(&format!("[[job]]\nname = \"m-{i}\"\nschedule = \"@every 1m\"\n{action}\n"));
    }
    for i in 0..plan.second_jobs {
        text.push_str(&format!("[[job]]\nname = \"s-{i}\"\nschedule = \"@every 1s\"\n{action}\n"));
    }
    let path = dir.join("schedule.toml");
    std::fs::write(&path, text).expect("the schedule is written");
    path
}

/// Runs the workload and prints its figures.
pub(crate) fn run(quick: bool, jobs: Jobs, window: Option<u64>) {
    let plan = if quick {
        Plan { minute_jobs: 1_000, second_jobs: 100, window: 8 }
    } else {
        Plan { minute_jobs: 10_000, second_jobs: 1_000, window: window.unwrap_or(70) }
    };
    let machine = Machine::detect();
    let dir = std::env::temp_dir().join(format!("chime-bench-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let sink = if jobs == Jobs::Http { sink() } else { String::new() };
    let file = schedule(&dir, &plan, jobs, &sink);
    // The real binary, with its own allocator: build it first.
    let exe = std::env::current_exe().expect("the benchmark's own path").with_file_name("chime");
    if !exe.exists() {
        eprintln!("[daemon] {} is missing: run `cargo build --release -p chime-cli` first", exe.display());
        std::process::exit(2);
    }
    eprintln!(
        "[daemon] the floor: bursts of {} and {} jobs started by a bare program (CPU: {})",
        plan.second_jobs,
        plan.minute_jobs + plan.second_jobs,
        machine.cpu
    );
    let floor_second = daemon_floor::burst(jobs, plan.second_jobs, &sink);
    let floor_minute = daemon_floor::burst(jobs, plan.minute_jobs + plan.second_jobs, &sink);
    eprintln!(
        "[daemon] {} jobs @every 1m + {} @every 1s on SQLite, {} s measured",
        plan.minute_jobs, plan.second_jobs, plan.window
    );
    let mut child = Command::new(&exe)
        .arg("run")
        .arg(&file)
        .args(["--log-format", "json"])
        .env("CHIME_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the daemon starts");
    let pid = child.id();
    eprintln!("[daemon] the daemon is process {pid}");
    // Ready when the replica has checked in; then warm up past the first runs.
    let store = dir.join("store.db");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = rusqlite::Connection::open(&store)
            .and_then(|c| {
                c.query_row("SELECT count(*) FROM chime_daemon_replicas", [], |r| r.get::<_, i64>(0))
            })
            .is_ok_and(|n| n > 0);
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "the daemon did not start within 2 minutes");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    // The window starts on a second boundary; in a full run it holds a minute boundary (a window
    // shorter than a minute is placed so that the minute falls 40% into it).
    let mut start_ms = (now_ms() / 1000 + 1) * 1000;
    if !quick && plan.window < 61 {
        let before = (plan.window as i64 * 2 / 5) * 1000;
        start_ms = ((start_ms + before + 59_999) / 60_000) * 60_000 - before;
        eprintln!("[daemon] waiting {} s for the window", (start_ms - now_ms()) / 1000);
    }
    std::thread::sleep(Duration::from_millis((start_ms - now_ms()).max(0) as u64));
    let mut samples: Vec<(i64, u64, u64)> = Vec::new();
    let end_ms = start_ms + plan.window as i64 * 1000;
    while now_ms() < end_ms {
        if let Some((cpu, rss)) = jiffies_and_rss(pid) {
            samples.push((now_ms(), cpu, rss));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let hwm = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(|v| v.trim().trim_end_matches("kB").trim().to_string())
        })
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024);
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    let _ = child.wait();

    let db = rusqlite::Connection::open(&store).expect("the store opens");
    let mut stmt = db
        .prepare(
            "SELECT job, json_extract(record, '$.due_ms'), json_extract(record, '$.claimed_ms'), started_ms
             FROM chime_daemon_runs WHERE started_ms >= ?1 AND started_ms < ?2",
        )
        .expect("the run history is readable");
    let rows: Vec<Row> = stmt
        .query_map([start_ms, end_ms], |r| {
            Ok(Row { job: r.get(0)?, due: r.get(1)?, claimed: r.get(2)?, started: r.get(3)? })
        })
        .expect("runs")
        .filter_map(Result::ok)
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let minutes = if quick { 0 } else { (plan.window / 60).max(1) };
    let expected = plan.second_jobs as u64 * plan.window + plan.minute_jobs as u64 * minutes;
    let what = if jobs == Jobs::Http { "an HTTP GET to a local sink" } else { "`true` (a process)" };
    println!(
        "daemon workload on {} ({} CPUs, Linux {}), {}",
        machine.cpu,
        machine.cpus,
        machine.kernel,
        if quick { "quick" } else { "full" }
    );
    println!(
        "  jobs: {} @every 1m + {} @every 1s, {what} each, SQLite store; window {} s",
        plan.minute_jobs, plan.second_jobs, plan.window
    );
    println!("  runs started in the window: {} (about {expected} due)", rows.len());
    report(&rows, &samples, hwm, (start_ms, end_ms), (&floor_second, &floor_minute));
}

/// One run from the history: its job, and when it was due, claimed and started (ms).
struct Row {
    job: String,
    due: i64,
    claimed: i64,
    started: i64,
}

fn report(
    rows: &[Row],
    samples: &[(i64, u64, u64)],
    hwm: u64,
    (start_ms, end_ms): (i64, i64),
    (floor_second, floor_minute): (&[i64], &[i64]),
) {
    // When each minute's burst (every job due at once) had all started: the seconds after it, until
    // then, are the burst's; the rest are the steady state (1k `@every 1s` ticks a second).
    let mut burst_end: std::collections::BTreeMap<i64, i64> = Default::default();
    for r in rows.iter().filter(|r| r.due % 60_000 == 0) {
        let end = burst_end.entry(r.due).or_insert(r.started);
        *end = (*end).max(r.started);
    }
    let steady =
        |at: i64| at % 60_000 != 0 && burst_end.range(..=at).next_back().is_none_or(|(_, &end)| at > end);
    let hz = 100.0; // USER_HZ: /proc reports CPU time in hundredths of a second on Linux.
    let (first, last) =
        (samples.first().copied().unwrap_or_default(), samples.last().copied().unwrap_or_default());
    let total_cpu = (last.1 - first.1) as f64 / hz / ((last.0 - first.0).max(1) as f64 / 1000.0);
    let (mut quiet_cpu, mut quiet_wall) = (0.0, 0.0);
    for second in (start_ms / 1000)..(end_ms / 1000) {
        if !steady(second * 1000) {
            continue;
        }
        let at = |offset: i64| samples.iter().min_by_key(|s| (s.0 - (second * 1000 + offset)).abs()).copied();
        if let (Some(a), Some(b)) = (at(500), at(950))
            && b.0 > a.0
        {
            quiet_cpu += (b.1 - a.1) as f64 / hz;
            quiet_wall += (b.0 - a.0) as f64 / 1000.0;
        }
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let rss_max = samples.iter().map(|s| s.2).max().unwrap_or(0);
    println!(
        "  resident memory: {:.1} MiB max in the window, {:.1} MiB peak (goal < 100 MiB)",
        mib(rss_max),
        mib(hwm)
    );
    println!(
        "  daemon CPU: {:.1}% of a core over the window; {:.1}% between ticks, 0.5-0.95 s past each second outside the minute's burst (goal < 5%)",
        total_cpu * 100.0,
        quiet_cpu / quiet_wall.max(0.001) * 100.0
    );
    let stats = |l: &mut Vec<i64>| {
        l.sort_unstable();
        if l.is_empty() { None } else { Some((quantile(l, 0.5), quantile(l, 0.99), l[l.len() - 1])) }
    };
    println!("  latency from a tick's fire time, p50 / p99 / max (goal: p99 < 50 ms):");
    type Pick<'a> = Box<dyn Fn(&Row) -> bool + 'a>;
    let groups: [(&str, Pick<'_>); 2] = [
        (
            "@every 1s ticks outside the minute's burst (1k due at once)",
            Box::new(|r: &Row| r.job.starts_with("s-") && steady(r.due)),
        ),
        ("the minute's burst (every job due at once)", Box::new(|r: &Row| r.due % 60_000 == 0)),
    ];
    let mut p99s = Vec::new();
    for (name, pick) in &groups {
        let picked: Vec<&Row> = rows.iter().filter(|r| pick(r)).collect();
        let mut claim: Vec<i64> = picked.iter().map(|r| r.claimed - r.due).collect();
        let mut start: Vec<i64> = picked.iter().map(|r| r.started - r.due).collect();
        let (Some(c), Some(s)) = (stats(&mut claim), stats(&mut start)) else {
            p99s.push(None);
            continue;
        };
        println!(
            "    {name}: claim {} / {} / {} ms, start {} / {} / {} ms, over {} runs",
            c.0,
            c.1,
            c.2,
            s.0,
            s.1,
            s.2,
            picked.len()
        );
        p99s.push(Some(s.1));
    }
    for ((name, floor), daemon) in
        [("1s ticks", floor_second), ("the burst", floor_minute)].into_iter().zip(p99s)
    {
        let (p50, p99, max) =
            (quantile(floor, 0.5), quantile(floor, 0.99), floor.last().copied().unwrap_or(0));
        let ratio =
            daemon.map_or_else(|| "-".to_string(), |d| format!("{:.2}x", d as f64 / p99.max(1) as f64));
        println!(
            "    the floor for {name}: {} jobs started at once by a bare program: {p50} / {p99} / {max} ms; the daemon's start p99 against it: {ratio}",
            floor.len()
        );
    }
}
