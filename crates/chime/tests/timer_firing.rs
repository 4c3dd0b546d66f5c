//! When timers fire: never early, in order, on a drift-free grid, with each missed-tick policy.

mod common;

use chime::{Fire, Missed, Scheduler};
use common::{Log, ms, ms_since};
use std::time::Duration;
use tokio::time::{Instant, advance};

/// Lets the driver task run after the clock moved.
async fn settle() {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn never_early_and_exactly_on_time() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let log = Log::new();
    let seen = log.clone();
    sched
        .after(ms(100), move |fire: &Fire| seen.push((Instant::now(), fire.scheduled(), fire.count())))
        .unwrap();
    sched.sleep(ms(99)).await;
    advance(ms(1) - Duration::from_nanos(1)).await;
    settle().await;
    assert!(log.get().is_empty(), "fired a nanosecond early");
    advance(Duration::from_nanos(1)).await;
    settle().await;
    assert_eq!(log.get(), vec![(start + ms(100), start + ms(100), 1)]);
}

#[tokio::test(start_paused = true)]
async fn equal_deadlines_fire_in_arming_order_and_earlier_deadlines_first() {
    let sched = Scheduler::start();
    let log = Log::new();
    let _keep: Vec<_> = (0..5)
        .map(|i| {
            let seen = log.clone();
            if i % 2 == 0 {
                sched.after(ms(50), move |_: &Fire| seen.push(i)).unwrap();
                None
            } else {
                Some(sched.timer(ms(50)).on_expire(move |_| seen.push(i)).arm().unwrap())
            }
        })
        .collect();
    let seen = log.clone();
    sched.after(ms(50) - Duration::from_nanos(1), move |_: &Fire| seen.push(99)).unwrap();
    sched.sleep(ms(60)).await;
    assert_eq!(log.get(), vec![99, 0, 1, 2, 3, 4]);
}

/// Deadlines inside one millisecond keep their order and are never early. The driver sleeps on
/// tokio's timer, whose resolution is 1 ms, so with the paused clock they run together at the next
/// millisecond boundary.
#[tokio::test(start_paused = true)]
async fn deadlines_inside_a_millisecond_keep_order_and_are_never_early() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let log = Log::new();
    for micros in [700u64, 300, 500] {
        let seen = log.clone();
        sched
            .after(Duration::from_micros(micros), move |f: &Fire| {
                seen.push((micros, f.scheduled(), Instant::now()))
            })
            .unwrap();
    }
    sched.sleep(ms(2)).await;
    let runs = log.get();
    assert_eq!(runs.iter().map(|r| r.0).collect::<Vec<_>>(), vec![300, 500, 700]);
    for (micros, scheduled, ran) in runs {
        assert_eq!(scheduled, start + Duration::from_micros(micros));
        assert!(ran >= scheduled && ran <= start + ms(1), "{micros} µs ran at {:?}", ran - start);
    }
}

#[tokio::test(start_paused = true)]
async fn recurring_runs_on_a_grid() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let log = Log::new();
    let seen = log.clone();
    let _timer = sched
        .timer(ms(100))
        .recurring()
        .on_expire(move |f: &Fire| {
            seen.push((ms_since(start, f.scheduled()), ms_since(start, Instant::now())))
        })
        .arm()
        .unwrap();
    sched.sleep(ms(450)).await;
    assert_eq!(log.get(), vec![(100, 100), (200, 200), (300, 300), (400, 400)]);
}

/// The driver is held up for 350 ms (as by a blocked runtime): Skip runs once for tick 300 and
/// reports ticks 100 and 200 as missed, then stays on the grid.
#[tokio::test(start_paused = true)]
async fn skip_runs_once_after_an_overrun_and_realigns() {
    let (log, _timer, start, sched) = overrun(Missed::Skip).await;
    assert_eq!(log.get(), vec![(300, 350, 2)]);
    sched.sleep_until(start + ms(400)).await;
    assert_eq!(log.get().last().copied(), Some((400, 400, 0)));
}

#[tokio::test(start_paused = true)]
async fn burst_runs_every_missed_tick() {
    let (log, _timer, start, sched) = overrun(Missed::Burst).await;
    assert_eq!(log.get(), vec![(100, 350, 0), (200, 350, 0), (300, 350, 0)]);
    sched.sleep_until(start + ms(400)).await;
    assert_eq!(log.get().last().copied(), Some((400, 400, 0)));
}

#[tokio::test(start_paused = true)]
async fn delay_runs_an_interval_after_the_late_run() {
    let (log, _timer, start, sched) = overrun(Missed::Delay).await;
    assert_eq!(log.get(), vec![(100, 350, 0)]);
    sched.sleep_until(start + ms(450)).await;
    assert_eq!(log.get().last().copied(), Some((450, 450, 0)));
}

/// (scheduled ms, ran at ms, missed) of each run.
type Row = (u64, u64, u64);

/// A 100 ms recurring timer whose driver first gets to run 350 ms in.
async fn overrun(missed: Missed) -> (Log<Row>, chime::Timer, Instant, Scheduler) {
    let sched = Scheduler::start();
    let start = Instant::now();
    let log = Log::new();
    let seen = log.clone();
    let timer = sched
        .timer(ms(100))
        .recurring()
        .missed(missed)
        .on_expire(move |f: &Fire| {
            seen.push((ms_since(start, f.scheduled()), ms_since(start, Instant::now()), f.missed()))
        })
        .arm()
        .unwrap();
    advance(ms(350)).await;
    settle().await;
    (log, timer, start, sched)
}

#[tokio::test(start_paused = true)]
async fn immediate_runs_at_once_and_jitter_shifts_the_second_run() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let log = Log::new();
    let seen = log.clone();
    let _timer = sched
        .timer(ms(100))
        .recurring()
        .immediate()
        .jitter(ms(20))
        .on_expire(move |f: &Fire| seen.push(f.scheduled().duration_since(start)))
        .arm()
        .unwrap();
    sched.sleep(ms(350)).await;
    let runs = log.get();
    assert_eq!(runs[0], Duration::ZERO, "the immediate run carries no jitter");
    let jitter = runs[1] - ms(100);
    assert!(jitter < ms(20), "jitter {jitter:?} is outside [0, 20 ms)");
    assert_eq!(runs[2], ms(200) + jitter, "jitter is added once: the grid keeps it");
    assert_eq!(runs[3], ms(300) + jitter);
}

#[tokio::test(start_paused = true)]
async fn jitter_spreads_timers() {
    let sched = Scheduler::start();
    let log = Log::new();
    for _ in 0..20 {
        let seen = log.clone();
        sched
            .timer(ms(10))
            .jitter(ms(5))
            .on_expire(move |f| seen.push(f.scheduled()))
            .arm_detached()
            .unwrap();
    }
    sched.sleep(ms(20)).await;
    let mut at = log.get();
    assert_eq!(at.len(), 20);
    at.dedup();
    assert!(at.len() > 1, "20 jittered timers all landed on the same instant");
}

#[tokio::test(start_paused = true)]
async fn first_delay_is_distinct_from_the_interval() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let log = Log::new();
    let seen = log.clone();
    let _tinn = sched
        .timer(ms(300))
        .recurring()
        .first(ms(1000))
        .on_expire(move |f: &Fire| seen.push(ms_since(start, f.scheduled())))
        .arm()
        .unwrap();
    sched.sleep(ms(2000)).await;
    assert_eq!(log.get(), vec![1000, 1300, 1600, 1900]);
}

#[tokio::test(start_paused = true)]
async fn timers_years_ahead_work() {
    // tokio's DelayQueue panicked past 2^36 ms (2.2 years) of uptime.
    let sched = Scheduler::start();
    let start = Instant::now();
    let year = Duration::from_secs(365 * 86_400);
    let log = Log::new();
    let seen = log.clone();
    sched.after(3 * year, move |f: &Fire| seen.push(f.scheduled())).unwrap();
    let seen = log.clone();
    sched.after(40 * year, move |f: &Fire| seen.push(f.scheduled())).unwrap();
    sched.sleep(3 * year).await;
    assert_eq!(log.get(), vec![start + 3 * year]);
    sched.sleep(37 * year).await;
    assert_eq!(log.get(), vec![start + 3 * year, start + 40 * year]);
}

#[tokio::test(start_paused = true)]
async fn callbacks_can_arm_timers_that_are_already_due() {
    let sched = Scheduler::start();
    let log = Log::new();
    let (inner, seen) = (sched.clone(), log.clone());
    sched
        .after(ms(10), move |_: &Fire| {
            let seen = seen.clone();
            inner.after(Duration::ZERO, move |_: &Fire| seen.push(Instant::now())).unwrap();
        })
        .unwrap();
    let start = Instant::now();
    sched.sleep(ms(11)).await;
    assert_eq!(log.get(), vec![start + ms(10)], "the zero-delay timer ran in the same instant");
}
