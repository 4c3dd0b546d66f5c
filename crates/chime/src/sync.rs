//! The primitives the driver's concurrency protocol is built on: std's atomics and a spin lock in a
//! normal build, loom's under `--cfg chime_loom`, so the loom tests (`driver/loom_tests.rs`) check
//! the driver's real shard and handshake code, not a copy of it.

#[cfg(not(chime_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64};

#[cfg(chime_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64};

/// A lock that holders keep for a bounded, short time and never across user code: a spin lock
/// whose waiters yield their thread (see `driver/shard.rs` for why), or loom's mutex.
#[cfg(not(chime_loom))]
pub(crate) struct Lock<T>(spin::mutex::SpinMutex<T, SpinThenYield>);

#[cfg(not(chime_loom))]
impl<T> Lock<T> {
    pub(crate) fn new(value: T) -> Self {
        Lock(spin::mutex::SpinMutex::new(value))
    }

    pub(crate) fn lock(&self) -> spin::mutex::SpinMutexGuard<'_, T, SpinThenYield> {
        self.0.lock()
    }
}

/// How a waiter waits for a [`Lock`]: a few spins, then it yields its thread to the holder.
#[cfg(not(chime_loom))]
pub(crate) struct SpinThenYield;

#[cfg(not(chime_loom))]
impl spin::RelaxStrategy for SpinThenYield {
    fn relax() {
        for _ in 0..8 {
            std::hint::spin_loop();
        }
        std::thread::yield_now();
    }
}

#[cfg(chime_loom)]
pub(crate) struct Lock<T>(loom::sync::Mutex<T>);

#[cfg(chime_loom)]
impl<T> Lock<T> {
    pub(crate) fn new(value: T) -> Self {
        Lock(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0.lock().unwrap()
    }
}
