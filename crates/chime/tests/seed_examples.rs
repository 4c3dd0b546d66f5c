//! Every timer example of the five seed documents (`/work/shared/seeds/`), reproduced with chime under
//! tokio's paused clock and checked exactly: which callbacks run, when (to the nanosecond of tokio's
//! clock, relative to the test's start), how often, in which order, and with which cancel reason.
//!
//! Not covered here because chime does not implement them yet: Ratchet's `timerfd` ticker, Copas'
//! workers and eventer, Knot's `event.socket` and `worker.*`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chime::{CancelReason, Error, Fire, Scheduler, Timer, TimerId};
use tokio::time::Instant;

/// Observations made by callbacks, shared with the test body.
type Log<T> = Arc<Mutex<Vec<T>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn taken<T: Clone>(log: &Log<T>) -> Vec<T> {
    log.lock().unwrap().clone()
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// What a Copas / resty style timer's callbacks saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Arm,
    Expire { count: u64, missed: u64 },
    Cancel(CancelReason),
}

/// Copas Timer, "Timers": `copas.newtimer(arm_cb, expire_cb, cancel_cb, recurring):arm(interval)` with
/// `recurring = true` and `interval = 5` (seconds), then `copas.loop()`: the expire callback
/// ("executing the timer") runs every 5 s. Also Copas' `timer:arm(interval)` on an armed timer
/// (restarts it, arm callback again, no cancel callback) and `timer:cancel()`, whose cancel callback
/// must run once only (Copas' double-cancel flaw).
#[tokio::test(start_paused = true)]
async fn copas_recurring_timer_with_arm_expire_and_cancel_callbacks() -> Result<(), Error> {
    let sched = Scheduler::start();
    let start = Instant::now();
    let seen: Log<(Duration, Seen)> = log();
    let (on_arm, on_expire, on_cancel) = (seen.clone(), seen.clone(), seen.clone());
    let timer = sched
        .timer(secs(5))
        .recurring()
        .on_arm(move || on_arm.lock().unwrap().push((start.elapsed(), Seen::Arm)))
        .on_expire(move |fire: &Fire| {
            // expire_cb: print("executing the timer")
            let expire = Seen::Expire { count: fire.count(), missed: fire.missed() };
            on_expire.lock().unwrap().push((start.elapsed(), expire));
        })
        .on_cancel(move |reason| on_cancel.lock().unwrap().push((start.elapsed(), Seen::Cancel(reason))))
        .arm()?;

    assert_eq!(taken(&seen), vec![(Duration::ZERO, Seen::Arm)], "arm callback at once, nothing else");
    assert!(timer.is_armed());
    assert_eq!(timer.interval(), secs(5));
    assert_eq!(timer.remaining(), Some(secs(5)));

    // copas.loop(): let the scheduler run for 17 s.
    sched.sleep(secs(17)).await;
    assert_eq!(
        taken(&seen)[1..],
        [
            (secs(5), Seen::Expire { count: 1, missed: 0 }),
            (secs(10), Seen::Expire { count: 2, missed: 0 }),
            (secs(15), Seen::Expire { count: 3, missed: 0 }),
        ]
    );
    assert_eq!(timer.count(), 3);
    assert_eq!(timer.remaining(), Some(secs(3)), "next run on the 5 s grid, at 20 s");

    // t:arm(2): re-arm the armed timer from now with a new interval.
    timer.arm(secs(2))?;
    assert_eq!(timer.interval(), secs(2));
    assert_eq!(timer.remaining(), Some(secs(2)));
    sched.sleep(secs(5)).await; // until 22 s: runs at 19 s and 21 s, not at 20 s
    timer.cancel()?;
    assert_eq!(timer.cancel(), Err(Error::AlreadyCancelled), "a second cancel is refused");
    assert_eq!(timer.arm(secs(5)), Err(Error::AlreadyCancelled), "a cancelled timer cannot be re-armed");
    assert!(!timer.is_armed());
    sched.sleep(secs(30)).await;

    assert_eq!(
        taken(&seen),
        vec![
            (Duration::ZERO, Seen::Arm),
            (secs(5), Seen::Expire { count: 1, missed: 0 }),
            (secs(10), Seen::Expire { count: 2, missed: 0 }),
            (secs(15), Seen::Expire { count: 3, missed: 0 }),
            (secs(17), Seen::Arm),
            (secs(19), Seen::Expire { count: 4, missed: 0 }),
            (secs(21), Seen::Expire { count: 5, missed: 0 }),
            (secs(22), Seen::Cancel(CancelReason::User)),
        ],
        "re-arming runs the arm callback again and never the cancel callback; cancel runs it once"
    );
    Ok(())
}

/// Knot Resolver, `event.after(time, function)`: `event.after(1 * minute, function() print('Hi!') end)`
/// runs the function once after a minute; "the first parameter of the callback is the event itself".
#[tokio::test(start_paused = true)]
async fn knot_event_after_runs_once_after_a_minute() -> Result<(), Error> {
    let sched = Scheduler::start();
    let start = Instant::now();
    let hits: Log<(Duration, TimerId, u64, Instant)> = log();
    let seen = hits.clone();
    let id = sched.after(Duration::from_secs(60), move |fire: &Fire| {
        seen.lock().unwrap().push((start.elapsed(), fire.id(), fire.count(), fire.scheduled()));
    })?;

    sched.sleep(ms(59_999)).await;
    assert!(taken(&hits).is_empty(), "never early");
    sched.sleep(ms(2)).await;
    assert_eq!(taken(&hits), vec![(secs(60), id, 1, start + secs(60))], "once, at 60 s, with its own id");

    sched.sleep(secs(600)).await;
    assert_eq!(taken(&hits).len(), 1, "a one-shot runs once");
    assert_eq!(sched.cancel(id), Err(Error::NotFound), "its id is gone once it ran");
    assert_eq!(sched.pending(), 0);
    Ok(())
}

/// Knot Resolver, `event.recurrent(interval, function)`:
/// `msg_count = 0; event.recurrent(5 * sec, function(e) msg_count = msg_count + 1; print('Hi #'..msg_count) end)`.
#[tokio::test(start_paused = true)]
async fn knot_event_recurrent_counts_messages_every_five_seconds() -> Result<(), Error> {
    let sched = Scheduler::start();
    let start = Instant::now();
    let msg_count = Arc::new(AtomicU64::new(0));
    let lines: Log<(Duration, String, u64, u64)> = log();
    let (count, seen) = (msg_count.clone(), lines.clone());
    let every = sched.recurrent(secs(5), move |fire: &Fire| {
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        seen.lock().unwrap().push((start.elapsed(), format!("Hi #{n}"), fire.count(), fire.missed()));
    })?;

    sched.sleep(secs(22)).await;
    assert_eq!(
        taken(&lines),
        vec![
            (secs(5), "Hi #1".to_string(), 1, 0),
            (secs(10), "Hi #2".to_string(), 2, 0),
            (secs(15), "Hi #3".to_string(), 3, 0),
            (secs(20), "Hi #4".to_string(), 4, 0),
        ]
    );
    assert_eq!(msg_count.load(Ordering::SeqCst), 4);

    sched.cancel(every)?;
    sched.sleep(secs(60)).await;
    assert_eq!(msg_count.load(Ordering::SeqCst), 4, "no run after cancel");
    assert_eq!(sched.cancel(every), Err(Error::NotFound));
    Ok(())
}

/// Knot Resolver, `event.reschedule(event_id, timeout)`:
/// `local interval = 1 * minute; event.after(1 * minute, function (ev) print('Good morning!');
/// interval = interval / 2; event.reschedule(ev, interval) end)`: a one-shot that re-arms itself from
/// its own callback, halving the interval each time; the event is the same throughout, so its run
/// count goes 1, 2, 3, ... (Stopped after six runs: halving forever converges on the two-minute mark.)
#[tokio::test(start_paused = true)]
async fn knot_event_reschedule_halves_the_interval_from_inside_the_callback() -> Result<(), Error> {
    const RUNS: usize = 6;
    let sched = Scheduler::start();
    let start = Instant::now();
    let mornings: Log<(Duration, Instant, u64, Result<(), Error>)> = log();
    let (seen, events) = (mornings.clone(), sched.clone());
    let mut interval = Duration::from_secs(60);
    let ev = sched.after(Duration::from_secs(60), move |fire: &Fire| {
        // print('Good morning!')
        let runs = seen.lock().unwrap().len() + 1;
        interval /= 2;
        let rescheduled = if runs < RUNS { events.reschedule(fire.id(), interval) } else { Ok(()) };
        seen.lock().unwrap().push((start.elapsed(), fire.scheduled(), fire.count(), rescheduled));
    })?;

    sched.sleep(secs(200)).await;
    // 60 s, then 30, 15, 7.5, 3.75 and 1.875 s later.
    let expected: Vec<Duration> =
        [60_000, 90_000, 105_000, 112_500, 116_250, 118_125].into_iter().map(ms).collect();
    let runs = taken(&mornings);
    assert_eq!(runs.iter().map(|r| r.0).collect::<Vec<_>>(), expected, "run instants");
    assert_eq!(
        runs.iter().map(|r| r.1).collect::<Vec<_>>(),
        expected.iter().map(|&d| start + d).collect::<Vec<_>>(),
        "each run was due exactly where it ran"
    );
    assert_eq!(
        runs.iter().map(|r| r.2).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6],
        "Fire::count() counts every run of the one event (runs so far, this one included)"
    );
    assert!(
        runs.iter().all(|r| r.3.is_ok()),
        "every reschedule from inside the callback succeeded: {runs:?}"
    );
    assert_eq!(sched.cancel(ev), Err(Error::NotFound), "not rescheduled after the last run: gone");
    assert_eq!(sched.pending(), 0);
    Ok(())
}

/// Knot Resolver, `event.cancel(event_id)`: `e = event.after(1 * minute, function() print('Hi!') end);
/// event.cancel(e)`: the event never runs; cancelling (or rescheduling) it again has no effect, and
/// its id is never reused by a newer event (Knot's documented flaw).
#[tokio::test(start_paused = true)]
async fn knot_event_cancel_stops_the_event() -> Result<(), Error> {
    let sched = Scheduler::start();
    let start = Instant::now();
    let hits: Log<(Duration, &'static str)> = log();
    let seen = hits.clone();
    let e = sched.after(Duration::from_secs(60), move |_: &Fire| {
        seen.lock().unwrap().push((start.elapsed(), "Hi!"))
    })?;
    sched.cancel(e)?;
    assert_eq!(sched.pending(), 0);

    // A newer event, possibly in the freed slot: the stale id must not reach it.
    let seen = hits.clone();
    let newer = sched.after(Duration::from_secs(60), move |_: &Fire| {
        seen.lock().unwrap().push((start.elapsed(), "newer"));
    })?;
    assert_ne!(newer, e);
    assert_eq!(sched.cancel(e), Err(Error::NotFound), "no effect on an already cancelled event");
    assert_eq!(sched.reschedule(e, secs(1)), Err(Error::NotFound), "no effect on a cancelled event");

    sched.sleep(secs(120)).await;
    assert_eq!(taken(&hits), vec![(secs(60), "newer")], "the cancelled event never ran");
    Ok(())
}

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

/// resty.timer's usage example: an object with `start()` (`resty_timer({interval = 1, expire =
/// self.timer_callback, cancel = self.cancel_callback}, self, 1, " two ", 3)`, a no-op when already
/// started) and `stop()` (cancels the timer). The expire callback prints "starting myName: 1 two 3";
/// the cancel callback gets the reason first and prints "stopping myName: 1 two 3", telling apart
/// `CANCEL_USER` (timer:cancel), `CANCEL_GC` (the timer was garbage-collected: chime's handle dropped)
/// and `CANCEL_SYSTEM` (the worker is exiting: chime's shutdown).
#[tokio::test(start_paused = true)]
async fn resty_timer_object_with_start_stop_and_callback_arguments() -> Result<(), Error> {
    struct Object {
        name: &'static str,
        timer: Option<Timer>,
        sched: Scheduler,
        start: Instant,
        log: Log<(Duration, String)>,
    }

    impl Object {
        fn start(&mut self) -> Result<(), Error> {
            if self.timer.is_some() {
                return Ok(());
            }
            // self + three parameters to pass to the callbacks, captured by the closures.
            let args = (self.name, 1, " two ", 3);
            let (start, on_expire, on_cancel) = (self.start, self.log.clone(), self.log.clone());
            self.timer = Some(
                self.sched
                    .timer(secs(1))
                    .on_expire(move |_: &Fire| {
                        let (name, a, b, c) = args;
                        on_expire
                            .lock()
                            .unwrap()
                            .push((start.elapsed(), format!("starting {name}: {a}{b}{c}")));
                    })
                    .on_cancel(move |reason: CancelReason| {
                        let (name, a, b, c) = args;
                        let why = match reason {
                            CancelReason::User => "CANCEL_USER",
                            CancelReason::Dropped => "CANCEL_GC",
                            CancelReason::Shutdown => "CANCEL_SYSTEM",
                            _ => "other",
                        };
                        on_cancel
                            .lock()
                            .unwrap()
                            .push((start.elapsed(), format!("stopping {name}: {a}{b}{c} ({why})")));
                    })
                    .arm()?,
            );
            Ok(())
        }

        fn stop(&mut self) -> Result<(), Error> {
            match self.timer.take() {
                Some(timer) => timer.cancel(),
                None => Ok(()),
            }
        }
    }

    let sched = Scheduler::start();
    let start = Instant::now();
    let lines = log();
    let object = |name| Object { name, timer: None, sched: sched.clone(), start, log: lines.clone() };

    let mut object1 = object("myName");
    object1.start()?;
    object1.start()?; // already started: no second timer
    sched.sleep(ms(1500)).await; // the one-shot expires at 1 s
    object1.stop()?; // nothing left to run: no cancel callback
    object1.start()?; // due at 2.5 s
    sched.sleep(ms(500)).await;
    object1.stop()?; // at 2 s: CANCEL_USER
    object1.stop()?; // stopped already: no-op
    sched.sleep(secs(1)).await;
    object1.start()?; // at 3 s, due at 4 s
    sched.sleep(ms(200)).await;
    drop(object1); // at 3.2 s: the timer goes with its owner, CANCEL_GC
    let mut object2 = object("myName");
    object2.start()?; // due at 4.2 s
    sched.sleep(ms(300)).await;
    let report = sched.shutdown().await; // at 3.5 s: CANCEL_SYSTEM
    assert_eq!(report.timers_cancelled, 1);
    assert_eq!(object2.stop(), Err(Error::Shutdown), "nothing to stop after shutdown");
    tokio::time::sleep(secs(5)).await;

    assert_eq!(
        taken(&lines),
        vec![
            (ms(1000), "starting myName: 1 two 3".to_string()),
            (ms(2000), "stopping myName: 1 two 3 (CANCEL_USER)".to_string()),
            (ms(3200), "stopping myName: 1 two 3 (CANCEL_GC)".to_string()),
            (ms(3500), "stopping myName: 1 two 3 (CANCEL_SYSTEM)".to_string()),
        ]
    );
    Ok(())
}

/// resty.timer, `cancel()`: "returns results of the 'cancel' callback, or true if no callback was
/// provided or nil + "already cancelled" if called repeatedly", with the example
/// `local t, err = resty_timer(options); if t then t:cancel() end` (immediately cancel the timer again).
#[tokio::test(start_paused = true)]
async fn resty_cancel_twice_reports_already_cancelled() -> Result<(), Error> {
    let sched = Scheduler::start();
    let expired = Arc::new(AtomicU64::new(0));
    let reasons: Log<CancelReason> = log();

    let (on_expire, on_cancel) = (expired.clone(), reasons.clone());
    let t = sched
        .timer(secs(1))
        .recurring()
        .on_expire(move |_: &Fire| {
            on_expire.fetch_add(1, Ordering::SeqCst);
        })
        .on_cancel(move |reason| on_cancel.lock().unwrap().push(reason))
        .arm()?;
    assert_eq!(t.cancel(), Ok(()), "immediately cancel the timer again");
    assert_eq!(taken(&reasons), vec![CancelReason::User], "the cancel callback ran, once");
    let again = t.cancel();
    assert_eq!(again, Err(Error::AlreadyCancelled));
    assert!(again.unwrap_err().to_string().contains("already cancelled"));
    assert_eq!(sched.cancel(t.id()), Err(Error::NotFound), "by id: gone");
    assert_eq!(taken(&reasons), vec![CancelReason::User], "never a second cancel callback");

    // No cancel callback provided: still Ok ("true"), then "already cancelled".
    let (on_expire, n) = (expired.clone(), sched.clone());
    let bare = n
        .timer(secs(1))
        .on_expire(move |_: &Fire| {
            on_expire.fetch_add(1, Ordering::SeqCst);
        })
        .arm()?;
    assert_eq!(bare.cancel(), Ok(()));
    assert_eq!(bare.cancel(), Err(Error::AlreadyCancelled));

    sched.sleep(secs(5)).await;
    assert_eq!(expired.load(Ordering::SeqCst), 0, "cancelled timers never expire");
    Ok(())
}

/// resty.timer, `immediate` and `jitter` options: "immediate: will do the first run immediately (the
/// initial interval will be set to 0 seconds). This option requires the recurring option. The first run
/// will not include the jitter interval, it will be added to second run." and "jitter: variable interval
/// to add to the first interval ... between interval and interval + 1", spreading many timers.
#[tokio::test(start_paused = true)]
async fn resty_immediate_with_jitter_adds_the_jitter_to_the_second_run() -> Result<(), Error> {
    const TIMERS: usize = 8;
    let sched = Scheduler::start();
    let start = Instant::now();
    let jitter = ms(500);

    // "This option requires the recurring option."
    let refused = sched.timer(secs(1)).immediate().on_expire(|_: &Fire| {}).arm();
    assert!(matches!(refused, Err(Error::InvalidOption(ref o)) if o.option() == "immediate"), "{refused:?}");

    let mut runs: Vec<Log<(Duration, Duration)>> = Vec::new();
    let mut timers = Vec::new();
    for _ in 0..TIMERS {
        let seen = log();
        let on_expire = seen.clone();
        let timer = sched
            .timer(secs(1))
            .recurring()
            .immediate()
            .jitter(jitter)
            .on_expire(move |fire: &Fire| {
                on_expire.lock().unwrap().push((start.elapsed(), fire.scheduled() - start));
            })
            .arm()?;
        runs.push(seen);
        timers.push(timer);
    }
    // Non-immediate, for comparison: the jitter goes on the first run.
    let plain_runs = log();
    let on_expire = plain_runs.clone();
    let plain = sched
        .timer(secs(1))
        .recurring()
        .jitter(jitter)
        .on_expire(move |fire: &Fire| {
            on_expire.lock().unwrap().push((start.elapsed(), fire.scheduled() - start))
        })
        .arm()?;

    sched.sleep(ms(3600)).await;
    let mut drawn = Vec::new();
    for seen in &runs {
        let seen = taken(seen);
        assert_eq!(seen.len(), 4, "runs at 0 s and about 1, 2 and 3 s: {seen:?}");
        assert_eq!(seen[0], (Duration::ZERO, Duration::ZERO), "the immediate run: at once, no jitter");
        let j = seen[1].1 - secs(1);
        assert!(j < jitter, "the second run is due at interval + jitter draw: {seen:?}");
        for (k, &(ran, due)) in seen.iter().enumerate().skip(1) {
            assert_eq!(due, secs(1) * k as u32 + j, "the jitter shifts the grid once: {seen:?}");
            assert!(
                ran >= due && ran - due < ms(1),
                "never early, late by under tokio's 1 ms tick: {seen:?}"
            );
        }
        drawn.push(j);
    }
    drawn.sort();
    drawn.dedup();
    assert!(drawn.len() > 1, "{TIMERS} timers drew the same jitter: {drawn:?}");

    let plain_seen = taken(&plain_runs);
    assert_eq!(plain_seen.len(), 3, "{plain_seen:?}");
    let j = plain_seen[0].1 - secs(1);
    assert!(j < jitter, "without immediate the first run carries the jitter: {plain_seen:?}");
    for (k, &(ran, due)) in plain_seen.iter().enumerate() {
        assert_eq!(due, secs(1) * (k as u32 + 1) + j);
        assert!(ran >= due && ran - due < ms(1));
    }
    drop((timers, plain));
    Ok(())
}

/// resty.timer, `detached`: "if set to true the timer will keep running detached, if set to false the
/// timer will be garbage collected unless anchored by the user" (then its cancel callback gets
/// `CANCEL_GC`).
#[tokio::test(start_paused = true)]
async fn resty_detached_timer_keeps_running_without_its_handle() -> Result<(), Error> {
    let sched = Scheduler::start();
    let start = Instant::now();
    let seen: Log<(Duration, &'static str, Seen)> = log();
    let timer = |name: &'static str| {
        let (on_expire, on_cancel) = (seen.clone(), seen.clone());
        sched
            .timer(secs(1))
            .recurring()
            .on_expire(move |fire: &Fire| {
                let expire = Seen::Expire { count: fire.count(), missed: fire.missed() };
                on_expire.lock().unwrap().push((start.elapsed(), name, expire));
            })
            .on_cancel(move |reason| {
                on_cancel.lock().unwrap().push((start.elapsed(), name, Seen::Cancel(reason)))
            })
    };

    let anchored_then_detached = timer("detach()").arm()?.detach();
    let _detached = timer("arm_detached()").arm_detached()?;
    drop(timer("not detached").arm()?); // garbage: cancelled at once

    sched.sleep(ms(2500)).await;
    sched.cancel(anchored_then_detached)?; // by id, at 2.5 s
    assert_eq!(sched.cancel(anchored_then_detached), Err(Error::NotFound));
    sched.sleep(secs(1)).await;
    let report = sched.shutdown().await; // at 3.5 s
    assert_eq!(report.timers_cancelled, 1, "the detached timer was still running");

    let expire = |count| Seen::Expire { count, missed: 0 };
    assert_eq!(
        taken(&seen),
        vec![
            (Duration::ZERO, "not detached", Seen::Cancel(CancelReason::Dropped)),
            (secs(1), "detach()", expire(1)),
            (secs(1), "arm_detached()", expire(1)),
            (secs(2), "detach()", expire(2)),
            (secs(2), "arm_detached()", expire(2)),
            (ms(2500), "detach()", Seen::Cancel(CancelReason::User)),
            (secs(3), "arm_detached()", expire(3)),
            (ms(3500), "arm_detached()", Seen::Cancel(CancelReason::Shutdown)),
        ]
    );
    Ok(())
}
