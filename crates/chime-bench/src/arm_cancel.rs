//! Workloads 1 and 2: the cost of arming and cancelling one timer with others already pending, on
//! one thread of a current_thread runtime.
//!
//! Each side first fills its own pending set the same way (deadlines spread over four minutes,
//! [`spread`]), then the sides take turns in timed rounds; the median round is reported.
//!
//! - chime: `sched.after(d, noop)` then `sched.cancel(id)` (a zero-sized closure: no allocation);
//!   and the builder path Copas and resty.timer users take: `sched.timer(d).on_expire(noop).arm()`,
//!   then dropping the handle (which cancels).
//! - tokio: `tokio::time::sleep(d)` pinned on the stack, polled once with a no-op waker (which
//!   registers it with the time driver), dropped (which deregisters it).
//! - `tokio_util::time::DelayQueue`: `insert` then `remove`.
//! - the clock on its own: one read of the monotonic clock (`Instant::now()`, the vDSO's
//!   `clock_gettime`, what tokio reads) and one read of the CPU's counter (what chime reads when it
//!   arms, through `quanta`). chime's pair minus the counter read is its *engine cost*: how far it is
//!   from the limit the clock sets.
//! - one uncontended lock + unlock of a spin lock like a shard's (one atomic read-modify-write, then
//!   a store). An arm and a cancel each take their shard's lock once, so *the floor*, one counter
//!   read and two lock round-trips, is what any pair that reads the clock and locks a shared wheel
//!   costs on this machine before doing any work; `tokio / floor` is the best ratio such a design
//!   could show here.

use std::hint::black_box;
use std::pin::{Pin, pin};
use std::time::Duration;

use chime::{Fire, Scheduler};
use tokio_util::time::DelayQueue;

use crate::Sizes;
use crate::measure::{
    block_on_unbudgeted, current_thread, median, ns_per_call, poll_once, registered, size_label, spread,
};
use crate::report::{Better, Figure, Report, Unit};

fn noop(_: &Fire) {}

/// Runs `sides` in turn for `rounds` rounds of `calls` calls; the median ns per call of each side.
fn take_turns<const N: usize>(
    rounds: usize,
    calls: usize,
    sides: &mut [&mut dyn FnMut(usize); N],
) -> [f64; N] {
    let mut samples: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(rounds));
    for round in 0..rounds {
        for (side, op) in sides.iter_mut().enumerate() {
            // Each round arms fresh deadlines, spread like the pending ones.
            let offset = 1_000_000_007 + round * calls;
            samples[side].push(ns_per_call(calls, |i| op(offset + i)));
        }
    }
    samples.map(|mut s| median(&mut s))
}

/// Workload 1: arm + cancel pairs at each pending level.
pub(crate) fn run_arm_cancel(sizes: Sizes, report: &mut Report) {
    let rt = current_thread();
    for &pending in sizes.pending_levels() {
        let [chime, builder, tokio, delay_queue, mono, counter, lock] =
            block_on_unbudgeted(&rt, arm_cancel_at(pending, sizes));
        let name = format!("arm+cancel {} pending", size_label(pending));
        report.push(
            Figure::new(1, name.clone(), Unit::Nanos, Better::Lower, chime)
                .vs("tokio sleep", tokio)
                .goal_ratio(3.0),
        );
        report.push(
            Figure::new(
                1,
                format!("builder arm + drop {} pending", size_label(pending)),
                Unit::Nanos,
                Better::Lower,
                builder,
            )
            .vs("tokio sleep", tokio)
            .goal_ratio(3.0),
        );
        report.push(
            Figure::new(1, format!("{name}, vs DelayQueue"), Unit::Nanos, Better::Lower, chime)
                .vs("DelayQueue", delay_queue),
        );
        report.push(Figure::new(
            1,
            format!("engine cost (pair minus a counter read), {}", size_label(pending)),
            Unit::Nanos,
            Better::Lower,
            chime - counter,
        ));
        let floor = counter + 2.0 * lock;
        report.push(Figure::new(
            1,
            format!("pair beyond the floor (counter read + 2 locks), {}", size_label(pending)),
            Unit::Nanos,
            Better::Lower,
            chime - floor,
        ));
        if pending == sizes.pending_levels()[0] {
            report.push(Figure::new(
                1,
                "one monotonic clock read (Instant::now)",
                Unit::Nanos,
                Better::Lower,
                mono,
            ));
            report.push(Figure::new(1, "one CPU counter read (quanta)", Unit::Nanos, Better::Lower, counter));
            report.push(Figure::new(
                1,
                "one uncontended spin lock + unlock",
                Unit::Nanos,
                Better::Lower,
                lock,
            ));
            report.push(
                Figure::new(1, "the floor: counter read + 2 locks", Unit::Nanos, Better::Lower, floor)
                    .vs("tokio sleep", tokio),
            );
        }
    }
    report.note(format!(
        "[1] ns per pair: median of {} rounds of {} pairs per side, sides taking turns; tokio's Sleep is \
         pinned on the stack and polled once with a no-op waker, then dropped; the builder pair arms \
         a one-shot through sched.timer(d).on_expire(..).arm() and drops the handle",
        sizes.rounds(),
        sizes.pairs()
    ));
}

async fn arm_cancel_at(pending: usize, sizes: Sizes) -> [f64; 7] {
    let sched = Scheduler::start();
    for i in 0..pending {
        sched.after(spread(i), noop).expect("the scheduler is running");
    }
    let mut tokio_pending: Vec<Pin<Box<tokio::time::Sleep>>> =
        registered(pending, |i| tokio::time::sleep(spread(i)));
    let mut queue = DelayQueue::with_capacity(pending + 1);
    for i in 0..pending {
        queue.insert(i, spread(i));
    }
    // Registers the queue's own sleep, as a task polling it would.
    let _ = queue.poll_expired(&mut std::task::Context::from_waker(std::task::Waker::noop()));
    // Let chime's driver see its pending set and go back to sleep.
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(sched.pending(), pending, "every pre-armed chime timer is pending");

    let mut chime_side = |i: usize| {
        let id = sched.after(spread(i), noop).expect("the scheduler is running");
        sched.cancel(black_box(id)).expect("just armed");
    };
    let mut tokio_side = |i: usize| {
        let mut sleep = pin!(tokio::time::sleep(spread(i)));
        let _ = black_box(poll_once(sleep.as_mut()));
    };
    let mut builder_side = |i: usize| {
        let timer = sched.timer(spread(i)).on_expire(noop).arm().expect("the scheduler is running");
        drop(black_box(timer));
    };
    let mut queue_side = |i: usize| {
        let key = queue.insert(i, spread(i));
        black_box(queue.remove(&key));
    };
    let mut mono_side = |_: usize| {
        black_box(std::time::Instant::now());
    };
    let counter = quanta::Clock::new();
    let mut counter_side = |_: usize| {
        black_box(counter.delta_as_nanos(0, counter.raw()));
    };
    let lock = spin::mutex::SpinMutex::<u64, spin::relax::Spin>::new(0);
    let mut lock_side = |i: usize| {
        *lock.lock() += black_box(i as u64);
    };
    let result = take_turns(
        sizes.rounds(),
        sizes.pairs(),
        &mut [
            &mut chime_side,
            &mut builder_side,
            &mut tokio_side,
            &mut queue_side,
            &mut mono_side,
            &mut counter_side,
            &mut lock_side,
        ],
    );
    assert_eq!(sched.pending(), pending, "arm+cancel left the pending set as it was");
    sched.shutdown().await;
    tokio_pending.clear();
    drop(queue);
    result
}

/// Workload 2: a sleep created, polled once and dropped, with sleeps already pending.
pub(crate) fn run_sleep(sizes: Sizes, report: &mut Report) {
    let pending = sizes.sleep_pending();
    let [chime, tokio] = block_on_unbudgeted(&current_thread(), async {
        let sched = Scheduler::start();
        let mut chime_pending: Vec<Pin<Box<chime::Sleep>>> = registered(pending, |i| sched.sleep(spread(i)));
        let mut tokio_pending: Vec<Pin<Box<tokio::time::Sleep>>> =
            registered(pending, |i| tokio::time::sleep(spread(i)));
        tokio::time::sleep(Duration::from_millis(2)).await;
        let mut chime_side = |i: usize| {
            let mut sleep = pin!(sched.sleep(spread(i)));
            let _ = black_box(poll_once(sleep.as_mut()));
        };
        let mut tokio_side = |i: usize| {
            let mut sleep = pin!(tokio::time::sleep(spread(i)));
            let _ = black_box(poll_once(sleep.as_mut()));
        };
        let result = take_turns(sizes.rounds(), sizes.pairs(), &mut [&mut chime_side, &mut tokio_side]);
        chime_pending.clear();
        tokio_pending.clear();
        sched.shutdown().await;
        result
    });
    report.push(
        Figure::new(
            2,
            format!("sleep+poll+drop {} pending", size_label(pending)),
            Unit::Nanos,
            Better::Lower,
            chime,
        )
        .vs("tokio sleep", tokio)
        .goal_ratio(2.0),
    );
}
