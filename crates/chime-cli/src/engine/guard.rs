//! The job guard: what makes a command die with the replica that started it.
//!
//! A replica killed with SIGKILL cannot stop its runs, and a command that outlives it would run
//! beside the run that another replica starts for the next tick, holding no lease. So a command
//! is not started directly: the daemon starts its own binary as `chime __job-guard PID PROGRAM
//! ARGS..`, which asks the kernel to SIGKILL it when its parent dies (`PR_SET_PDEATHSIG`), checks
//! that the parent is still the daemon (it may have died before the request), and then `exec`s the
//! command in place, in the same process. The death signal survives the `exec`, so the command
//! itself is killed when the daemon dies, with no process left between them. Its own children,
//! when it leaves any, are the command's to mind (a graceful stop, a timeout and a lost lease
//! stop the whole process group; a SIGKILLed daemon can only reach the command).
//!
//! The kernel sends the death signal when the *thread* that forked ends, not the process, so the
//! daemon forks from threads that live as long as it does (see [`super::spawner`]).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// The hidden first argument that turns the `chime` binary into a guard.
pub(crate) const ARG: &str = "__job-guard";

/// The exit status of a guard whose daemon was already gone, or whose command could not start
/// (as a shell says for a command it cannot run).
const CANNOT_RUN: u8 = 127;

/// Runs the guard with the arguments after [`ARG`]: the daemon's pid, then the command.
pub(crate) fn run(args: &[OsString]) -> ExitCode {
    let [parent, program, rest @ ..] = args else {
        eprintln!("chime {ARG}: expected the daemon's pid and a command");
        return ExitCode::from(CANNOT_RUN);
    };
    let parent = parent.to_str().and_then(|p| p.parse::<i32>().ok());
    if let Err(e) = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL)) {
        eprintln!("chime {ARG}: cannot ask to die with the daemon: {e}");
        return ExitCode::from(CANNOT_RUN);
    }
    let now = rustix::process::getppid().map(rustix::process::Pid::as_raw_nonzero);
    if parent.is_none() || now.map(|p| p.get()) != parent {
        // The daemon died between the fork and the request above: nobody holds this run's lease.
        return ExitCode::from(CANNOT_RUN);
    }
    let error = std::process::Command::new(program).args(rest).exec();
    eprintln!("cannot start `{}`: {error}", program.to_string_lossy());
    ExitCode::from(CANNOT_RUN)
}

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Commands go through the guard from now on: called by the `chime` binary's `run`, whose
/// `/proc/self/exe` understands [`ARG`] (a test harness or another program embedding the engine
/// would not).
pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether commands go through the guard.
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}
