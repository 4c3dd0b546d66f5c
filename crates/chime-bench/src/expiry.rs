//! Workload 3: expiry. One million callback timers due within 200 ms against one million spawned
//! tokio tasks that each await a sleep, on a multi-thread runtime with 2 workers.
//!
//! Both sides use absolute deadlines `base + i * 200 ms / n`, where `base` leaves room for arming.
//! The run has two phases, each measured as CPU time of every thread (`getrusage(RUSAGE_SELF)`):
//!
//! - **arm**: from the first arm until just before `base`. For tokio this includes the workers
//!   polling each new task once (which is what registers its sleep).
//! - **expiry**: from just before `base` until the last timer has run. The figure the goal judges.
//!
//! Both sides' callbacks do the same: count the run in a static atomic. Measured twice: with a
//! zero-sized closure, and with one that captures state as real callbacks do (an `Arc<AtomicU64>`
//! cloned per timer and incremented by each run, on both sides); the goal judges the second.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chime::Scheduler;
use tokio::time::Instant;

use crate::Sizes;
use crate::measure::{cpu_time, multi_thread, size_label};
use crate::report::{Better, Figure, Report, Unit};

/// The window the deadlines are spread over.
const WINDOW: Duration = Duration::from_millis(200);

static FIRED: AtomicU64 = AtomicU64::new(0);
static TARGET: AtomicU64 = AtomicU64::new(0);
static LAST: Mutex<Option<std::time::Instant>> = Mutex::new(None);

/// Counts one run; the last one notes the time.
fn hit() {
    if FIRED.fetch_add(1, Ordering::Relaxed) + 1 == TARGET.load(Ordering::Relaxed) {
        *LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
    }
}

/// One side's measurements.
#[derive(Debug, Clone, Copy)]
struct Phases {
    arm_cpu: Duration,
    arm_wall: Duration,
    expiry_cpu: Duration,
    /// From the first deadline to the last run.
    expiry_wall: Duration,
    /// Whether arming ended before the first deadline (otherwise the phases overlap).
    clean: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Chime,
    Tokio,
}

/// Runs one side on `rt`; `capture`: each callback holds a clone of an `Arc<AtomicU64>` it
/// increments.
fn measure(rt: &tokio::runtime::Runtime, side: Side, n: usize, headroom: Duration, capture: bool) -> Phases {
    let state = std::sync::Arc::new(AtomicU64::new(0));
    FIRED.store(0, Ordering::SeqCst);
    TARGET.store(n as u64, Ordering::SeqCst);
    *LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    rt.block_on(async {
        let sched = (side == Side::Chime).then(Scheduler::start);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let cpu0 = cpu_time();
        let t0 = Instant::now();
        let base = t0 + headroom;
        let step = WINDOW.as_nanos() as u64 / n.max(1) as u64;
        match &sched {
            Some(sched) => {
                let mut now = Instant::now();
                for i in 0..n {
                    if i % 1024 == 0 {
                        now = Instant::now();
                    }
                    let at = base + Duration::from_nanos(step * i as u64);
                    let delay = at.saturating_duration_since(now);
                    if capture {
                        let state = state.clone();
                        sched
                            .after(delay, move |_| {
                                state.fetch_add(1, Ordering::Relaxed);
                                hit();
                            })
                            .expect("running");
                    } else {
                        sched.after(delay, |_| hit()).expect("running");
                    }
                }
            }
            None => {
                for i in 0..n {
                    let at = base + Duration::from_nanos(step * i as u64);
                    let state = capture.then(|| state.clone());
                    drop(tokio::spawn(async move {
                        tokio::time::sleep_until(at).await;
                        if let Some(state) = state {
                            state.fetch_add(1, Ordering::Relaxed);
                        }
                        hit();
                    }));
                }
            }
        }
        let arm_wall = t0.elapsed();
        tokio::time::sleep_until(base - Duration::from_millis(10)).await;
        let queued = tokio::runtime::Handle::current().metrics().global_queue_depth();
        let clean = Instant::now() < base && FIRED.load(Ordering::SeqCst) == 0 && queued == 0;
        let cpu1 = cpu_time();
        while FIRED.load(Ordering::Acquire) < n as u64 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let cpu2 = cpu_time();
        let last =
            LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner).expect("the last run noted it");
        if let Some(sched) = sched {
            sched.shutdown().await;
        }
        Phases {
            arm_cpu: cpu1 - cpu0,
            arm_wall,
            expiry_cpu: cpu2 - cpu1,
            expiry_wall: last.saturating_duration_since(base.into_std()),
            clean,
        }
    })
}

/// Workload 3.
pub(crate) fn run(sizes: Sizes, report: &mut Report) {
    let n = sizes.million();
    let rt = multi_thread(2);
    // Room to arm before the first deadline: 2 us per timer (spawning 1M tasks takes ~1.5 s here),
    // at least 300 ms.
    let headroom = Duration::from_millis(300).max(Duration::from_nanos(2_000 * n as u64));
    let per = |d: Duration| d.as_nanos() as f64 / n as f64;
    let label = size_label(n);
    let captured = [Side::Chime, Side::Tokio].map(|side| measure(&rt, side, n, headroom, true));
    report.push(
        Figure::new(
            3,
            format!("expiry CPU per timer, {label} due in 200 ms, closure capturing an Arc"),
            Unit::Nanos,
            Better::Lower,
            per(captured[0].expiry_cpu),
        )
        .vs("spawn+sleep", per(captured[1].expiry_cpu))
        .goal_ratio(8.0),
    );
    let chime = measure(&rt, Side::Chime, n, headroom, false);
    let tokio = measure(&rt, Side::Tokio, n, headroom, false);
    drop(rt);
    report.push(
        Figure::new(
            3,
            format!("expiry CPU per timer, {label} due in 200 ms, zero-sized closure"),
            Unit::Nanos,
            Better::Lower,
            per(chime.expiry_cpu),
        )
        .vs("spawn+sleep", per(tokio.expiry_cpu)),
    );
    report.push(
        Figure::new(3, format!("arm CPU per timer, {label}"), Unit::Nanos, Better::Lower, per(chime.arm_cpu))
            .vs("spawn+sleep", per(tokio.arm_cpu)),
    );
    report.push(
        Figure::new(
            3,
            format!("arm+expiry CPU per timer, {label}"),
            Unit::Nanos,
            Better::Lower,
            per(chime.arm_cpu + chime.expiry_cpu),
        )
        .vs("spawn+sleep", per(tokio.arm_cpu + tokio.expiry_cpu)),
    );
    report.push(
        Figure::new(
            3,
            "arm wall time (arm / spawn loop)",
            Unit::Nanos,
            Better::Lower,
            chime.arm_wall.as_nanos() as f64,
        )
        .vs("spawn+sleep", tokio.arm_wall.as_nanos() as f64),
    );
    report.push(
        Figure::new(
            3,
            "expiry wall: first deadline to last run (>= 200 ms)",
            Unit::Nanos,
            Better::Lower,
            chime.expiry_wall.as_nanos() as f64,
        )
        .vs("spawn+sleep", tokio.expiry_wall.as_nanos() as f64),
    );
    report.note(format!(
        "[3] CPU = getrusage(RUSAGE_SELF) user+sys over all threads; arm phase = first arm until 10 ms \
         before the first deadline ({} ms of headroom), expiry phase = from there to the last run; \
         arming from the block_on thread, callbacks count into a static atomic",
        headroom.as_millis()
    ));
    for (name, side) in [("chime", chime), ("spawn+sleep", tokio)] {
        if !side.clean {
            report.note(format!(
                "[3] {name}: arming was not over before the first deadline (took {} ms): the phases overlap",
                side.arm_wall.as_millis()
            ));
        }
    }
}
