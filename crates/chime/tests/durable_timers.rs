//! Durable timers on SQLite under tokio's paused clock (the schedulers' wall clocks follow it): the
//! timing rules (never early, backoff, grace, leases), creation's checks, idempotency, cancel, list,
//! purge, unknown handlers and shutdown. Crashes of real processes are in `durable_processes.rs`, the
//! same rules on every backend in `durable_conformance_*.rs`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chime::cluster::Sqlite;
use chime::durable::{
    Created, DurableFire, DurableTimers, MAX_KEY_BYTES, MAX_PAYLOAD_BYTES, NewTimer, Report, RetryPolicy,
    State,
};
use chime::{Scheduler, WallClock};
use common::{Log, invalid_option, ms};
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
async fn creation_is_checked_before_anything_is_stored() {
    let (sched, log) = (sched(), Log::new());
    let timers = logging(&sched, store(), &log).await;
    let d = ms(1000);
    let long_key = "k".repeat(MAX_KEY_BYTES + 1);
    let big = vec![0u8; MAX_PAYLOAD_BYTES + 1];
    assert_eq!(invalid_option(timers.after("", d, "remind", Vec::new()).await), "key");
    assert_eq!(invalid_option(timers.after(long_key, d, "remind", Vec::new()).await), "key");
    assert_eq!(invalid_option(timers.after("k", d, "remind", big).await), "payload");
    assert_eq!(invalid_option(timers.after("k", d, "bill", Vec::new()).await), "handler");
    assert_eq!(invalid_option(timers.after("k", Duration::MAX, "remind", Vec::new()).await), "delay");
    let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
    assert_eq!(invalid_option(timers.at("k", before_epoch, "remind", Vec::new()).await), "due");
    let far = UNIX_EPOCH + Duration::from_secs(600 * 365 * 24 * 3600);
    assert_eq!(invalid_option(timers.at("k", far, "remind", Vec::new()).await), "due");
    let err = timers.after("k", d, "bill", Vec::new()).await.unwrap_err();
    assert!(err.to_string().contains("`bill` is not a handler"), "{err}");
    // A batch with one bad timer stores none, and says which.
    let batch = vec![
        NewTimer::after("a", d, "remind", Vec::new()),
        NewTimer::after("b", d, "remind", Vec::new()),
        NewTimer::after("", d, "remind", Vec::new()),
    ];
    let err = timers.create_many(batch).await.unwrap_err();
    assert_eq!(err.to_string(), "invalid option `key`: timer 2 of the batch: must not be empty");
    for state in State::ALL {
        assert!(timers.list(state, 10).await.unwrap().is_empty(), "nothing stored ({state})");
    }
    // The limits themselves are fine.
    let edge = "e".repeat(MAX_KEY_BYTES);
    timers.after(edge.clone(), d, "remind", vec![7; MAX_PAYLOAD_BYTES]).await.unwrap();
    assert_eq!(timers.get(&edge).await.unwrap().unwrap().payload().len(), MAX_PAYLOAD_BYTES);
}

#[tokio::test(start_paused = true)]
async fn creating_a_key_again_changes_nothing_and_answers_the_stored_timer() {
    let (sched, log) = (sched(), Log::new());
    let timers = logging(&sched, store(), &log).await;
    assert!(timers.after("k", ms(5_000), "remind", b"first".to_vec()).await.unwrap().is_new());
    let Created::Exists(stored) = timers.after("k", ms(1_000), "remind", b"second".to_vec()).await.unwrap()
    else {
        panic!("the key is taken")
    };
    assert_eq!((stored.payload(), stored.state()), (&b"first"[..], State::Pending));
    let batch = (0..3).map(|i| {
        NewTimer::after(if i == 1 { "k".to_string() } else { format!("n{i}") }, ms(1), "remind", Vec::new())
    });
    let created =
        timers.create_many(batch.chain([NewTimer::after("n0", ms(1), "remind", Vec::new())])).await.unwrap();
    assert_eq!(created.iter().map(Created::is_new).collect::<Vec<_>>(), [true, false, true, false]);
    tokio::time::sleep(ms(10_000)).await;
    let runs: Vec<_> = log.take().into_iter().map(|r| r.0).collect();
    assert_eq!(runs, ["n0", "n2", "k"], "one run per key, at the first creation's due time");
    // Fired, the key stays taken until purged.
    assert!(!timers.after("k", ms(1), "remind", Vec::new()).await.unwrap().is_new());
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

/// A store whose calls can be made to fail, as when the network to it is cut.
#[derive(Clone)]
struct Cut {
    store: Sqlite,
    down: Arc<AtomicBool>,
}

macro_rules! forward {
    ($self:ident, $call:expr) => {{
        let down = $self.down.load(Ordering::SeqCst);
        let call = $call;
        Box::pin(async move {
            if down {
                return Err(chime::Error::store("sqlite", "cut off"));
            }
            call.await
        })
    }};
}

impl chime::durable::DurableStore for Cut {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
    fn prepare(&self) -> chime::cluster::StoreFuture<'_, ()> {
        forward!(self, self.store.prepare())
    }
    fn create<'a>(
        &'a self,
        rows: &'a [chime::durable::machine::Row],
    ) -> chime::cluster::StoreFuture<'a, Vec<Option<chime::durable::machine::Row>>> {
        forward!(self, self.store.create(rows))
    }
    fn get<'a>(
        &'a self,
        key: &'a str,
    ) -> chime::cluster::StoreFuture<'a, Option<chime::durable::machine::Row>> {
        forward!(self, self.store.get(key))
    }
    fn list<'a>(
        &'a self,
        state: State,
        after: Option<(i64, &'a str)>,
        limit: usize,
    ) -> chime::cluster::StoreFuture<'a, Vec<chime::durable::machine::Row>> {
        forward!(self, self.store.list(state, after, limit))
    }
    fn cancel<'a>(&'a self, key: &'a str, now_ms: i64) -> chime::cluster::StoreFuture<'a, bool> {
        forward!(self, self.store.cancel(key, now_ms))
    }
    fn claim<'a>(
        &'a self,
        request: &'a chime::durable::ClaimRequest,
    ) -> chime::cluster::StoreFuture<'a, chime::durable::ClaimReply> {
        forward!(self, self.store.claim(request))
    }
    fn renew<'a>(
        &'a self,
        member: &'a str,
        runs: &'a [(String, u64)],
        lease_ms: i64,
        now_ms: i64,
    ) -> chime::cluster::StoreFuture<'a, Vec<bool>> {
        forward!(self, self.store.renew(member, runs, lease_ms, now_ms))
    }
    fn finish<'a>(
        &'a self,
        member: &'a str,
        runs: &'a [chime::durable::Finish],
        now_ms: i64,
    ) -> chime::cluster::StoreFuture<'a, Vec<bool>> {
        forward!(self, self.store.finish(member, runs, now_ms))
    }
    fn purge(&self, before_ms: i64, limit: usize) -> chime::cluster::StoreFuture<'_, usize> {
        forward!(self, self.store.purge(before_ms, limit))
    }
    fn unknown<'a>(
        &'a self,
        known: &'a [String],
        now_ms: i64,
    ) -> chime::cluster::StoreFuture<'a, Vec<(String, u64)>> {
        forward!(self, self.store.unknown(known, now_ms))
    }
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
    assert_eq!(stopped - t0, ms(1_100 + 2_700), "a stops at 9/10 of the lease after its last renewal");
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
    tokio::time::sleep(ms(10)).await;
    assert_eq!(first.running(), 1);
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

#[tokio::test(start_paused = true)]
async fn cancel_list_and_purge() {
    let sched = sched();
    let log = Log::new();
    let l = log.clone();
    let timers = sched
        .durable(store())
        .handler("remind", move |f: &DurableFire| {
            l.push(f.key().to_string());
            Ok::<_, std::io::Error>(())
        })
        .retention(ms(10_000))
        .start()
        .await
        .unwrap();
    for (key, secs) in [("c", 3), ("a", 1), ("b", 2), ("d", 4), ("e", 500)] {
        timers.after(key, ms(secs * 1000), "remind", Vec::new()).await.unwrap();
    }
    assert!(timers.cancel("d").await.unwrap());
    assert!(!timers.cancel("nothing").await.unwrap());
    let keys =
        |ts: Vec<chime::durable::DurableTimer>| ts.iter().map(|t| t.key().to_string()).collect::<Vec<_>>();
    let page = timers.list(State::Pending, 2).await.unwrap();
    assert_eq!(keys(page.clone()), ["a", "b"]);
    assert_eq!(keys(timers.list_after(State::Pending, &page[1], 10).await.unwrap()), ["c", "e"]);
    assert_eq!(keys(timers.list(State::Cancelled, 10).await.unwrap()), ["d"]);
    tokio::time::sleep(ms(3_500)).await;
    assert_eq!(log.take(), ["a", "b", "c"]);
    assert!(!timers.cancel("a").await.unwrap(), "a fired timer cannot be cancelled");
    assert_eq!(keys(timers.list(State::Fired, 10).await.unwrap()), ["a", "b", "c"]);
    // Retention 10 s: gone within 10 s + half of it (the purge round), not before 10 s.
    tokio::time::sleep(ms(6_000)).await;
    assert!(timers.get("c").await.unwrap().is_some(), "kept for the retention");
    tokio::time::sleep(ms(10_000)).await;
    for key in ["a", "b", "c", "d"] {
        assert_eq!(timers.get(key).await.unwrap(), None, "{key} purged");
    }
    assert_eq!(timers.get("e").await.unwrap().unwrap().state(), State::Pending, "pending timers stay");
    assert!(
        timers.after("a", ms(1), "remind", Vec::new()).await.unwrap().is_new(),
        "a purged key is free again"
    );
    tokio::time::sleep(ms(10)).await;
    let again = timers.get("a").await.unwrap().unwrap();
    assert_eq!((again.state(), again.attempt()), (State::Fired, 1));
    assert!(again.fence() > 3, "fences keep increasing across a purge: {}", again.fence());
}
