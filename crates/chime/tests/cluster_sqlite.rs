//! The SQLite coordinator on a real database file: the conformance suite every backend passes (each
//! handle opened separately, as another process would), and a cluster timer shared by three
//! schedulers under tokio's paused clock.

mod common;

use chime::cluster::{Claim, Coordinator, Sqlite};
use chime::{Fire, Scheduler, WallClock};
use common::conformance::{self, Backend};
use common::{Log, ms};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn temp_db(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("chime-sqlite-{}-{name}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("claims.db")
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
}

/// A database file; every `connect` opens its own handle, as another process would.
struct File(PathBuf);

impl Backend for File {
    type Store = Sqlite;
    async fn connect(&self) -> Sqlite {
        Sqlite::open(&self.0).unwrap()
    }
    async fn remove(&self, key: &str) {
        let db = rusqlite::Connection::open(&self.0).unwrap();
        db.execute("DELETE FROM chime_claims WHERE key = ?1", [key]).unwrap();
    }
}

conformance::conformance_tests!(|test: &str| Some(File(temp_db(test))));

#[tokio::test]
async fn ticks_past_sqlite_integers_are_refused() {
    let store = Sqlite::open(temp_db("big")).unwrap();
    assert_eq!(store.backend(), "sqlite");
    let claim = Claim { key: "k".into(), tick: u64::MAX, member: "a".into(), lease_ms: 1, now_ms: 0 };
    assert!(matches!(store.claim(&claim).await, Err(chime::Error::Store { backend: "sqlite", .. })));
}

#[tokio::test(start_paused = true)]
async fn a_cluster_timer_on_sqlite_runs_each_tick_once_across_schedulers() {
    let path = temp_db("timer");
    let log = Log::new();
    let mut timers = Vec::new();
    // Started together, before any store is opened: each one's wall clock starts at the minute it
    // was made in, and a minute may turn while a file opens.
    let scheds: Vec<_> =
        (0..3).map(|_| Scheduler::builder().wall_clock(WallClock::FollowTokio).start()).collect();
    for (who, sched) in scheds.iter().enumerate() {
        let seen = log.clone();
        timers.push(
            sched
                .timer(ms(500))
                .recurring()
                .key("sqlite-timer")
                .coordinator(Sqlite::open(&path).unwrap())
                .sub_interval(ms(100))
                .on_expire(move |f: &Fire| seen.push((f.tick().unwrap(), who, f.fence().unwrap())))
                .arm()
                .unwrap(),
        );
    }
    tokio::time::sleep(ms(5000)).await;
    let runs = log.get();
    let mut per_tick: BTreeMap<u64, usize> = BTreeMap::new();
    runs.iter().for_each(|r| *per_tick.entry(r.0).or_default() += 1);
    assert!((9..=10).contains(&per_tick.len()), "{} ticks in 5 s", per_tick.len());
    assert!(per_tick.values().all(|&n| n == 1), "a tick ran twice: {per_tick:?}");
    let ticks: Vec<u64> = per_tick.keys().copied().collect();
    assert!(ticks.windows(2).all(|w| w[1] == w[0] + 1), "no tick skipped: {ticks:?}");
    assert!(runs.windows(2).all(|w| w[0].2 < w[1].2), "fences increase");
    drop(timers);
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[test]
fn a_bad_path_is_a_store_error() {
    let result = Sqlite::open("/proc/definitely/not/here/claims.db");
    assert!(matches!(result, Err(chime::Error::Store { backend: "sqlite", .. })), "{result:?}");
}

/// `claim_many` and `release_many` decide a batch in one transaction, in order, by the same rules
/// as one claim at a time; another handle sees the result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_claims_and_releases() {
    use chime::cluster::ClaimOutcome;
    let path = temp_db("batch");
    let (a, b) = (Sqlite::open(&path).unwrap(), Sqlite::open(&path).unwrap());
    let ask = |key: &str, tick, member: &str| Claim {
        key: key.into(),
        tick,
        member: member.into(),
        lease_ms: 60_000,
        now_ms: wall_ms(),
    };
    let outcomes = a
        .claim_many(&[ask("x", 5, "a"), ask("y", 5, "a"), ask("x", 5, "a"), ask("x", 6, "a")])
        .await
        .unwrap();
    let [
        ClaimOutcome::Granted(x),
        ClaimOutcome::Granted(y),
        ClaimOutcome::Taken { last_tick: 5 },
        ClaimOutcome::Busy { .. },
    ] = &outcomes[..]
    else {
        panic!("{outcomes:?}")
    };
    assert_eq!((x.fence, y.fence), (1, 1));
    assert!(matches!(b.claim(&ask("y", 6, "b")).await.unwrap(), ClaimOutcome::Busy { .. }));
    a.release_many(&[x.clone(), y.clone()]).await.unwrap();
    let after = b.claim_many(&[ask("x", 6, "b"), ask("y", 6, "b")]).await.unwrap();
    assert!(after.iter().all(|o| matches!(o, ClaimOutcome::Granted(l) if l.fence == 2)), "{after:?}");
    assert!(a.claim_many(&[ask("z", u64::MAX, "a")]).await.is_err(), "a tick past SQLite's INTEGER");
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
