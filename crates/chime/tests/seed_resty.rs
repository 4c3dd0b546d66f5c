//! resty.timer's examples (from its LDoc page): the object with start/stop and callback
//! arguments, cancel twice, immediate with jitter, detached timers, under tokio's paused clock.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chime::{CancelReason, Error, Fire, Scheduler, Timer};
use common::seed::{Log, Seen, log, ms, secs, taken};
use tokio::time::Instant;

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
