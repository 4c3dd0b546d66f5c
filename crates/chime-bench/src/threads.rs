//! Workload 7: two std threads arming and cancelling at once, against one thread alone.
//!
//! Both sides use a multi-thread runtime with 2 workers that stay idle. Each measuring thread first
//! arms its own pending timers (so chime's per-thread shard is not empty), waits on a barrier, then
//! runs its pairs; the figure is the wall time of the slowest thread divided by all pairs.
//!
//! - chime: the threads share one `Scheduler` handle (each thread lands in its own shard);
//! - tokio: each thread enters the runtime with `handle.enter()` and registers `sleep`s polled once
//!   with a no-op waker (tokio's time driver has one lock for the whole runtime).

use std::hint::black_box;
use std::pin::{Pin, pin};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use chime::{Fire, Scheduler};
use tokio::runtime::Handle;

use crate::Sizes;
use crate::measure::{median, multi_thread, poll_once, registered, spread};
use crate::report::{Better, Figure, Report, Unit};

/// Timers each measuring thread keeps pending.
const PENDING_PER_THREAD: usize = 10_000;

fn noop(_: &Fire) {}

#[derive(Debug, Clone, Copy)]
enum Side {
    Chime,
    Tokio,
}

/// Aggregate ns per pair with `threads` threads running `pairs` pairs each.
fn run_threads(side: Side, sched: &Scheduler, handle: &Handle, threads: usize, pairs: usize) -> f64 {
    let barrier = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (sched, handle, barrier) = (sched.clone(), handle.clone(), barrier.clone());
            std::thread::spawn(move || {
                let _entered = handle.enter();
                let base = 1_000_000_007 * (t + 1);
                match side {
                    Side::Chime => {
                        let ids: Vec<_> = (0..PENDING_PER_THREAD)
                            .map(|i| sched.after(spread(base + i), noop).expect("running"))
                            .collect();
                        barrier.wait();
                        let start = Instant::now();
                        for i in 0..pairs {
                            let id = sched.after(spread(i), noop).expect("running");
                            sched.cancel(black_box(id)).expect("just armed");
                        }
                        let took = start.elapsed();
                        ids.into_iter().for_each(|id| sched.cancel(id).expect("pending"));
                        took
                    }
                    Side::Tokio => {
                        let pending: Vec<Pin<Box<tokio::time::Sleep>>> =
                            registered(PENDING_PER_THREAD, |i| tokio::time::sleep(spread(base + i)));
                        barrier.wait();
                        let start = Instant::now();
                        for i in 0..pairs {
                            let mut sleep = pin!(tokio::time::sleep(spread(i)));
                            let _ = black_box(poll_once(sleep.as_mut()));
                        }
                        let took = start.elapsed();
                        drop(pending);
                        took
                    }
                }
            })
        })
        .collect();
    let slowest =
        workers.into_iter().map(|w| w.join().expect("a measuring thread panicked")).max().unwrap_or_default();
    slowest.as_nanos() as f64 / (threads * pairs) as f64
}

/// Workload 7.
pub(crate) fn run(sizes: Sizes, report: &mut Report) {
    let rt = multi_thread(2);
    let handle = rt.handle().clone();
    let sched = rt.block_on(async { Scheduler::start() });
    let pairs = sizes.pairs();
    // [side][threads - 1]: median over rounds, the sides and thread counts taking turns.
    let mut samples = vec![vec![Vec::new(); 2]; 2];
    for _ in 0..sizes.rounds() {
        for (s, side) in [Side::Chime, Side::Tokio].into_iter().enumerate() {
            for threads in 1..=2 {
                samples[s][threads - 1].push(run_threads(side, &sched, &handle, threads, pairs));
            }
        }
    }
    let [[chime1, chime2], [tokio1, tokio2]] = [0, 1].map(|s| [0, 1].map(|t| median(&mut samples[s][t])));
    report.push(
        Figure::new(7, "arm+cancel, 1 thread", Unit::Nanos, Better::Lower, chime1).vs("tokio sleep", tokio1),
    );
    report.push(
        Figure::new(
            7,
            "arm+cancel, 2 threads at once (wall / all pairs)",
            Unit::Nanos,
            Better::Lower,
            chime2,
        )
        .vs("tokio sleep", tokio2),
    );
    report.push(
        Figure::new(7, "throughput 2 threads / 1 thread", Unit::Factor, Better::Higher, chime1 / chime2)
            .vs("tokio sleep", tokio1 / tokio2),
    );
    report.note(format!(
        "[7] {pairs} pairs per thread per round, {} pending per thread, median of {} rounds; std threads \
         calling into a shared Scheduler handle / a tokio runtime entered with handle.enter()",
        PENDING_PER_THREAD,
        sizes.rounds()
    ));
    rt.block_on(sched.shutdown());
}
