//! Failure behaviour: panicking callbacks, shutdown, and a runtime that goes away.

mod common;

use chime::{CancelReason, Error, Fire, Scheduler};
use common::{Log, ms};
use std::time::Duration;

fn scheduler_with_hook() -> (Scheduler, Log<(Option<chime::TimerId>, String)>) {
    let panics = Log::new();
    let seen = panics.clone();
    let sched =
        Scheduler::builder().on_panic(move |r| seen.push((r.timer(), r.message().to_string()))).start();
    (sched, panics)
}

#[tokio::test(start_paused = true)]
async fn a_panicking_recurring_timer_keeps_running_and_nothing_else_is_affected() {
    let (sched, panics) = scheduler_with_hook();
    let (runs, others) = (Log::new(), Log::new());
    let r = runs.clone();
    let id = sched
        .recurrent(ms(10), move |f: &Fire| {
            r.push(f.count());
            if f.count() == 2 {
                panic!("second run fails");
            }
        })
        .unwrap();
    let o = others.clone();
    sched.recurrent(ms(10), move |f: &Fire| o.push(f.count())).unwrap();
    sched.sleep(ms(40)).await;
    assert_eq!(runs.get(), vec![1, 2, 3, 4]);
    assert_eq!(others.get(), vec![1, 2, 3, 4]);
    assert_eq!(panics.get(), vec![(Some(id), "second run fails".to_string())]);
}

#[tokio::test(start_paused = true)]
async fn cancel_on_panic_cancels_with_panicked() {
    let (sched, panics) = scheduler_with_hook();
    let (runs, cancels) = (Log::new(), Log::new());
    let (r, c) = (runs.clone(), cancels.clone());
    let timer = sched
        .timer(ms(10))
        .recurring()
        .cancel_on_panic()
        .on_expire(move |f: &Fire| {
            r.push(f.count());
            panic!("{}", String::from("owned message"));
        })
        .on_cancel(move |reason| c.push(reason))
        .arm()
        .unwrap();
    sched.sleep(ms(50)).await;
    assert_eq!(runs.get(), vec![1]);
    assert_eq!(cancels.get(), vec![CancelReason::Panicked]);
    assert_eq!(panics.len(), 1);
    assert_eq!(panics.get()[0].1, "owned message");
    assert!(timer.is_cancelled());
    assert_eq!(timer.cancel(), Err(Error::AlreadyCancelled));
}

#[tokio::test(start_paused = true)]
async fn panics_in_arm_and_cancel_callbacks_are_caught_too() {
    let (sched, panics) = scheduler_with_hook();
    let timer = sched
        .timer(ms(10))
        .on_arm(|| panic!("arm"))
        .on_expire(|_| {})
        .on_cancel(|_| panic!("cancel"))
        .arm()
        .unwrap();
    assert_eq!(timer.cancel(), Ok(()));
    let messages: Vec<_> = panics.get().into_iter().map(|p| p.1).collect();
    assert_eq!(messages, vec!["arm", "cancel"]);
    sched.after(ms(1), |_| {}).unwrap();
    sched.sleep(ms(2)).await;
    assert_eq!(sched.pending(), 0, "the scheduler still works");
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_every_pending_timer_with_shutdown_once() {
    let sched = Scheduler::start();
    let cancels = Log::new();
    let c = cancels.clone();
    let owned =
        sched.timer(ms(10)).recurring().on_expire(|_| {}).on_cancel(move |r| c.push(("owned", r))).arm();
    let owned = owned.unwrap();
    let c = cancels.clone();
    sched
        .timer(Duration::from_secs(3600))
        .on_expire(|_| {})
        .on_cancel(move |r| c.push(("detached", r)))
        .arm_detached()
        .unwrap();
    sched.after(ms(5), |_| {}).unwrap();
    let report = sched.shutdown().await;
    assert_eq!(report.timers_cancelled, 3);
    let mut seen = cancels.get();
    seen.sort_by_key(|s| s.0);
    assert_eq!(seen, vec![("detached", CancelReason::Shutdown), ("owned", CancelReason::Shutdown)]);
    assert_eq!(owned.cancel(), Err(Error::Shutdown));
    drop(owned);
    assert_eq!(cancels.len(), 2, "dropping the handle after shutdown runs nothing more");
    assert_eq!(sched.after(ms(1), |_| {}), Err(Error::Shutdown));
    assert_eq!(sched.recurrent(ms(1), |_| {}), Err(Error::Shutdown));
    assert!(matches!(sched.timer(ms(1)).on_expire(|_| {}).arm(), Err(Error::Shutdown)));
    // A stopped scheduler is reported before a bad option, by the plain one-shot's short path and
    // by the full one alike.
    let past_range = std::time::Duration::MAX;
    assert!(matches!(sched.timer(past_range).on_expire(|_| {}).arm(), Err(Error::Shutdown)));
    assert!(matches!(sched.timer(past_range).recurring().on_expire(|_| {}).arm(), Err(Error::Shutdown)));
    assert_eq!(sched.shutdown().await.timers_cancelled, 0, "a second shutdown finds nothing");
    assert_eq!(sched.pending(), 0);
}

#[tokio::test(start_paused = true)]
async fn sleeping_tasks_wake_at_shutdown() {
    let sched = Scheduler::start();
    let sleeper = tokio::spawn({
        let sched = sched.clone();
        async move { sched.sleep(Duration::from_secs(3600)).await }
    });
    tokio::task::yield_now().await;
    sched.shutdown().await;
    tokio::time::timeout(ms(1), sleeper).await.expect("the sleep ended at shutdown").unwrap();
    sched.sleep(Duration::from_secs(5)).await; // completes at once: nothing would ever wake it
}

#[test]
fn dropping_the_runtime_cancels_pending_timers_with_shutdown() {
    let cancels = Log::new();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let c = cancels.clone();
    runtime.block_on(async {
        let sched = Scheduler::start();
        sched
            .timer(Duration::from_secs(60))
            .on_expire(|_| {})
            .on_cancel(move |r| c.push(r))
            .arm_detached()
            .unwrap();
    });
    assert!(cancels.get().is_empty());
    drop(runtime);
    assert_eq!(cancels.get(), vec![CancelReason::Shutdown]);
}

#[tokio::test(start_paused = true)]
async fn the_driver_exits_when_no_handle_and_nothing_pending_is_left() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let sched = Scheduler::start();
    let probe = sched.clone();
    sched.after(ms(10), |_| {}).unwrap();
    drop(sched);
    drop(probe);
    tokio::task::yield_now().await;
    assert_eq!(metrics.num_alive_tasks(), 1, "a detached timer keeps the driver alive");
    tokio::time::sleep(ms(10)).await;
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    assert_eq!(metrics.num_alive_tasks(), 0, "the timer ran; nobody can arm again; the driver is gone");
}
