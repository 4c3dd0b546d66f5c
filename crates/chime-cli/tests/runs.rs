//! What a run gets and how it ends: its environment and output, a timeout that kills the job's
//! whole process group, a lease lost mid-run (fail closed), and the four overlap policies.

mod common;

use std::time::Duration;

use common::{Daemon, TempDir, alive, eventually, finished_run, finished_runs, lines, run_now};

#[test]
fn a_timed_out_job_is_killed_with_its_children() {
    let dir = TempDir::new("timeout");
    let (main, child) = (dir.path("main.pid"), dir.path("child.pid"));
    let file = dir.write(
        "s.toml",
        &format!(
            "[[job]]\nname = \"sleeper\"\nschedule = \"@every 1h\"\ntimeout = \"1s\"\nkill_grace = \"1s\"\n\
             command = [\"sh\", \"-c\", \"echo $$ > {main}; sleep 60 & echo $! > {child}; sleep 60\"]\n",
            main = main.display(),
            child = child.display()
        ),
    );
    let daemon = Daemon::start(&dir, &file, &[]);
    let run = run_now(&daemon, "sleeper");
    let pid = |p: &std::path::Path| {
        eventually(Duration::from_secs(5), "a pid file", || {
            std::fs::read_to_string(p).ok()?.trim().parse::<i32>().ok()
        })
    };
    let (main_pid, child_pid) = (pid(&main), pid(&child));
    assert!(alive(main_pid) && alive(child_pid));
    let record = finished_run(&daemon, "sleeper", &run, Duration::from_secs(10));
    assert_eq!(record["outcome"], "timeout", "{record}");
    assert_eq!(record["error"], "timed out after 1s");
    let took = record["duration_ms"].as_u64().unwrap();
    assert!((1000..4000).contains(&took), "{took} ms");
    eventually(Duration::from_secs(3), "both processes gone", || {
        (!alive(main_pid) && !alive(child_pid)).then_some(())
    });
}

#[test]
fn a_command_dies_with_the_replica_that_started_it() {
    // A SIGKILLed replica cannot stop its runs: its command must not run on beside the run that
    // another replica starts for the next tick, so it goes with the replica.
    let dir = TempDir::new("orphan");
    let (pid_file, log) = (dir.path("job.pid"), dir.path("job.log"));
    let file = dir.write(
        "s.toml",
        &format!(
            "[[job]]\nname = \"long\"\nschedule = \"@every 1h\"\n\
             command = [\"sh\", \"-c\", \"echo $$ > {pid}; echo $PPID >> {log}; exec sleep 60\"]\n",
            pid = pid_file.display(),
            log = log.display()
        ),
    );
    let mut daemon = Daemon::start(&dir, &file, &[]);
    run_now(&daemon, "long");
    let pid = eventually(Duration::from_secs(5), "the job's pid file", || {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse::<i32>().ok()
    });
    assert_eq!(lines(&log)[0][0], daemon.pid().to_string(), "the daemon is the command's parent");
    assert!(alive(pid));
    daemon.kill();
    eventually(Duration::from_secs(5), "the command gone with its replica", || (!alive(pid)).then_some(()));
}

#[test]
fn a_run_gets_its_environment_and_its_output_is_kept_and_logged() {
    let dir = TempDir::new("env");
    let file = dir.write(
        "s.toml",
        "[[job]]\nname = \"env\"\nschedule = \"@every 1h\"\ntimeout = \"90s\"\nenv = { GREETING = \"hi\" }\n\
         command = \"echo $CHIME_JOB $CHIME_TICK $CHIME_FENCE $CHIME_RUN_ID $CHIME_DEADLINE $GREETING; echo oops >&2; exit 3\"\n",
    );
    let mut daemon = Daemon::start(&dir, &file, &[]);
    let run = run_now(&daemon, "env");
    let record = finished_run(&daemon, "env", &run, Duration::from_secs(10));
    assert_eq!(
        (record["outcome"].as_str(), record["exit_code"].as_i64()),
        (Some("failure"), Some(3)),
        "{record}"
    );
    assert_eq!(record["error"], "exited with status 3");
    let output = record["output"].as_str().unwrap();
    // stdout and stderr come through two pipes, read side by side: the stderr line may be first.
    let stdout_line = output.lines().find(|l| l.starts_with("env ")).unwrap_or_else(|| panic!("{output:?}"));
    let words: Vec<&str> = stdout_line.split(' ').collect();
    let fence = record["fence"].as_u64().unwrap().to_string();
    assert_eq!(&words[..4], ["env", record["tick"].as_str().unwrap(), fence.as_str(), run.as_str()]);
    let started: jiff::Timestamp =
        jiff::Timestamp::from_millisecond(record["started_ms"].as_i64().unwrap()).unwrap();
    let deadline: jiff::Timestamp = words[4].parse().unwrap();
    let ahead = started.duration_until(deadline).as_secs_f64();
    assert!((89.0..=90.5).contains(&ahead), "CHIME_DEADLINE is the start plus the timeout: {ahead}");
    assert_eq!(words[5], "hi");
    assert!(output.contains("oops\n"), "stderr is kept too: {output:?}");
    let line = daemon.wait_log(Duration::from_secs(5), |e| e["message"] == "oops");
    assert_eq!(
        (line["job"].as_str(), line["stream"].as_str(), line["fence"].as_u64()),
        (Some("env"), Some("stderr"), record["fence"].as_u64())
    );
    assert_eq!(line["tick"], record["tick"]);
}

#[test]
fn a_lost_lease_stops_the_run() {
    let dir = TempDir::new("lease-lost");
    let pidfile = dir.path("job.pid");
    let file = dir.write(
        "s.toml",
        &format!(
            "[store]\nurl = \"sqlite://store.db\"\n[[job]]\nname = \"long\"\nschedule = \"@every 1h\"\nlease = \"1500ms\"\nkill_grace = \"1s\"\n\
             command = [\"sh\", \"-c\", \"echo $$ > {}; sleep 30\"]\n",
            pidfile.display()
        ),
    );
    let daemon = Daemon::start(&dir, &file, &[]);
    let run = run_now(&daemon, "long");
    let pid = eventually(Duration::from_secs(5), "the job's pid", || {
        std::fs::read_to_string(&pidfile).ok()?.trim().parse::<i32>().ok()
    });
    // Another member takes the key over, as after a partition: the next renewal finds it lost.
    let db = rusqlite::Connection::open(dir.path("store.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let changed = db
        .execute("UPDATE chime_claims SET owner = 'thief', fence = fence + 1, lease_until_ms = lease_until_ms + 60000 WHERE key = 'long'", [])
        .unwrap();
    assert_eq!(changed, 1);
    let record = finished_run(&daemon, "long", &run, Duration::from_secs(10));
    assert_eq!(record["outcome"], "lease_lost", "{record}");
    assert_eq!(record["error"], "the lease was lost to another replica");
    eventually(Duration::from_secs(3), "the job stopped", || (!alive(pid)).then_some(()));
}

/// (start, end) of each run in milliseconds, from a job's own log of `start|end TICK MS` lines.
fn intervals(path: &std::path::Path) -> Vec<(String, i64, Option<i64>)> {
    let mut runs: Vec<(String, i64, Option<i64>)> = Vec::new();
    for line in lines(path) {
        let ms: i64 = line[2].parse().unwrap();
        match line[0].as_str() {
            "start" => runs.push((line[1].clone(), ms, None)),
            _ => {
                if let Some(run) = runs.iter_mut().find(|r| r.0 == line[1]) {
                    run.2 = Some(ms);
                }
            }
        }
    }
    runs
}

fn overlapping(runs: &[(String, i64, Option<i64>)]) -> bool {
    runs.windows(2).any(|w| w[0].2.is_none_or(|end| end > w[1].1))
}

#[test]
fn overlap_policies() {
    let dir = TempDir::new("overlap");
    let mut toml = String::from("[defaults]\nlease = \"2s\"\nkill_grace = \"500ms\"\n");
    for policy in ["skip", "allow", "replace", "queue"] {
        toml.push_str(&format!(
            "[[job]]\nname = \"{policy}\"\nschedule = \"@every 1s\"\noverlap = \"{policy}\"\n\
             command = [\"sh\", \"-c\", \"echo start $CHIME_TICK $(date +%s%3N) >> {log}; sleep 2.2; echo end $CHIME_TICK $(date +%s%3N) >> {log}\"]\n",
            log = dir.path(&format!("{policy}.log")).display()
        ));
    }
    let file = dir.write("s.toml", &toml);
    let mut daemon = Daemon::start(&dir, &file, &[]);
    std::thread::sleep(Duration::from_secs(8));
    assert!(daemon.stop(Duration::from_secs(30)).success());

    let skip = intervals(&dir.path("skip.log"));
    assert!(skip.len() >= 2 && !overlapping(&skip), "skip: {skip:?}");
    assert!(skip.len() <= 4, "skip: at most one run per 2.2 s: {skip:?}");

    let allow = intervals(&dir.path("allow.log"));
    assert!(allow.len() >= 4 && overlapping(&allow), "allow: runs overlap: {allow:?}");

    let replace = intervals(&dir.path("replace.log"));
    assert!(replace.len() >= 4, "replace: a run every tick: {replace:?}");
    let replaced = replace.iter().filter(|r| r.2.is_none()).count();
    assert!(replaced >= 2, "replace: earlier runs were stopped before they ended: {replace:?}");

    let queue = intervals(&dir.path("queue.log"));
    assert!(queue.len() >= 3 && !overlapping(&queue), "queue: one at a time: {queue:?}");
    let ticks: Vec<i64> =
        queue.iter().map(|r| r.0.parse::<jiff::Timestamp>().unwrap().as_millisecond()).collect();
    assert!(ticks.windows(2).all(|w| w[1] - w[0] == 1000), "queue: every tick, in order: {ticks:?}");
    for w in queue.windows(2) {
        assert!(
            w[1].1 - w[0].2.unwrap() < 1500,
            "queue: the next starts as soon as the last ends: {queue:?}"
        );
    }
    let _ = finished_runs;
}
