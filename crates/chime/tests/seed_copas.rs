//! Copas Timer's timer example (from its README), reproduced with chime under tokio's paused clock
//! and checked exactly. Copas' workers and eventer are covered in `workers.rs` and `events.rs`.

mod common;

use std::time::Duration;

use chime::{CancelReason, Error, Fire, Scheduler};
use common::seed::{Log, Seen, log, secs, taken};
use tokio::time::Instant;

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

/// Copas Timer, "Workers": `copas.addworker(function(queue) while true do data = queue:pop() ...
/// queue:pause() ... end end)` then `w:push("here is some data")`: the worker initialises at once,
/// runs only when data is available, and pause yields without fetching new data.
#[tokio::test(start_paused = true)]
async fn copas_worker_pops_its_queue_and_pauses() -> Result<(), Error> {
    let sched = Scheduler::start();
    let steps: Log<String> = log();
    let seen = steps.clone();
    let w = sched.worker(move |mut queue: chime::Queue<&'static str>| async move {
        seen.lock().unwrap().push("initialised".into());
        while let Some(data) = queue.pop().await {
            seen.lock().unwrap().push(format!("lengthy stuff on {data:?}"));
            queue.pause().await;
            seen.lock().unwrap().push("more lengthy stuff".into());
        }
    });
    tokio::task::yield_now().await;
    assert_eq!(taken(&steps), vec!["initialised"], "runs at once, then waits for data");
    let ticket = w.push("here is some data")?;
    assert_eq!(ticket.done().await, chime::ItemState::Completed);
    assert_eq!(
        taken(&steps),
        vec!["initialised", "lengthy stuff on \"here is some data\"", "more lengthy stuff"]
    );
    Ok(())
}

/// Copas Timer, "Events": `copas.eventer.decorate(my_module, {"start", "txerror", "rxerror", "stop"})`,
/// `copas:subscribe(my_app, my_app.before_start)` and `after_start`, then `self:dispatch("start",
/// "start data 1", "start data 2")`: both handlers get the event with its data, each from its own
/// queue; an undeclared event name is refused.
#[tokio::test(start_paused = true)]
async fn copas_eventer_decorates_a_module_and_dispatches_to_its_subscribers() -> Result<(), Error> {
    let sched = Scheduler::start();
    let my_module = sched.named_events::<Vec<&'static str>>(&["start", "txerror", "rxerror", "stop"]);
    let seen: Log<(&'static str, String, Vec<&'static str>)> = log();
    let subscribe = |handler: &'static str| {
        let seen = seen.clone();
        my_module.subscribe(
            move |mut eventqueue: chime::Queue<chime::NamedEvent<Vec<&'static str>>>| async move {
                while let Some(event) = eventqueue.pop().await {
                    seen.lock().unwrap().push((handler, event.name().to_string(), event.data().clone()));
                }
            },
        )
    };
    let (_before, _after) = (subscribe("before_start"), subscribe("after_start"));
    my_module.dispatch("start", vec!["start data 1", "start data 2"])?.wait().await;
    let mut got = taken(&seen);
    got.sort();
    let data = vec!["start data 1", "start data 2"];
    assert_eq!(
        got,
        vec![("after_start", "start".into(), data.clone()), ("before_start", "start".into(), data)]
    );
    assert_eq!(my_module.dispatch("restart", vec![]).unwrap_err(), Error::UnknownEvent("restart".into()));
    Ok(())
}
