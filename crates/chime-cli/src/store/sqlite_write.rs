//! Writing to the SQLite metadata store: one statement through the connection's cache, and a
//! batch of run records (started, finished, missed, pruned) with the per-job roll-up it causes.

use rusqlite::{Connection, params};

use super::json;
use crate::store::{Rollup, RunRecord, TIMELINE_MS, Write, bucket_of, now_ms};

/// Runs one statement through the connection's cache of prepared statements (parsing SQL costs
/// more than running these statements).
pub(super) fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

pub(super) fn bump(conn: &Connection) -> rusqlite::Result<()> {
    exec(
        conn,
        "INSERT INTO chime_daemon_meta (key, value) VALUES ('generation', 1)
         ON CONFLICT (key) DO UPDATE SET value = value + 1",
        [],
    )?;
    Ok(())
}

pub(super) fn apply(conn: &Connection, write: &Write, history: usize) -> rusqlite::Result<()> {
    match write {
        Write::Started(run) => {
            exec(
                conn,
                "INSERT OR REPLACE INTO chime_daemon_runs (run_id, job, started_ms, running, record) VALUES (?1, ?2, ?3, 1, ?4)",
                params![run.run_id, run.job, run.started_ms, json(run)],
            )?;
        }
        Write::Finished(run) => finished(conn, run)?,
        Write::Missed(miss) => {
            exec(
        conn,
                "INSERT INTO chime_daemon_state (job, missed_total, last_missed) VALUES (?1, 1, ?2)
                 ON CONFLICT (job) DO UPDATE SET missed_total = missed_total + 1, last_missed = excluded.last_missed",
                params![miss.job, json(miss)],
            )?;
        }
        Write::Prune(job) => {
            exec(
                conn,
                "DELETE FROM chime_daemon_runs WHERE job = ?1 AND running = 0 AND started_ms < (
                     SELECT started_ms FROM chime_daemon_runs WHERE job = ?1 AND running = 0
                     ORDER BY started_ms DESC LIMIT 1 OFFSET ?2)",
                params![job, (history as i64) - 1],
            )?;
            let oldest = bucket_of(now_ms() - TIMELINE_MS);
            exec(
                conn,
                "DELETE FROM chime_daemon_timeline WHERE job = ?1 AND bucket_ms < ?2",
                params![job, oldest],
            )?;
        }
    }
    Ok(())
}

fn finished(conn: &Connection, run: &RunRecord) -> rusqlite::Result<()> {
    exec(
        conn,
        "INSERT OR REPLACE INTO chime_daemon_runs (run_id, job, started_ms, running, record) VALUES (?1, ?2, ?3, 0, ?4)",
        params![run.run_id, run.job, run.started_ms, json(run)],
    )
    .map(drop)
}

/// The per-job state, timeline and stop requests a batch of finished runs changes.
pub(super) fn roll_up(conn: &Connection, rollup: &Rollup<'_>) -> rusqlite::Result<()> {
    for (job, run) in &rollup.last {
        exec(
        conn,
            "INSERT INTO chime_daemon_state (job, last_run, last_started_ms, last_success_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (job) DO UPDATE SET
                 last_run = CASE WHEN last_started_ms IS NULL OR excluded.last_started_ms >= last_started_ms
                                 THEN excluded.last_run ELSE last_run END,
                 last_started_ms = MAX(COALESCE(last_started_ms, 0), excluded.last_started_ms),
                 last_success_ms = MAX(COALESCE(last_success_ms, 0), COALESCE(excluded.last_success_ms, 0))",
            params![job, json(run), run.started_ms, rollup.success_ms.get(job)],
        )?;
    }
    for ((job, bucket, outcome), count) in &rollup.timeline {
        exec(
            conn,
            "INSERT INTO chime_daemon_timeline (job, bucket_ms, outcome, count) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (job, bucket_ms, outcome) DO UPDATE SET count = count + excluded.count",
            params![job, bucket, outcome, count],
        )?;
    }
    for (job, fence) in &rollup.fence {
        exec(
            conn,
            "DELETE FROM chime_daemon_stop WHERE job = ?1 AND fence <= ?2",
            params![job, *fence as i64],
        )?;
    }
    Ok(())
}
