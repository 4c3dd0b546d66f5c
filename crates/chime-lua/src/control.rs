//! Control sockets: how Knot's `map(expr)` reaches every worker of a run. Each worker of a
//! `--workers` run listens on `worker-<id>.sock` in the run's directory. A request is one line:
//! `eval <expr>` (the worker's Lua loop evaluates it and answers with the serialized result) or
//! `?state` (answered here: `running`, or `done` once the worker's own loop has ended and it only
//! lingers to answer its siblings' `map`s).

use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mlua::{Lua, Table, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;

use crate::core::Core;
use crate::mailbox::Mailbox;

type Requests = Arc<Mutex<HashMap<u64, (String, oneshot::Sender<String>)>>>;

#[derive(Default)]
struct Server {
    requests: Requests,
    done: Arc<AtomicBool>,
    next: Arc<Mutex<u64>>,
}

fn socket(dir: &std::path::Path, worker: u32) -> PathBuf {
    dir.join(format!("worker-{worker}.sock"))
}

async fn serve(
    stream: UnixStream,
    slot: u64,
    server: (Requests, Arc<AtomicBool>, Arc<Mutex<u64>>),
    mailbox: Arc<Mailbox>,
) {
    let (requests, done, next) = server;
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    if BufReader::new(read).read_line(&mut line).await.is_err() {
        return;
    }
    let line = line.trim_end_matches('\n');
    let reply = if line == "?state" {
        if done.load(Ordering::Acquire) { "done".to_string() } else { "running".to_string() }
    } else if let Some(expr) = line.strip_prefix("eval ") {
        let (tx, rx) = oneshot::channel();
        let rid = {
            let mut next = next.lock().unwrap_or_else(PoisonError::into_inner);
            *next += 1;
            *next
        };
        requests.lock().unwrap_or_else(PoisonError::into_inner).insert(rid, (expr.to_string(), tx));
        mailbox.post(slot, rid);
        rx.await.unwrap_or_else(|_| "false, \"the worker ended before answering\"".to_string())
    } else {
        "false, \"bad request\"".to_string()
    };
    let _ = write.write_all(reply.as_bytes()).await;
    let _ = write.shutdown().await;
}

/// Sends one request to `worker`; `Err` when it cannot be reached (a dead worker, or none).
async fn ask(path: PathBuf, line: String) -> Result<String, String> {
    // A sibling whose socket is not there yet has not got that far in its start (a worker's socket
    // stays after it ends, so a gone worker is refused at once, not waited for): on a loaded
    // machine a start can take seconds, so both a `map` and a `?state` give it half a minute.
    let patience = Duration::from_secs(30);
    let mut waited = Duration::ZERO;
    let mut stream = loop {
        match UnixStream::connect(&path).await {
            Ok(s) => break s,
            Err(e) if !path.exists() && waited < patience => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
                waited += Duration::from_millis(20);
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    };
    stream.write_all(format!("{line}\n").as_bytes()).await.map_err(|e| e.to_string())?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.map_err(|e| e.to_string())?;
    Ok(reply)
}

/// Adds the control-socket functions to the private `core` table.
pub(crate) fn install(core: &Rc<Core>, lua: &Lua, t: &Table) -> mlua::Result<()> {
    let server = Rc::new(Server::default());
    let shared: Arc<Mutex<HashMap<u64, Result<String, String>>>> = Arc::default();

    // control_start(evaluator) -> true | nil, err: listen, in a --workers run (false otherwise)
    let (c, s) = (core.clone(), server.clone());
    t.set(
        "control_start",
        lua.create_function(move |_, value: Value| {
            let Some(dir) = c.node.config.run_dir.clone() else { return Ok((Some(false), None)) };
            let path = socket(&dir, c.node.config.worker_id);
            let _ = std::fs::remove_file(&path);
            let listener = {
                let _guard = c.rt.enter();
                UnixListener::bind(&path)
            };
            let listener = match listener {
                Ok(l) => l,
                Err(e) => return Ok((None, Some(format!("cannot listen on {}: {e}", path.display())))),
            };
            let slot = c.target(value, false)?;
            let state = (s.requests.clone(), s.done.clone(), s.next.clone());
            let mailbox = c.mailbox.clone();
            c.rt.spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(stream, slot, state.clone(), mailbox.clone()));
                }
            });
            Ok((Some(true), None))
        })?,
    )?;
    let s = server.clone();
    t.set(
        "control_request",
        lua.create_function(move |_, rid: f64| {
            Ok(s.requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&(rid as u64))
                .map(|r| r.0.clone()))
        })?,
    )?;
    let s = server.clone();
    t.set(
        "control_reply",
        lua.create_function(move |_, (rid, text): (f64, String)| {
            let entry = s.requests.lock().unwrap_or_else(PoisonError::into_inner).remove(&(rid as u64));
            if let Some((_, tx)) = entry {
                let _ = tx.send(text);
            }
            Ok(())
        })?,
    )?;
    let s = server;
    t.set(
        "control_done",
        lua.create_function(move |_, ()| {
            s.done.store(true, Ordering::Release);
            Ok(())
        })?,
    )?;

    // control_ask(target, worker, line): posts to `target` when the reply (or the failure) is in
    let (c, sh) = (core.clone(), shared.clone());
    t.set(
        "control_ask",
        lua.create_function(move |_, (target, worker, line): (f64, u32, String)| {
            let Some(dir) = c.node.config.run_dir.clone() else {
                return Err(mlua::Error::runtime("not a --workers run"));
            };
            let (mailbox, sh, target) = (c.mailbox.clone(), sh.clone(), target as u64);
            c.rt.spawn(async move {
                let reply = ask(socket(&dir, worker), line).await;
                sh.lock().unwrap_or_else(PoisonError::into_inner).insert(target, reply);
                mailbox.post(target, 1);
            });
            Ok(())
        })?,
    )?;
    t.set(
        "control_result",
        lua.create_function(move |_, target: f64| {
            match shared.lock().unwrap_or_else(PoisonError::into_inner).remove(&(target as u64)) {
                Some(Ok(text)) => Ok((Some(true), Some(text))),
                Some(Err(e)) => Ok((Some(false), Some(e))),
                None => Ok((None, None)),
            }
        })?,
    )?;
    Ok(())
}
