//! The driver task's loop: fire what is due, sleep until the next deadline or a notification.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Inner;
use crate::events::Lifecycle;

/// Runs until the scheduler stops, or until no handle is left and nothing is pending.
///
/// The exit guard is made before the first poll, so a runtime that drops the task unpolled still
/// cancels what is pending.
pub(crate) fn run(inner: Arc<Inner>) -> impl Future<Output = ()> + Send + 'static {
    let stop = StopOnExit(inner.clone());
    async move {
        let _stop = stop;
        drive(inner).await;
    }
}

async fn drive(inner: Arc<Inner>) {
    for stage in [Lifecycle::Starting, Lifecycle::Started] {
        drop(inner.registry.lifecycle.deliver(&stage));
    }
    let sleep = tokio::time::sleep_until(inner.time.to_instant(0));
    tokio::pin!(sleep);
    loop {
        inner.wake_at.store(u64::MAX, Ordering::SeqCst);
        if inner.is_stopped() {
            return;
        }
        if inner.fire_due(inner.time.now()) {
            tokio::task::yield_now().await;
            continue;
        }
        let next = inner.shards.iter().filter_map(|s| s.lock().next_deadline()).min();
        match next {
            Some(at) => {
                inner.wake_at.store(at, Ordering::SeqCst);
                sleep.as_mut().reset(inner.time.to_instant(at));
                tokio::select! {
                    biased;
                    () = inner.notify.notified() => {}
                    () = &mut sleep => {}
                }
            }
            // Nobody can arm again: no handle, and no sleep or watch (they hold the state, not a
            // handle).
            None if inner.handles.load(Ordering::SeqCst) == 0 && Arc::strong_count(&inner) <= 2 => return,
            // No handle left, but a sleep or watch still holds the state: whoever drops last may
            // have notified before letting go of it, so look again now and then.
            None if inner.handles.load(Ordering::SeqCst) == 0 => {
                tokio::select! {
                    () = inner.notify.notified() => {}
                    () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                }
            }
            None => inner.notify.notified().await,
        }
    }
}

/// Whatever ends the driver (stop, no users left, or the runtime dropping the task) cancels what is
/// left with `Shutdown`, so no cancel callback is ever lost.
struct StopOnExit(Arc<Inner>);

impl Drop for StopOnExit {
    fn drop(&mut self) {
        self.0.stop();
        self.0.driver_done.store(true, Ordering::Release);
        self.0.driver_exit.notify_waiters();
    }
}
