//! Workload 4: resident bytes per pending timer, one million of them.
//!
//! Each side runs in a fresh child process (this binary again, `memory-child KIND N`), which reads
//! `VmRSS` before and after arming, so allocator reuse cannot mix the sides:
//!
//! - `chime`: `sched.after(d, |_| {})` (a zero-sized closure; ids are not kept);
//! - `spawn-sleep`: `tokio::spawn(async move { tokio::time::sleep(d).await })`, every task polled
//!   once so its sleep is registered (join handles are dropped);
//! - `boxed-sleep`: `Box::pin(tokio::time::sleep(d))` polled once, kept in a `Vec` (its 8-byte
//!   pointer counts).
//!
//! The engine-only figure is measured in this process with the wheel alone: a
//! `chime::wheel::Wheel<Record>` holding `n` entries, its `allocated_bytes() / n`, where `Record`
//! has the shape of the value chime's wheel holds for a timer: 16 bytes (a boxed callback, the
//! timer's other options living beside the wheel) whose first word is never zero (the callback's
//! pointer), which lets the wheel store "no value" for free, as it does for real timers.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chime::wheel::Wheel;

use crate::Sizes;
use crate::measure::{ChildReport, Keep, child_process, poll_once, run_child, size_label, spread};
use crate::report::{Better, Figure, Report, Unit};

/// The sides a memory child can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    /// chime callback timers.
    Chime,
    /// A spawned tokio task per timer, awaiting a sleep.
    SpawnSleep,
    /// A pinned, boxed tokio `Sleep` per timer.
    BoxedSleep,
}

impl Kind {
    fn arg(self) -> &'static str {
        match self {
            Kind::Chime => "chime",
            Kind::SpawnSleep => "spawn-sleep",
            Kind::BoxedSleep => "boxed-sleep",
        }
    }
}

/// A timer's value in the wheel, by shape: 16 bytes, the first word never zero.
type Record = (std::num::NonZeroU64, u64);

/// Bytes per entry of a bare wheel holding `n` 16-byte records.
pub(crate) fn engine_bytes_per_timer(n: usize) -> f64 {
    let mut wheel: Wheel<Record> = Wheel::new();
    for i in 0..n {
        wheel.insert(spread(i).as_nanos() as u64, (std::num::NonZeroU64::MIN, 0));
    }
    wheel.allocated_bytes() as f64 / n.max(1) as f64
}

/// The child side of workload 4: arms `n` timers of `kind`, prints a [`ChildReport`] and exits.
pub(crate) fn child(kind: Kind, n: usize) -> ! {
    child_process(n, async |sched| -> (u64, Keep) {
        static POLLED: AtomicUsize = AtomicUsize::new(0);
        match kind {
            Kind::Chime => {
                for i in 0..n {
                    sched.after(spread(i), |_| {}).expect("running");
                }
                (0, Box::new(()) as Keep)
            }
            Kind::SpawnSleep => {
                for i in 0..n {
                    drop(tokio::spawn(async move {
                        POLLED.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(spread(i)).await;
                    }));
                }
                // A task's first poll counts and registers its sleep in one go.
                while POLLED.load(Ordering::Relaxed) < n {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                (0, Box::new(()) as Keep)
            }
            Kind::BoxedSleep => {
                let mut boxed: Vec<Pin<Box<tokio::time::Sleep>>> = Vec::with_capacity(n);
                for i in 0..n {
                    let mut sleep = Box::pin(tokio::time::sleep(spread(i)));
                    let _ = poll_once(sleep.as_mut());
                    boxed.push(sleep);
                }
                (0, Box::new(boxed) as Keep)
            }
        }
    })
}

/// Workload 4.
pub(crate) fn run(sizes: Sizes, report: &mut Report) {
    let n = sizes.million();
    let label = size_label(n);
    let engine = engine_bytes_per_timer(n);
    report.push(
        Figure::new(
            4,
            format!("engine only: Wheel<16-byte record> bytes/timer, {label}"),
            Unit::Bytes,
            Better::Lower,
            engine,
        )
        .goal_max(48.0, "<= 48 B"),
    );
    let n_arg = n.to_string();
    let measured: Vec<Result<ChildReport, String>> = [Kind::Chime, Kind::SpawnSleep, Kind::BoxedSleep]
        .iter()
        .map(|k| run_child(&["memory-child", k.arg(), &n_arg]))
        .collect();
    match (&measured[0], &measured[1], &measured[2]) {
        (Ok(chime), Ok(spawned), Ok(boxed)) => {
            report.push(
                Figure::new(
                    4,
                    format!("resident bytes/timer, {label} pending"),
                    Unit::Bytes,
                    Better::Lower,
                    chime.bytes_per_timer(),
                )
                .vs("spawn+sleep", spawned.bytes_per_timer())
                .goal_ratio(8.0),
            );
            report.push(
                Figure::new(
                    4,
                    format!("resident bytes/timer, {label} pending, vs bare Sleep"),
                    Unit::Bytes,
                    Better::Lower,
                    chime.bytes_per_timer(),
                )
                .vs("Box<Sleep>", boxed.bytes_per_timer()),
            );
            report.push(
                Figure::new(
                    4,
                    format!("resident total, {label} pending"),
                    Unit::Bytes,
                    Better::Lower,
                    chime.rss_after.saturating_sub(chime.rss_before) as f64,
                )
                .vs("spawn+sleep", spawned.rss_after.saturating_sub(spawned.rss_before) as f64),
            );
            report.note(
                "[4] resident = VmRSS after minus before arming, each side in a fresh child process; \
                 the goal '>= 8x' is 'at most 1/8 of the memory' of spawn+sleep",
            );
        }
        _ => {
            for failure in measured.iter().filter_map(|m| m.as_ref().err()) {
                report.note(format!("[4] memory child failed: {failure}"));
            }
        }
    }
}
