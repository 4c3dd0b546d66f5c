//! The threads that fork the daemon's commands.
//!
//! A fork takes the time of copying the daemon's page tables, so a burst of starts must not run on
//! the runtime's workers (they carry the claims). It must not run on tokio's blocking pool either:
//! those threads end after ten idle seconds, and a command's death signal (see [`super::guard`]) is
//! sent when the thread that forked it ends. So a fixed set of threads, one per core, lives as long
//! as the process and does every fork; that also bounds how many forks run at once.

use std::io;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::process::{Child, Command};
use tokio::sync::oneshot;

type Fork = Box<dyn FnOnce() + Send>;

fn threads() -> &'static Sender<Fork> {
    static FORKS: OnceLock<Sender<Fork>> = OnceLock::new();
    FORKS.get_or_init(|| {
        let (tx, rx) = channel::<Fork>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..std::thread::available_parallelism().map_or(2, usize::from) {
            let rx = rx.clone();
            let started =
                std::thread::Builder::new().name(format!("chime-fork-{i}")).spawn(move || serve(&rx));
            if let Err(e) = started {
                tracing::error!("cannot start a forking thread: {e}");
            }
        }
        tx
    })
}

fn serve(forks: &Mutex<Receiver<Fork>>) {
    loop {
        let next = forks.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match next {
            Ok(fork) => fork(),
            Err(_) => return,
        }
    }
}

/// Spawns `cmd` from one of the forking threads, in the runtime of the caller (which reaps it).
pub(crate) async fn spawn(mut cmd: Command) -> io::Result<Child> {
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = oneshot::channel();
    let fork: Fork = Box::new(move || {
        let _entered = runtime.enter();
        let _ = tx.send(cmd.spawn());
    });
    let sent = threads().send(fork);
    if sent.is_err() {
        return Err(io::Error::other("no thread is left to start commands"));
    }
    rx.await.map_err(|_| io::Error::other("the forking thread dropped the start"))?
}
