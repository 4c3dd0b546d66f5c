//! Signals: SIGHUP reloads the file (a bad file is reported with its location and the running
//! schedule kept); SIGTERM waits for running jobs up to the shutdown timeout, stops the rest, and
//! exits 0.

mod common;

use std::time::Duration;

use common::{Daemon, TempDir, eventually, get_json, lines};
use rustix::process::Signal;

fn job(name: &str, log: &std::path::Path) -> String {
    format!(
        "[[job]]\nname = \"{name}\"\nschedule = \"@every 1s\"\ncommand = [\"sh\", \"-c\", \"echo {name} >> {}\"]\n",
        log.display()
    )
}

fn names(daemon: &Daemon) -> Vec<String> {
    let jobs = get_json(&daemon.url("/v1/jobs"));
    jobs["jobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn sighup_reloads_a_good_file_and_keeps_the_schedule_on_a_bad_one() {
    let dir = TempDir::new("reload");
    let log = dir.path("runs.log");
    let file = dir.write("s.toml", &(job("first", &log) + &job("kept", &log)));
    let mut daemon = Daemon::start(&dir, &file, &[]);
    assert_eq!(names(&daemon), ["first", "kept"]);

    std::fs::write(&file, job("kept", &log) + &job("second", &log)).unwrap();
    daemon.signal(Signal::HUP);
    daemon.wait_log(Duration::from_secs(10), |e| e["message"] == "SIGHUP: the schedule was reloaded");
    assert_eq!(names(&daemon), ["kept", "second"]);
    eventually(Duration::from_secs(5), "the new job running", || {
        lines(&log).iter().any(|l| l[0] == "second").then_some(())
    });
    let firsts = lines(&log).iter().filter(|l| l[0] == "first").count();

    std::fs::write(
        &file,
        job("kept", &log)
            + "[[job]]\nname = \"broken\"\nschedule = \"@every 1 fortnight\"\ncommand = \"x\"\n",
    )
    .unwrap();
    daemon.signal(Signal::HUP);
    let refused = daemon.wait_log(Duration::from_secs(10), |e| {
        e["message"].as_str().is_some_and(|m| m.starts_with("reload refused"))
    });
    let expected = format!(
        "reload refused, the running schedule is kept: {}:7:12: invalid schedule `@every 1 fortnight`: invalid duration `1 fortnight`: expected a number and a unit (ms, s, m, h, d), e.g. `30s` or `1h30m`",
        file.display()
    );
    assert_eq!(refused["message"], expected.as_str());
    assert_eq!(refused["level"], "ERROR");
    assert_eq!(names(&daemon), ["kept", "second"], "the running schedule is kept");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        lines(&log).iter().filter(|l| l[0] == "first").count(),
        firsts,
        "the removed job stays removed"
    );
    assert!(daemon.stop(Duration::from_secs(10)).success());
}

#[test]
fn sigterm_lets_a_running_job_finish_then_exits_0() {
    let dir = TempDir::new("graceful");
    let log = dir.path("runs.log");
    let file = dir.write(
        "s.toml",
        &format!(
            "[server]\nshutdown_timeout = \"10s\"\n[[job]]\nname = \"finishing\"\nschedule = \"@every 1h\"\n\
             command = [\"sh\", \"-c\", \"echo started >> {log}; sleep 1.5; echo finished >> {log}\"]\n",
            log = log.display()
        ),
    );
    let mut daemon = Daemon::start(&dir, &file, &[]);
    common::run_now(&daemon, "finishing");
    eventually(Duration::from_secs(5), "the job started", || {
        lines(&log).iter().any(|l| l[0] == "started").then_some(())
    });
    let status = daemon.stop(Duration::from_secs(15));
    assert!(status.success(), "{status}");
    assert!(lines(&log).iter().any(|l| l[0] == "finished"), "the running job was let finish");
    let done = daemon.events().into_iter().find(|e| e["message"] == "run finished").unwrap();
    assert_eq!(done["outcome"], "success");
}

#[test]
fn sigterm_stops_what_outlives_the_shutdown_timeout() {
    let dir = TempDir::new("shutdown-timeout");
    let file = dir.write(
        "s.toml",
        "[server]\nshutdown_timeout = \"1s\"\n[[job]]\nname = \"endless\"\nschedule = \"@every 1h\"\nkill_grace = \"1s\"\ncommand = \"sleep 60\"\n",
    );
    let mut daemon = Daemon::start(&dir, &file, &[]);
    common::run_now(&daemon, "endless");
    daemon.wait_log(Duration::from_secs(5), |e| e["message"] == "run started");
    let began = std::time::Instant::now();
    assert!(daemon.stop(Duration::from_secs(15)).success());
    assert!(began.elapsed() < Duration::from_secs(8), "{:?}", began.elapsed());
    let done = daemon.events().into_iter().find(|e| e["message"] == "run finished").unwrap();
    assert_eq!(
        (done["outcome"].as_str(), done["error"].as_str()),
        (Some("stopped"), Some("stopped: the daemon is shutting down"))
    );
}
