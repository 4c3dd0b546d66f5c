//! Freezing a child process with SIGSTOP, and knowing when the freeze has landed: the process tests
//! check what the child wrote before the freeze, which means nothing after the check.

use std::process::Child;
use std::time::{Duration, Instant};

/// Sends SIGSTOP and waits until every thread of `child` is stopped. The signal is delivered
/// asynchronously: a thread running on another CPU goes on until it next leaves the kernel, which a
/// loaded VM can put off for milliseconds (a run was seen to write and log its end after the signal
/// was sent). Returns whether the stop landed within a second.
pub(crate) fn freeze(child: &Child) -> bool {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, rustix::process::Signal::STOP)
        .unwrap_or_else(|e| panic!("kill({pid:?}, SIGSTOP): {e}"));
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if every_thread_stopped(child.id()) {
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    false
}

/// Every thread's state in `/proc` is stopped (`T`, or `t` when traced).
fn every_thread_stopped(pid: u32) -> bool {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    threads.flatten().all(|thread| {
        std::fs::read_to_string(thread.path().join("stat")).is_ok_and(|stat| {
            // The state follows the command name, which is in parentheses and may hold any byte.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|s| s == 'T' || s == 't')
        })
    })
}
