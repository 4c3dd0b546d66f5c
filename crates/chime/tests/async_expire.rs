//! `on_expire_async`: each run is a task; runs never overlap and overlapped ticks count as missed.

mod common;

use chime::{CancelReason, Fire, Scheduler};
use common::{Log, ms, ms_since};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn runs_never_overlap_and_overlapped_ticks_are_missed() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let log = Log::new();
    let seen = log.clone();
    let _timer = sched
        .timer(ms(100))
        .recurring()
        .on_expire_async(move |fire: Fire| {
            let seen = seen.clone();
            async move {
                let began = ms_since(start, Instant::now());
                tokio::time::sleep(ms(250)).await;
                seen.push((began, ms_since(start, Instant::now()), fire.missed()));
            }
        })
        .arm()
        .unwrap();
    sched.sleep(ms(1000)).await;
    // Runs start at 100, 400, 700; ticks 200, 300 (and 500, 600) came while a run was going.
    assert_eq!(log.get(), vec![(100, 350, 0), (400, 650, 2), (700, 950, 2)]);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_async_run_is_reported_and_can_cancel_the_timer() {
    let panics = Log::new();
    let p = panics.clone();
    let sched = Scheduler::builder().on_panic(move |r| p.push(r.message().to_string())).start();
    let cancels = Log::new();
    let c = cancels.clone();
    let timer = sched
        .timer(ms(10))
        .recurring()
        .cancel_on_panic()
        .on_expire_async(|_| async {
            tokio::task::yield_now().await;
            panic!("async boom");
        })
        .on_cancel(move |r| c.push(r))
        .arm()
        .unwrap();
    sched.sleep(ms(35)).await;
    assert_eq!(panics.get(), vec!["async boom".to_string()]);
    assert_eq!(cancels.get(), vec![CancelReason::Panicked]);
    assert!(timer.is_cancelled());
}
