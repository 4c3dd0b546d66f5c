//! Many threads at once, on a multi-thread runtime and real time: nothing lost, nothing early.

use chime::{Fire, Scheduler};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_armed_from_many_threads_all_fire_and_none_early() {
    let sched = Scheduler::start();
    let fired = Arc::new(AtomicU64::new(0));
    let early = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (sched, fired, early) = (sched.clone(), fired.clone(), early.clone());
            std::thread::spawn(move || {
                let mut cancelled = 0;
                for i in 0..2_000u64 {
                    let (fired, early) = (fired.clone(), early.clone());
                    // A timer cancelled below is due in a minute, so the cancel always comes first:
                    // one due in a millisecond could run first while this thread waits for a core.
                    let cancel = i % 4 == 0;
                    let delay = Duration::from_millis(1 + (i * 7 + t) % 50 + if cancel { 60_000 } else { 0 });
                    let id = sched
                        .after(delay, move |f: &Fire| {
                            if Instant::now() < f.scheduled() {
                                early.fetch_add(1, Ordering::SeqCst);
                            }
                            fired.fetch_add(1, Ordering::SeqCst);
                        })
                        .unwrap();
                    if cancel {
                        sched.cancel(id).unwrap();
                        cancelled += 1;
                    }
                }
                cancelled
            })
        })
        .collect();
    let cancelled: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let deadline = Instant::now() + Duration::from_secs(20);
    // A one-shot leaves the wheel when the driver takes its callback back, just after it ran.
    while (fired.load(Ordering::SeqCst) < 8_000 - cancelled || sched.pending() > 0)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fired.load(Ordering::SeqCst), 8_000 - cancelled);
    assert_eq!(early.load(Ordering::SeqCst), 0);
    assert_eq!(sched.pending(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleeps_on_many_tasks_wake_and_never_early() {
    let sched = Scheduler::start();
    let tasks: Vec<_> = (0..500u64)
        .map(|i| {
            let sched = sched.clone();
            tokio::spawn(async move {
                let want = Duration::from_millis(5 + i % 40);
                let start = Instant::now();
                sched.sleep(want).await;
                start.elapsed() >= want
            })
        })
        .collect();
    for task in tasks {
        assert!(tokio::time::timeout(Duration::from_secs(20), task).await.unwrap().unwrap());
    }
}
