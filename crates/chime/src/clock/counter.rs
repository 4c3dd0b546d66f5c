//! Fast reads of the monotonic clock for arming: the CPU's time-stamp counter (read through
//! `quanta`), turned into monotonic time by a rate chime measures itself and an *anchor* per thread.
//!
//! Arming a timer needs "now", and reading `CLOCK_MONOTONIC` costs a third of an arm + cancel pair.
//! The counter is read in a few cycles. Each thread keeps an anchor (a counter value and the
//! monotonic time just after it) and renews it every [`WINDOW_NS`]; a reading is the anchor plus the
//! counter ticks since, at the measured rate. The error of a reading therefore comes from two
//! places, both bounded:
//!
//! - **the anchor**: the monotonic clock is read before and after the counter, and a pair counts only
//!   if the two reads are at most [`TIGHT_NS`] apart (a thread preempted in between makes a loose pair,
//!   which is dropped); the anchor keeps the later read, so it errs late;
//! - **the rate**: measured from two tight pairs [`CALIBRATION`] apart (an error of at most
//!   `2 * TIGHT_NS` over that span: a few parts per million), plus what NTP's slewing of the monotonic
//!   clock adds (at most 500 parts per million): over one window, well under a microsecond.
//!
//! [`MARGIN_NS`] covers both with room to spare: a reading plus the margin is never before the true
//! monotonic time, so deadlines computed from it are never early (at most the margin late). Each
//! renewal checks the window that ends: if a reading would have trailed by more than the margin, the
//! counter is switched off for the process and every read goes to the monotonic clock. Until the rate
//! is measured (on a thread of its own, in about a tenth of a second), reads go there too.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long an anchor serves before it is renewed.
pub(super) const WINDOW_NS: u64 = 1 << 20;
/// What a reading may trail true monotonic time by, at most.
pub(super) const MARGIN_NS: u64 = 2_000;
/// How far apart the two monotonic reads around a counter read may be for the pair to count.
const TIGHT_NS: u64 = 1_000;
/// How far apart the two pairs that measure the rate are taken.
const CALIBRATION: Duration = Duration::from_millis(50);

/// The counter and its rate, once measured.
struct Counter {
    clock: quanta::Clock,
    /// Nanoseconds per counter tick, times 2^32.
    scale: u64,
    /// Counter ticks in one window.
    window_ticks: u64,
}

static COUNTER: OnceLock<Counter> = OnceLock::new();
static CALIBRATING: std::sync::Once = std::sync::Once::new();
/// Set when a renewal found the counter trailing beyond the margin: the fast path is off for good.
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

/// The process's origin, set on first use. A caller that will count an instant of its own from it
/// must ask for it before reading that instant: an instant before the origin counts as the origin
/// itself, and readings counted from it would run behind by the gap.
pub(super) fn origin() -> std::time::Instant {
    *ORIGIN.get_or_init(std::time::Instant::now)
}

/// Monotonic nanoseconds since the process's origin, at `instant` (not before it: see [`origin`]).
pub(super) fn since_origin(instant: std::time::Instant) -> u64 {
    let since = instant.saturating_duration_since(origin());
    since.as_secs().saturating_mul(1_000_000_000).saturating_add(u64::from(since.subsec_nanos()))
}

fn mono_now() -> u64 {
    since_origin(std::time::Instant::now())
}

/// A counter reading with the monotonic time just after it, if the monotonic reads around it were
/// tight enough to trust (a few tries).
fn tight_pair(clock: &quanta::Clock) -> Option<Anchor> {
    (0..8).find_map(|_| {
        let before = mono_now();
        let raw = clock.raw();
        let after = mono_now();
        (after - before <= TIGHT_NS).then_some(Anchor { raw, mono: after })
    })
}

/// Starts measuring the counter's rate, once per process, on a thread of its own.
pub(super) fn calibrate() {
    CALIBRATING.call_once(|| {
        let spawned = std::thread::Builder::new().name("chime-counter-rate".into()).spawn(|| {
            if let Some(counter) = measure() {
                let _ = COUNTER.set(counter);
            } else {
                tracing::debug!("chime: no steady CPU counter here; arming reads the monotonic clock");
            }
        });
        if let Err(err) = spawned {
            tracing::debug!(
                "chime: no thread to measure the CPU counter ({err}); reading the monotonic clock"
            );
        }
    });
}

/// Measures the rate from two tight pairs [`CALIBRATION`] apart, and checks it on a third; a few
/// tries, then `None` (no steady counter here).
fn measure() -> Option<Counter> {
    let clock = quanta::Clock::new();
    for _ in 0..5 {
        let Some(first) = tight_pair(&clock) else { continue };
        std::thread::sleep(CALIBRATION);
        let Some(second) = tight_pair(&clock) else { continue };
        let ticks = second.raw.checked_sub(first.raw).filter(|&t| t > 0)?;
        let scale = u64::try_from((u128::from(second.mono - first.mono) << 32) / u128::from(ticks)).ok()?;
        let window_ticks = u64::try_from((u128::from(WINDOW_NS) << 32) / u128::from(scale.max(1))).ok()?;
        let counter = Counter { clock, scale, window_ticks: window_ticks.min(u64::from(u32::MAX)) };
        std::thread::sleep(CALIBRATION / 5);
        let check = tight_pair(&counter.clock)?;
        let predicted = second.mono + counter.ns_since(second.raw, check.raw);
        // The rate must hold to well within the margin over a fifth of the span it was measured on.
        return (predicted.abs_diff(check.mono) <= MARGIN_NS / 2).then_some(counter);
    }
    None
}

impl Counter {
    /// Nanoseconds from counter reading `from` to `to` (a window at most: the product stays in u64).
    fn ns_since(&self, from: u64, to: u64) -> u64 {
        let ticks = to.saturating_sub(from).min(u64::from(u32::MAX));
        (ticks * (self.scale >> 1)) >> 31
    }
}

/// Monotonic nanoseconds since the origin, read from the counter, never more than [`MARGIN_NS`]
/// before the true time; `None` until the rate is measured, or once the counter was found
/// unreliable.
pub(super) fn read() -> Option<u64> {
    if BROKEN.load(Ordering::Relaxed) {
        return None;
    }
    let counter = COUNTER.get()?;
    let raw = counter.clock.raw();
    ANCHOR.with(|cell| {
        let anchor = cell.get();
        let ticks = raw.wrapping_sub(anchor.raw);
        if anchor.raw != 0 && raw > anchor.raw && ticks < counter.window_ticks {
            return Some(anchor.mono + counter.ns_since(anchor.raw, raw));
        }
        renew(counter, cell, anchor)
    })
}

/// Renews this thread's anchor, checking the window that ends; `None` (read the monotonic clock)
/// when no tight pair could be had.
#[cold]
fn renew(counter: &Counter, cell: &Cell<Anchor>, old: Anchor) -> Option<u64> {
    let fresh = tight_pair(&counter.clock)?;
    let ticks = fresh.raw.saturating_sub(old.raw);
    if old.raw != 0 && fresh.raw > old.raw && ticks < 2 * counter.window_ticks {
        // What a reading at `fresh.raw` would have said, against the truth (`fresh.mono` is at most
        // TIGHT_NS after it).
        let predicted = old.mono + counter.ns_since(old.raw, fresh.raw);
        if predicted + MARGIN_NS < fresh.mono.saturating_sub(TIGHT_NS) {
            BROKEN.store(true, Ordering::Relaxed);
            tracing::warn!(
                trailing_ns = fresh.mono - predicted,
                "chime: the CPU counter trailed the monotonic clock; arming reads the monotonic clock from now on"
            );
            return None;
        }
    }
    cell.set(fresh);
    Some(fresh.mono)
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
        while COUNTER.get().is_none() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if COUNTER.get().is_none() {
            return; // no steady counter on this machine: reads go to the monotonic clock
        }
        // 50 ms and a thousand reads at least: a thread held off the CPU reads on until it has both.
        let until = std::time::Instant::now() + Duration::from_millis(50);
        let mut reads = 0;
        while std::time::Instant::now() < until || reads < 1000 {
            let before = mono_now();
            let Some(fast) = read() else { return };
            assert!(
                fast + MARGIN_NS >= before,
                "a reading trails the monotonic clock: {fast} + margin < {before}"
            );
            reads += 1;
        }
        assert!(!BROKEN.load(Ordering::Relaxed), "the counter drifted on this machine");
    }

    #[test]
    fn the_rate_turns_ticks_into_nanoseconds() {
        let counter = Counter { clock: quanta::Clock::new(), scale: 1 << 31, window_ticks: 1 << 21 };
        assert_eq!(counter.ns_since(100, 300), 100, "half a nanosecond per tick");
        assert_eq!(counter.ns_since(300, 100), 0, "never backwards");
    }
}
