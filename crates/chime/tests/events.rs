//! The event bus: Copas' eventer with Rust types, the named bus, and the scheduler's lifecycle.

mod common;

use chime::{Error, ItemState, Lifecycle, NamedEvent, Queue, Scheduler};
use common::{Log, ms};
use tokio::time::Instant;

#[derive(Clone, Debug, PartialEq)]
enum MyEvent {
    Start,
    Stop,
}

#[tokio::test(start_paused = true)]
async fn two_subscribers_each_get_every_event_and_wait_needs_both() {
    let sched = Scheduler::start();
    let events = sched.events::<MyEvent>();
    let log = Log::new();
    let subs: Vec<_> = [("fast", 0u64), ("slow", 50)]
        .into_iter()
        .map(|(name, cost)| {
            let seen = log.clone();
            events.subscribe(move |mut queue: Queue<MyEvent>| async move {
                while let Some(event) = queue.pop().await {
                    queue.pause_for(ms(cost)).await;
                    seen.push((name, event));
                }
            })
        })
        .collect();
    assert_eq!(events.subscribers(), 2);
    let start = Instant::now();
    let dispatch = events.dispatch(MyEvent::Start);
    assert_eq!(dispatch.delivered(), 2);
    dispatch.wait().await;
    assert_eq!(Instant::now() - start, ms(50), "wait resolved only when the slow handler was done");
    assert_eq!(log.take(), vec![("fast", MyEvent::Start), ("slow", MyEvent::Start)]);
    events.dispatch(MyEvent::Stop).wait().await;
    assert_eq!(log.take(), vec![("fast", MyEvent::Stop), ("slow", MyEvent::Stop)]);
    drop(subs);
}

#[tokio::test(start_paused = true)]
async fn wait_timeout_reports_a_stuck_handler() {
    let sched = Scheduler::start();
    let events = sched.events::<MyEvent>();
    let _stuck = events.subscribe(|mut queue: Queue<MyEvent>| async move {
        let _first = queue.pop().await;
        std::future::pending::<()>().await; // never takes the next event
    });
    assert_eq!(
        events.dispatch(MyEvent::Start).wait_timeout(ms(100)).await.map_err(|e| e.to_string()),
        Err("deadline has elapsed".to_string())
    );
    let second = events.dispatch(MyEvent::Stop);
    assert!(second.wait_timeout(ms(100)).await.is_err(), "never taken");
    assert_eq!(second.cancel(), 1, "withdrawn from the handler that had not taken it");
    assert_eq!(second.states(), vec![ItemState::Cancelled]);
    second.wait().await; // a cancelled delivery is final
}

#[tokio::test(start_paused = true)]
async fn dropping_a_subscription_unsubscribes() {
    let sched = Scheduler::start();
    let events = sched.events::<u32>();
    let log = Log::new();
    let seen = log.clone();
    let sub = events.subscribe(move |mut queue: Queue<u32>| async move {
        while let Some(n) = queue.pop().await {
            seen.push(n);
        }
        seen.push(0);
    });
    events.dispatch(1).wait().await;
    drop(sub);
    assert_eq!(events.subscribers(), 0);
    assert_eq!(events.dispatch(2).delivered(), 0);
    sched.sleep(ms(1)).await;
    assert_eq!(log.get(), vec![1, 0], "the handler ended after its queue closed");
}

#[tokio::test(start_paused = true)]
async fn the_named_bus_refuses_unknown_names() {
    let sched = Scheduler::start();
    let module = sched.named_events::<String>(&["start", "txerror", "rxerror", "stop"]);
    assert_eq!(module.names().collect::<Vec<_>>(), vec!["start", "txerror", "rxerror", "stop"]);
    let (all, errors) = (Log::new(), Log::new());
    let seen = all.clone();
    let _all = module.subscribe(move |mut queue: Queue<NamedEvent<String>>| async move {
        while let Some(e) = queue.pop().await {
            seen.push(format!("{}:{}", e.name(), e.data()));
        }
    });
    let seen = errors.clone();
    let _errors = module
        .subscribe_to(&["txerror", "rxerror"], move |mut queue: Queue<NamedEvent<String>>| async move {
            while let Some(e) = queue.pop().await {
                seen.push(e.name().to_string());
            }
        })
        .unwrap();
    module.dispatch("start", "start data 1".into()).unwrap().wait().await;
    module.dispatch("rxerror", "timeout".into()).unwrap().wait().await;
    assert_eq!(module.dispatch("restart", String::new()).unwrap_err(), Error::UnknownEvent("restart".into()));
    let refused = module.subscribe_to(&["start", "bogus"], |_q: Queue<NamedEvent<String>>| async {});
    assert_eq!(refused.unwrap_err().to_string(), "unknown event `bogus`: the bus was not declared with it");
    assert_eq!(all.get(), vec!["start:start data 1", "rxerror:timeout"]);
    assert_eq!(errors.get(), vec!["rxerror"]);
}

#[tokio::test(start_paused = true)]
async fn lifecycle_events_come_in_order_and_shutdown_waits_for_stopping_handlers() {
    let sched = Scheduler::start();
    let log = Log::new();
    let seen = log.clone();
    let cancelled = Log::new();
    let c = cancelled.clone();
    sched
        .timer(ms(10_000))
        .on_expire(|_| {})
        .on_cancel(move |_| c.push("timer cancelled"))
        .arm_detached()
        .unwrap();
    let witness = cancelled.clone();
    let _sub = sched.lifecycle().subscribe(move |mut queue: Queue<Lifecycle>| async move {
        while let Some(stage) = queue.pop().await {
            if stage == Lifecycle::Stopping {
                queue.pause_for(ms(5)).await; // a slow Stopping handler
                seen.push(format!("{stage:?} (timers cancelled yet: {})", witness.len()));
            } else {
                seen.push(format!("{stage:?}"));
            }
        }
    });
    sched.sleep(ms(1)).await;
    let report = sched.shutdown().await;
    assert_eq!(
        log.get(),
        vec!["Starting", "Started", "Stopping (timers cancelled yet: 0)", "Stopped"],
        "Stopping's handler finished before any timer was cancelled"
    );
    assert_eq!(cancelled.get(), vec!["timer cancelled"]);
    assert_eq!((report.timers_cancelled, report.workers_closed), (1, 1));
}

/// A shutdown before the caller's first `.await` (before the driver ever ran) still delivers the
/// stages in order: `Starting` and `Started` are announced once, by whichever comes first.
#[tokio::test(start_paused = true)]
async fn a_shutdown_before_the_first_await_still_announces_the_start_first() {
    let sched = Scheduler::start();
    let log = Log::new();
    let seen = log.clone();
    let _sub = sched.lifecycle().subscribe(move |mut queue: Queue<Lifecycle>| async move {
        while let Some(stage) = queue.pop().await {
            seen.push(format!("{stage:?}"));
        }
    });
    sched.shutdown().await;
    assert_eq!(log.get(), vec!["Starting", "Started", "Stopping", "Stopped"]);
}
