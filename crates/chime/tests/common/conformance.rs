//! The coordinator conformance suite: the rules of `chime::cluster::protocol` and a cluster timer
//! shared by three schedulers, against any backend (SQLite, Redis, PostgreSQL). Each backend's test
//! file implements [`Backend`] and runs every function here.
#![allow(dead_code, unreachable_pub)] // each backend file uses all of it; other test files none

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chime::cluster::{Claim, ClaimOutcome, Coordinator, Lease};
use chime::{Fire, Scheduler};

/// A store under test: how to open a handle on it, and how to clean a test's key up.
pub trait Backend: Sync {
    /// The coordinator type.
    type Store: Coordinator + Clone;
    /// The largest tick the store holds (PostgreSQL and SQLite keep ticks in signed 64 bits).
    const LARGEST_TICK: u64 = i64::MAX as u64;
    /// A new handle (a new connection, where the backend has them).
    fn connect(&self) -> impl Future<Output = Self::Store> + Send;
    /// Deletes a test's row (a coordinator never deletes one: that would restart its fences).
    fn remove(&self, key: &str) -> impl Future<Output = ()> + Send;
}

/// The URL in `var`, or `None` after a loud message saying `test` did not test `what` (and what to
/// set). Straight to the process's stderr: libtest would capture `eprintln!` of a passing test.
pub fn server_url(var: &str, what: &str, example: &str, test: &str) -> Option<String> {
    use std::io::Write;
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!! SKIPPED {test}: {var} is not set, so the {what} coordinator was NOT tested. !!!!!\n\
                 !!!!! Point it at a server, e.g. {var}={example} (.ci/run starts one). !!!!!\n"
            );
            None
        }
    }
}

/// A key no other test (nor an earlier run) uses.
pub fn unique_key(test: &str) -> String {
    format!("test-{test}-{:016x}", rand::random::<u64>())
}

pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

pub fn ask(key: &str, tick: u64, member: &str, lease_ms: i64) -> Claim {
    Claim { key: key.into(), tick, member: member.into(), lease_ms, now_ms: wall_ms() }
}

pub fn granted(outcome: ClaimOutcome) -> Lease {
    match outcome {
        ClaimOutcome::Granted(lease) => lease,
        other => panic!("expected a grant, got {other:?}"),
    }
}

/// The store's `lease_until_ms` of a Busy answer, checked against the local clock (the server is on
/// a machine whose clock agrees within `SKEW_MS`).
fn busy(outcome: ClaimOutcome, owner: &str) -> i64 {
    match outcome {
        ClaimOutcome::Busy { owner: holder, lease_until_ms } => {
            assert_eq!(holder, owner, "the lease holder");
            lease_until_ms
        }
        other => panic!("expected Busy (held by {owner}), got {other:?}"),
    }
}

const SKEW_MS: i64 = 2_000;

/// Sleeps until the local clock is past `until_ms` (a lease end on the store's clock) by a margin.
async fn sleep_past(until_ms: i64) {
    let wait = (until_ms - wall_ms() + 150).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

pub async fn one_claim_per_tick_and_fences_increase<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let key = unique_key("one-claim");
    let a = granted(store.claim(&ask(&key, 5, "a", 30_000)).await.unwrap());
    assert_eq!((a.key.as_str(), a.tick, a.fence, a.previous_tick), (key.as_str(), 5, 1, None));
    assert_eq!(a.member, "a");
    assert_eq!(store.claim(&ask(&key, 5, "b", 30_000)).await.unwrap(), ClaimOutcome::Taken { last_tick: 5 });
    assert_eq!(store.claim(&ask(&key, 4, "b", 30_000)).await.unwrap(), ClaimOutcome::Taken { last_tick: 5 });
    assert_eq!(
        store.claim(&ask(&key, 5, "a", 30_000)).await.unwrap(),
        ClaimOutcome::Taken { last_tick: 5 },
        "not even its own tick twice"
    );
    store.release(&a).await.unwrap();
    let b = granted(store.claim(&ask(&key, 6, "b", 30_000)).await.unwrap());
    assert_eq!((b.fence, b.previous_tick), (2, Some(5)));
    busy(store.claim(&ask(&key, 7, "c", 30_000)).await.unwrap(), "b");
    store.release(&b).await.unwrap();
    // A jump over missed ticks: the grant tells which tick came before.
    let c = granted(store.claim(&ask(&key, 60, "c", 30_000)).await.unwrap());
    assert_eq!((c.fence, c.previous_tick), (3, Some(6)));
    // Ticks compare as numbers, not strings: 100 is later than 60, 9 is not.
    store.release(&c).await.unwrap();
    assert_eq!(store.claim(&ask(&key, 9, "d", 30_000)).await.unwrap(), ClaimOutcome::Taken { last_tick: 60 });
    let d = granted(store.claim(&ask(&key, 100, "d", 30_000)).await.unwrap());
    assert_eq!((d.fence, d.previous_tick), (4, Some(60)));
    store.release(&d).await.unwrap();
    let big = B::LARGEST_TICK;
    let e = granted(store.claim(&ask(&key, big, "e", 30_000)).await.unwrap());
    assert_eq!((e.fence, e.previous_tick), (5, Some(100)));
    store.release(&e).await.unwrap();
    assert_eq!(
        store.claim(&ask(&key, big, "f", 30_000)).await.unwrap(),
        ClaimOutcome::Taken { last_tick: big },
        "the largest ticks compare exactly"
    );
    backend.remove(&key).await;
}

pub async fn a_live_lease_blocks_the_next_tick_until_it_expires<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let key = unique_key("live-lease");
    let before = wall_ms();
    let a = granted(store.claim(&ask(&key, 1, "a", 3_000)).await.unwrap());
    let after = wall_ms();
    let until = busy(store.claim(&ask(&key, 2, "b", 3_000)).await.unwrap(), "a");
    assert!(
        (before + 3_000 - SKEW_MS..=after + 3_000 + SKEW_MS).contains(&until),
        "the lease ends a lease after the claim on the store's clock: {until} vs {before}..{after}"
    );
    busy(store.claim(&ask(&key, 2, "a", 3_000)).await.unwrap(), "a"); // not even its own next tick
    sleep_past(until).await;
    let b = granted(store.claim(&ask(&key, 2, "b", 1_000)).await.unwrap());
    assert!(b.fence > a.fence, "expired: failover with a larger fence");
    assert_eq!((b.fence, b.previous_tick), (2, Some(1)));
    backend.remove(&key).await;
}

pub async fn a_lost_lease_cannot_be_renewed_or_released<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let key = unique_key("lost-lease");
    // A second: a loaded machine may hold this task back a good part of it before the renewal.
    let a = granted(store.claim(&ask(&key, 1, "a", 1_000)).await.unwrap());
    // Renewing extends the lease from the store's clock by the lease's length.
    let longer = Lease { lease_ms: 3_000, ..a.clone() };
    let renewed_at = wall_ms();
    assert!(store.renew(&longer, wall_ms()).await.unwrap(), "a live lease renews");
    tokio::time::sleep(Duration::from_millis(1_200)).await; // past the first lease
    let until = busy(store.claim(&ask(&key, 2, "b", 1_000)).await.unwrap(), "a");
    assert!(until >= renewed_at + 3_000 - SKEW_MS, "renewed from the store's clock: {until}");
    sleep_past(until).await;
    let b = granted(store.claim(&ask(&key, 2, "b", 30_000)).await.unwrap());
    assert_eq!(b.fence, 2);
    // a's lease is lost: it can neither renew nor release b's.
    assert!(!store.renew(&a, wall_ms()).await.unwrap(), "a lost lease does not renew");
    store.release(&a).await.unwrap();
    busy(store.claim(&ask(&key, 3, "c", 30_000)).await.unwrap(), "b");
    // Same member, older fence: still not the claim.
    let stale = Lease { member: "b".into(), ..a.clone() };
    assert!(!store.renew(&stale, wall_ms()).await.unwrap(), "the fence must match too");
    store.release(&stale).await.unwrap();
    busy(store.claim(&ask(&key, 3, "c", 30_000)).await.unwrap(), "b");
    assert!(store.renew(&b, wall_ms()).await.unwrap());
    store.release(&b).await.unwrap();
    assert!(!store.renew(&b, wall_ms()).await.unwrap(), "a released lease does not renew");
    let c = granted(store.claim(&ask(&key, 3, "c", 30_000)).await.unwrap());
    assert_eq!((c.fence, c.previous_tick), (3, Some(2)));
    backend.remove(&key).await;
}

/// Ten members on their own connections race for ticks 1..=50 in order, releasing at once: each
/// tick is granted exactly once, and the fences follow the ticks.
pub async fn fences_strictly_increase_across_concurrent_claims<B: Backend>(backend: &B) {
    let key = unique_key("concurrent");
    let grants = Arc::new(Mutex::new(Vec::new()));
    let start = Arc::new(tokio::sync::Barrier::new(10));
    let mut tasks = Vec::new();
    for who in 0..10 {
        let store = backend.connect().await;
        let (key, grants, start) = (key.clone(), grants.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            let member = format!("m{who}");
            start.wait().await; // all connected: race from here
            for tick in 1..=50u64 {
                loop {
                    match store.claim(&ask(&key, tick, &member, 30_000)).await.unwrap() {
                        ClaimOutcome::Granted(lease) => {
                            grants.lock().unwrap().push((tick, lease.fence, who));
                            store.release(&lease).await.unwrap();
                            break;
                        }
                        ClaimOutcome::Taken { last_tick } => {
                            assert!(last_tick >= tick);
                            break;
                        }
                        ClaimOutcome::Busy { .. } => tokio::task::yield_now().await,
                    }
                }
            }
        }));
    }
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all).await.expect("the claims finished");
    let mut grants = grants.lock().unwrap().clone();
    grants.sort();
    let ticks: Vec<u64> = grants.iter().map(|g| g.0).collect();
    assert_eq!(ticks, (1..=50).collect::<Vec<_>>(), "each tick granted exactly once: {grants:?}");
    let fences: Vec<u64> = grants.iter().map(|g| g.1).collect();
    assert_eq!(fences, (1..=50).collect::<Vec<_>>(), "fences strictly increase with the ticks");
    let winners: std::collections::BTreeSet<_> = grants.iter().map(|g| g.2).collect();
    eprintln!("{} of 10 members won ticks", winners.len());
    backend.remove(&key).await;
}

/// Three schedulers sharing the server, in real time: every 200 ms tick runs on exactly one of
/// them, with fences increasing tick by tick.
pub async fn three_members_run_each_tick_exactly_once<B: Backend>(backend: &B) {
    const INTERVAL_MS: u64 = 200;
    let key = unique_key("members");
    // (tick, fence, member) of each run.
    let runs = Arc::new(Mutex::new(Vec::<(u64, u64, usize)>::new()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let first_tick = wall_ms() as u64 / INTERVAL_MS;
    let mut members = Vec::new();
    for who in 0..3 {
        let seen = errors.clone();
        let sched = Scheduler::builder()
            .on_cluster_error(move |key, e| seen.lock().unwrap().push(format!("{key}: {e}")))
            .start();
        let log = runs.clone();
        let timer = sched
            .timer(Duration::from_millis(INTERVAL_MS))
            .recurring()
            .key(key.clone())
            .coordinator(backend.connect().await)
            .sub_interval(Duration::from_millis(50))
            .on_expire(move |fire: &Fire| {
                let tick = fire.tick().expect("a cluster run has a tick");
                log.lock().unwrap().push((tick, fire.fence().expect("a cluster run has a fence"), who));
            })
            .arm()
            .unwrap();
        members.push((sched, timer));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (sched, timer) in members {
        drop(timer);
        sched.shutdown().await;
    }
    // Read once every member is down: a member still up while another shuts down may run a tick.
    let last_tick = wall_ms() as u64 / INTERVAL_MS;
    let runs = runs.lock().unwrap().clone();
    let errors = errors.lock().unwrap().clone();
    let mut by_tick: BTreeMap<u64, Vec<(u64, usize)>> = BTreeMap::new();
    for &(tick, fence, who) in &runs {
        by_tick.entry(tick).or_default().push((fence, who));
    }
    assert!(by_tick.values().all(|r| r.len() == 1), "a tick ran twice: {by_tick:?}");
    assert!(
        by_tick.keys().all(|t| (first_tick..=last_tick).contains(t)),
        "ticks are wall-clock ms / interval, within the run's {first_tick}..={last_tick}: {by_tick:?}"
    );
    assert!(
        by_tick.len() >= 8,
        "{} ticks ran in 3 s of 200 ms ticks: {by_tick:?} (errors: {errors:?})",
        by_tick.len()
    );
    let fences: Vec<u64> = by_tick.values().map(|r| r[0].0).collect();
    assert!(fences.windows(2).all(|w| w[0] < w[1]), "fences increase tick by tick: {by_tick:?}");
    assert_eq!(fences[0], 1, "the first run of a new key has fence 1");
    let who: std::collections::BTreeSet<_> = runs.iter().map(|r| r.2).collect();
    eprintln!("{} ticks ran on members {who:?}; store errors: {errors:?}", by_tick.len());
    backend.remove(&key).await;
}

/// Declares the conformance suite's tests in a backend's test file. `$backend` turns a test's name
/// into `Some(backend)`, or `None` to skip (a server that is not configured).
// The backend files call it; the other test files include `common` without it.
#[allow(unused_macros)]
macro_rules! conformance_tests {
    ($backend:expr) => {
        #[tokio::test]
        async fn one_claim_per_tick_and_fences_increase() {
            let Some(backend) = ($backend)("one_claim_per_tick_and_fences_increase") else { return };
            crate::common::conformance::one_claim_per_tick_and_fences_increase(&backend).await;
        }

        #[tokio::test]
        async fn a_live_lease_blocks_the_next_tick_until_it_expires() {
            let Some(backend) = ($backend)("a_live_lease_blocks_the_next_tick_until_it_expires") else {
                return;
            };
            crate::common::conformance::a_live_lease_blocks_the_next_tick_until_it_expires(&backend).await;
        }

        #[tokio::test]
        async fn a_lost_lease_cannot_be_renewed_or_released() {
            let Some(backend) = ($backend)("a_lost_lease_cannot_be_renewed_or_released") else { return };
            crate::common::conformance::a_lost_lease_cannot_be_renewed_or_released(&backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn fences_strictly_increase_across_concurrent_claims() {
            let Some(backend) = ($backend)("fences_strictly_increase_across_concurrent_claims") else {
                return;
            };
            crate::common::conformance::fences_strictly_increase_across_concurrent_claims(&backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn three_members_run_each_tick_exactly_once() {
            let Some(backend) = ($backend)("three_members_run_each_tick_exactly_once") else { return };
            crate::common::conformance::three_members_run_each_tick_exactly_once(&backend).await;
        }
    };
}
#[allow(unused_imports)] // see the macro
pub(crate) use conformance_tests;
