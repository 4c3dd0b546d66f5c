//! HTTP jobs against a small server in the test: the fence, the nominal tick and the idempotency
//! key arrive as headers with the job's own headers and body; a status outside `expect` fails the
//! run; the response is kept as the run's output.

mod common;

use std::time::Duration;

use common::{Daemon, TempDir, eventually, finished_run, run_now, server};

#[test]
fn http_jobs_send_the_fence_and_tick_and_check_the_status() {
    let (addr, seen) = server();
    let dir = TempDir::new("http");
    let file = dir.write(
        "s.toml",
        &format!(
            "[[job]]\nname = \"warm\"\nschedule = \"@every 1s\"\n\
             http = {{ method = \"POST\", url = \"http://{addr}/ok\", expect = [200, 204], headers = {{ X-Team = \"ops\" }}, body = \"payload\" }}\n\
             [[job]]\nname = \"broken\"\nschedule = \"@every 1h\"\nhttp = {{ url = \"http://{addr}/fail\" }}\n"
        ),
    );
    let daemon = Daemon::start(&dir, &file, &[]);
    let request = eventually(Duration::from_secs(10), "a request from the warm job", || {
        seen.lock().unwrap().iter().find(|(line, _, _)| line.starts_with("POST /ok")).cloned()
    });
    let header =
        |name: &str| request.1.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let tick = header("chime-scheduled-at");
    let tick_ms = tick.parse::<jiff::Timestamp>().unwrap().as_millisecond();
    assert_eq!(tick_ms % 1000, 0, "the nominal tick, on the 1 s grid: {tick}");
    assert_eq!(header("idempotency-key"), format!("warm/{tick}"));
    assert!(header("chime-fence").parse::<u64>().unwrap() >= 1);
    assert!(!header("chime-run-id").is_empty() && !header("chime-deadline").is_empty());
    assert_eq!((header("x-team").as_str(), request.2.as_str()), ("ops", "payload"));
    let last = eventually(Duration::from_secs(10), "a successful warm run", || {
        let runs = common::get_json(&daemon.url("/v1/jobs/warm/runs"));
        runs["runs"].as_array().unwrap().iter().find(|r| r["outcome"] == "success").cloned()
    });
    assert_eq!(last["http_status"], 200);
    assert_eq!(last["output"], "HTTP 200 OK\nwarmed\n");

    let run = run_now(&daemon, "broken");
    let record = finished_run(&daemon, "broken", &run, Duration::from_secs(10));
    assert_eq!(
        (record["outcome"].as_str(), record["http_status"].as_u64()),
        (Some("failure"), Some(500)),
        "{record}"
    );
    assert_eq!(record["error"], "status 500 is not one of the expected");
    let manual =
        seen.lock().unwrap().iter().find(|(line, _, _)| line.starts_with("GET /fail")).cloned().unwrap();
    let key = manual.1.iter().find(|(n, _)| n == "idempotency-key").unwrap().1.clone();
    assert_eq!(key, format!("broken/manual/{run}"));
}
