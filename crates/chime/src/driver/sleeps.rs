//! Sleeping tasks: a waker per task in each shard's second wheel.
//!
//! A sleep is removed from its wheel before its task is woken, so a task that finds its entry gone
//! knows its deadline has passed (or the scheduler stopped).

use std::sync::Arc;
use std::task::Waker;

use super::Driver;
use crate::error::Error;
use crate::wheel::Key;

/// Where a sleeping task's waker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SleepKey {
    shard: u32,
    key: Key,
}

impl Driver {
    pub(crate) fn insert_sleep(self: &Arc<Self>, deadline: u64, waker: Waker) -> Result<SleepKey, Error> {
        let (shard, wheels) = self.local_shard();
        let mut wheels = wheels.lock();
        if self.is_stopped() {
            return Err(Error::Shutdown);
        }
        let key = wheels.sleeps.insert(deadline, waker);
        drop(wheels);
        self.wake_if_earlier(deadline);
        Ok(SleepKey { shard, key })
    }

    /// `true` once the sleep is over; otherwise keeps `waker` (replacing an outdated one).
    pub(crate) fn poll_sleep(&self, sleep: SleepKey, waker: &Waker) -> bool {
        let mut wheels = self.shards[sleep.shard as usize].lock();
        match wheels.sleeps.get_mut(sleep.key) {
            None => true,
            Some(stored) => {
                if !stored.will_wake(waker) {
                    let old = std::mem::replace(stored, waker.clone());
                    drop(wheels);
                    drop(old);
                }
                false
            }
        }
    }

    pub(crate) fn cancel_sleep(&self, sleep: SleepKey) {
        let waker = self.shards[sleep.shard as usize].lock().sleeps.remove(sleep.key);
        drop(waker);
    }
}
