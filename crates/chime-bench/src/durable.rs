//! Workload 8: durable timers on SQLite (`synchronous = FULL`, WAL, on this machine's disk).
//!
//! - **Create**: 100k timers through `create_many` in batches of 1000, and single `after` calls (a
//!   transaction, so an fsync, each: timed over a few thousand), against the same inserts made with
//!   `rusqlite` directly into a table with the same columns and indexes (the floor the store allows).
//! - **Memory**: 1M timers stored (due over the next day); a fresh child process (`durable-serve`)
//!   serves them for a few seconds, and its resident memory is read.
//! - **Crash**: see [`crate::durable_crash`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chime::Scheduler;
use chime::cluster::Sqlite;
use chime::durable::machine::Row;
use chime::durable::{DurableFire, DurableStore, NewTimer};

use crate::Sizes;
use crate::measure::{ChildReport, multi_thread, rss_bytes, run_child, size_label};
use crate::report::{Better, Figure, Report, Unit};

const MIB: f64 = 1024.0 * 1024.0;
const BATCH: usize = 1000;

pub(crate) fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

/// A fresh directory for one measurement (removed by [`Scratch`]'s drop).
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(what: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("chime-bench-{what}-{}-{}", std::process::id(), wall_ms()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Stores `n` timers `prefix-<i>` for `handler`, due at `due(i)` (ms), straight through the store in
/// batches of 1000 (for setting up the other measurements).
pub(crate) async fn fill(store: &Sqlite, prefix: &str, handler: &str, n: usize, due: impl Fn(usize) -> i64) {
    store.prepare().await.expect("the store prepares");
    for first in (0..n).step_by(BATCH) {
        let rows: Vec<Row> = (first..(first + BATCH).min(n))
            .map(|i| Row::new(&format!("{prefix}-{i}"), handler, Vec::new(), due(i), None))
            .collect();
        store.create(&rows).await.expect("stored");
    }
}

/// Workload 8, its first two parts (the crash part is `durable_crash::run`).
pub(crate) fn run(sizes: Sizes, report: &mut Report) {
    create(sizes, report);
    memory(sizes, report);
}

fn create(sizes: Sizes, report: &mut Report) {
    let n = if sizes.quick { 10_000 } else { 100_000 };
    let singles = if sizes.quick { 200 } else { 2_000 };
    let rt = multi_thread(2);
    let (batched, single) = rt.block_on(async {
        let scratch = Scratch::new("create");
        let sched = Scheduler::start();
        let timers = sched
            .durable(Sqlite::open(scratch.0.join("timers.db")).expect("open"))
            .handler("remind", |_: &DurableFire| Ok::<_, std::io::Error>(()))
            .start()
            .await
            .expect("started");
        let later = Duration::from_secs(86_400);
        let start = Instant::now();
        for first in (0..n).step_by(BATCH) {
            let batch = (first..(first + BATCH).min(n))
                .map(|i| NewTimer::after(format!("b-{i}"), later, "remind", Vec::new()));
            timers.create_many(batch).await.expect("created");
        }
        let batched = n as f64 / start.elapsed().as_secs_f64();
        let start = Instant::now();
        for i in 0..singles {
            timers.after(format!("s-{i}"), later, "remind", Vec::new()).await.expect("created");
        }
        let single = singles as f64 / start.elapsed().as_secs_f64();
        timers.shutdown().await;
        sched.shutdown().await;
        (batched, single)
    });
    let (raw_batched, raw_single) = raw_inserts(n, singles);
    let label = size_label(n);
    report.push(
        Figure::new(
            8,
            format!("create {label}, batches of 1000 (per s)"),
            Unit::Count,
            Better::Higher,
            batched,
        )
        .vs("rusqlite INSERT", raw_batched)
        .goal_min(50_000.0, ">= 50k/s"),
    );
    report.push(
        Figure::new(
            8,
            format!("create, single calls ({singles} timed, per s)"),
            Unit::Count,
            Better::Higher,
            single,
        )
        .vs("rusqlite INSERT", raw_single),
    );
    report.note(format!(
        "[8] create: one transaction per call, committed with synchronous = FULL (an fsync); single calls are \
         bound by the disk's fsync ({:.1} ms each here)",
        1000.0 / raw_single
    ));
}

/// The same rows inserted with rusqlite alone: the same columns, indexes and pragmas.
fn raw_inserts(n: usize, singles: usize) -> (f64, f64) {
    let scratch = Scratch::new("raw");
    let mut db = rusqlite::Connection::open(scratch.0.join("raw.db")).expect("open");
    db.pragma_update(None, "journal_mode", "WAL").expect("wal");
    db.pragma_update(None, "synchronous", "FULL").expect("full");
    db.execute_batch(
        "CREATE TABLE t (key TEXT PRIMARY KEY, handler TEXT NOT NULL, payload BLOB NOT NULL, due_ms INTEGER NOT NULL,
             grace_ms INTEGER, state INTEGER NOT NULL, attempt INTEGER NOT NULL, fence INTEGER NOT NULL, owner TEXT,
             ready_ms INTEGER NOT NULL, error TEXT);
         CREATE INDEX t_live ON t (handler, ready_ms) WHERE state IN (0, 1);
         CREATE INDEX t_state ON t (state, ready_ms, key);",
    )
    .expect("schema");
    let insert = "INSERT INTO t VALUES (?1, 'remind', x'', ?2, NULL, 0, 0, 0, NULL, ?2, NULL) ON CONFLICT (key) DO NOTHING";
    let due = wall_ms() + 86_400_000;
    let start = Instant::now();
    for first in (0..n).step_by(BATCH) {
        let tx = db.transaction().expect("tx");
        {
            let mut stmt = tx.prepare_cached(insert).expect("prepare");
            for i in first..(first + BATCH).min(n) {
                stmt.execute(rusqlite::params![format!("b-{i}"), due]).expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    let batched = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for i in 0..singles {
        let tx = db.transaction().expect("tx");
        tx.prepare_cached(insert)
            .expect("prepare")
            .execute(rusqlite::params![format!("s-{i}"), due])
            .expect("insert");
        tx.commit().expect("commit");
    }
    (batched, singles as f64 / start.elapsed().as_secs_f64())
}

fn memory(sizes: Sizes, report: &mut Report) {
    let n = if sizes.quick { 100_000 } else { 1_000_000 };
    let scratch = Scratch::new("memory");
    let path = scratch.0.join("timers.db");
    let rt = multi_thread(2);
    rt.block_on(async {
        let now = wall_ms();
        fill(&Sqlite::open(&path).expect("open"), "m", "remind", n, |i| {
            now + 5_000 + (i as i64 * 86_400_000) / n as i64
        })
        .await;
    });
    drop(rt);
    match run_child(&["durable-serve", &path.display().to_string(), "3"]) {
        Ok(child) => {
            let label = size_label(n);
            report.push(
                Figure::new(
                    8,
                    format!("resident memory serving {label} stored"),
                    Unit::Bytes,
                    Better::Lower,
                    child.rss_after as f64,
                )
                .goal_max(64.0 * MIB, "<= 64 MiB"),
            );
            report.note(format!(
                "[8] memory: the serving process held {:.1} MiB before starting the durable runner and {:.1} MiB \
                 after serving {label} stored timers for 3 s (their runs due then included)",
                child.rss_before as f64 / MIB,
                child.rss_after as f64 / MIB
            ));
        }
        Err(e) => report.note(format!("[8] memory: {e}")),
    }
}

/// The child side of the memory figure: serves the store at `path` for `secs` seconds, then prints
/// its resident memory.
pub(crate) fn serve_child(path: &Path, secs: u64) -> ! {
    let rt = multi_thread(2);
    let report = rt.block_on(async {
        let sched = Scheduler::start();
        let store = Sqlite::open(path).expect("open");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let rss_before = rss_bytes();
        let timers = sched
            .durable(store)
            .handler("remind", |_: &DurableFire| Ok::<_, std::io::Error>(()))
            .start()
            .await
            .expect("started");
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let report = ChildReport { n: 0, rss_before, rss_after: rss_bytes(), arm_ns: 0.0, worst_chunk_ns: 0 };
        std::mem::forget(timers);
        report
    });
    report.emit_and_exit()
}
