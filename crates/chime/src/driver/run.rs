//! The driver's task: fire what is due, sleep until the next deadline (on its
//! [alarm](super::alarm)) or a notification (rule 7), park when nobody can arm any more but stray
//! holders (rule 8), stop for good on shutdown or when its runtime drops it (rule 9).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Driver;
use super::alarm::Alarm;
use super::fire::Batches;

/// The driver's task, to be spawned on its runtime. The exit guard is made before the first poll,
/// so a runtime that drops the task unpolled still cancels what is pending.
pub(crate) fn run(driver: Arc<Driver>) -> impl Future<Output = ()> + Send + 'static {
    let exit = Exit { driver: driver.clone(), parked: false };
    async move {
        let mut exit = exit; // moved in whole: a field capture would drop the guard at once
        exit.parked = drive(&driver).await == Ending::Parked;
    }
}

/// Rule 8: starts the task of a parked driver again.
pub(crate) fn respawn(driver: &Arc<Driver>) {
    driver.runtime.spawn(run(driver.clone()));
}

#[derive(Debug, PartialEq, Eq)]
enum Ending {
    Stopped,
    Parked,
}

async fn drive(driver: &Driver) -> Ending {
    let mut alarm = Alarm::new(driver.time.is_real());
    let mut batches = Batches::default();
    loop {
        driver.passes.fetch_add(1, Ordering::Relaxed);
        driver.handshake.awake();
        if driver.is_stopped() {
            return Ending::Stopped;
        }
        if driver.fire_due(driver.time.now(), &mut batches) {
            tokio::task::yield_now().await;
            continue;
        }
        match driver.next_deadline() {
            Some(at) => {
                driver.handshake.sleeping_until(at);
                tokio::select! {
                    biased;
                    () = driver.notify.notified() => {}
                    () = alarm.sleep_until(driver.time.to_instant(at)) => {}
                }
            }
            None if driver.handles_gone.load(Ordering::SeqCst) => {
                if driver.handshake.park(|| driver.next_deadline().is_some()) {
                    return Ending::Parked;
                }
            }
            None => driver.notify.notified().await,
        }
    }
}

impl Driver {
    /// The earliest time any shard may have something due.
    fn next_deadline(&self) -> Option<u64> {
        self.shards.iter().filter_map(|s| s.lock().next_deadline()).min()
    }

    /// Waits until the driver's task has ended for good (after [`stop`](Self::stop)).
    pub(crate) async fn task_exited(&self) {
        loop {
            let exited = self.task_exit.notified();
            tokio::pin!(exited);
            exited.as_mut().enable();
            if self.task_done.load(Ordering::Acquire) {
                return;
            }
            exited.await;
        }
    }

    /// Passes of the loop so far (for tests of idleness).
    #[cfg(all(test, not(chime_loom)))]
    pub(crate) fn passes(&self) -> u64 {
        self.passes.load(Ordering::Relaxed)
    }
}

/// Whatever ends the task, but parking (a stop, or the runtime dropping it), cancels what is left
/// with `Shutdown`, so no cancel callback is ever lost.
struct Exit {
    driver: Arc<Driver>,
    parked: bool,
}

impl Drop for Exit {
    fn drop(&mut self) {
        if self.parked {
            return;
        }
        self.driver.stop();
        self.driver.task_done.store(true, Ordering::Release);
        self.driver.task_exit.notify_waiters();
    }
}
