//! A fault-injecting TCP proxy on loopback, between a scheduler and its store: it forwards bytes
//! both ways and, on command, black-holes every connection (holds all bytes, sends no reset, as a
//! partition does; the held bytes go through when it heals, as TCP's retransmissions would), adds
//! latency to every chunk, resets every connection, or resets a connection just after a request that
//! matches a predicate reached the server, dropping its reply (a reset "mid-claim" or "mid-renewal").
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

type Matcher = Box<dyn Fn(&[u8]) -> bool + Send + Sync>;

struct State {
    upstream: SocketAddr,
    /// Bytes flow only while this is false.
    black_hole: watch::Sender<bool>,
    latency_ms: AtomicU64,
    /// Bumped to reset every connection open at that moment.
    reset_all: watch::Sender<u64>,
    /// The next client request this matches gets its connection reset before the reply.
    reset_after: Mutex<Option<Matcher>>,
    /// How many connections were reset after a matching request.
    resets_after: AtomicUsize,
}

/// The proxy: listens on `127.0.0.1:<port>` and forwards to `upstream`. Dropping it stops accepting.
pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.state.reset_all.send_modify(|n| *n += 1);
    }
}

impl Proxy {
    /// A proxy to `upstream` (a `host:port` on loopback).
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream,
            black_hole: watch::channel(false).0,
            latency_ms: AtomicU64::new(0),
            reset_all: watch::channel(0).0,
            reset_after: Mutex::new(None),
            resets_after: AtomicUsize::new(0),
        });
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(connection(shared.clone(), client));
            }
        });
        Proxy { addr, state, accept }
    }

    /// Holds every byte (in both directions, on every connection, new ones included) while `on`.
    pub fn black_hole(&self, on: bool) {
        self.state.black_hole.send_replace(on);
    }

    /// Delays every chunk by `latency`, one way.
    pub fn latency(&self, latency: Duration) {
        self.state.latency_ms.store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    /// Resets (RST) every open connection now.
    pub fn reset_all(&self) {
        self.state.reset_all.send_modify(|n| *n += 1);
    }

    /// Resets the connection of the next client request that `matches`, once it reached the server
    /// and before its reply reaches the client.
    pub fn reset_after(&self, matches: impl Fn(&[u8]) -> bool + Send + Sync + 'static) {
        *self.state.reset_after.lock().unwrap() = Some(Box::new(matches));
    }

    /// Connections reset by [`reset_after`](Self::reset_after) so far.
    pub fn resets_after(&self) -> usize {
        self.state.resets_after.load(Ordering::SeqCst)
    }
}

async fn connection(state: Arc<State>, client: TcpStream) {
    let Ok(server) = TcpStream::connect(state.upstream).await else { return };
    // Dropped sockets send RST, not FIN: resets are resets.
    let _ = client.set_zero_linger();
    let _ = server.set_zero_linger();
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let (reset, _) = watch::channel(false);
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let up = pump(state.clone(), client_read, server_write, reset.clone(), armed.clone(), true);
    let down = pump(state.clone(), server_read, client_write, reset.clone(), armed, false);
    let mut all = state.reset_all.subscribe();
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = all.changed() => {}
        _ = async {
            let mut reset = reset.subscribe();
            let _ = reset.wait_for(|r| *r).await;
        } => {}
    }
    // Every half is dropped here: both sockets close with RST.
}

async fn pump(
    state: Arc<State>,
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    reset: watch::Sender<bool>,
    armed: Arc<std::sync::atomic::AtomicBool>,
    upstream: bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if upstream {
            let mut matcher = state.reset_after.lock().unwrap();
            if matcher.as_ref().is_some_and(|m| m(chunk)) {
                *matcher = None;
                armed.store(true, Ordering::SeqCst);
            }
        } else if armed.load(Ordering::SeqCst) {
            // The reply to the matched request: drop it and reset the connection.
            state.resets_after.fetch_add(1, Ordering::SeqCst);
            reset.send_replace(true);
            return;
        }
        let mut hole = state.black_hole.subscribe();
        let _ = hole.wait_for(|on| !*on).await;
        let latency = state.latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        if to.write_all(chunk).await.is_err() {
            return;
        }
    }
}

/// The commands in `chunk`, each as its arguments, as far as they parse (RESP arrays of bulk strings:
/// `*N\r\n$len\r\narg\r\n...`; a client may send several in one chunk).
pub fn resp_commands(chunk: &[u8]) -> Vec<Vec<&[u8]>> {
    fn line(rest: &mut &[u8]) -> Option<usize> {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let n = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
        *rest = &rest[end + 2..];
        Some(n)
    }
    fn command<'a>(rest: &mut &'a [u8]) -> Option<Vec<&'a [u8]>> {
        *rest = rest.strip_prefix(b"*")?;
        let count = line(rest)?;
        let mut args = Vec::with_capacity(count);
        for _ in 0..count {
            *rest = rest.strip_prefix(b"$")?;
            let len = line(rest)?;
            args.push(rest.get(..len)?);
            *rest = rest.get(len + 2..)?;
        }
        Some(args)
    }
    let mut rest = chunk;
    let mut commands = Vec::new();
    while let Some(args) = command(&mut rest) {
        commands.push(args);
    }
    commands
}

/// Whether `chunk` contains `needle`.
pub fn contains(chunk: &[u8], needle: &[u8]) -> bool {
    chunk.windows(needle.len()).any(|w| w == needle)
}
