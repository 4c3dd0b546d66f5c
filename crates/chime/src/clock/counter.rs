//! Fast reads of the monotonic clock for arming: the CPU's time-stamp counter (through `quanta`),
//! anchored to `CLOCK_MONOTONIC` per thread.
//!
//! Arming a timer needs "now", and reading `CLOCK_MONOTONIC` costs a third of an arm + cancel
//! pair. The counter is read in a few cycles; each thread keeps an *anchor* (a counter value and
//! the monotonic time read just after it) and turns a counter reading into monotonic time by the
//! calibrated rate. Anchors are renewed every [`WINDOW_NS`], so whatever the rate's error (a few
//! parts per million from calibration, up to 500 more while NTP slews the monotonic clock), a reading
//! is behind true monotonic time by less than [`MARGIN_NS`]; adding the margin makes every deadline
//! computed from it at or after the true one. Timers may be that much late, never early.
//!
//! Each renewal checks the last window: if the counter fell behind by more than the margin (a
//! broken TSC, a migration across unsynchronised sockets), the fast path is switched off for the
//! process and every read goes to the monotonic clock. Calibration runs once per process, on a
//! thread of its own (it may take up to a fifth of a second); until it is done, reads go to the
//! monotonic clock.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// How long an anchor serves before it is renewed.
pub(super) const WINDOW_NS: u64 = 1 << 20;
/// What a reading may be behind true monotonic time by, at most: twice the error of a rate off by
/// a thousandth over one window.
pub(super) const MARGIN_NS: u64 = 2 * WINDOW_NS / 1000;

/// The calibrated counter, once its calibration has finished.
static COUNTER: OnceLock<quanta::Clock> = OnceLock::new();
static CALIBRATING: std::sync::Once = std::sync::Once::new();
/// Set when a renewal found the counter drifting beyond the margin: the fast path is off for good.
static BROKEN: AtomicBool = AtomicBool::new(false);
/// The origin of the nanoseconds anchors count in (any fixed instant of the process).
static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();

#[derive(Clone, Copy)]
struct Anchor {
    raw: u64,
    /// Monotonic nanoseconds since `ORIGIN`, read just after `raw`.
    mono: u64,
}

thread_local! {
    static ANCHOR: Cell<Anchor> = const { Cell::new(Anchor { raw: 0, mono: 0 }) };
}

/// Starts the counter's calibration, once per process, on a thread of its own.
pub(super) fn calibrate() {
    CALIBRATING.call_once(|| {
        let spawned = std::thread::Builder::new().name("chime-counter-calibration".into()).spawn(|| {
            let _ = COUNTER.set(quanta::Clock::new());
        });
        if let Err(err) = spawned {
            tracing::debug!(
                "chime: no thread to calibrate the CPU counter ({err}); reading the monotonic clock"
            );
        }
    });
}

/// Monotonic nanoseconds since the process's origin, at `instant`.
pub(super) fn since_origin(instant: std::time::Instant) -> u64 {
    let origin = *ORIGIN.get_or_init(std::time::Instant::now);
    let since = instant.saturating_duration_since(origin);
    since.as_secs().saturating_mul(1_000_000_000).saturating_add(u64::from(since.subsec_nanos()))
}

/// Monotonic nanoseconds since the origin, read from the counter, at or after the true time minus
/// [`MARGIN_NS`]; `None` until the counter is calibrated, or once it was found unreliable.
pub(super) fn read() -> Option<u64> {
    if BROKEN.load(Ordering::Relaxed) {
        return None;
    }
    let counter = COUNTER.get()?;
    let raw = counter.raw();
    Some(ANCHOR.with(|cell| {
        let anchor = cell.get();
        let since = counter.delta_as_nanos(anchor.raw, raw);
        if raw > anchor.raw && since < WINDOW_NS {
            return anchor.mono + since;
        }
        // Renew: the monotonic clock is read after the counter, so the anchor errs late, not early.
        let mono = since_origin(std::time::Instant::now());
        let predicted = anchor.mono.saturating_add(since);
        if anchor.raw != 0 && raw > anchor.raw && since < 2 * WINDOW_NS && mono > predicted + MARGIN_NS {
            BROKEN.store(true, Ordering::Relaxed);
            tracing::warn!(
                drift_ns = mono - predicted,
                "chime: the CPU counter fell behind the monotonic clock; reading the monotonic clock from now on"
            );
        }
        cell.set(Anchor { raw, mono });
        mono
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reading plus the margin is never before the true monotonic time at the reading, over many
    /// windows (what keeps timers from firing early).
    #[test]
    fn readings_plus_the_margin_never_trail_the_monotonic_clock() {
        calibrate();
        let start = std::time::Instant::now();
        while COUNTER.get().is_none() && start.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::yield_now();
        }
        if COUNTER.get().is_none() {
            return; // no invariant counter on this machine: reads go to the monotonic clock
        }
        let until = std::time::Instant::now() + std::time::Duration::from_millis(50);
        let mut reads = 0;
        while std::time::Instant::now() < until {
            let before = since_origin(std::time::Instant::now());
            let Some(fast) = read() else { return };
            assert!(
                fast + MARGIN_NS >= before,
                "a reading trails the monotonic clock: {fast} + margin < {before}"
            );
            reads += 1;
        }
        assert!(!BROKEN.load(Ordering::Relaxed), "the counter drifted on this machine");
        assert!(reads > 1000);
    }
}
