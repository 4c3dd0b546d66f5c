//! Writing a batch of run records to PostgreSQL, inside the caller's transaction.

use super::json;
use crate::store::{Rollup, TIMELINE_MS, Write, bucket_of, now_ms};

/// The per-job state, timeline and stop requests a batch of finished runs changes.
pub(super) async fn roll_up(
    tx: &tokio_postgres::Transaction<'_>,
    rollup: &Rollup<'_>,
) -> Result<(), tokio_postgres::Error> {
    for (job, run) in &rollup.last {
        tx.execute(
            "INSERT INTO chime_daemon_state AS s (job, last_run, last_started_ms, last_success_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (job) DO UPDATE SET
                 last_run = CASE WHEN s.last_started_ms IS NULL OR EXCLUDED.last_started_ms >= s.last_started_ms
                                 THEN EXCLUDED.last_run ELSE s.last_run END,
                 last_started_ms = GREATEST(s.last_started_ms, EXCLUDED.last_started_ms),
                 last_success_ms = GREATEST(s.last_success_ms, EXCLUDED.last_success_ms)",
            &[job, &json(*run), &run.started_ms, &rollup.success_ms.get(job).copied()],
        )
        .await?;
    }
    for ((job, bucket, outcome), count) in &rollup.timeline {
        tx.execute(
            "INSERT INTO chime_daemon_timeline AS t (job, bucket_ms, outcome, count) VALUES ($1, $2, $3, $4)
             ON CONFLICT (job, bucket_ms, outcome) DO UPDATE SET count = t.count + EXCLUDED.count",
            &[job, bucket, outcome, count],
        )
        .await?;
    }
    for (job, fence) in &rollup.fence {
        tx.execute("DELETE FROM chime_daemon_stop WHERE job = $1 AND fence <= $2", &[job, &(*fence as i64)])
            .await?;
    }
    Ok(())
}

pub(super) async fn apply(
    tx: &tokio_postgres::Transaction<'_>,
    write: &Write,
    history: usize,
) -> Result<(), tokio_postgres::Error> {
    match write {
        Write::Started(run) => {
            tx.execute(
                "INSERT INTO chime_daemon_runs (run_id, job, started_ms, running, record) VALUES ($1, $2, $3, true, $4)
                 ON CONFLICT (run_id) DO UPDATE SET running = true, record = EXCLUDED.record",
                &[&run.run_id, &run.job, &run.started_ms, &json(run)],
            )
            .await?;
        }
        Write::Finished(run) => {
            tx.execute(
                "INSERT INTO chime_daemon_runs (run_id, job, started_ms, running, record) VALUES ($1, $2, $3, false, $4)
                 ON CONFLICT (run_id) DO UPDATE SET running = false, record = EXCLUDED.record",
                &[&run.run_id, &run.job, &run.started_ms, &json(run)],
            )
            .await?;
        }
        Write::Missed(miss) => {
            tx.execute(
                "INSERT INTO chime_daemon_state AS s (job, missed_total, last_missed) VALUES ($1, 1, $2)
                 ON CONFLICT (job) DO UPDATE SET missed_total = s.missed_total + 1, last_missed = EXCLUDED.last_missed",
                &[&miss.job, &json(miss)],
            )
            .await?;
        }
        Write::Prune(job) => {
            tx.execute(
                "DELETE FROM chime_daemon_runs WHERE job = $1 AND NOT running AND started_ms < (
                     SELECT started_ms FROM chime_daemon_runs WHERE job = $1 AND NOT running
                     ORDER BY started_ms DESC LIMIT 1 OFFSET $2)",
                &[job, &((history as i64) - 1)],
            )
            .await?;
            let oldest = bucket_of(now_ms() - TIMELINE_MS);
            tx.execute(
                "DELETE FROM chime_daemon_timeline WHERE job = $1 AND bucket_ms < $2",
                &[job, &oldest],
            )
            .await?;
        }
    }
    Ok(())
}
