//! Three replicas share one store and one job that runs every second; the replica that ran the
//! latest tick is killed with SIGKILL, again and again, and replaced. Every tick starts at most
//! once, fences increase with ticks, and after each kill another replica takes over within
//! `lease + interval` (plus slack for a loaded machine). On SQLite always; on Redis and PostgreSQL
//! when `CHIME_REDIS_URL` / `CHIME_POSTGRES_URL` name a server (skipped loudly otherwise).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Daemon, TempDir, eventually, lines, store_url, unique};

const LEASE_MS: i64 = 2000;
const INTERVAL_MS: i64 = 1000;
/// Allowance for a loaded 2-core machine (debug build, other tests running).
const SLACK_MS: i64 = 2500;
const KILLS: usize = 4;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn tick_ms(tick: &str) -> i64 {
    tick.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn scenario(backend: &str) {
    let dir = TempDir::new(&format!("failover-{backend}"));
    let Some(store) = store_url(backend, &dir, "failover") else { return };
    let job = unique("every-second");
    let log = dir.path("runs.log");
    let file = dir.write(
        "schedule.toml",
        &format!(
            r#"
[defaults]
lease = "{LEASE_MS}ms"
kill_grace = "1s"
[[job]]
name = "{job}"
schedule = "@every 1s"
command = ["sh", "-c", "echo start $CHIME_TICK $CHIME_FENCE $PPID $CHIME_JOB >> {log}; sleep 0.3; echo end $CHIME_TICK $CHIME_FENCE $PPID >> {log}"]
"#,
            log = log.display()
        ),
    );
    let args = ["--store", store.as_str()];
    let mut replicas: Vec<Daemon> = (0..3).map(|_| Daemon::start(&dir, &file, &args)).collect();
    let starts = || lines(&log).into_iter().filter(|l| l[0] == "start").collect::<Vec<_>>();
    eventually(Duration::from_secs(20), "the first run", || (starts().len() >= 2).then_some(()));
    let began = now_ms();
    let mut kills = Vec::new();
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(1200));
        // The replica that started the latest run (its pid is the job's parent); right after a
        // failover the latest may still be the killed one's, so wait for a live replica's.
        let index = eventually(Duration::from_secs(15), "a run by a live replica", || {
            let runner: i32 = starts().last()?[3].parse().ok()?;
            replicas.iter().position(|d| d.pid() == runner)
        });
        let mut victim = replicas.remove(index);
        victim.kill();
        kills.push(now_ms());
        replicas.push(Daemon::start(&dir, &file, &args));
        // Wait out the failover before the next kill.
        std::thread::sleep(Duration::from_millis((LEASE_MS + INTERVAL_MS) as u64));
    }
    std::thread::sleep(Duration::from_secs(2));
    for replica in &mut replicas {
        assert!(replica.stop(Duration::from_secs(20)).success(), "a clean stop exits 0");
    }
    let ended = now_ms();

    let runs = starts();
    assert!(runs.iter().all(|r| r[4] == job));
    let mut by_tick: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    for run in &runs {
        by_tick.entry(tick_ms(&run[1])).or_default().push(run[2].parse().unwrap());
    }
    let twice: Vec<_> = by_tick.iter().filter(|(_, f)| f.len() > 1).collect();
    assert!(twice.is_empty(), "{backend}: ticks started more than once: {twice:?}");
    let fences: Vec<u64> = by_tick.values().map(|f| f[0]).collect();
    assert!(fences.windows(2).all(|w| w[0] < w[1]), "{backend}: fences must increase with ticks: {fences:?}");
    let ticks: Vec<i64> = by_tick.keys().copied().collect();
    let worst_gap = ticks.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(
        worst_gap <= LEASE_MS + INTERVAL_MS + SLACK_MS,
        "{backend}: a gap of {worst_gap} ms between runs exceeds lease + interval + slack"
    );
    for kill in &kills {
        let next = ticks.iter().find(|&&t| t > *kill).copied();
        let failover = next.map(|t| t - kill);
        assert!(
            failover.is_some_and(|f| f <= LEASE_MS + INTERVAL_MS + SLACK_MS),
            "{backend}: after the kill at {kill}, the next run came {failover:?} ms later"
        );
    }
    let span = (ended - began) / INTERVAL_MS;
    let ran = ticks.iter().filter(|&&t| t >= began && t < ended).count() as i64;
    assert!(ran >= span - (KILLS as i64) * 3 - 3, "{backend}: only {ran} of about {span} ticks ran");
    eprintln!(
        "failover {backend}: {} ticks, {} kills, worst gap {worst_gap} ms, fences {}..{}",
        ticks.len(),
        kills.len(),
        fences[0],
        fences[fences.len() - 1]
    );
}

#[test]
fn failover_on_sqlite() {
    scenario("sqlite");
}

#[test]
fn failover_on_redis() {
    scenario("redis");
}

#[test]
fn failover_on_postgres() {
    scenario("postgres");
}
