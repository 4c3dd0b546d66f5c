//! TINN's timer examples (from its blog posts on timing): `Timer{Delay, Period}`, the self-stopping
//! counter, I/O with timeouts and the `wait()` loop, reproduced under tokio's paused clock.

mod common;

use std::time::Duration;

use chime::{CancelReason, Error, Fire, Scheduler, Timer};
use common::seed::{Log, log, ms, secs, taken};
use tokio::time::Instant;

/// TINN, "Its About Time": `Timer {Delay = 1*1000, Period = 300, TimerFunc = printThis}`,
/// `timer:start()`, "wait 4 seconds...", `timer:stop()`, "wait 2 seconds...": runs after the 1 s delay,
/// then every 300 ms until stopped, never after.
///
/// The run due at 4000 ms falls on the very instant the main task stops the timer: chime's driver
/// wakes the sleeping task and runs the due callback in the same pass, before that task can resume,
/// so that run happens: runs at 1000, 1300, ..., 3700 ms (10 runs before the stop) plus 4000 ms.
#[tokio::test(start_paused = true)]
async fn tinn_timer_with_delay_and_period_runs_until_stopped() -> Result<(), Error> {
    let sched = Scheduler::start();
    let start = Instant::now();
    let prints: Log<(Duration, u64, Instant)> = log();
    let seen = prints.clone();
    let timer: Timer = sched
        .timer(ms(300))
        .recurring()
        .first(secs(1))
        .on_expire(move |fire: &Fire| {
            seen.lock().unwrap().push((start.elapsed(), fire.count(), fire.scheduled()));
        })
        .arm()?; // timer:start()
    assert_eq!(timer.remaining(), Some(secs(1)), "first run after Delay, not Period");
    assert_eq!(timer.interval(), ms(300));

    sched.sleep(secs(4)).await; // wait(4000)
    timer.cancel()?; // timer:stop()
    let at_stop = taken(&prints).len();
    sched.sleep(secs(2)).await; // wait(2000)

    let runs = taken(&prints);
    assert_eq!(runs.len(), at_stop, "no run after stop");
    let expected: Vec<(Duration, u64, Instant)> = (0..=10u32)
        .map(|k| {
            let at = ms(1000) + ms(300) * k;
            (at, u64::from(k) + 1, start + at)
        })
        .collect();
    assert_eq!(runs, expected);
    assert_eq!(
        runs.iter().filter(|r| r.0 < secs(4)).map(|r| r.0).collect::<Vec<_>>(),
        (0..10u32).map(|k| ms(1000) + ms(300) * k).collect::<Vec<_>>(),
        "before the stop: exactly 10 runs, at 1000, 1300, ..., 3700 ms"
    );
    assert_eq!(start.elapsed(), secs(6));
    Ok(())
}

/// TINN, the counter: `local function counter(timer) count = count + 1; if count >= 5 then
/// timer:stop() end; print("counter: ", count) end` with `Timer {Period = 200, TimerFunc = counter,
/// Running = true}`: "call the function once every 200 milliseconds, and then quit" after 5 runs.
#[tokio::test(start_paused = true)]
async fn tinn_counter_stops_itself_after_five_runs() -> Result<(), Error> {
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Line {
        Counter(u64),
        Stopped(CancelReason),
    }
    let sched = Scheduler::start();
    let start = Instant::now();
    let lines: Log<(Duration, Line)> = log();
    let (seen, stopped, timers) = (lines.clone(), lines.clone(), sched.clone());
    let mut count = 0;
    let timer = sched
        .timer(ms(200))
        .recurring()
        .on_expire(move |fire: &Fire| {
            count += 1;
            if count >= 5 {
                timers.cancel(fire.id()).expect("a timer can stop itself from its own callback"); // timer:stop()
            }
            seen.lock().unwrap().push((start.elapsed(), Line::Counter(count)));
        })
        .on_cancel(move |reason| stopped.lock().unwrap().push((start.elapsed(), Line::Stopped(reason))))
        .arm()?; // Running = true

    sched.sleep(secs(3)).await;
    assert_eq!(
        taken(&lines),
        vec![
            (ms(200), Line::Counter(1)),
            (ms(400), Line::Counter(2)),
            (ms(600), Line::Counter(3)),
            (ms(800), Line::Counter(4)),
            (ms(1000), Line::Stopped(CancelReason::User)),
            (ms(1000), Line::Counter(5)),
        ]
    );
    assert!(timer.is_cancelled());
    assert!(!timer.is_armed());
    assert_eq!(timer.cancel(), Err(Error::AlreadyCancelled), "it already stopped itself");
    Ok(())
}

/// TINN, I/O with a timeout: `op = startioop(someparams); timer = Timer {Delay = 1000,
/// TimerFunc = cancel(op), Running = true}`: after one second the timer fires and cancels the
/// operation "if it's not already done"; cancelling a finished one does no harm.
#[tokio::test(start_paused = true)]
async fn tinn_io_timeout_with_a_one_shot_timer() -> Result<(), Error> {
    let sched = Scheduler::start();
    let start = Instant::now();

    // startioop: an operation that would take `takes`, as a task the timer can cancel.
    let startioop = |takes: Duration| {
        let io = sched.clone();
        tokio::spawn(async move {
            io.sleep(takes).await;
            ("response", start.elapsed())
        })
    };
    let cancel_timer = |op: &tokio::task::JoinHandle<(&'static str, Duration)>, fired: &Log<Duration>| {
        let (op, fired) = (op.abort_handle(), fired.clone());
        sched
            .timer(secs(1))
            .on_expire(move |_: &Fire| {
                op.abort(); // cancel(op)
                fired.lock().unwrap().push(start.elapsed());
            })
            .arm()
    };

    // A slow operation (5 s): the timer cancels it at exactly 1 s.
    let fired = log();
    let slow = startioop(secs(5));
    let timer = cancel_timer(&slow, &fired)?;
    let cancelled = slow.await.expect_err("the slow operation is cancelled");
    assert!(cancelled.is_cancelled());
    assert_eq!(start.elapsed(), secs(1), "cancelled after the 1 s delay");
    assert_eq!(taken(&fired), vec![secs(1)]);
    assert_eq!((timer.count(), timer.is_armed()), (1, false), "a one-shot: fired once");

    // A fast operation (200 ms) completes; the timer fires later and cancels nothing.
    let t0 = start.elapsed();
    let fired = log();
    let fast = startioop(ms(200));
    let timer = cancel_timer(&fast, &fired)?;
    let (response, done_at) = fast.await.expect("the fast operation completes");
    assert_eq!((response, done_at), ("response", t0 + ms(200)));
    sched.sleep(secs(2)).await;
    assert_eq!(taken(&fired), vec![t0 + secs(1)], "the timer still fires once, harmlessly");
    assert_eq!(timer.count(), 1);
    Ok(())
}

/// TINN, I/O with a timeout, expressed with chime's `sched.timeout`: "If the request has not been
/// satisfied within a specified amount of time, I want to cancel the operation ... I may have many
/// requests in flight." Four requests in flight, each bounded by one second.
#[tokio::test(start_paused = true)]
async fn tinn_io_timeout_with_sched_timeout() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let request = |takes: u64| {
        let (io, bound) = (sched.clone(), sched.clone());
        async move {
            let outcome = bound
                .timeout(secs(1), async move {
                    io.sleep(ms(takes)).await;
                    takes
                })
                .await;
            (outcome, start.elapsed())
        }
    };
    let (a, b, c, d) = tokio::join!(request(200), request(999), request(1001), request(5000));
    assert_eq!(a, (Ok(200), ms(200)), "satisfied in time");
    assert_eq!(b, (Ok(999), ms(999)), "satisfied just in time");
    let (c_outcome, c_at) = c;
    assert!(c_outcome.is_err(), "just too slow: {c_outcome:?}");
    assert_eq!(c_at, secs(1), "given up at the deadline, not when it would have finished");
    let (d_outcome, d_at) = d;
    assert!(d_outcome.is_err(), "far too slow: {d_outcome:?}");
    assert_eq!(d_at, secs(1));
    assert_eq!(start.elapsed(), secs(1), "nobody waited for the slow operations");
    sched.sleep(ms(10)).await;
    assert_eq!(sched.pending(), 0, "the abandoned operations' sleeps were unregistered");
}

/// TINN, "Hurry Up and Wait": `local test_wait = function(interval) while true do
/// print(string.format("interval: %d", IOProcessor.Clock:Milliseconds())); wait(interval) end end`
/// with an interval of 500 ms: the fiber prints every 500 ms.
#[tokio::test(start_paused = true)]
async fn tinn_wait_loop_prints_every_500_ms() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let prints: Log<String> = log();
    let (seen, io) = (prints.clone(), sched.clone());
    let test_wait = move |interval: Duration| async move {
        loop {
            seen.lock().unwrap().push(format!("interval: {}", start.elapsed().as_millis()));
            io.sleep(interval).await; // wait(interval)
        }
    };
    let fiber = tokio::spawn(test_wait(ms(500)));

    tokio::time::sleep(ms(2600)).await;
    fiber.abort();
    let _ = fiber.await;
    tokio::time::sleep(secs(2)).await;
    assert_eq!(
        taken(&prints),
        (0..=5).map(|k| format!("interval: {}", k * 500)).collect::<Vec<_>>(),
        "at 0, 500, ..., 2500 ms and no more"
    );
    assert_eq!(sched.pending(), 0, "the aborted fiber's sleep was unregistered");
}
