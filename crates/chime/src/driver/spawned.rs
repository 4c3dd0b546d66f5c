//! Asynchronous expire callbacks: each run spawned as a task on the driver's runtime, never two of
//! one timer at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use super::Driver;
use crate::record::{AsyncRun, CancelReason, ExpireFn, Fire};
use crate::unwind::CatchUnwind;

/// Wraps an async callback as a driver callback that spawns each run. A tick that comes while the
/// previous run is still going does not start another: it is counted in the next run's
/// [`Fire::missed`].
pub(crate) fn spawn_runs(driver: &Arc<Driver>, mut on_expire: AsyncRun) -> ExpireFn {
    let runtime = driver.runtime.clone();
    let running = Arc::new(AtomicBool::new(false));
    let overlapped = Arc::new(AtomicU64::new(0));
    let driver: Weak<Driver> = Arc::downgrade(driver);
    Box::new(move |fire: &Fire| {
        if running.swap(true, Ordering::AcqRel) {
            overlapped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut fire = fire.clone();
        fire.missed += overlapped.swap(0, Ordering::Relaxed);
        let id = fire.id;
        let run = CatchUnwind(on_expire(fire));
        let running = Running(running.clone());
        let driver = driver.clone();
        runtime.spawn(async move {
            let _running = running;
            if let Err(payload) = run.await
                && let Some(driver) = driver.upgrade()
            {
                driver.report_panic(Some(id), &*payload);
                if driver.cancel_on_panic(id) {
                    let _ = driver.cancel(id, CancelReason::Panicked);
                }
            }
        });
    })
}

/// Clears the "a run is going" flag however the run ends.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
