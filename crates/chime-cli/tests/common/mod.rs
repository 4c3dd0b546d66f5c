//! Helpers for the daemon's integration tests: real `chime` processes on real stores, a temporary
//! directory per test, the daemon's JSON log read back, and an HTTP client.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-token";

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "chime-cli-{name}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub mod browser;

pub fn chime() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chime"))
}

/// A running `chime run`, killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
    pub addr: String,
    pub replica: String,
}

impl Daemon {
    /// Starts `chime run FILE` with the given extra arguments, listening on a free port, with
    /// `CHIME_TOKEN` set; waits until it answers.
    pub fn start(dir: &TempDir, file: &Path, extra: &[&str]) -> Daemon {
        Self::start_with(dir, file, extra, &[("CHIME_TOKEN", TOKEN)])
    }

    pub fn start_with(dir: &TempDir, file: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let log = dir.path(&format!("daemon-{:08x}.log", rand::random::<u32>()));
        let child = chime()
            .arg("run")
            .arg(file)
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut daemon = Daemon { child, log, addr: String::new(), replica: String::new() };
        let started = daemon.wait_log(Duration::from_secs(30), |e| e["message"] == "chime is running");
        daemon.addr = started["listen"].as_str().unwrap().to_string();
        daemon.replica = started["replica"].as_str().unwrap().to_string();
        daemon
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The daemon's log lines so far, as JSON.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let Ok(file) = std::fs::File::open(&self.log) else { return vec![] };
        std::io::BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect()
    }

    /// Waits for a log line matching `pred`.
    pub fn wait_log(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.events().into_iter().find(&pred) {
                return found;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the daemon exited ({status}) before the expected log line:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no such log line within {timeout:?}:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, signal: rustix::process::Signal) {
        let _ = rustix::process::kill_process(rustix::process::Pid::from_child(&self.child), signal);
    }

    pub fn kill(&mut self) {
        self.signal(rustix::process::Signal::KILL);
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status (within `timeout`).
    pub fn stop(&mut self, timeout: Duration) -> ExitStatus {
        self.signal(rustix::process::Signal::TERM);
        self.wait(timeout)
    }

    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!(
                    "the daemon did not exit within {timeout:?}:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lines a job appended to a file (`echo ... >> file`), split on whitespace.
pub fn lines(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .filter(|l: &Vec<String>| !l.is_empty())
        .collect()
}

/// A blocking HTTP client for the API.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

pub fn get_json(url: &str) -> serde_json::Value {
    let response = http().get(url).send().unwrap();
    assert!(response.status().is_success(), "GET {url}: {}", response.status());
    response.json().unwrap()
}

/// The store URL for a backend name, or `None` (after a loud message) when its server is not
/// configured.
pub fn store_url(backend: &str, dir: &TempDir, test: &str) -> Option<String> {
    let var = match backend {
        "sqlite" => return Some(format!("sqlite://{}", dir.path("store.db").display())),
        "redis" => "CHIME_REDIS_URL",
        "postgres" => "CHIME_POSTGRES_URL",
        _ => unreachable!(),
    };
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED {test} on {backend}: {var} is not set (.ci/run starts a server and sets it)");
            None
        }
    }
}

/// A job name unique to this test run (Redis and PostgreSQL are shared between runs).
pub fn unique(name: &str) -> String {
    format!("{name}-{:08x}", rand::random::<u32>())
}

/// Whether process `pid` is alive (not gone, not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => false,
    }
}

/// Starts a manual run through the API; returns its run id.
pub fn run_now(daemon: &Daemon, job: &str) -> String {
    let response = http()
        .post(daemon.url(&format!("/v1/jobs/{job}/run")))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let body: serde_json::Value = response.json().unwrap();
    body["run_id"].as_str().unwrap().to_string()
}

/// Waits for a run to finish and returns its record.
pub fn finished_run(daemon: &Daemon, job: &str, run_id: &str, timeout: Duration) -> serde_json::Value {
    eventually(timeout, &format!("run {run_id} of {job} to finish"), || {
        let runs = get_json(&daemon.url(&format!("/v1/jobs/{job}/runs?limit=100")));
        runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["run_id"] == run_id && r["outcome"] != "running")
            .cloned()
    })
}

/// A job's finished runs, oldest first.
pub fn finished_runs(daemon: &Daemon, job: &str) -> Vec<serde_json::Value> {
    let runs = get_json(&daemon.url(&format!("/v1/jobs/{job}/runs?limit=1000")));
    let mut runs: Vec<serde_json::Value> =
        runs["runs"].as_array().unwrap().iter().filter(|r| r["outcome"] != "running").cloned().collect();
    runs.reverse();
    runs
}

pub type Requests = Arc<Mutex<Vec<(String, Vec<(String, String)>, String)>>>;

/// A small HTTP server for HTTP jobs and timers: answers `/ok` with 200 and a body, anything else with 500; records every request.
pub fn server() -> (String, Requests) {
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
