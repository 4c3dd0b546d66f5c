//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)] // each test file uses a different part

pub mod conformance;
pub mod cut;
pub mod durable_conformance;
pub mod faults;
pub mod proxy;
pub mod seed;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A shared, ordered record of what callbacks saw.
#[derive(Clone)]
pub struct Log<T>(Arc<Mutex<Vec<T>>>);

impl<T: Clone> Log<T> {
    pub fn new() -> Self {
        Log(Arc::new(Mutex::new(Vec::new())))
    }

    pub fn push(&self, value: T) {
        self.0.lock().unwrap().push(value);
    }

    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    pub fn get(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// Milliseconds since `start`, exactly (paused clock).
pub fn ms_since(start: Instant, at: Instant) -> u64 {
    at.duration_since(start).as_millis() as u64
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The option an `InvalidOption` error names, or a panic describing what came instead.
pub fn invalid_option<T: std::fmt::Debug>(result: Result<T, chime::Error>) -> &'static str {
    match result {
        Err(chime::Error::InvalidOption(option)) => option.option(),
        other => panic!("expected Error::InvalidOption, got {other:?}"),
    }
}
