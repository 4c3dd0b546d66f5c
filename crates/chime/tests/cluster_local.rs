//! Cluster-wide timers against the in-process coordinator, under tokio's paused clock: one run per
//! tick across members, increasing fences, failover, fail-closed store errors, graceful release,
//! misfires, and the options a cluster timer refuses.

mod common;

use chime::cluster::{Claim, ClaimOutcome, Coordinator, Lease, Local, Misfire, StoreFuture};
use chime::{Error, Fire, Scheduler, Timer, WallClock};
use common::{Log, invalid_option, ms};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn member() -> Scheduler {
    Scheduler::builder().wall_clock(WallClock::FollowTokio).start()
}

/// (member, fence) of each run of one tick.
type Run = (usize, u64);

fn arm(
    sched: &Scheduler,
    who: usize,
    store: impl Coordinator,
    log: &Log<(usize, tokio::time::Instant, u64)>,
) -> Timer {
    let log = log.clone();
    sched
        .timer(ms(1000))
        .recurring()
        .key("report")
        .coordinator(store)
        .sub_interval(ms(250))
        .on_expire(move |f: &Fire| {
            log.push((who, f.scheduled(), f.fence().expect("a cluster run has a fence")))
        })
        .arm()
        .unwrap()
}

/// Runs by scheduled instant: each instant must appear once.
fn by_tick(runs: &[(usize, tokio::time::Instant, u64)]) -> BTreeMap<tokio::time::Instant, Vec<Run>> {
    let mut ticks: BTreeMap<_, Vec<Run>> = BTreeMap::new();
    for &(who, at, fence) in runs {
        ticks.entry(at).or_default().push((who, fence));
    }
    ticks
}

#[tokio::test(start_paused = true)]
async fn each_tick_runs_on_exactly_one_member_with_increasing_fences() {
    let store = Local::new();
    let log = Log::new();
    let members: Vec<_> = (0..3).map(|_| member()).collect();
    let _timers: Vec<_> = members.iter().enumerate().map(|(i, s)| arm(s, i, store.clone(), &log)).collect();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let runs = log.get();
    let ticks = by_tick(&runs);
    assert!((9..=10).contains(&ticks.len()), "{} ticks in 10 s", ticks.len());
    assert!(ticks.values().all(|runs| runs.len() == 1), "a tick ran twice: {ticks:?}");
    let instants: Vec<_> = ticks.keys().collect();
    assert!(instants.windows(2).all(|w| *w[1] - *w[0] == ms(1000)), "ticks on the 1 s grid");
    let fences: Vec<u64> = runs.iter().map(|r| r.2).collect();
    assert_eq!(fences, (1..=runs.len() as u64).collect::<Vec<_>>(), "fences strictly increase by claim");
    assert_eq!(store.row("report").unwrap().fence, runs.len() as u64);
}

/// A coordinator that can cut one member off (every call fails), as a partition or a dead member.
#[derive(Clone)]
struct Partitionable {
    store: Local,
    cut: Arc<AtomicBool>,
}

impl Coordinator for Partitionable {
    fn backend(&self) -> &'static str {
        "partitionable"
    }
    fn claim<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, ClaimOutcome> {
        if self.cut.load(Ordering::SeqCst) {
            return Box::pin(async { Err(Error::store("partitionable", "unreachable")) });
        }
        self.store.claim(claim)
    }
    fn renew<'a>(&'a self, lease: &'a Lease, now_ms: i64) -> StoreFuture<'a, bool> {
        if self.cut.load(Ordering::SeqCst) {
            return Box::pin(async { Err(Error::store("partitionable", "unreachable")) });
        }
        self.store.renew(lease, now_ms)
    }
    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        if self.cut.load(Ordering::SeqCst) {
            return Box::pin(async { Err(Error::store("partitionable", "unreachable")) });
        }
        self.store.release(lease)
    }
}

#[tokio::test(start_paused = true)]
async fn a_member_cut_off_mid_run_is_replaced_within_lease_plus_sub_interval() {
    let store = Local::new();
    let cut = Arc::new(AtomicBool::new(false));
    let log = Log::new();
    let errors = Log::new();
    let mut timers = Vec::new();
    let mut scheds = Vec::new();
    for who in 0..2usize {
        let seen = errors.clone();
        let sched = Scheduler::builder()
            .wall_clock(WallClock::FollowTokio)
            .on_cluster_error(move |key, e| seen.push((who, key.to_string(), e.to_string())))
            .start();
        let coordinator =
            Partitionable { store: store.clone(), cut: if who == 0 { cut.clone() } else { Arc::default() } };
        let runs = log.clone();
        let timer = sched
            .timer(ms(1000))
            .recurring()
            .key("job")
            .coordinator(coordinator)
            .sub_interval(ms(100))
            .lease(ms(3000))
            .on_expire_async(move |f: Fire| {
                let runs = runs.clone();
                async move {
                    runs.push((who, tokio::time::Instant::now(), f.fence().unwrap()));
                    if who == 0 {
                        std::future::pending::<()>().await; // member 0 hangs in its run
                    }
                }
            })
            .arm()
            .unwrap();
        // Member 0 arms first, so it wins the first tick.
        if who == 0 {
            tokio::time::sleep(ms(1100)).await;
        }
        timers.push(timer);
        scheds.push(sched);
    }
    assert_eq!(log.get().len(), 1, "member 0 runs the first tick and hangs");
    let cut_at = tokio::time::Instant::now();
    cut.store(true, Ordering::SeqCst); // member 0 can no longer renew: its lease runs out
    tokio::time::sleep(ms(6000)).await;
    let runs = log.get();
    let takeover = runs.iter().find(|r| r.0 == 1).expect("member 1 took over");
    assert!(takeover.1 - cut_at <= ms(3000 + 100 + 1000), "failover took {:?}", takeover.1 - cut_at);
    assert!(takeover.2 > runs[0].2, "the new run has a larger fence");
    assert!(
        errors.get().iter().any(|(who, key, _)| *who == 0 && key == "job"),
        "member 0 reported its store errors"
    );
    assert!(runs.iter().skip(1).all(|r| r.0 == 1), "member 0 never ran again while cut off: {runs:?}");
}

/// Store errors fail closed: the callback never runs without a claim.
#[tokio::test(start_paused = true)]
async fn a_store_error_never_runs_the_callback() {
    let errors = Log::new();
    let seen = errors.clone();
    let sched = Scheduler::builder()
        .wall_clock(WallClock::FollowTokio)
        .on_cluster_error(move |key, e| seen.push(format!("{key}: {e}")))
        .start();
    let broken = Partitionable { store: Local::new(), cut: Arc::new(AtomicBool::new(true)) };
    let runs = Log::new();
    let r = runs.clone();
    let _timer = sched
        .timer(ms(100))
        .recurring()
        .key("k")
        .coordinator(broken)
        .on_expire(move |_| r.push(()))
        .arm()
        .unwrap();
    tokio::time::sleep(ms(1000)).await;
    assert_eq!(runs.len(), 0);
    assert!(errors.len() >= 9, "each tick's failure was reported: {}", errors.len());
    assert_eq!(errors.get()[0], "k: partitionable store: unreachable");
}

#[tokio::test(start_paused = true)]
async fn a_graceful_shutdown_releases_the_lease_at_once() {
    let store = Local::new();
    let log = Log::new();
    let (a, b) = (member(), member());
    let arm_long = |sched: &Scheduler, who: usize| {
        let runs = log.clone();
        sched
            .timer(ms(1000))
            .recurring()
            .key("long")
            .coordinator(store.clone())
            .sub_interval(ms(100))
            .lease(ms(60_000))
            .on_expire_async(move |_f: Fire| {
                let runs = runs.clone();
                async move {
                    runs.push((who, tokio::time::Instant::now()));
                    std::future::pending::<()>().await;
                }
            })
            .arm()
            .unwrap()
    };
    let _ta = arm_long(&a, 0);
    tokio::time::sleep(ms(1100)).await;
    let _tb = arm_long(&b, 1);
    tokio::time::sleep(ms(2000)).await;
    assert_eq!(log.get().iter().map(|r| r.0).collect::<Vec<_>>(), vec![0], "a's 60 s lease blocks b");
    let stopped = tokio::time::Instant::now();
    a.shutdown().await;
    tokio::time::sleep(ms(1100)).await;
    let runs = log.get();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].0, 1);
    assert!(runs[1].1 - stopped <= ms(1000), "b ran the next tick, not 60 s later");
}

#[tokio::test(start_paused = true)]
async fn fire_once_runs_the_latest_missed_tick_and_skip_waits_for_the_next() {
    for (misfire, expect_late_run) in [(Misfire::default(), true), (Misfire::Skip, false)] {
        let store = Local::new();
        let sched = member();
        // Pretend the members were all down: tick 3 was the last one claimed.
        let now_tick = (sched_wall_ms(&sched) / 1000) as u64;
        let old =
            Claim { key: "m".into(), tick: now_tick - 5, member: "gone".into(), lease_ms: 1, now_ms: 0 };
        assert!(matches!(store.claim(&old).await.unwrap(), ClaimOutcome::Granted(_)));
        tokio::time::sleep(ms(500)).await; // half a tick late
        let log = Log::new();
        let seen = log.clone();
        let _timer = sched
            .timer(ms(1000))
            .recurring()
            .immediate()
            .key("m")
            .coordinator(store.clone())
            .sub_interval(ms(100))
            .misfire(misfire)
            .on_expire(move |f: &Fire| seen.push((f.missed(), tokio::time::Instant::now())))
            .arm()
            .unwrap();
        let armed = tokio::time::Instant::now();
        tokio::time::sleep(ms(10)).await;
        let runs = log.get();
        if expect_late_run {
            assert_eq!(runs.len(), 1, "{misfire:?}: the late tick ran at once");
            assert_eq!(runs[0].0, 4, "ticks between the last claimed and this one were missed");
            assert_eq!(runs[0].1, armed);
        } else {
            assert!(runs.is_empty(), "{misfire:?}: a tick half an interval late is skipped");
            tokio::time::sleep(ms(600)).await;
            assert_eq!(log.len(), 1, "the next tick runs on time");
        }
    }
}

/// Milliseconds of wall time as a FollowTokio scheduler sees it (whole minutes at start).
fn sched_wall_ms(_sched: &Scheduler) -> i64 {
    let system =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    system / 60_000 * 60_000
}

#[tokio::test(start_paused = true)]
async fn cluster_options_are_validated_by_name() {
    let sched = member();
    let store = Local::new();
    let noop = |_: &Fire| {};
    let t = || sched.timer(ms(1000)).recurring().on_expire(noop);
    assert_eq!(invalid_option(t().key("k").arm()), "coordinator");
    assert_eq!(invalid_option(t().coordinator(store.clone()).arm()), "key");
    assert_eq!(invalid_option(t().sub_interval(ms(10)).arm()), "sub_interval");
    assert_eq!(invalid_option(t().lease(ms(10)).arm()), "lease");
    assert_eq!(invalid_option(t().misfire(Misfire::Skip).arm()), "misfire");
    assert_eq!(
        invalid_option(t().key("k").coordinator(store.clone()).sub_interval(ms(2000)).arm()),
        "sub_interval"
    );
    assert_eq!(invalid_option(t().key("k").coordinator(store.clone()).jitter(ms(5)).arm()), "jitter");
    assert_eq!(invalid_option(t().key("k").coordinator(store.clone()).first(ms(5)).arm()), "first");
    assert_eq!(
        invalid_option(sched.timer(ms(1000)).on_expire(noop).key("k").coordinator(store.clone()).arm()),
        "key"
    );
    let cluster = t().key("k").coordinator(store).arm().unwrap();
    assert_eq!(invalid_option(cluster.arm(ms(5))), "interval");
}
