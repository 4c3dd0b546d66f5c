//! The SQLite coordinator on a real database file: the protocol, two handles on one file (as two
//! processes would have), and a cluster timer shared by three schedulers.

mod common;

use chime::cluster::{Claim, ClaimOutcome, Coordinator, Sqlite};
use chime::{Fire, Scheduler, WallClock};
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

fn ask(tick: u64, member: &str, now_ms: i64) -> Claim {
    Claim { key: "k".into(), tick, member: member.into(), lease_ms: 1000, now_ms }
}

#[tokio::test]
async fn the_protocol_holds_across_two_handles_on_one_file() {
    let path = temp_db("protocol");
    let (a, b) = (Sqlite::open(&path).unwrap(), Sqlite::open(&path).unwrap());
    assert_eq!(a.backend(), "sqlite");
    let ClaimOutcome::Granted(lease) = a.claim(&ask(5, "a", 0)).await.unwrap() else { panic!("first claim") };
    assert_eq!((lease.fence, lease.previous_tick), (1, None));
    assert_eq!(b.claim(&ask(5, "b", 10)).await.unwrap(), ClaimOutcome::Taken { last_tick: 5 });
    assert_eq!(
        b.claim(&ask(6, "b", 10)).await.unwrap(),
        ClaimOutcome::Busy { owner: "a".into(), lease_until_ms: 1000 },
        "a's lease is live"
    );
    assert!(a.renew(&lease, 500).await.unwrap());
    let ClaimOutcome::Granted(taken_over) = b.claim(&ask(6, "b", 1600)).await.unwrap() else {
        panic!("failover")
    };
    assert_eq!((taken_over.fence, taken_over.previous_tick), (2, Some(5)));
    assert!(!a.renew(&lease, 1700).await.unwrap(), "a lost its lease");
    a.release(&lease).await.unwrap(); // a lost lease's release changes nothing
    assert_eq!(
        b.claim(&ask(7, "c", 1700)).await.unwrap(),
        ClaimOutcome::Busy { owner: "b".into(), lease_until_ms: 2600 }
    );
    b.release(&taken_over).await.unwrap();
    let ClaimOutcome::Granted(next) = a.claim(&ask(7, "a", 1700)).await.unwrap() else { panic!("released") };
    assert_eq!(next.fence, 3);
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[tokio::test]
async fn concurrent_claims_grant_each_tick_once() {
    let path = temp_db("concurrent");
    let handles: Vec<_> = (0..4).map(|_| Sqlite::open(&path).unwrap()).collect();
    let mut tasks = Vec::new();
    for (i, store) in handles.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut granted = Vec::new();
            for tick in 0..40u64 {
                let claim = Claim { key: "c".into(), tick, member: format!("m{i}"), lease_ms: 0, now_ms: 0 };
                if let ClaimOutcome::Granted(lease) = store.claim(&claim).await.unwrap() {
                    granted.push((tick, lease.fence));
                }
            }
            granted
        }));
    }
    let mut all: Vec<(u64, u64)> = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    let ticks: Vec<u64> = all.iter().map(|g| g.0).collect();
    let mut unique = ticks.clone();
    unique.dedup();
    assert_eq!(ticks, unique, "a tick was granted twice");
    assert!(all.windows(2).all(|w| w[0].1 < w[1].1), "fences increase with ticks: {all:?}");
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[tokio::test(start_paused = true)]
async fn a_cluster_timer_on_sqlite_runs_each_tick_once_across_schedulers() {
    let path = temp_db("timer");
    let log = Log::new();
    let mut timers = Vec::new();
    let mut scheds = Vec::new();
    for who in 0..3usize {
        let sched = Scheduler::builder().wall_clock(WallClock::FollowTokio).start();
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
        scheds.push(sched);
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
