//! HTTP jobs against a small server in the test: the fence, the nominal tick and the idempotency
//! key arrive as headers with the job's own headers and body; a status outside `expect` fails the
//! run; the response is kept as the run's output.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Daemon, TempDir, eventually, finished_run, run_now};

type Requests = Arc<Mutex<Vec<(String, Vec<(String, String)>, String)>>>;

/// Answers `/ok` with 200 and a body, anything else with 500; records every request.
fn server() -> (String, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen: Requests = Arc::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut headers = Vec::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let (name, value) = line.trim_end().split_once(": ").unwrap();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap();
                }
                headers.push((name.to_ascii_lowercase(), value.to_string()));
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
            record.lock().unwrap().push((
                request_line.trim_end().to_string(),
                headers,
                String::from_utf8_lossy(&body).into(),
            ));
            let mut stream = stream;
            let reply = if path == "/ok" {
                "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nwarmed"
            } else {
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\nboom"
            };
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (addr, seen)
}

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
