//! What the network-fault tests (`cluster_faults.rs`, `durable_faults.rs`) share: the faults, the
//! stores behind a [`Proxy`](super::proxy::Proxy) (PostgreSQL from `CHIME_POSTGRES_URL`, restarted
//! with `CHIME_POSTGRES_URL_RESTART`; Redis as a `redis-server` of the test's own, with
//! `appendfsync always`, so a restart loses nothing acknowledged), and a fenced sink.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The network faults, each injected between one scheduler and the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No bytes either way, no reset, for longer than the lease.
    BlackHole,
    /// The connection reset after a claim reached the store, before its reply came back.
    ResetMidClaim,
    /// The connection reset after a renewal reached the store, before its reply came back.
    ResetMidRenewal,
    /// Latency near the lease on every chunk, one way.
    Latency,
    /// The store restarted.
    StoreRestart,
    /// The scheduler's wall clock half a lease ahead.
    Skew,
}

/// Tests of one binary run one at a time: they restart shared servers and measure time.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Says loudly that a test did not run, and why (libtest would capture `eprintln!`).
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n!!!!! SKIPPED {test}: {why} !!!!!\n");
}

/// A store server the test talks to through proxies.
pub enum Server {
    Postgres { url: String, upstream: SocketAddr, restart: Option<String> },
    Redis { own: OwnRedis },
}

impl Server {
    /// PostgreSQL from `CHIME_POSTGRES_URL`, or `None` after a loud message.
    pub async fn postgres(test: &str) -> Option<Server> {
        let Ok(url) = std::env::var("CHIME_POSTGRES_URL") else {
            skip(test, "CHIME_POSTGRES_URL is not set, so PostgreSQL was NOT tested (.ci/run starts one)");
            return None;
        };
        let upstream = resolve(&url).await;
        Some(Server::Postgres { url, upstream, restart: std::env::var("CHIME_POSTGRES_URL_RESTART").ok() })
    }

    /// A `redis-server` of the test's own, or `None` after a loud message.
    pub async fn redis(test: &str) -> Option<Server> {
        match OwnRedis::start() {
            Some(own) => Some(Server::Redis { own }),
            None => {
                skip(test, "`redis-server` is not on PATH, so Redis was NOT tested (.ci/run installs it)");
                None
            }
        }
    }

    pub fn upstream(&self) -> SocketAddr {
        match self {
            Server::Postgres { upstream, .. } => *upstream,
            Server::Redis { own } => own.addr,
        }
    }

    /// The server's URL with its host and port replaced by `via` (a proxy).
    pub fn url_via(&self, via: SocketAddr) -> String {
        match self {
            Server::Postgres { url, .. } => replace_authority(url, via),
            Server::Redis { .. } => format!("redis://{via}/"),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Server::Postgres { .. } => "postgres",
            Server::Redis { .. } => "redis",
        }
    }

    /// Whether a restart can be done here.
    pub fn can_restart(&self) -> bool {
        !matches!(self, Server::Postgres { restart: None, .. })
    }

    /// Restarts the server (blocking until it answers again).
    pub fn restart(&mut self) {
        match self {
            Server::Postgres { restart, .. } => {
                let command = restart.as_deref().expect("can_restart");
                let status = Command::new("sh").arg("-c").arg(command).status().unwrap();
                assert!(status.success(), "restarting PostgreSQL failed: {command}");
            }
            Server::Redis { own } => own.restart(),
        }
    }
}

async fn resolve(url: &str) -> SocketAddr {
    let authority = authority(url);
    let host_port = authority.rsplit('@').next().unwrap();
    let host_port = if host_port.contains(':') { host_port.to_string() } else { format!("{host_port}:5432") };
    tokio::net::lookup_host(host_port).await.unwrap().next().unwrap()
}

fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap()
}

fn replace_authority(url: &str, via: SocketAddr) -> String {
    let authority = authority(url);
    let replaced = match authority.rsplit_once('@') {
        Some((user, _)) => format!("{user}@{via}"),
        None => via.to_string(),
    };
    url.replacen(authority, &replaced, 1)
}

/// A `redis-server` on a free loopback port, with AOF `appendfsync always`, in a directory of its own.
pub struct OwnRedis {
    pub addr: SocketAddr,
    dir: std::path::PathBuf,
    child: Child,
}

impl OwnRedis {
    fn start() -> Option<OwnRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let dir = std::env::temp_dir().join(format!("chime-faults-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = spawn_redis(&dir, port)?;
        let own = OwnRedis { addr, dir, child };
        own.wait_ready();
        Some(own)
    }

    fn wait_ready(&self) {
        for _ in 0..200 {
            if std::net::TcpStream::connect(self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not start on {}", self.addr);
    }

    /// Kills the server with SIGKILL (a crash: only what the AOF has survives) and starts it again.
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_redis(&self.dir, self.addr.port()).expect("redis-server starts again");
        self.wait_ready();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn_redis(dir: &std::path::Path, port: u16) -> Option<Child> {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
        .args(["--appendfsync", "always", "--daemonize", "no", "--logfile", ""])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// A downstream system that refuses stale writers: per key, a write is accepted only with a fence
/// higher than every one it accepted before.
#[derive(Clone, Default)]
pub struct Sink {
    highest: Arc<Mutex<HashMap<String, u64>>>,
}

impl Sink {
    pub fn write(&self, key: &str, fence: u64) -> bool {
        let mut highest = self.highest.lock().unwrap();
        let top = highest.entry(key.to_string()).or_insert(0);
        if fence > *top {
            *top = fence;
            true
        } else {
            false
        }
    }
}

/// Holds runs of the members it names (a run that outlives its lease becomes a stale writer).
#[derive(Clone, Default)]
pub struct Hold(Arc<Mutex<Vec<String>>>);

/// Releases every held run when dropped, also when a test fails: a held blocking thread would keep
/// the test's runtime from shutting down.
pub struct ReleaseOnDrop(pub Hold);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

impl Hold {
    pub fn set(&self, member: &str, on: bool) {
        let mut held = self.0.lock().unwrap();
        held.retain(|m| m != member);
        if on {
            held.push(member.to_string());
        }
    }

    /// Blocks (a blocking thread) while `member` is held.
    pub fn wait(&self, member: &str) {
        while self.0.lock().unwrap().iter().any(|m| m == member) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub async fn wait_async(&self, member: &str) {
        while self.0.lock().unwrap().iter().any(|m| m == member) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Waits (polling every 5 ms) until `ready` holds, or fails after `timeout` with `what`.
pub async fn until(timeout: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
