//! The durable store conformance suite: the rules of `chime::durable::machine` and schedulers sharing
//! a store, against any backend (SQLite, Redis, PostgreSQL). Each backend's `durable_<backend>.rs`
//! implements [`DurableBackend`] and declares the tests with [`durable_conformance_tests!`].
//!
//! The tests of one binary run one at a time (they purge, which touches every test's rows), and
//! each uses handler names of its own, so claims never see another test's timers.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chime::Scheduler;
use chime::durable::machine::{ClaimRules, Decision, Outcome, Row, State};
use chime::durable::{ClaimRequest, DurableFire, DurableStore, Finish};

/// A store under test.
pub trait DurableBackend: Sync {
    /// The store type.
    type Store: DurableStore + Clone;
    /// A new handle (a new connection, where the backend has them), prepared.
    fn connect(&self) -> impl Future<Output = Self::Store> + Send;
}

/// One test at a time per binary.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A name no other test (nor an earlier run) uses.
pub fn unique(what: &str) -> String {
    format!("{what}-{:012x}", rand::random::<u64>() >> 16)
}

fn rules(member: &str, lease_ms: i64) -> ClaimRules {
    ClaimRules { member: member.into(), lease_ms, max_attempts: 5, grace_ms: None }
}

fn ask(handler: &str, rules: ClaimRules) -> ClaimRequest {
    ClaimRequest { rules, handlers: vec![handler.to_string()], limit: 100, now_ms: wall_ms() }
}

/// Clock agreement between the test and a server on the same machine, with slack for a loaded one.
const SKEW_MS: i64 = 2_000;

async fn cleanup<S: DurableStore>(store: &S, keys: &[String]) {
    for key in keys {
        store.cancel(key, wall_ms()).await.unwrap();
    }
    store.purge(i64::MAX, 100_000).await.unwrap();
}

pub async fn creation_is_idempotent_and_stores_every_field<B: DurableBackend>(backend: &B) {
    let _serial = SERIAL.lock().await;
    let store = backend.connect().await;
    let h = unique("h");
    let (a, b) = (unique("a"), unique("b"));
    let payload = vec![0, 1, 2, 255, 0];
    let rows = [
        Row::new(&a, &h, payload.clone(), 1_000_000, None),
        Row::new(&b, &h, Vec::new(), 2_000_000, Some(5)),
    ];
    assert_eq!(store.create(&rows).await.unwrap(), [None, None]);
    let stored = store.get(&a).await.unwrap().expect("stored");
    assert_eq!(stored, rows[0], "every field as created");
    assert_eq!(store.get(&b).await.unwrap().unwrap().grace_ms, Some(5));
    // Again: nothing changes, the stored rows come back; in one batch the first of a key wins.
    let again =
        [Row::new(&a, &h, b"other".to_vec(), 5, None), Row::new(&unique("c"), &h, Vec::new(), 7, None)];
    let c = again[1].key.clone();
    let dup = Row::new(&c, &h, b"dup".to_vec(), 9, None);
    let answers = store.create(&[again[0].clone(), again[1].clone(), dup]).await.unwrap();
    assert_eq!(answers[0].as_ref(), Some(&rows[0]), "exists: the stored row");
    assert_eq!(answers[1], None);
    assert_eq!(answers[2].as_ref().map(|r| r.due_ms), Some(7), "the batch's first {c} was stored");
    assert_eq!(store.get("no such key").await.unwrap(), None);
    cleanup(&store, &[a, b, c]).await;
}

pub async fn claims_take_due_timers_of_their_handlers_earliest_first<B: DurableBackend>(backend: &B) {
    let _serial = SERIAL.lock().await;
    let store = backend.connect().await;
    let (h, other) = (unique("h"), unique("other"));
    let now = wall_ms();
    let keys: Vec<String> = (0..4).map(|i| unique(&format!("k{i}"))).collect();
    let rows = [
        Row::new(&keys[0], &h, Vec::new(), now - 5_000, None),
        Row::new(&keys[1], &h, Vec::new(), now - 10_000, None),
        Row::new(&keys[2], &h, Vec::new(), now + 3_600_000, None),
        Row::new(&keys[3], &other, Vec::new(), now - 10_000, None),
    ];
    store.create(&rows).await.unwrap();
    let reply = store.claim(&ask(&h, rules("a", 30_000))).await.unwrap();
    assert!((reply.now_ms - wall_ms()).abs() < SKEW_MS, "the store's clock: {}", reply.now_ms);
    let got: Vec<_> = reply.claimed.iter().map(|c| (c.decision, c.row.key.clone())).collect();
    assert_eq!(
        got,
        [(Decision::Run, keys[1].clone()), (Decision::Run, keys[0].clone())],
        "due ones, earliest first"
    );
    for c in &reply.claimed {
        assert_eq!((c.row.state, c.row.attempt, c.row.owner.as_deref()), (State::Running, 1, Some("a")));
        assert!((c.row.ready_ms - (reply.now_ms + 30_000)).abs() < SKEW_MS, "leased until now + lease");
    }
    let fences: Vec<u64> = reply.claimed.iter().map(|c| c.row.fence).collect();
    assert_ne!(fences[0], fences[1], "one fence per grant");
    let leases_end = reply.claimed.iter().map(|c| c.row.ready_ms).min();
    assert_eq!(reply.next_ready_ms, leases_end, "the next claimable: when a lease runs out");
    let again = store.claim(&ask(&h, rules("b", 30_000))).await.unwrap();
    assert!(again.claimed.is_empty(), "live leases block: {:?}", again.claimed);
    assert_eq!(
        store.get(&keys[3]).await.unwrap().unwrap().state,
        State::Pending,
        "another handler's: left alone"
    );
    let unknown = store.unknown(std::slice::from_ref(&h), wall_ms()).await.unwrap();
    assert!(unknown.contains(&(other.clone(), 1)), "{unknown:?}");
    assert!(!unknown.iter().any(|(name, _)| name == &h));
    // Ends: fired once; a repeated end is recorded already; a stranger's is stale.
    let (k, fence) = (reply.claimed[0].row.key.clone(), reply.claimed[0].row.fence);
    let fired = Finish { key: k.clone(), fence, outcome: Outcome::Fired };
    assert_eq!(
        store.finish("b", std::slice::from_ref(&fired), wall_ms()).await.unwrap(),
        [false],
        "not b's run"
    );
    assert_eq!(store.finish("a", std::slice::from_ref(&fired), wall_ms()).await.unwrap(), [true]);
    assert_eq!(store.finish("a", std::slice::from_ref(&fired), wall_ms()).await.unwrap(), [true], "already");
    let done = store.get(&k).await.unwrap().unwrap();
    assert_eq!((done.state, done.owner, done.fence), (State::Fired, None, fence));
    cleanup(&store, &keys).await;
}

pub async fn a_lease_blocks_until_it_runs_out_then_the_next_run_has_a_higher_attempt_and_fence<
    B: DurableBackend,
>(
    backend: &B,
) {
    let _serial = SERIAL.lock().await;
    let (a, b) = (backend.connect().await, backend.connect().await);
    let h = unique("h");
    let k = unique("k");
    a.create(&[Row::new(&k, &h, Vec::new(), wall_ms() - 1_000, None)]).await.unwrap();
    let first = a.claim(&ask(&h, rules("a", 1_500))).await.unwrap().claimed.remove(0).row;
    let runs = [(k.clone(), first.fence)];
    assert_eq!(b.renew("b", &runs, 1_500, wall_ms()).await.unwrap(), [false], "only the holder renews");
    assert_eq!(a.renew("a", &runs, 1_500, wall_ms()).await.unwrap(), [true]);
    assert!(b.claim(&ask(&h, rules("b", 1_500))).await.unwrap().claimed.is_empty());
    tokio::time::sleep(Duration::from_millis(1_500 + 300)).await;
    let second = b.claim(&ask(&h, rules("b", 30_000))).await.unwrap().claimed.remove(0);
    assert_eq!((second.decision, second.row.attempt), (Decision::Run, 2), "the dead run's successor");
    assert!(second.row.fence > first.fence, "a higher fence: {} > {}", second.row.fence, first.fence);
    assert_eq!(a.renew("a", &runs, 1_500, wall_ms()).await.unwrap(), [false], "a's lease is gone");
    let stale = Finish { key: k.clone(), fence: first.fence, outcome: Outcome::Fired };
    assert_eq!(a.finish("a", &[stale], wall_ms()).await.unwrap(), [false], "a's end is refused");
    assert_eq!(b.get(&k).await.unwrap().unwrap().state, State::Running);
    cleanup(&a, &[k]).await;
}

pub async fn failures_retry_after_their_backoff_and_exhaust<B: DurableBackend>(backend: &B) {
    let _serial = SERIAL.lock().await;
    let store = backend.connect().await;
    let h = unique("h");
    let (k, orphan) = (unique("k"), unique("orphan"));
    let now = wall_ms() - 1_000;
    store.create(&[Row::new(&k, &h, Vec::new(), now, None)]).await.unwrap();
    let run = store.claim(&ask(&h, rules("a", 30_000))).await.unwrap().claimed.remove(0).row;
    let retry = Finish {
        key: k.clone(),
        fence: run.fence,
        outcome: Outcome::Retry { delay_ms: 1_000, error: "e1".into() },
    };
    assert_eq!(store.finish("a", &[retry], wall_ms()).await.unwrap(), [true]);
    let waiting = store.get(&k).await.unwrap().unwrap();
    assert_eq!((waiting.state, waiting.attempt, waiting.error.as_deref()), (State::Pending, 1, Some("e1")));
    let early = store.claim(&ask(&h, rules("a", 30_000))).await.unwrap();
    assert!(early.claimed.is_empty(), "not before its backoff");
    assert_eq!(early.next_ready_ms, Some(waiting.ready_ms));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let again = store.claim(&ask(&h, rules("a", 30_000))).await.unwrap().claimed.remove(0).row;
    assert_eq!(again.attempt, 2);
    let failed =
        Finish { key: k.clone(), fence: again.fence, outcome: Outcome::Failed { error: "e2".into() } };
    assert_eq!(store.finish("a", &[failed], wall_ms()).await.unwrap(), [true]);
    let row = store.get(&k).await.unwrap().unwrap();
    assert_eq!((row.state, row.error.as_deref()), (State::Failed, Some("e2")));
    // A last attempt whose scheduler died: the next claim fails the timer instead of running it.
    store.create(&[Row::new(&orphan, &h, Vec::new(), now, None)]).await.unwrap();
    let one = ClaimRules { max_attempts: 1, ..rules("a", 300) };
    assert_eq!(store.claim(&ask(&h, one.clone())).await.unwrap().claimed.len(), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let exhausted = store.claim(&ask(&h, one)).await.unwrap().claimed.remove(0);
    assert_eq!((exhausted.decision, exhausted.row.state), (Decision::Exhausted, State::Failed));
    assert!(exhausted.row.error.unwrap().contains("attempt 1 never finished"));
    // Released: claimable at once, and not an attempt.
    let (rel, h2) = (unique("released"), unique("h"));
    store.create(&[Row::new(&rel, &h2, Vec::new(), now, None)]).await.unwrap();
    let run = store.claim(&ask(&h2, rules("a", 30_000))).await.unwrap().claimed.remove(0).row;
    let back = Finish { key: rel.clone(), fence: run.fence, outcome: Outcome::Released };
    assert_eq!(store.finish("a", &[back], wall_ms()).await.unwrap(), [true]);
    let rerun = store.claim(&ask(&h2, rules("b", 30_000))).await.unwrap().claimed.remove(0).row;
    assert_eq!((rerun.attempt, rerun.owner.as_deref()), (1, Some("b")));
    assert!(rerun.fence > run.fence);
    cleanup(&store, &[k, orphan, rel]).await;
}

pub async fn grace_skips_late_first_runs_and_a_timer_s_own_grace_wins<B: DurableBackend>(backend: &B) {
    let _serial = SERIAL.lock().await;
    let store = backend.connect().await;
    let h = unique("h");
    let now = wall_ms();
    let keys: Vec<String> = (0..3).map(|i| unique(&format!("g{i}"))).collect();
    store
        .create(&[
            Row::new(&keys[0], &h, Vec::new(), now - 20_000, None),
            Row::new(&keys[1], &h, Vec::new(), now - 20_000, Some(60_000)),
            Row::new(&keys[2], &h, Vec::new(), now - 1_000, None),
        ])
        .await
        .unwrap();
    let strict = ClaimRules { grace_ms: Some(10_000), ..rules("a", 30_000) };
    let reply = store.claim(&ask(&h, strict)).await.unwrap();
    let got: BTreeMap<String, Decision> =
        reply.claimed.iter().map(|c| (c.row.key.clone(), c.decision)).collect();
    assert_eq!(got[&keys[0]], Decision::Skipped, "20 s late, grace 10 s");
    assert_eq!(got[&keys[1]], Decision::Run, "its own grace of 60 s");
    assert_eq!(got[&keys[2]], Decision::Run, "within the grace");
    let skipped = store.get(&keys[0]).await.unwrap().unwrap();
    assert_eq!((skipped.state, skipped.attempt, skipped.owner), (State::Skipped, 0, None));
    assert!(skipped.error.unwrap().contains(" ms late (grace 10000 ms)"));
    cleanup(&store, &keys).await;
}

pub async fn cancel_list_and_purge<B: DurableBackend>(backend: &B) {
    let _serial = SERIAL.lock().await;
    let store = backend.connect().await;
    let h = unique("h");
    let base = wall_ms() + 3_600_000;
    let keys: Vec<String> = ["b", "a", "c"].iter().map(|k| format!("{}-{k}", unique("list"))).collect();
    let rows: Vec<Row> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Row::new(k, &h, Vec::new(), base + (i as i64 % 2), None))
        .collect();
    store.create(&rows).await.unwrap();
    // Order (ready, key): keys[0] and keys[2] at base (byte order of keys), keys[1] at base + 1.
    let mut first_two = [keys[0].clone(), keys[2].clone()];
    first_two.sort();
    let mine =
        |rows: Vec<Row>| rows.into_iter().filter(|r| r.handler == h).map(|r| r.key).collect::<Vec<_>>();
    let page = store.list(State::Pending, Some((base - 1, "")), 1_000).await.unwrap();
    assert_eq!(mine(page.clone()), [first_two[0].clone(), first_two[1].clone(), keys[1].clone()]);
    let start = page.iter().find(|r| r.key == first_two[0]).unwrap();
    let after = store.list(State::Pending, Some((start.ready_ms, start.key.as_str())), 1).await.unwrap();
    assert_eq!(mine(after), [first_two[1].clone()], "the page after a row, of one");
    assert!(store.cancel(&keys[1], wall_ms()).await.unwrap());
    assert!(!store.cancel(&keys[1], wall_ms()).await.unwrap(), "once");
    assert!(!store.cancel("no such key", wall_ms()).await.unwrap());
    let cancelled = store.list(State::Cancelled, None, 100_000).await.unwrap();
    assert_eq!(mine(cancelled), [keys[1].clone()]);
    assert!(store.claim(&ask(&h, rules("a", 30_000))).await.unwrap().claimed.is_empty(), "nothing due");
    // Purge: only finished rows, and only those that finished before the cutoff.
    // (Rows of earlier runs, sharing the server, may go now: only this test's are checked.)
    store.purge(wall_ms() - 60_000, 100_000).await.unwrap();
    assert!(store.get(&keys[1]).await.unwrap().is_some(), "finished too recently to go");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(store.purge(wall_ms() + SKEW_MS, 1_000).await.unwrap() >= 1);
    assert_eq!(store.get(&keys[1]).await.unwrap(), None, "purged");
    assert!(store.get(&keys[0]).await.unwrap().is_some(), "pending rows stay");
    // The key is free again, and its fences go on from the store's counter.
    let pre = unique("pre");
    store.create(&[Row::new(&pre, &h, Vec::new(), wall_ms() - 1, None)]).await.unwrap();
    let before = store.claim(&ask(&h, rules("a", 30_000))).await.unwrap().claimed[0].row.fence;
    store.create(&[Row::new(&keys[1], &h, Vec::new(), wall_ms() - 1, None)]).await.unwrap();
    let reply = store.claim(&ask(&h, rules("a", 30_000))).await.unwrap();
    assert_eq!(reply.claimed.len(), 1);
    assert_eq!(reply.claimed[0].row.key, keys[1]);
    assert!(reply.claimed[0].row.fence > before, "{} > {before}", reply.claimed[0].row.fence);
    let mut keys = keys;
    keys.push(pre);
    cleanup(&store, &keys).await;
}

/// Three schedulers on their own connections, in real time: 150 timers due over 1.5 s each run
/// exactly once, never before their due time, with fences strictly increasing per timer.
pub async fn three_schedulers_run_each_timer_exactly_once<B: DurableBackend>(backend: &B) {
    let _serial = SERIAL.lock().await;
    let h = unique("h");
    let runs = Arc::new(Mutex::new(Vec::<(String, u64, usize, i64, i64)>::new()));
    let mut members = Vec::new();
    for who in 0..3 {
        let sched = Scheduler::start();
        let log = runs.clone();
        let timers = sched
            .durable(backend.connect().await)
            .handler_async(h.clone(), move |f: DurableFire| {
                let log = log.clone();
                async move {
                    let due = f.due().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
                    log.lock().unwrap().push((f.key().to_string(), f.fence(), who, due, wall_ms()));
                    Ok::<_, std::io::Error>(())
                }
            })
            .poll(Duration::from_millis(100))
            .start()
            .await
            .unwrap();
        members.push((sched, timers));
    }
    let start = wall_ms();
    let batch: Vec<_> = (0..150)
        .map(|i| {
            chime::durable::NewTimer::at(
                format!("{h}-{i}"),
                UNIX_EPOCH + Duration::from_millis((start + 200 + i * 10) as u64),
                h.clone(),
                Vec::new(),
            )
        })
        .collect();
    members[0].1.create_many(batch).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while runs.lock().unwrap().len() < 150 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // any double run would show now
    for (sched, timers) in &members {
        timers.shutdown().await;
        sched.shutdown().await;
    }
    let runs = runs.lock().unwrap().clone();
    let mut per_key: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    runs.iter().for_each(|r| per_key.entry(r.0.as_str()).or_default().push(r));
    assert_eq!(per_key.len(), 150, "every timer ran");
    assert!(
        per_key.values().all(|r| r.len() == 1),
        "a timer ran twice: {:?}",
        per_key.values().find(|r| r.len() > 1)
    );
    let early: Vec<_> = runs.iter().filter(|r| r.4 < r.3).collect();
    assert!(early.is_empty(), "runs before their due time (ms): {early:?}");
    let late = runs.iter().map(|r| r.4 - r.3).max().unwrap();
    let who: std::collections::BTreeSet<_> = runs.iter().map(|r| r.2).collect();
    eprintln!("150 timers ran once each on schedulers {who:?}; latest start {late} ms after its due time");
    let store = backend.connect().await;
    let keys: Vec<String> = per_key.keys().map(|k| k.to_string()).collect();
    for key in &keys {
        assert_eq!(store.get(key).await.unwrap().unwrap().state, State::Fired);
    }
    cleanup(&store, &keys).await;
}

/// Declares the suite's tests in a backend's test file. `$backend` turns a test's name into
/// `Some(backend)`, or `None` to skip (a server that is not configured).
#[allow(unused_macros)]
macro_rules! durable_conformance_tests {
    ($backend:expr) => {
        crate::common::durable_conformance::durable_conformance_tests!(@one $backend, creation_is_idempotent_and_stores_every_field);
        crate::common::durable_conformance::durable_conformance_tests!(@one $backend, claims_take_due_timers_of_their_handlers_earliest_first);
        crate::common::durable_conformance::durable_conformance_tests!(@one $backend, a_lease_blocks_until_it_runs_out_then_the_next_run_has_a_higher_attempt_and_fence);
        crate::common::durable_conformance::durable_conformance_tests!(@one $backend, failures_retry_after_their_backoff_and_exhaust);
        crate::common::durable_conformance::durable_conformance_tests!(@one $backend, grace_skips_late_first_runs_and_a_timer_s_own_grace_wins);
        crate::common::durable_conformance::durable_conformance_tests!(@one $backend, cancel_list_and_purge);
        crate::common::durable_conformance::durable_conformance_tests!(@one $backend, three_schedulers_run_each_timer_exactly_once);
    };
    (@one $backend:expr, $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(backend) = ($backend)(stringify!($name)) else { return };
            crate::common::durable_conformance::$name(&backend).await;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use durable_conformance_tests;
