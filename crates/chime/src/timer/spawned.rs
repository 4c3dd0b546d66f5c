//! Asynchronous expire callbacks: each run spawned as a task, never two at once.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use super::record::ExpireFn;
use super::{CancelReason, Fire};
use crate::driver::Inner;
use crate::unwind::CatchUnwind;

/// Wraps an async callback as a driver callback that spawns each run on the current runtime.
pub(crate) fn spawn_runs<F, Fut>(inner: &Arc<Inner>, mut on_expire: F) -> ExpireFn
where
    F: FnMut(Fire) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let runtime = inner.runtime.clone();
    let running = Arc::new(AtomicBool::new(false));
    let overlapped = Arc::new(AtomicU64::new(0));
    let inner: Weak<Inner> = Arc::downgrade(inner);
    Box::new(move |fire: &Fire| {
        if running.swap(true, Ordering::AcqRel) {
            overlapped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut fire = fire.clone();
        fire.missed += overlapped.swap(0, Ordering::Relaxed);
        let id = fire.id;
        let run = CatchUnwind(Box::pin(on_expire(fire)));
        let running = Running(running.clone());
        let inner = inner.clone();
        runtime.spawn(async move {
            let _running = running;
            if let Err(payload) = run.await
                && let Some(inner) = inner.upgrade()
            {
                inner.report_panic(Some(id), &*payload);
                if inner.cancel_on_panic(id) {
                    let _ = inner.cancel(id, CancelReason::Panicked);
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
