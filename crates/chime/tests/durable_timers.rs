//! Durable timers on SQLite under tokio's paused clock (the schedulers' wall clocks follow it): the
//! timing rules (never early, backoff, grace, leases), unknown handlers and shutdown. Creation's
//! checks, cancel, list and purge are in `durable_api.rs`; crashes of real processes in
//! `durable_processes.rs`; the same rules on every backend in `durable_{sqlite,redis,postgres}.rs`;
//! network faults in `durable_faults.rs`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use chime::cluster::Sqlite;
use chime::durable::{Created, DurableFire, DurableTimers, NewTimer, Report, RetryPolicy, State};
use chime::{Scheduler, WallClock};
use common::cut::Cut;
use common::{Log, ms};
use tokio::time::Instant;

fn sched() -> Scheduler {
    Scheduler::builder().wall_clock(WallClock::FollowTokio).start()
}

fn store() -> Sqlite {
    Sqlite::open(":memory:").unwrap()
}

/// A scheduler whose `remind` handler logs (key, attempt, fence, when) and succeeds.
async fn logging(sched: &Scheduler, store: Sqlite, log: &Log<(String, u32, u64, Instant)>) -> DurableTimers {
    let log = log.clone();
    sched
        .durable(store)
        .handler("remind", move |f: &DurableFire| {
            log.push((f.key().to_string(), f.attempt(), f.fence(), Instant::now()));
            Ok::<_, std::io::Error>(())
        })
        .start()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_timer_runs_at_its_due_time_never_before() {
    let (sched, log) = (sched(), Log::new());
    let timers = logging(&sched, store(), &log).await;
    let created = Instant::now();
    assert_eq!(timers.after("k", ms(10_000), "remind", b"p".to_vec()).await.unwrap(), Created::New);
    let at = SystemTime::now() + Duration::from_secs(3600);
    timers.at("later", at, "remind", Vec::new()).await.unwrap();
    tokio::time::sleep(ms(9_999)).await;
    assert_eq!(log.len(), 0, "not a millisecond early");
    tokio::time::sleep(ms(2)).await;
    let runs = log.take();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].0.as_str(), runs[0].1, runs[0].2), ("k", 1, 1));
    assert_eq!(runs[0].3 - created, ms(10_000), "exactly at its due time");
    tokio::time::sleep(ms(10)).await; // the end is recorded
    let k = timers.get("k").await.unwrap().unwrap();
    assert_eq!((k.state(), k.attempt(), k.fence()), (State::Fired, 1, 1));
    assert_eq!(timers.get("later").await.unwrap().unwrap().state(), State::Pending);
    assert_eq!(timers.running(), 0);
}

#[tokio::test(start_paused = true)]
async fn failures_are_retried_with_backoff_then_the_timer_is_failed_kept_and_reported() {
    let sched = sched();
    let (runs, reports) = (Log::new(), Log::new());
    let (log, seen) = (runs.clone(), reports.clone());
    let fails_until = Arc::new(AtomicU32::new(u32::MAX));
    let until = fails_until.clone();
    let start = Instant::now();
    let timers = sched
        .durable(store())
        .handler("flaky", move |f: &DurableFire| {
            log.push((f.key().to_string(), f.attempt(), (Instant::now() - start).as_millis() as u64));
            if f.key() == "panics" && f.attempt() == 1 {
                panic!("boom");
            }
            if f.attempt() < until.load(Ordering::Relaxed) {
                Err(format!("attempt {} failed", f.attempt()))
            } else {
                Ok(())
            }
        })
        .retry(RetryPolicy::exponential(ms(100), ms(1_000)).max_attempts(3))
        .on_report(move |r| seen.push(r.clone()))
        .start()
        .await
        .unwrap();
    timers.after("k", ms(1_000), "flaky", Vec::new()).await.unwrap();
    tokio::time::sleep(ms(5_000)).await;
    let times: Vec<_> = runs.take().into_iter().map(|r| (r.1, r.2)).collect();
    assert_eq!(times, [(1, 1_000), (2, 1_100), (3, 1_300)], "backoff 100 ms, then 200 ms");
    let failed = timers.get("k").await.unwrap().unwrap();
    assert_eq!(
        (failed.state(), failed.attempt(), failed.error()),
        (State::Failed, 3, Some("attempt 3 failed"))
    );
    let seen = reports.take();
    assert!(
        matches!(&seen[0], Report::Retrying { key, attempt: 1, delay, .. } if key == "k" && *delay == ms(100)),
        "{seen:?}"
    );
    assert!(matches!(&seen[1], Report::Retrying { attempt: 2, delay, .. } if *delay == ms(200)), "{seen:?}");
    assert!(
        matches!(&seen[2], Report::Failed { attempt: 3, error, .. } if error == "attempt 3 failed"),
        "{seen:?}"
    );
    assert_eq!(timers.list(State::Failed, 10).await.unwrap().len(), 1, "kept");
    // A panic counts as a failure; a later success fires the timer.
    fails_until.store(2, Ordering::Relaxed);
    timers.after("panics", ms(0), "flaky", Vec::new()).await.unwrap();
    tokio::time::sleep(ms(1_000)).await;
    let t = timers.get("panics").await.unwrap().unwrap();
    assert_eq!((t.state(), t.attempt(), t.error()), (State::Fired, 2, None), "a success clears the error");
    let later = reports.take();
    assert!(
        later.iter().any(|r| matches!(r, Report::Retrying { key, error, .. } if key == "panics" && error == "panicked: boom")),
        "{later:?}"
    );
    // Cancelling a failed timer dismisses it.
    assert!(timers.cancel("k").await.unwrap());
    assert_eq!(timers.get("k").await.unwrap().unwrap().state(), State::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn overdue_timers_run_at_once_at_start_and_a_grace_skips_the_too_late() {
    let (a, b, c) = (sched(), sched(), sched()); // one wall clock for all: made together
    let store = store();
    let log = Log::new();
    let first = logging(&a, store.clone(), &log).await;
    first.after("overdue", ms(1_000), "remind", Vec::new()).await.unwrap();
    first
        .create(NewTimer::after("own-grace", ms(1_000), "remind", Vec::new()).grace(ms(7_200_000)))
        .await
        .unwrap();
    first.after("too-late", ms(1_000), "remind", Vec::new()).await.unwrap();
    first.shutdown().await; // everything is down for an hour
    tokio::time::sleep(ms(3_600_000)).await;
    assert_eq!(log.len(), 0);
    // Without a grace, overdue timers run at once.
    let restarted = Instant::now();
    let second = logging(&b, store.clone(), &log).await;
    tokio::time::sleep(ms(1)).await;
    second.shutdown().await;
    let ran: Vec<_> = log.take();
    assert_eq!(ran.len(), 3, "{ran:?}");
    assert!(ran.iter().all(|r| r.3 == restarted), "all at once, at the restart");
    // With a grace, a first run later than it is skipped and reported; a timer's own grace wins.
    let reports = Log::new();
    let seen = reports.clone();
    let third = c
        .durable(store.clone())
        .handler("remind", {
            let log = log.clone();
            move |f: &DurableFire| {
                log.push((f.key().to_string(), f.attempt(), f.fence(), Instant::now()));
                Ok::<_, std::io::Error>(())
            }
        })
        .grace(ms(1_800_000))
        .on_report(move |r| seen.push(r.clone()))
        .start()
        .await
        .unwrap();
    third.after("late-a", ms(0), "remind", Vec::new()).await.unwrap();
    tokio::time::sleep(ms(1)).await;
    assert_eq!(log.take().len(), 1, "within the grace: runs");
    third.shutdown().await;
    third.after("late-b", ms(1_000), "remind", Vec::new()).await.unwrap();
    third
        .create(NewTimer::after("late-c", ms(1_000), "remind", Vec::new()).grace(ms(7_200_000)))
        .await
        .unwrap();
    tokio::time::sleep(ms(3_600_000)).await;
    let again = c.durable(store).handler("remind", {
        let log = log.clone();
        move |f: &DurableFire| {
            log.push((f.key().to_string(), f.attempt(), f.fence(), Instant::now()));
            Ok::<_, std::io::Error>(())
        }
    });
    let seen = reports.clone();
    let fourth = again.grace(ms(1_800_000)).on_report(move |r| seen.push(r.clone())).start().await.unwrap();
    tokio::time::sleep(ms(1)).await;
    assert_eq!(
        log.take().into_iter().map(|r| r.0).collect::<Vec<_>>(),
        ["late-c"],
        "its own grace is longer"
    );
    let skipped = fourth.get("late-b").await.unwrap().unwrap();
    assert_eq!((skipped.state(), skipped.attempt()), (State::Skipped, 0));
    assert!(skipped.error().unwrap().contains("3599000 ms late (grace 1800000 ms)"), "{:?}", skipped.error());
    let reports = reports.take();
    assert!(
        reports.iter().any(|r| matches!(r, Report::Skipped { key, .. } if key == "late-b")),
        "the skip is reported: {reports:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn unknown_handlers_stay_pending_and_reported_until_a_scheduler_that_knows_them_starts() {
    let (a, b, c) = (sched(), sched(), sched());
    let store = store();
    let billed = Log::new();
    let (log, reports) = (billed.clone(), Log::new());
    let both = a
        .durable(store.clone())
        .handler("remind", |_: &DurableFire| Ok::<_, std::io::Error>(()))
        .handler("bill", |_: &DurableFire| Ok::<_, std::io::Error>(()))
        .start()
        .await
        .unwrap();
    both.shutdown().await;
    both.after("invoice", ms(1_000), "bill", Vec::new()).await.unwrap();
    both.after("note", ms(1_000), "remind", Vec::new()).await.unwrap();
    let seen = reports.clone();
    let reminders = b
        .durable(store.clone())
        .handler("remind", |_: &DurableFire| Ok::<_, std::io::Error>(()))
        .on_report(move |r| seen.push(r.clone()))
        .start()
        .await
        .unwrap();
    tokio::time::sleep(ms(61_000)).await;
    assert_eq!(reminders.get("note").await.unwrap().unwrap().state(), State::Fired);
    assert_eq!(
        reminders.get("invoice").await.unwrap().unwrap().state(),
        State::Pending,
        "left alone, not lost"
    );
    let reports = reports.take();
    assert!(
        reports.contains(&Report::UnknownHandler { handler: "bill".into(), timers: 1 }),
        "reported once a minute: {reports:?}"
    );
    let billing = c
        .durable(store)
        .handler("bill", move |f: &DurableFire| {
            log.push(f.key().to_string());
            Ok::<_, std::io::Error>(())
        })
        .start()
        .await
        .unwrap();
    tokio::time::sleep(ms(1)).await;
    assert_eq!(billed.take(), ["invoice"]);
    let _ = billing;
}

/// Logs when it is dropped: when an async run stopped.
struct Stopped(Log<(String, Instant)>, String);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.push((self.1.clone(), Instant::now()));
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_cut_off_from_the_store_stops_and_runs_again_elsewhere_after_the_lease() {
    let (a, b) = (sched(), sched());
    let store = store();
    let cut = Cut { store: store.clone(), down: Arc::new(AtomicBool::new(false)) };
    let (starts, stops, reports) = (Log::new(), Log::new(), Log::new());
    let (log, ended, seen) = (starts.clone(), stops.clone(), reports.clone());
    let hangs = a
        .durable(cut.clone())
        .handler_async("work", move |f: DurableFire| {
            log.push((f.key().to_string(), f.attempt(), f.fence(), Instant::now()));
            let guard = Stopped(ended.clone(), "a".into());
            async move {
                let _guard = guard;
                std::future::pending::<Result<(), std::io::Error>>().await
            }
        })
        .lease(ms(3_000))
        .on_report(move |r| seen.push(r.clone()))
        .start()
        .await
        .unwrap();
    let t0 = Instant::now();
    hangs.after("job", ms(100), "work", Vec::new()).await.unwrap();
    tokio::time::sleep(ms(1_150)).await; // claimed at 100 ms, renewed then and at 1100 ms
    cut.down.store(true, Ordering::SeqCst);
    let log = starts.clone();
    let takes_over = b
        .durable(store.clone())
        .handler_async("work", move |f: DurableFire| {
            log.push((f.key().to_string(), f.attempt(), f.fence(), Instant::now()));
            async { Ok::<_, std::io::Error>(()) }
        })
        .lease(ms(3_000))
        .start()
        .await
        .unwrap();
    tokio::time::sleep(ms(5_000)).await;
    let starts = starts.take();
    assert_eq!(starts.iter().map(|s| (s.1, s.2)).collect::<Vec<_>>(), [(1, 1), (2, 2)], "attempt 2, fence 2");
    let stopped = stops.take()[0].1;
    let seen: Vec<_> = starts.iter().map(|s| (s.1, s.2, s.3 - t0)).collect();
    let why = format!("starts {seen:?}, reports {:?}", reports.get());
    assert_eq!(stopped - t0, ms(1_100 + 2_700), "a stops at 9/10 of the lease after its last renewal: {why}");
    assert_eq!(
        starts[1].3 - t0,
        ms(1_100 + 3_000),
        "b takes over when the lease renewed at 1100 ms runs out"
    );
    assert!(stopped < starts[1].3, "no overlap: a stopped before b started");
    assert!(reports.get().contains(&Report::LeaseLost { key: "job".into(), fence: 1 }));
    assert_eq!(takes_over.get("job").await.unwrap().unwrap().state(), State::Fired);
}

#[tokio::test(start_paused = true)]
async fn shutdown_hands_async_runs_back_at_once_and_stops_serving() {
    let (a, b) = (sched(), sched());
    let store = store();
    let starts = Log::new();
    let log = starts.clone();
    let first = a
        .durable(store.clone())
        .handler_async("work", move |f: DurableFire| {
            log.push((f.attempt(), f.fence()));
            std::future::pending::<Result<(), std::io::Error>>()
        })
        .start()
        .await
        .unwrap();
    first.after("job", ms(0), "work", Vec::new()).await.unwrap();
    first.after("later", ms(60_000), "work", Vec::new()).await.unwrap();
    for _ in 0..100 {
        if first.running() == 1 {
            break;
        }
        tokio::time::sleep(ms(1)).await;
    }
    assert_eq!(first.running(), 1);
    assert_eq!(starts.get(), [(1, 1)]);
    a.shutdown().await; // the scheduler's shutdown stops its durable runner too
    let job = first.get("job").await.unwrap().unwrap();
    assert_eq!(
        (job.state(), job.attempt(), job.fence()),
        (State::Pending, 0, 1),
        "handed back; not an attempt"
    );
    let log = starts.clone();
    let second = b
        .durable(store)
        .handler_async("work", move |f: DurableFire| {
            log.push((f.attempt(), f.fence()));
            async { Ok::<_, std::io::Error>(()) }
        })
        .start()
        .await
        .unwrap();
    tokio::time::sleep(ms(1)).await;
    assert_eq!(starts.take(), [(1, 1), (1, 2)], "run again at once, with a higher fence");
    tokio::time::sleep(ms(60_000)).await;
    assert_eq!(starts.take(), [(1, 3)], "`later` ran on the scheduler still serving");
    let _ = second;
}
