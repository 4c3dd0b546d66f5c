//! The daemon workload (SPEC section 4): `chime run` in a child process with 10k jobs `@every 1m`
//! and 1k jobs `@every 1s` on one SQLite store, the jobs either HTTP requests to a small sink in
//! this process (the daemon's own cost per run) or processes (`true`, executed directly: what
//! forking a thousand processes a second costs on top). Measured from the outside over a window
//! that holds a minute boundary (the 10k burst): resident memory
//! (`/proc/PID/status`), the daemon's own CPU (`/proc/PID/stat` utime + stime, its children not
//! counted) over the whole window and in the quiet part of each second (from 0.5 s to 0.95 s past
//! it, when no tick is due), and claim latency: from a tick's due time (nominal, no jitter) to its
//! job's start, read back from the daemon's run history in the store.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// What each job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Jobs {
    /// An HTTP GET to a sink in the benchmark process.
    Http,
    /// A process: `true`.
    Process,
}

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

fn schedule(dir: &Path, plan: &Plan, jobs: Jobs) -> std::path::PathBuf {
    let action = match jobs {
        Jobs::Process => "command = [\"true\"]".to_string(),
        Jobs::Http => format!("http = {{ url = \"http://{}/\" }}", sink()),
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
pub(crate) fn run(quick: bool, jobs: Jobs) {
    let plan = if quick {
        Plan { minute_jobs: 1_000, second_jobs: 100, window: 8 }
    } else {
        Plan { minute_jobs: 10_000, second_jobs: 1_000, window: 70 }
    };
    let machine = Machine::detect();
    let dir = std::env::temp_dir().join(format!("chime-bench-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let file = schedule(&dir, &plan, jobs);
    eprintln!(
        "[daemon] {} jobs @every 1m + {} @every 1s on SQLite, {} s measured (CPU: {})",
        plan.minute_jobs, plan.second_jobs, plan.window, machine.cpu
    );
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let mut child = Command::new(exe)
        .arg("daemon-child")
        .arg(&file)
        .env("CHIME_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the daemon starts");
    let pid = child.id();
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
    // The window starts on a second boundary; in a full run it holds a minute boundary.
    let start_ms = (now_ms() / 1000 + 1) * 1000;
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

    let hz = 100.0; // USER_HZ: /proc reports CPU time in hundredths of a second on Linux.
    let (first, last) =
        (samples.first().copied().unwrap_or_default(), samples.last().copied().unwrap_or_default());
    let total_cpu = (last.1 - first.1) as f64 / hz / ((last.0 - first.0).max(1) as f64 / 1000.0);
    let (mut quiet_cpu, mut quiet_wall) = (0.0, 0.0);
    for second in (start_ms / 1000)..(end_ms / 1000) {
        let at = |offset: i64| samples.iter().min_by_key(|s| (s.0 - (second * 1000 + offset)).abs()).copied();
        if let (Some(a), Some(b)) = (at(500), at(950))
            && b.0 > a.0
        {
            quiet_cpu += (b.1 - a.1) as f64 / hz;
            quiet_wall += (b.0 - a.0) as f64 / 1000.0;
        }
    }
    let quiet = quiet_cpu / quiet_wall.max(0.001);
    let rss_max = samples.iter().map(|s| s.2).max().unwrap_or(0);

    let db = rusqlite::Connection::open(&store).expect("the store opens");
    let mut stmt = db
        .prepare(
            "SELECT job, json_extract(record, '$.due_ms'), json_extract(record, '$.claimed_ms'), started_ms
             FROM chime_daemon_runs WHERE started_ms >= ?1 AND started_ms < ?2",
        )
        .expect("the run history is readable");
    let rows: Vec<(String, i64, i64, i64)> = stmt
        .query_map([start_ms, end_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("runs")
        .filter_map(Result::ok)
        .collect();
    // (claimed - due) and (started - due), per kind of job.
    let latency = |prefix: &str, started: bool| {
        let mut l: Vec<i64> = rows
            .iter()
            .filter(|r| r.0.starts_with(prefix))
            .map(|r| if started { r.3 - r.1 } else { r.2 - r.1 })
            .collect();
        l.sort_unstable();
        l
    };
    let all = latency("", true);
    let expected = plan.second_jobs as u64 * plan.window + plan.minute_jobs as u64 * (plan.window / 60);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "daemon workload on {} ({} CPUs, Linux {}), {}",
        machine.cpu,
        machine.cpus,
        machine.kernel,
        if quick { "quick" } else { "full" }
    );
    let what = if jobs == Jobs::Http { "an HTTP GET to a local sink" } else { "`true` (a process)" };
    println!(
        "  jobs: {} @every 1m + {} @every 1s, {what} each, SQLite store; window {} s",
        plan.minute_jobs, plan.second_jobs, plan.window
    );
    println!("  runs started in the window: {} (about {expected} due)", all.len());
    println!(
        "  resident memory: {:.1} MiB max in the window, {:.1} MiB peak (goal < 100 MiB)",
        mib(rss_max),
        mib(hwm)
    );
    println!(
        "  daemon CPU: {:.1}% of a core over the window; {:.1}% between ticks (goal < 5%)",
        total_cpu * 100.0,
        quiet * 100.0
    );
    for (what, started) in
        [("claim latency (due -> claim granted)", false), ("start latency (due -> job started)", true)]
    {
        for (name, prefix) in [("all runs", ""), ("@every 1s", "s-"), ("@every 1m", "m-")] {
            let l = latency(prefix, started);
            if l.is_empty() {
                continue;
            }
            println!(
                "  {what}, {name}: p50 {} ms, p99 {} ms, max {} ms over {} runs (goal p99 < 50 ms)",
                quantile(&l, 0.5),
                quantile(&l, 0.99),
                l[l.len() - 1],
                l.len()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The child: the daemon itself, through the same entry point as the `chime` binary.
pub(crate) fn child(file: &Path) -> ! {
    let args =
        ["chime", "run", &file.display().to_string(), "--log-format", "json"].map(std::ffi::OsString::from);
    let status = chime_cli::main(args.to_vec());
    let _ = status;
    std::process::exit(0)
}
