//! Durable timers under network faults, on Redis and PostgreSQL: two schedulers share a store, each
//! through its own fault-injecting proxy (`common/proxy.rs`), with a 1 s lease. A sync run is held
//! past the fault on the scheduler that claimed it (the victim, whose connection is then faulted:
//! black-holed for longer than the lease, reset after a claim or a renewal reached the store, slowed
//! to 400 ms one way, the store restarted, or its wall clock set half a lease ahead), while async
//! timers come due throughout. Runs write to a sink that refuses a fence lower than one it accepted
//! for the same timer. For each fault: no two runs of an async timer overlap, fences increase per
//! timer, no run starts before its due time, the held run (a stale writer once its lease is lost) is
//! refused by the sink, and every timer has run within `lease + poll` (plus slack) after the fault.
//!
//! Redis runs as a `redis-server` of the test's own (AOF `always`); PostgreSQL is
//! `CHIME_POSTGRES_URL`, restarted with `CHIME_POSTGRES_URL_RESTART`. Without them the tests say so
//! loudly and pass without running.
#![cfg(all(feature = "redis", feature = "postgres"))]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use chime::cluster::{Postgres, Redis};
use chime::durable::{DurableFire, DurableTimers, NewTimer, Report};
use chime::{Scheduler, WallClock};
use common::Log;
use common::faults::{Fault, Hold, ReleaseOnDrop, SERIAL, Server, Sink, until, wall_ms};
use common::proxy::{Proxy, contains, resp_commands};

const LEASE: u64 = 1_000;
const POLL: u64 = 100;
const WORK: u64 = 300;
const SLACK: u64 = 1_500;
const NAMES: [&str; 2] = ["a", "b"];
const ASYNC: usize = 20;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// (wall ms, what, member, key, fence): `start`, `stop` (an async run dropped), `accepted`,
/// `refused` (the sink's answer), `end`.
type Event = (i64, &'static str, &'static str, String, u64);
/// (wall ms, scheduler, report)
type Reported = (i64, &'static str, Report);
/// What every scheduler writes to.
type Shared<'a> = (&'a Log<Event>, &'a Log<Reported>, &'a Sink, &'a Hold);

/// Whether a request chunk carries a claim (`true`) or a renewal (`false`) of durable timers.
fn carries(chunk: &[u8], claim: bool) -> bool {
    if contains(chunk, b"chime_durable") {
        return contains(
            chunk,
            if claim { b"FOR UPDATE SKIP LOCKED" } else { b"chime_durable d SET ready_ms" },
        );
    }
    let op: &[u8] = if claim { b"claim" } else { b"renew" };
    resp_commands(chunk).iter().any(|c| c.len() > 4 && c[0].eq_ignore_ascii_case(b"EVALSHA") && c[4] == op)
}

/// Logs `stop` when an async run is dropped before it ended.
struct Stop(Option<(Log<Event>, &'static str, String, u64)>);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some((log, who, key, fence)) = self.0.take() {
            log.push((wall_ms(), "stop", who, key, fence));
        }
    }
}

async fn scheduler(
    server: &Server,
    proxy: &Proxy,
    name: &'static str,
    skew: i64,
    (events, reports, sink, hold): Shared<'_>,
) -> (Scheduler, DurableTimers) {
    let wall = if skew == 0 { WallClock::System } else { WallClock::Skewed(skew) };
    let sched = Scheduler::builder().wall_clock(wall).start();
    let url = server.url_via(proxy.addr);
    let builder = match server {
        Server::Postgres { .. } => sched.durable(Postgres::connect(&url).await.unwrap()),
        Server::Redis { .. } => sched.durable(Redis::connect(&url).await.unwrap()),
    };
    let (log, sink_a, seen) = (events.clone(), sink.clone(), reports.clone());
    let (log_s, sink_s, hold) = (events.clone(), sink.clone(), hold.clone());
    let timers = builder
        .handler_async("work", move |f: DurableFire| {
            let (log, sink) = (log.clone(), sink_a.clone());
            async move {
                let (key, fence) = (f.key().to_string(), f.fence());
                log.push((wall_ms(), "start", name, key.clone(), fence));
                let mut stop = Stop(Some((log.clone(), name, key.clone(), fence)));
                tokio::time::sleep(ms(WORK)).await;
                let answer = if sink.write(&key, fence) { "accepted" } else { "refused" };
                log.push((wall_ms(), answer, name, key.clone(), fence));
                stop.0 = None;
                log.push((wall_ms(), "end", name, key, fence));
                Ok::<_, std::io::Error>(())
            }
        })
        .handler("held", move |f: &DurableFire| {
            log_s.push((wall_ms(), "start", name, f.key().to_string(), f.fence()));
            hold.wait(name);
            let answer = if sink_s.write(f.key(), f.fence()) { "accepted" } else { "refused" };
            log_s.push((wall_ms(), answer, name, f.key().to_string(), f.fence()));
            Ok::<_, std::io::Error>(())
        })
        .lease(ms(LEASE))
        .poll(ms(POLL))
        .retry(chime::durable::RetryPolicy::fixed(ms(100)).max_attempts(20))
        .on_report(move |r| seen.push((wall_ms(), name, r.clone())))
        .start()
        .await
        .unwrap();
    (sched, timers)
}

fn at(ms_since_epoch: i64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms_since_epoch as u64)
}

async fn scenario(fault: Fault, mut server: Server) {
    let tag = format!("{}-{fault:?}-{:08x}", server.name(), rand::random::<u32>());
    let (events, reports, sink, hold) = (Log::new(), Log::new(), Sink::default(), Hold::default());
    let _release = ReleaseOnDrop(hold.clone());
    let proxies = [Proxy::start(server.upstream()).await, Proxy::start(server.upstream()).await];
    let skew = if fault == Fault::Skew { LEASE as i64 / 2 } else { 0 };
    let shared = (&events, &reports, &sink, &hold);
    let mut members = Vec::new();
    for (i, name) in NAMES.into_iter().enumerate() {
        members.push(scheduler(&server, &proxies[i], name, if i == 0 { skew } else { 0 }, shared).await);
    }
    let timers = members[1].1.clone();
    let mut due: BTreeMap<String, i64> = BTreeMap::new();
    let mut create = async |key: String, due_ms: i64, handler: &str| {
        timers.create(NewTimer::at(key.clone(), at(due_ms), handler, Vec::new())).await.unwrap();
        due.insert(key, due_ms);
    };
    for i in 0..4 {
        create(format!("{tag}-warm-{i}"), wall_ms() + 100 * i, "work").await;
    }
    until(ms(5_000), "the warm-up runs", || events.get().iter().filter(|e| e.1 == "end").count() == 4).await;

    // The held run: whoever claims it is the victim, faulted while it holds the lease.
    let mut victim = 0;
    let mut held = None;
    if [Fault::BlackHole, Fault::Latency, Fault::ResetMidRenewal].contains(&fault) {
        NAMES.iter().for_each(|n| hold.set(n, true));
        let key = format!("{tag}-held");
        create(key.clone(), wall_ms(), "held").await;
        until(ms(5_000), "the held run", || events.get().iter().any(|e| e.3 == key)).await;
        let run = events.get().into_iter().find(|e| e.3 == key).unwrap();
        victim = NAMES.iter().position(|n| *n == run.2).unwrap();
        hold.set(NAMES[1 - victim], false);
        held = Some(run);
    }
    let start = wall_ms();
    for i in 0..ASYNC as i64 {
        create(format!("{tag}-{i:02}"), start + 100 * i, "work").await;
    }
    let proxy = &proxies[victim];
    match fault {
        Fault::BlackHole => {
            proxy.black_hole(true);
            tokio::time::sleep(ms(LEASE * 2 + 300)).await;
            proxy.black_hole(false);
        }
        Fault::ResetMidClaim => {
            proxy.reset_after(|chunk| carries(chunk, true));
            until(ms(5_000), "a reset mid-claim", || proxy.resets_after() == 1).await;
            tokio::time::sleep(ms(LEASE)).await;
        }
        Fault::ResetMidRenewal => {
            proxy.reset_after(|chunk| carries(chunk, false));
            until(ms(5_000), "a reset mid-renewal", || proxy.resets_after() == 1).await;
            tokio::time::sleep(ms(LEASE * 2)).await;
        }
        Fault::Latency => {
            // Slowed renewals still reach the store and extend the lease there, until the victim
            // gives its run up (about a lease after the fault began, when it next gets a core):
            // three leases leave a loaded machine two of them to do so.
            proxy.latency(ms(LEASE * 2 / 5));
            tokio::time::sleep(ms(LEASE * 3 + 300)).await;
            proxy.latency(Duration::ZERO);
        }
        Fault::StoreRestart => {
            tokio::task::block_in_place(|| server.restart());
            tokio::time::sleep(ms(LEASE)).await;
        }
        Fault::Skew => tokio::time::sleep(ms(2_000)).await,
    }
    let fault_end = wall_ms();
    if let Some(run) = &held {
        if stale_expected(fault) {
            // The other scheduler runs the held timer again once its lease is lost, and writes...
            let other = NAMES[1 - victim];
            until(ms(LEASE * 3 + SLACK * 2), "the other scheduler's run of the held timer", || {
                events.get().iter().any(|e| e.3 == run.3 && e.2 == other && e.1 == "accepted")
            })
            .await;
        }
        // ...then the held run ends: with its stale fence, or (its lease kept) as the only run.
        hold.set(run.2, false);
        until(ms(2_000), "the held run's write", || {
            events.get().iter().any(|e| e.3 == run.3 && e.4 == run.4 && e.1 != "start")
        })
        .await;
    }
    let last_due = due.values().copied().max().unwrap();
    let bound = (LEASE + POLL + SLACK) as i64;
    let all_written = || due.keys().all(|k| events.get().iter().any(|e| &e.3 == k && e.1 == "accepted"));
    let deadline = fault_end.max(last_due) + bound;
    while !all_written() && wall_ms() < deadline + 2_000 {
        tokio::time::sleep(ms(20)).await;
    }
    let recovered = wall_ms();
    tokio::time::sleep(ms(WORK + 200)).await; // a second run of anything would show now
    for (sched, timers) in members {
        timers.shutdown().await;
        sched.shutdown().await;
    }
    check(fault, &events.get(), &reports.get(), &due, held.as_ref(), (fault_end, deadline, recovered));
}

/// Whether the held run's lease is lost under `fault` (its scheduler cannot renew for a whole lease):
/// then it is a stale writer.
fn stale_expected(fault: Fault) -> bool {
    matches!(fault, Fault::BlackHole | Fault::Latency)
}

fn check(
    fault: Fault,
    events: &[Event],
    reports: &[Reported],
    due: &BTreeMap<String, i64>,
    held: Option<&Event>,
    (fault_end, deadline, recovered): (i64, i64, i64),
) {
    let mut per_key: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    events.iter().for_each(|e| per_key.entry(e.3.as_str()).or_default().push(e));
    let mut reruns = 0;
    for (key, evs) in &per_key {
        let starts: Vec<&&Event> = evs.iter().filter(|e| e.1 == "start").collect();
        reruns += starts.len() - 1;
        let fences: Vec<u64> = starts.iter().map(|e| e.4).collect();
        assert!(fences.windows(2).all(|w| w[0] < w[1]), "{fault:?}: {key}: fences {fences:?}");
        let early: Vec<_> = starts.iter().filter(|e| e.0 < due[*key]).collect();
        assert!(early.is_empty(), "{fault:?}: {key} started before {}: {early:?}", due[*key]);
        assert!(evs.iter().any(|e| e.1 == "accepted"), "{fault:?}: {key} never completed: {evs:?}");
        if held.is_some_and(|h| h.3 == **key) {
            continue; // a sync run cannot be stopped: it overlaps its successor, and is refused below
        }
        // No overlap: each run's start comes after the previous run ended or was stopped.
        let mut open: Option<u64> = None;
        for e in evs {
            match e.1 {
                "start" => {
                    assert!(open.is_none(), "{fault:?}: {key}: runs overlap: {evs:?}");
                    open = Some(e.4);
                }
                "end" | "stop" if open == Some(e.4) => open = None,
                _ => {}
            }
        }
    }
    if let Some(run) = held {
        let write = events.iter().find(|e| e.3 == run.3 && e.4 == run.4 && e.1 != "start").unwrap();
        let lost = reports
            .iter()
            .any(|r| matches!(&r.2, Report::LeaseLost { key, fence } if *key == run.3 && *fence == run.4));
        if stale_expected(fault) {
            assert_eq!(
                write.1, "refused",
                "{fault:?}: the stale writer's late write was accepted: {write:?}"
            );
            assert!(lost, "{fault:?}: the lost lease was not reported: {reports:?}");
        } else {
            // A reset renewal is tried again on a new connection: the lease holds, the run counts.
            assert_eq!(write.1, "accepted", "{fault:?}: {write:?}");
            assert!(!lost, "{fault:?}: the lease was lost: {reports:?}");
            assert_eq!(
                per_key[run.3.as_str()].iter().filter(|e| e.1 == "start").count(),
                1,
                "{fault:?}: ran twice"
            );
        }
    }
    assert!(
        recovered <= deadline,
        "{fault:?}: every timer ran only {} ms after the fault (bound {} ms)",
        recovered - fault_end,
        deadline - fault_end
    );
    let late_errors: Vec<_> = reports
        .iter()
        .filter(|r| matches!(r.2, Report::Store(_)) && r.0 > fault_end + (LEASE + POLL + SLACK) as i64)
        .collect();
    assert!(late_errors.is_empty(), "{fault:?}: store errors after recovery: {late_errors:?}");
    let stores = reports.iter().filter(|r| matches!(r.2, Report::Store(_))).count();
    eprintln!(
        "{fault:?}: {} timers, {reruns} run again after a lost lease, all done {} ms after the fault, {stores} store errors",
        per_key.len(),
        recovered - fault_end
    );
}

macro_rules! fault_tests {
    ($($name:ident: $fault:expr, $server:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let _serial = SERIAL.lock().await;
            let Some(server) = Server::$server(stringify!($name)).await else { return };
            if $fault == Fault::StoreRestart && !server.can_restart() {
                common::faults::skip(stringify!($name), "CHIME_POSTGRES_URL_RESTART is not set: no restart was tested");
                return;
            }
            scenario($fault, server).await;
        }
    )*};
}

fault_tests! {
    redis_black_hole: Fault::BlackHole, redis;
    redis_reset_mid_claim: Fault::ResetMidClaim, redis;
    redis_reset_mid_renewal: Fault::ResetMidRenewal, redis;
    redis_latency: Fault::Latency, redis;
    redis_restart: Fault::StoreRestart, redis;
    redis_skew: Fault::Skew, redis;
    postgres_black_hole: Fault::BlackHole, postgres;
    postgres_reset_mid_claim: Fault::ResetMidClaim, postgres;
    postgres_reset_mid_renewal: Fault::ResetMidRenewal, postgres;
    postgres_latency: Fault::Latency, postgres;
    postgres_restart: Fault::StoreRestart, postgres;
    postgres_skew: Fault::Skew, postgres;
}
