//! TINN's `wait`, timeouts and Copas' `waitforcondition`, on chime's wheel.

mod common;

use chime::Scheduler;
use common::ms;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn sleep_wakes_exactly_at_its_deadline() {
    let sched = Scheduler::start();
    let start = Instant::now();
    sched.sleep(ms(250)).await;
    assert_eq!(Instant::now() - start, ms(250));
    sched.sleep_until(start + ms(300)).await;
    assert_eq!(Instant::now() - start, ms(300));
    sched.sleep(Duration::ZERO).await;
    assert_eq!(Instant::now() - start, ms(300), "a zero sleep does not wait");
}

#[tokio::test(start_paused = true)]
async fn tinn_wait_loop_every_500_ms() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let mut at = Vec::new();
    for _ in 0..4 {
        sched.sleep(ms(500)).await;
        at.push((Instant::now() - start).as_millis());
    }
    assert_eq!(at, vec![500, 1000, 1500, 2000]);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_sleep_leaves_nothing_behind() {
    let sched = Scheduler::start();
    {
        let sleep = sched.sleep(ms(100));
        tokio::pin!(sleep);
        assert!(futures_poll_once(sleep.as_mut()).await.is_pending());
        assert_eq!(sched.pending(), 1);
    }
    assert_eq!(sched.pending(), 0);
}

async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut f).poll(cx))).await
}

#[tokio::test(start_paused = true)]
async fn timeout_elapses_exactly_or_returns_the_output() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let slow = sched.timeout(ms(100), tokio::time::sleep(ms(200))).await;
    assert!(slow.is_err());
    assert_eq!(Instant::now() - start, ms(100));
    let quick = sched
        .timeout(ms(100), async {
            tokio::time::sleep(ms(50)).await;
            7
        })
        .await;
    assert_eq!(quick, Ok(7));
    assert_eq!(Instant::now() - start, ms(150));
    assert_eq!(sched.pending(), 0, "the finished timeout's sleep is gone");
}

#[tokio::test(start_paused = true)]
async fn wait_for_polls_the_condition_until_it_holds_or_times_out() {
    let sched = Scheduler::start();
    let checks = Arc::new(AtomicU32::new(0));
    let start = Instant::now();
    let c = checks.clone();
    let result = sched.wait_for(ms(100), ms(350), move || c.fetch_add(1, Ordering::SeqCst) == 2).await;
    assert_eq!(result, Ok(()));
    assert_eq!(Instant::now() - start, ms(200), "checked at 0, 100 and 200 ms");
    let start = Instant::now();
    let result = sched.wait_for(ms(100), ms(350), || false).await;
    assert!(result.is_err());
    assert_eq!(Instant::now() - start, ms(350), "gave up exactly at the timeout");
}

#[tokio::test(start_paused = true)]
async fn a_sleep_polled_from_another_task_keeps_the_latest_waker() {
    let sched = Scheduler::start();
    let sleep = sched.sleep(ms(100));
    let handle = tokio::spawn(async move {
        sleep.await;
        Instant::now()
    });
    let start = Instant::now();
    assert_eq!(handle.await.unwrap() - start, ms(100));
}
