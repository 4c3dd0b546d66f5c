//! A command run: its own process group (so a timeout or a lost lease stops its children too),
//! its output relayed, its end reported. Stopping is SIGTERM to the group, then SIGKILL after the
//! job's grace. When the main process ends, whatever it left behind in its group is stopped the
//! same way (the run is the group, as systemd's control-group mode treats a service).

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

use super::output::{RunLog, Tail, relay};
use super::{guard, spawner};
use crate::job::{Command as JobCommand, JobSpec};

/// A started command. Dropped before it was seen to the end (its run's task was aborted: a durable
/// timer's lease was lost, or the daemon stopped it), it stops the whole group as a timeout does.
pub(crate) struct Running {
    child: Child,
    pgid: Option<Pid>,
    relays: JoinSet<()>,
    grace: Duration,
    /// The main process was reaped.
    reaped: bool,
    /// [`Running::finish`] ran to its end: nothing is left in the group.
    done: bool,
}

/// How the main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exit {
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
}

impl From<ExitStatus> for Exit {
    fn from(status: ExitStatus) -> Self {
        Exit { code: status.code(), signal: status.signal() }
    }
}

/// Starts `command` with `env` added to the daemon's environment, from one of the forking threads
/// (see [`spawner`]), through the guard when this is the `chime` binary.
pub(crate) async fn spawn(
    spec: &JobSpec,
    command: &JobCommand,
    shell: &str,
    env: &[(&str, String)],
    log: &RunLog,
    tail: &Arc<Mutex<Tail>>,
) -> Result<Running, String> {
    let (program, args): (&str, Vec<&str>) = match command {
        JobCommand::Argv(argv) => (&argv[0], argv[1..].iter().map(String::as_str).collect()),
        JobCommand::Shell(line) => (shell, vec!["-c", line]),
    };
    let mut cmd = if guard::enabled() {
        // Through the guard, so that the command dies with this process (see `guard`).
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg(guard::ARG).arg(std::process::id().to_string()).arg(program).args(&args);
        cmd
    } else {
        let mut cmd = Command::new(program);
        cmd.args(&args);
        cmd
    };
    cmd.envs(&spec.env).envs(env.iter().map(|(k, v)| (*k, v)));
    if let Some(dir) = &spec.dir {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = spawner::spawn(cmd).await.map_err(|e| format!("cannot start `{program}`: {e}"))?;
    let pgid = child.id().and_then(|id| Pid::from_raw(id as i32));
    let mut relays = JoinSet::new();
    if let Some(out) = child.stdout.take() {
        relays.spawn(relay(out, "stdout", log.clone(), tail.clone()));
    }
    if let Some(err) = child.stderr.take() {
        relays.spawn(relay(err, "stderr", log.clone(), tail.clone()));
    }
    Ok(Running { child, pgid, relays, grace: spec.kill_grace, reaped: false, done: false })
}

impl Running {
    /// Waits for the main process to end.
    pub(crate) async fn wait(&mut self) -> Exit {
        let exit = match self.child.wait().await {
            Ok(status) => status.into(),
            Err(_) => Exit { code: None, signal: None },
        };
        self.reaped = true;
        exit
    }

    /// SIGTERM to the group; SIGKILL to it when the main process has not ended after `grace`.
    pub(crate) async fn stop(&mut self, grace: Duration) -> Exit {
        self.signal(Signal::TERM);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.reaped = true;
                status.into()
            }
            _ => {
                self.signal(Signal::KILL);
                self.wait().await
            }
        }
    }

    fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.pgid {
            let _ = kill_process_group(pgid, signal);
        }
    }

    /// Whether a live process is left in the group. `kill(-pgid, 0)` also counts zombies (orphans
    /// an init that is slow to reap leaves behind), so on Linux a yes is checked against `/proc`.
    fn group_alive(&self) -> bool {
        let Some(pgid) = self.pgid else { return false };
        test_kill_process_group(pgid).is_ok() && live_member(pgid.as_raw_nonzero().get())
    }

    /// After the main process ended: stops what it left in its group, then lets the output
    /// relays drain (they end when the last writer is gone).
    pub(crate) async fn finish(mut self, grace: Duration) {
        // Processes that got the group's SIGTERM with the main one may take a moment to go.
        let settle = tokio::time::Instant::now() + Duration::from_millis(100);
        while self.group_alive() && tokio::time::Instant::now() < settle {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if self.group_alive() {
            tracing::warn!(pgid = ?self.pgid, "the job's main process ended but left processes in its group; stopping them");
            self.signal(Signal::TERM);
            let deadline = tokio::time::Instant::now() + grace;
            while self.group_alive() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if self.group_alive() {
                self.signal(Signal::KILL);
            }
        }
        let drained = async { while self.relays.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(2), drained).await.is_err() {
            self.relays.abort_all();
        }
        self.done = true;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.done || (self.reaped && !self.group_alive()) {
            return;
        }
        self.signal(Signal::TERM);
        let (pgid, grace) = (self.pgid, self.grace);
        tracing::warn!(pgid = ?pgid, "a run was abandoned while its command ran: its process group is stopped");
        // SIGKILL after the grace, from a task of its own (a drop cannot wait); the runtime reaps
        // the main process (tokio's orphan queue).
        if let (Some(pgid), Ok(runtime)) = (pgid, tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move {
                tokio::time::sleep(grace).await;
                if test_kill_process_group(pgid).is_ok() && live_member(pgid.as_raw_nonzero().get()) {
                    let _ = kill_process_group(pgid, Signal::KILL);
                }
            });
        }
    }
}

/// Whether `/proc` shows a process of group `pgid` that is not a zombie.
#[cfg(target_os = "linux")]
fn live_member(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return true };
    entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .any(|e| {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { return false };
            // After the command name (in parentheses, which may hold spaces): state, ppid, pgrp.
            let Some((_, rest)) = stat.rsplit_once(')') else { return false };
            let mut fields = rest.split_whitespace();
            let state = fields.next().unwrap_or("Z");
            let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
            pgrp == Some(pgid) && !matches!(state, "Z" | "X")
        })
}

#[cfg(not(target_os = "linux"))]
fn live_member(_pgid: i32) -> bool {
    true
}
