//! Cluster timers under network faults, on Redis and PostgreSQL: two members, each talking to the
//! store through its own fault-injecting proxy (`common/proxy.rs`), share a timer ticking every
//! 200 ms with a 600 ms lease. One member is faulted: its connection black-holed for longer than the
//! lease, reset after a claim or a renewal reached the store, slowed to 240 ms one way, the store
//! restarted, or its wall clock set half a lease ahead. Runs write to a sink that refuses fences lower
//! than one it accepted. For each fault: at most one start per tick, fences strictly increasing with
//! the ticks, the stale writer (a run held past its lost lease) refused by the sink, and recovery
//! within `lease + sub_interval + interval` (plus slack for a loaded machine) after the fault ends.
//!
//! Redis runs as a `redis-server` of the test's own (AOF `always`, so its restart is a real crash
//! and restart); PostgreSQL is `CHIME_POSTGRES_URL`, restarted with `CHIME_POSTGRES_URL_RESTART`.
//! Without them the tests say so loudly and pass without running.
#![cfg(all(feature = "redis", feature = "postgres"))]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chime::cluster::{Postgres, Redis};
use chime::{Fire, Scheduler, Timer, WallClock};
use common::Log;
use common::faults::{Fault, Hold, ReleaseOnDrop, SERIAL, Server, Sink, until, wall_ms};
use common::proxy::{Proxy, contains, resp_commands};

const INTERVAL: u64 = 200;
const SUB: u64 = 50;
const LEASE: u64 = 600;
const RUN: u64 = 50;
/// Slack on every bound for a loaded 2-core machine.
const SLACK: u64 = 1_000;
const NAMES: [&str; 2] = ["a", "b"];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// (wall ms, what, member, tick, fence)
type Event = (i64, &'static str, &'static str, u64, u64);
/// (wall ms, member, error)
type Failure = (i64, &'static str, String);
/// What every member writes to.
type Shared<'a> = (&'a Log<Event>, &'a Log<Failure>, &'a Sink, &'a Hold);

/// Whether a request chunk carries a claim (`true`) or a renewal (`false`) of the cluster protocol.
fn carries(chunk: &[u8], claim: bool) -> bool {
    if contains(chunk, b"chime_claims") {
        let needle: &[u8] = if claim { b"INSERT INTO chime_claims" } else { b"SET lease_until_ms" };
        return contains(chunk, needle);
    }
    // Redis: EVALSHA sha 1 key a1 a2 a3; a claim's a1 is a tick (wall ms / 200: ten digits), a
    // renewal's a fence (small). A release has two arguments.
    resp_commands(chunk)
        .iter()
        .any(|c| c.len() == 7 && c[0].eq_ignore_ascii_case(b"EVALSHA") && (c[4].len() >= 8) == claim)
}

struct Member {
    sched: Scheduler,
    timer: Timer,
}

async fn member(
    server: &Server,
    proxy: &Proxy,
    name: &'static str,
    key: &str,
    skew: i64,
    (events, errors, sink, hold): Shared<'_>,
) -> Member {
    let seen = errors.clone();
    let wall = if skew == 0 { WallClock::System } else { WallClock::Skewed(skew) };
    let sched = Scheduler::builder()
        .wall_clock(wall)
        .on_cluster_error(move |_, e| seen.push((wall_ms(), name, e.to_string())))
        .start();
    let builder = sched.timer(ms(INTERVAL)).recurring().key(key).sub_interval(ms(SUB)).lease(ms(LEASE));
    let url = server.url_via(proxy.addr);
    let builder = match server {
        Server::Postgres { .. } => builder.coordinator(Postgres::connect(&url).await.unwrap()),
        Server::Redis { .. } => builder.coordinator(Redis::connect(&url).await.unwrap()),
    };
    let (events, sink, hold, key) = (events.clone(), sink.clone(), hold.clone(), key.to_string());
    let timer = builder
        .on_expire(move |fire: &Fire| {
            let (tick, fence) = (fire.tick().unwrap(), fire.fence().unwrap());
            events.push((wall_ms(), "start", name, tick, fence));
            std::thread::sleep(ms(RUN)); // the work (a blocking thread)
            hold.wait(name);
            let accepted = sink.write(&key, fence);
            events.push((wall_ms(), if accepted { "accepted" } else { "refused" }, name, tick, fence));
        })
        .arm()
        .unwrap();
    Member { sched, timer }
}

async fn scenario(fault: Fault, mut server: Server) {
    let key = format!("faults-{}-{fault:?}-{:08x}", server.name(), rand::random::<u32>());
    let (events, errors, sink, hold) = (Log::new(), Log::new(), Sink::default(), Hold::default());
    let _release = ReleaseOnDrop(hold.clone());
    let proxies = [Proxy::start(server.upstream()).await, Proxy::start(server.upstream()).await];
    let skew = if fault == Fault::Skew { LEASE as i64 / 2 } else { 0 };
    let shared = (&events, &errors, &sink, &hold);
    let mut members = Vec::new();
    for (i, name) in NAMES.into_iter().enumerate() {
        members.push(member(&server, &proxies[i], name, &key, if i == 0 { skew } else { 0 }, shared).await);
    }
    tokio::time::sleep(ms(1_000)).await;
    let ran_before = events.len();
    assert!(ran_before > 0, "nothing ran before the fault");

    // Hold the next run, whoever runs it: it becomes the victim, faulted while it holds its lease.
    let held_faults = [Fault::BlackHole, Fault::ResetMidRenewal, Fault::Latency, Fault::StoreRestart];
    let mut victim = 0;
    let mut held = None;
    if held_faults.contains(&fault) {
        NAMES.iter().for_each(|n| hold.set(n, true));
        // Held: started, not written, for longer than a run takes (it may have started before the
        // hold was set).
        let held_run = || {
            let events = events.get();
            events.iter().copied().find(|s| {
                s.1 == "start"
                    && wall_ms() - s.0 > (RUN + 50) as i64
                    && !events.iter().any(|e| e.1 != "start" && e.2 == s.2 && e.3 == s.3)
            })
        };
        until(ms(5_000), "a run to hold", || held_run().is_some()).await;
        let run = held_run().unwrap();
        victim = NAMES.iter().position(|n| *n == run.2).unwrap();
        hold.set(NAMES[1 - victim], false);
        held = Some(run);
    }
    let proxy = &proxies[victim];
    let fault_start = wall_ms();
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
            proxy.latency(ms(LEASE * 2 / 5));
            tokio::time::sleep(ms(LEASE * 2 + 300)).await;
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
        // The other member takes over once the held run's lease is lost, and writes...
        let other = NAMES[1 - victim];
        until(ms(LEASE * 3 + SLACK * 3), "the other member's write", || {
            events.get().iter().any(|e| e.0 >= fault_start && e.2 == other && e.1 == "accepted")
        })
        .await;
        // ...then the held run ends, late, with its stale fence.
        hold.set(run.2, false);
        until(ms(2_000), "the held run's write", || {
            events.get().iter().any(|e| e.2 == run.2 && e.3 == run.3 && e.1 != "start")
        })
        .await;
    }
    tokio::time::sleep(ms(LEASE + SUB + INTERVAL + SLACK + 1_000)).await;
    let checked_until = wall_ms();
    for m in members {
        drop(m.timer);
        m.sched.shutdown().await;
    }
    check(fault, &events.get(), &errors.get(), held.as_ref(), fault_end, checked_until);
}

fn check(
    fault: Fault,
    events: &[Event],
    errors: &[Failure],
    held: Option<&Event>,
    fault_end: i64,
    checked_until: i64,
) {
    let starts: Vec<&Event> = events.iter().filter(|e| e.1 == "start").collect();
    let mut per_tick: BTreeMap<u64, Vec<&Event>> = BTreeMap::new();
    starts.iter().for_each(|e| per_tick.entry(e.3).or_default().push(e));
    let twice: Vec<_> = per_tick.values().filter(|r| r.len() > 1).collect();
    assert!(twice.is_empty(), "{fault:?}: ticks started twice: {twice:?}");
    let fences: Vec<u64> = per_tick.values().map(|r| r[0].4).collect();
    assert!(
        fences.windows(2).all(|w| w[0] < w[1]),
        "{fault:?}: fences do not increase with ticks: {fences:?}"
    );
    if let Some(run) = held {
        let write = events.iter().find(|e| e.2 == run.2 && e.3 == run.3 && e.1 != "start").unwrap();
        assert_eq!(write.1, "refused", "{fault:?}: the stale writer's late write was accepted: {write:?}");
    }
    // Accepted writes carry increasing fences in the order they were made.
    let accepted: Vec<u64> = events.iter().filter(|e| e.1 == "accepted").map(|e| e.4).collect();
    assert!(accepted.windows(2).all(|w| w[0] < w[1]), "{fault:?}: the sink accepted {accepted:?}");
    // Recovery: runs start again within the bound, and the store stops failing.
    let bound = (LEASE + SUB + INTERVAL + SLACK) as i64;
    let resumed = starts.iter().find(|e| e.0 >= fault_end).map(|e| e.0 - fault_end);
    assert!(
        resumed.is_some_and(|r| r <= bound),
        "{fault:?}: first run {resumed:?} ms after the fault (bound {bound})"
    );
    let late_errors: Vec<_> = errors.iter().filter(|e| e.0 > fault_end + bound).collect();
    assert!(late_errors.is_empty(), "{fault:?}: store errors after recovery: {late_errors:?}");
    let after = starts.iter().filter(|e| e.0 > fault_end + bound && e.0 <= checked_until).count();
    assert!(after >= 2, "{fault:?}: only {after} runs in the second after recovery");
    eprintln!(
        "{fault:?}: {} ticks, first run {} ms after the fault, {after} runs after recovery, {} errors during it",
        per_tick.len(),
        resumed.unwrap(),
        errors.len()
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
