//! chime: timers, workers and events for tokio.
pub mod wheel;
