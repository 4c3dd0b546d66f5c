//! Workload 6: scale. Arm cost and resident memory at 1k, 100k, 1M and 10M pending chime timers,
//! one fresh child process per size (`scale-child N`), printed as a curve (and drawn by `--plot`).

use std::time::Instant;

use crate::Sizes;
use crate::measure::{Keep, child_process, run_child, size_label, spread};
use crate::report::{Better, Figure, Report, ScalePoint, Unit};

/// The goal: 10M pending timers in at most 1 GiB resident.
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The child side: arms `n` chime timers, prints a [`ChildReport`](crate::measure::ChildReport) and exits.
pub(crate) fn child(n: usize) -> ! {
    child_process(n, async |sched| -> (u64, Keep) {
        let mut worst_chunk_ns = 0;
        for first in (0..n).step_by(1024) {
            let chunk_start = Instant::now();
            for i in first..(first + 1024).min(n) {
                sched.after(spread(i), |_| {}).expect("running");
            }
            worst_chunk_ns = worst_chunk_ns.max(chunk_start.elapsed().as_nanos() as u64);
        }
        (worst_chunk_ns, Box::new(()) as Keep)
    })
}

/// Workload 6.
pub(crate) fn run(sizes: Sizes, report: &mut Report) {
    for &n in sizes.scale_levels() {
        match run_child(&["scale-child", &n.to_string()]) {
            Ok(child) => {
                let rss = child.rss_after.saturating_sub(child.rss_before);
                let point = ScalePoint {
                    pending: n,
                    arm_ns: child.arm_ns,
                    rss_bytes: rss,
                    bytes_per_timer: child.bytes_per_timer(),
                    worst_chunk_ns: child.worst_chunk_ns,
                };
                eprintln!(
                    "  {:>5} pending: {:.1} ns/arm, {:.1} B/timer resident",
                    size_label(n),
                    point.arm_ns,
                    point.bytes_per_timer
                );
                report.curve.push(point);
                let label = size_label(n);
                report.push(Figure::new(
                    6,
                    format!("arm cost filling to {label}"),
                    Unit::Nanos,
                    Better::Lower,
                    child.arm_ns,
                ));
                let stall = Figure::new(
                    6,
                    format!("slowest 1024 arms filling to {label}"),
                    Unit::Nanos,
                    Better::Lower,
                    child.worst_chunk_ns as f64,
                );
                report.push(if n >= 10_000_000 { stall.goal_max(1e6, "<= 1 ms") } else { stall });
                let resident = Figure::new(
                    6,
                    format!("resident, {label} pending"),
                    Unit::Bytes,
                    Better::Lower,
                    rss as f64,
                );
                report.push(if n >= 10_000_000 { resident.goal_max(GIB, "<= 1 GiB") } else { resident });
            }
            Err(e) => report.note(format!("[6] scale child for {n} failed: {e}")),
        }
    }
    report.note(
        "[6] arm cost = wall ns per sched.after while filling an empty scheduler to the size (storage growth \
         included); slowest 1024 arms = the worst stall seen while filling (a storage reallocation under the \
         shard lock shows here)",
    );
}
