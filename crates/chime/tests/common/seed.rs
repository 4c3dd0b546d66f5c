//! Helpers for the seed example tests (`seed_*.rs`): one file per seed document.
#![allow(dead_code, unreachable_pub)] // each seed file uses a different part

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chime::CancelReason;
/// Observations made by callbacks, shared with the test body.
pub type Log<T> = Arc<Mutex<Vec<T>>>;

pub fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

pub fn taken<T: Clone>(log: &Log<T>) -> Vec<T> {
    log.lock().unwrap().clone()
}

pub fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

pub fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// What a Copas / resty style timer's callbacks saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Arm,
    Expire { count: u64, missed: u64 },
    Cancel(CancelReason),
}
