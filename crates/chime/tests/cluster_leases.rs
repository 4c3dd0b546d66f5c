//! A cluster run and its lease, against the in-process coordinator: a run starts only while its
//! lease can be trusted, a long sync run keeps its lease so runs never overlap, and a member
//! cancelled mid-run keeps its lease until the run returns.

mod common;

use chime::cluster::{Claim, ClaimOutcome, Coordinator, Lease, Local, StoreFuture};
use chime::{Fire, Scheduler, WallClock};
use common::faults::until;
use common::{Log, ms};
use std::sync::Arc;
use std::time::Duration;

/// A store that answers claims slowly: each grant comes back after `delay`.
struct Slow {
    store: Local,
    delay: Duration,
}

impl Coordinator for Slow {
    fn backend(&self) -> &'static str {
        "slow"
    }
    fn claim<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, ClaimOutcome> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.store.claim(claim).await
        })
    }
    fn renew<'a>(&'a self, lease: &'a Lease, now_ms: i64) -> StoreFuture<'a, bool> {
        self.store.renew(lease, now_ms)
    }
    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        self.store.release(lease)
    }
}

/// A grant that comes back within its lease but too late to trust it (past nine tenths of it) is
/// not run: the run could outlast the lease before its first renewal. Fail closed, and reported.
#[tokio::test(start_paused = true)]
async fn a_run_that_cannot_start_while_its_lease_is_trusted_does_not_run() {
    let errors = Log::new();
    let seen = errors.clone();
    let sched = Scheduler::builder()
        .wall_clock(WallClock::FollowTokio)
        .on_cluster_error(move |key, e| seen.push(format!("{key}: {e}")))
        .start();
    let runs = Log::new();
    let (r, sync_runs) = (runs.clone(), runs.clone());
    let _sync = sched
        .timer(ms(1000))
        .recurring()
        .key("sync")
        .coordinator(Slow { store: Local::new(), delay: ms(95) })
        .lease(ms(100))
        .on_expire(move |_| r.push("sync"))
        .arm()
        .unwrap();
    let _async = sched
        .timer(ms(1000))
        .recurring()
        .key("async")
        .coordinator(Slow { store: Local::new(), delay: ms(95) })
        .lease(ms(100))
        .on_expire_async(move |_| {
            let runs = sync_runs.clone();
            async move { runs.push("async") }
        })
        .arm()
        .unwrap();
    tokio::time::sleep(ms(3500)).await;
    assert_eq!(runs.len(), 0, "no run started on a lease it could not trust");
    let reported = errors.get();
    assert!(
        reported.iter().any(|e| e
            == "sync: slow store: the run could not start before its lease ran out; the tick was not run"),
        "{reported:?}"
    );
    assert!(
        reported.iter().any(|e| e.starts_with("async: slow store: the run could not start")),
        "{reported:?}"
    );
}

/// A sync run longer than its interval keeps its lease (renewed while it runs on a blocking thread),
/// so the other member waits instead of starting the next tick alongside it. Real time: the run
/// really blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_sync_run_keeps_its_lease_so_runs_never_overlap() {
    let store = Local::new();
    let runs: Log<(usize, std::time::Instant, std::time::Instant)> = Log::new();
    let mut members = Vec::new();
    for who in 0..2usize {
        let sched = Scheduler::start();
        let log = runs.clone();
        let timer = sched
            .timer(ms(100))
            .recurring()
            .key("long-sync")
            .coordinator(store.clone())
            .sub_interval(ms(20))
            // Renewed every third of it: a renewal may come 250 ms late on a loaded machine, and
            // 600 ms leaves it 400 ms (the default, one 100 ms interval, left a renewal 67 ms).
            .lease(ms(600))
            .on_expire(move |_: &Fire| {
                let began = std::time::Instant::now();
                std::thread::sleep(ms(900)); // nine intervals, well past the 600 ms lease
                log.push((who, began, std::time::Instant::now()));
            })
            .arm()
            .unwrap();
        members.push((sched, timer));
    }
    until(ms(10_000), "three runs", || runs.len() >= 3).await;
    for (sched, timer) in members {
        drop(timer);
        sched.shutdown().await;
    }
    let mut runs = runs.get();
    runs.sort_by_key(|r| r.1);
    assert!(runs.len() >= 3, "{} runs", runs.len());
    for pair in runs.windows(2) {
        assert!(pair[1].1 >= pair[0].2, "runs overlapped: {:?} started before {:?} ended", pair[1], pair[0]);
    }
}

/// A member cancelled in the middle of a sync run keeps its lease until the run returns (a blocking
/// callback cannot be stopped), so another member does not start alongside it; after that, the
/// cancelled member claims nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_member_mid_run_does_not_hand_its_tick_over_early() {
    let store = Local::new();
    let runs: Log<(usize, std::time::Instant, std::time::Instant)> = Log::new();
    let started = Arc::new(tokio::sync::Notify::new());
    let mut members = Vec::new();
    for who in 0..2usize {
        let sched = Scheduler::start();
        let (log, in_run) = (runs.clone(), started.clone());
        let timer = sched
            .timer(ms(200))
            .recurring()
            .key("cancel-mid-run")
            .coordinator(store.clone())
            .sub_interval(ms(20))
            // Longer than the run: only the cancel, not a late renewal, may end the lease early.
            .lease(ms(1_000))
            .on_expire(move |_: &Fire| {
                let began = std::time::Instant::now();
                in_run.notify_one();
                std::thread::sleep(ms(700));
                log.push((who, began, std::time::Instant::now()));
            })
            .arm()
            .unwrap();
        members.push((sched, Some(timer)));
        if who == 0 {
            started.notified().await; // member 0 is inside its run
            tokio::time::sleep(ms(50)).await;
        }
    }
    let cancelled_at = std::time::Instant::now();
    members[0].1.take().unwrap().cancel().unwrap();
    // Member 0's run ends about 650 ms from now, then member 1 runs for 700 ms.
    until(ms(10_000), "member 1's run", || runs.get().iter().any(|r| r.0 == 1 && r.1 > cancelled_at)).await;
    for (sched, timer) in members {
        drop(timer);
        sched.shutdown().await;
    }
    let mut runs = runs.get();
    runs.sort_by_key(|r| r.1);
    assert_eq!(runs[0].0, 0, "member 0 ran first");
    for pair in runs.windows(2) {
        assert!(pair[1].1 >= pair[0].2, "runs overlapped: {:?} started before {:?} ended", pair[1], pair[0]);
    }
    assert!(runs.iter().skip(1).all(|r| r.0 == 1), "the cancelled member claimed nothing more: {runs:?}");
    assert!(runs.iter().any(|r| r.0 == 1 && r.1 > cancelled_at), "member 1 took over: {runs:?}");
}
