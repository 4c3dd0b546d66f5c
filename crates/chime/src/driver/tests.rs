//! The driver's idleness, under tokio's paused clock: no pass while nothing is due (rule 7), and a
//! parked driver that the next arm starts again (rule 8).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use crate::scheduler::Scheduler;

/// Polls `future` once; `true` if it completed.
async fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> bool {
    let mut future = future;
    poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx).is_ready())).await
}

/// Lets every ready task run (the driver's included).
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_sleep_far_ahead_costs_no_pass_until_it_is_due() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let mut sleep = pin!(sched.sleep(Duration::from_secs(3600)));
    assert!(!poll_once(sleep.as_mut()).await, "registered, not due");
    settle().await;
    let passes = sched.driver().passes();
    tokio::time::advance(Duration::from_secs(3599)).await;
    settle().await;
    assert_eq!(sched.driver().passes(), passes, "an hour of waiting, no pass");
    sleep.await;
    assert_eq!(start.elapsed(), Duration::from_secs(3600));
}

#[tokio::test(start_paused = true)]
async fn with_no_handle_left_the_driver_parks_and_a_stray_sleep_starts_it_again() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let sched = Scheduler::start();
    let driver = sched.driver().clone();
    let start = Instant::now();
    let sleep = sched.sleep(Duration::from_secs(100)); // made, not yet polled: not in the wheel
    settle().await;
    drop(sched);
    settle().await;
    assert_eq!(metrics.num_alive_tasks(), 0, "the driver parked: its task ended");
    let passes = driver.passes();
    tokio::time::advance(Duration::from_secs(60)).await;
    settle().await;
    assert_eq!(driver.passes(), passes, "a parked driver does no periodic work");
    sleep.await;
    assert_eq!(start.elapsed(), Duration::from_secs(100), "started again, and on time");
    assert!(!driver.is_stopped(), "parking is not stopping");
}
