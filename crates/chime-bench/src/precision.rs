//! Workload 5: precision. Timers spread over 2 s, with enough others pending far out to make a
//! million in all (the goal says "with 1M pending"); each run records when it actually ran minus when it
//! was due. Then sparse timers, 2.03 ms apart with nothing else pending: a driver that sleeps a
//! millisecond or more between deadlines wakes on its alarm thread, not on tokio's millisecond steps.
//!
//! - chime: `sched.after` callbacks; lateness = `std::time::Instant::now()` in the callback minus
//!   `fire.scheduled().into_std()`.
//! - tokio: a spawned task per timer awaiting `sleep_until(at)`; lateness = now after the await
//!   minus `at`.
//!
//! Both on a multi-thread runtime with 2 workers. An early run has a negative lateness.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chime::{Fire, Scheduler};
use tokio::time::Instant;

use crate::Sizes;
use crate::measure::{block_on_unbudgeted, multi_thread, quantile, registered, size_label, spread};
use crate::report::{Better, Figure, Report, Unit};

/// The span the measured deadlines cover.
const SPAN: Duration = Duration::from_secs(2);
/// Time to arm before the first measured deadline.
const HEADROOM: Duration = Duration::from_millis(300);
/// chime's wheel tick: 2^20 ns.
const TICK_NS: f64 = 1_048_576.0;

/// Signed nanoseconds from `due` to `ran`.
fn lateness(ran: std::time::Instant, due: std::time::Instant) -> i64 {
    match ran.checked_duration_since(due) {
        Some(late) => late.as_nanos() as i64,
        None => -(due.duration_since(ran).as_nanos() as i64),
    }
}

/// Lateness statistics of one side.
#[derive(Debug, Clone, Copy)]
struct Stats {
    p50: f64,
    p99: f64,
    max: f64,
    early: usize,
}

fn stats(mut samples: Vec<i64>) -> Stats {
    samples.sort_unstable();
    Stats {
        p50: quantile(&samples, 0.5) as f64,
        p99: quantile(&samples, 0.99) as f64,
        max: samples.last().copied().unwrap_or(0) as f64,
        early: samples.iter().filter(|&&l| l < 0).count(),
    }
}

/// Where the measured deadlines fall.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Measured timers.
    n: usize,
    /// Timers pending minutes out beside them.
    background: usize,
    /// The deadline of timer `i` of `n`, from the start.
    offset: fn(usize, usize) -> Duration,
    /// Every deadline is within `HEADROOM + span` of the start.
    span: Duration,
}

/// Dense: `n` deadlines over [`SPAN`], armed in a scattered order.
fn dense(i: usize, n: usize) -> Duration {
    let slot = (i as u64).wrapping_mul(7919) % n as u64;
    HEADROOM + Duration::from_nanos(SPAN.as_nanos() as u64 * slot / n as u64)
}

/// Sparse deadlines: 2.03 ms apart, so they fall at every phase of tokio's millisecond steps.
const SPARSE_GAP: Duration = Duration::from_micros(2_030);

fn sparse(i: usize, _n: usize) -> Duration {
    HEADROOM + SPARSE_GAP * i as u32
}

async fn wait_for(samples: &Mutex<Vec<i64>>, layout: Layout) -> Vec<i64> {
    let n = layout.n;
    tokio::time::sleep(HEADROOM + layout.span).await;
    loop {
        {
            let mut s = samples.lock().unwrap_or_else(PoisonError::into_inner);
            if s.len() >= n {
                return std::mem::take(&mut *s);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn chime_side(layout: Layout) -> Stats {
    let Layout { n, background, offset, .. } = layout;
    block_on_unbudgeted(&multi_thread(2), async {
        let sched = Scheduler::start();
        for i in 0..background {
            sched.after(spread(i), |_| {}).expect("running");
        }
        let samples = Arc::new(Mutex::new(Vec::with_capacity(n)));
        let start = Instant::now();
        for i in 0..n {
            let samples = samples.clone();
            let delay = (start + offset(i, n)).saturating_duration_since(Instant::now());
            sched
                .after(delay, move |fire: &Fire| {
                    let late = lateness(std::time::Instant::now(), fire.scheduled().into_std());
                    samples.lock().unwrap_or_else(PoisonError::into_inner).push(late);
                })
                .expect("running");
        }
        let result = wait_for(&samples, layout).await;
        sched.shutdown().await;
        stats(result)
    })
}

fn tokio_side(layout: Layout) -> Stats {
    let Layout { n, background, offset, .. } = layout;
    block_on_unbudgeted(&multi_thread(2), async {
        let mut far: Vec<_> = registered(background, |i| tokio::time::sleep(spread(i)));
        let samples = Arc::new(Mutex::new(Vec::with_capacity(n)));
        let start = Instant::now();
        for i in 0..n {
            let samples = samples.clone();
            let at = start + offset(i, n);
            drop(tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                let late = lateness(std::time::Instant::now(), at.into_std());
                samples.lock().unwrap_or_else(PoisonError::into_inner).push(late);
            }));
        }
        let result = wait_for(&samples, layout).await;
        far.clear();
        stats(result)
    })
}

/// Workload 5.
pub(crate) fn run(sizes: Sizes, report: &mut Report) {
    let n = sizes.precision_timers();
    let background = sizes.million().saturating_sub(n);
    let layout = Layout { n, background, offset: dense, span: SPAN };
    let chime = chime_side(layout);
    let tokio = tokio_side(layout);
    let what = format!("{} over 2 s, {} pending", size_label(n), size_label(n + background));
    report.push(
        Figure::new(5, format!("lateness p50, {what}"), Unit::Nanos, Better::Lower, chime.p50)
            .vs("tokio sleep", tokio.p50),
    );
    let p99_goal = TICK_NS + 1e6;
    report.push(
        Figure::new(5, format!("lateness p99, {what}"), Unit::Nanos, Better::Lower, chime.p99)
            .vs("tokio sleep", tokio.p99)
            .goal_max(p99_goal, format!("<= tick + 1 ms = {:.2} ms", p99_goal / 1e6)),
    );
    report.push(
        Figure::new(5, format!("lateness max, {what}"), Unit::Nanos, Better::Lower, chime.max)
            .vs("tokio sleep", tokio.max),
    );
    let mut early =
        Figure::new(5, "early runs (never early)", Unit::Count, Better::Lower, chime.early as f64)
            .goal_max(0.0, "== 0");
    early.peer_name = Some("tokio sleep".into());
    early.peer = Some(tokio.early as f64);
    report.push(early);
    let sparse_n = sizes.sparse_timers();
    let layout = Layout { n: sparse_n, background: 0, offset: sparse, span: SPARSE_GAP * sparse_n as u32 };
    let (chime, tokio) = (chime_side(layout), tokio_side(layout));
    let what = format!("{sparse_n} timers 2.03 ms apart, nothing else pending");
    report.push(
        Figure::new(5, format!("lateness p50, {what}"), Unit::Nanos, Better::Lower, chime.p50)
            .vs("tokio sleep", tokio.p50),
    );
    report.push(
        Figure::new(5, format!("lateness p99, {what}"), Unit::Nanos, Better::Lower, chime.p99)
            .vs("tokio sleep", tokio.p99),
    );
    let mut early =
        Figure::new(5, format!("early runs, {what}"), Unit::Count, Better::Lower, chime.early as f64)
            .goal_max(0.0, "== 0");
    early.peer_name = Some("tokio sleep".into());
    early.peer = Some(tokio.early as f64);
    report.push(early);
    report.note(format!(
        "[5] {n} measured timers at scattered deadlines over 2 s plus {background} pending minutes out; \
         then {sparse_n} timers 2.03 ms apart alone (chime's driver sleeps on its alarm thread between \
         them); tokio side: one spawned task per measured timer; 2 workers"
    ));
}
