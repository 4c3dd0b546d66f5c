//! `chime-lua --workers N`: the parent process. It makes the run's directory, starts N workers (this
//! same binary, with the same arguments, told their id through the environment), forwards the
//! signals it gets to them, restarts nothing, and exits with the first non-zero status a worker
//! exits with (or 0) once all have ended. Workers die with their parent (`PR_SET_PDEATHSIG`), so a
//! parent killed with SIGKILL leaves none behind.

use std::process::ExitCode;

use rustix::process::{Pid, Signal, kill_process};
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

/// The environment a worker gets: its id, the number of workers, the run's directory.
pub(crate) const WORKER_ID: &str = "CHIME_LUA_WORKER_ID";
pub(crate) const WORKERS: &str = "CHIME_LUA_WORKERS";
pub(crate) const RUN_DIR: &str = "CHIME_LUA_RUN_DIR";

/// The signals forwarded to the workers.
const FORWARDED: [(i32, Signal); 6] = [
    (1, Signal::HUP),
    (2, Signal::INT),
    (3, Signal::QUIT),
    (15, Signal::TERM),
    (10, Signal::USR1),
    (12, Signal::USR2),
];

/// In a worker: make sure it dies with its parent.
pub(crate) fn bind_to_parent() {
    let parent = rustix::process::getppid();
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    // The parent may have died before the death signal was set.
    if rustix::process::getppid() != parent {
        std::process::exit(1);
    }
}

/// Runs `workers` workers of this command line; returns the run's exit code.
pub(crate) fn supervise(workers: u32) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chime-lua: cannot start a tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = match tempfile::Builder::new().prefix("chime-lua-run-").tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("chime-lua: cannot make the run's directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(run(workers, dir.path()));
    let _ = dir.close();
    code
}

async fn run(workers: u32, dir: &std::path::Path) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("chime-lua: cannot find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut children: Vec<Option<Child>> = Vec::new();
    let mut pids = Vec::new();
    for id in 0..workers {
        let mut cmd = Command::new(&exe);
        cmd.args(std::env::args_os().skip(1))
            .env(WORKER_ID, id.to_string())
            .env(WORKERS, workers.to_string())
            .env(RUN_DIR, dir)
            .kill_on_drop(true)
            // the workers get signals from this process only (a terminal's ^C reaches it alone)
            .process_group(0);
        match cmd.spawn() {
            Ok(child) => {
                pids.push(child.id().and_then(|p| Pid::from_raw(p as i32)));
                children.push(Some(child));
            }
            Err(e) => {
                eprintln!("chime-lua: cannot start worker {id}: {e}");
                stop_all(&pids);
                return ExitCode::FAILURE;
            }
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (number, sig) in FORWARDED {
        if let Ok(mut stream) = signal(SignalKind::from_raw(number)) {
            let tx = tx.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send(sig).is_err() {
                        return;
                    }
                }
            });
        }
    }
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    for (id, child) in children.iter_mut().enumerate() {
        let Some(mut child) = child.take() else { continue };
        let done_tx = done_tx.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = done_tx.send((id, status));
        });
    }
    drop(done_tx);
    let mut first_failure: Option<u8> = None;
    let mut left = workers;
    let mut alive: Vec<Option<Pid>> = pids;
    while left > 0 {
        tokio::select! {
            Some(sig) = rx.recv() => {
                for pid in alive.iter().flatten() {
                    let _ = kill_process(*pid, sig);
                }
            }
            done = done_rx.recv() => {
                let Some((id, status)) = done else { break };
                left -= 1;
                alive[id] = None;
                let code = match status {
                    Ok(status) => code_of(status),
                    Err(e) => {
                        eprintln!("chime-lua: waiting for worker {id}: {e}");
                        1
                    }
                };
                if code != 0 && first_failure.is_none() {
                    first_failure = Some(code);
                }
            }
        }
    }
    ExitCode::from(first_failure.unwrap_or(0))
}

/// A worker's status as a shell reports it: its exit code, or 128 + the signal that killed it.
fn code_of(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => (128 + sig) as u8,
        _ => 1,
    }
}

fn stop_all(pids: &[Option<Pid>]) {
    for pid in pids.iter().flatten() {
        let _ = kill_process(*pid, Signal::KILL);
    }
}
