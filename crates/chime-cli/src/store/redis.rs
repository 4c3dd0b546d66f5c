//! The Redis metadata store: keys under `chime:daemon:` beside chime's claim rows. A finished run is
//! recorded by one script (history list, last run, timeline, stop request) so replicas finishing
//! runs of one job together never lose an update; everything else is plain commands, pipelined.
//! Not for Redis Cluster: the keys of one write span slots.

#[path = "redis_finished.rs"]
mod finished;

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{
    Bucket, JobState, MetaStore, MissedTick, Outcome, ReplicaInfo, RunRecord, StoreError, StoreFuture,
    TIMELINE_MS, Write, bucket_of,
};

const BACKEND: &str = "redis";
const P: &str = "chime:daemon:";

use finished::{FINISHED, evalsha};

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::new(BACKEND, e)
}

pub(super) fn key(name: &str) -> String {
    format!("{P}{name}")
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records serialise")
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| err(format!("a stored record is unreadable: {e}")))
}

/// The daemon's keys on a Redis server.
#[derive(Clone)]
pub(crate) struct RedisStore {
    conn: ConnectionManager,
    finished: redis::Script,
}

impl RedisStore {
    pub(crate) async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url).map_err(err)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_with_config(client, config).await.map_err(err)?;
        Ok(RedisStore { conn, finished: redis::Script::new(FINISHED) })
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

impl MetaStore for RedisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn heartbeat<'a>(&'a self, replica: &'a ReplicaInfo) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn();
            let all: HashMap<String, String> =
                redis::cmd("HGETALL").arg(key("replicas")).query_async(&mut conn).await.map_err(err)?;
            let mut pipe = redis::pipe();
            pipe.hset(key("replicas"), &replica.id, json(replica)).ignore();
            for (id, record) in all {
                let stale = parse::<ReplicaInfo>(&record)
                    .map_or(true, |r| r.heartbeat_ms < replica.heartbeat_ms - 3_600_000);
                if stale && id != replica.id {
                    pipe.hdel(key("replicas"), id).ignore();
                }
            }
            pipe.query_async::<()>(&mut conn).await.map_err(err)
        })
    }

    fn leave<'a>(&'a self, replica_id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            redis::cmd("HDEL")
                .arg(key("replicas"))
                .arg(replica_id)
                .query_async(&mut self.conn())
                .await
                .map_err(err)
        })
    }

    fn replicas(&self) -> StoreFuture<'_, Vec<ReplicaInfo>> {
        Box::pin(async move {
            let all: HashMap<String, String> = redis::cmd("HGETALL")
                .arg(key("replicas"))
                .query_async(&mut self.conn())
                .await
                .map_err(err)?;
            let mut replicas: Vec<ReplicaInfo> = all.values().map(|r| parse(r)).collect::<Result<_, _>>()?;
            replicas.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(replicas)
        })
    }

    fn generation(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let value: Option<u64> =
                redis::cmd("GET").arg(key("generation")).query_async(&mut self.conn()).await.map_err(err)?;
            Ok(value.unwrap_or(0))
        })
    }

    fn api_jobs(&self) -> StoreFuture<'_, Vec<(String, serde_json::Value)>> {
        Box::pin(async move {
            let all: HashMap<String, String> =
                redis::cmd("HGETALL").arg(key("jobs")).query_async(&mut self.conn()).await.map_err(err)?;
            let mut jobs: Vec<(String, serde_json::Value)> = all
                .into_iter()
                .map(|(name, def)| Ok((name, parse(&def)?)))
                .collect::<Result<_, StoreError>>()?;
            jobs.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(jobs)
        })
    }

    fn put_api_job<'a>(&'a self, name: &'a str, definition: &'a serde_json::Value) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let (added, _): (i64, i64) = redis::pipe()
                .hset(key("jobs"), name, definition.to_string())
                .incr(key("generation"), 1)
                .query_async(&mut self.conn())
                .await
                .map_err(err)?;
            Ok(added == 1)
        })
    }

    fn delete_api_job<'a>(&'a self, name: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let (removed, _): (i64, i64) = redis::pipe()
                .hdel(key("jobs"), name)
                .incr(key("generation"), 1)
                .query_async(&mut self.conn())
                .await
                .map_err(err)?;
            Ok(removed == 1)
        })
    }

    fn states(&self) -> StoreFuture<'_, Vec<JobState>> {
        Box::pin(async move {
            type Hash = HashMap<String, String>;
            let (paused, seen, last, success, missed, last_missed): (Hash, Hash, Hash, Hash, Hash, Hash) =
                redis::pipe()
                    .hgetall(key("paused"))
                    .hgetall(key("seen"))
                    .hgetall(key("last"))
                    .hgetall(key("last_success"))
                    .hgetall(key("missed_total"))
                    .hgetall(key("last_missed"))
                    .query_async(&mut self.conn())
                    .await
                    .map_err(err)?;
            let mut out: HashMap<String, JobState> = HashMap::new();
            for (job, v) in &paused {
                let p: serde_json::Value = parse(v)?;
                let s = out
                    .entry(job.clone())
                    .or_insert_with(|| JobState { job: job.clone(), ..Default::default() });
                s.paused = true;
                s.paused_by = p["by"].as_str().map(str::to_string);
                s.paused_ms = p["ms"].as_i64();
            }
            for (job, v) in &seen {
                let s = out
                    .entry(job.clone())
                    .or_insert_with(|| JobState { job: job.clone(), ..Default::default() });
                s.seen_ms = v.parse().ok();
            }
            for (job, v) in &last {
                let s = out
                    .entry(job.clone())
                    .or_insert_with(|| JobState { job: job.clone(), ..Default::default() });
                s.last_run = Some(parse(v)?);
            }
            for (job, v) in &success {
                let s = out
                    .entry(job.clone())
                    .or_insert_with(|| JobState { job: job.clone(), ..Default::default() });
                s.last_success_ms = v.parse().ok();
            }
            for (job, v) in &missed {
                let s = out
                    .entry(job.clone())
                    .or_insert_with(|| JobState { job: job.clone(), ..Default::default() });
                s.missed_total = v.parse().unwrap_or(0);
            }
            for (job, v) in &last_missed {
                let s = out
                    .entry(job.clone())
                    .or_insert_with(|| JobState { job: job.clone(), ..Default::default() });
                s.last_missed = Some(parse::<MissedTick>(v)?);
            }
            let mut out: Vec<JobState> = out.into_values().collect();
            out.sort_by(|a, b| a.job.cmp(&b.job));
            Ok(out)
        })
    }

    fn set_paused<'a>(&'a self, job: &'a str, paused: bool, by: &'a str, now_ms: i64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut pipe = redis::pipe();
            if paused {
                pipe.hset(key("paused"), job, serde_json::json!({"by": by, "ms": now_ms}).to_string())
                    .ignore();
            } else {
                pipe.hdel(key("paused"), job).ignore();
            }
            pipe.incr(key("generation"), 1).ignore();
            pipe.query_async::<()>(&mut self.conn()).await.map_err(err)
        })
    }

    fn see<'a>(&'a self, jobs: &'a [String], now_ms: i64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut pipe = redis::pipe();
            for job in jobs {
                pipe.hset_nx(key("seen"), job, now_ms).ignore();
            }
            pipe.query_async::<()>(&mut self.conn()).await.map_err(err)
        })
    }

    fn write<'a>(&'a self, batch: &'a [Write], history: usize) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn();
            let mut pipe = redis::pipe();
            for write in batch {
                match write {
                    Write::Started(run) => {
                        pipe.hset(key("running"), &run.run_id, json(run)).ignore();
                    }
                    Write::Finished(run) => {
                        // EVALSHA in the pipeline; the script is loaded first (below).
                        pipe.add_command(evalsha(&self.finished, run, history)).ignore();
                    }
                    Write::Missed(miss) => {
                        pipe.hincr(key("missed_total"), &miss.job, 1).ignore();
                        pipe.hset(key("last_missed"), &miss.job, json(miss)).ignore();
                    }
                    Write::Prune(job) => {
                        let timeline = key(&format!("timeline:{job}"));
                        let fields: Vec<String> =
                            redis::cmd("HKEYS").arg(&timeline).query_async(&mut conn).await.map_err(err)?;
                        let oldest = bucket_of(super::now_ms() - TIMELINE_MS);
                        let old: Vec<&String> = fields
                            .iter()
                            .filter(|f| {
                                f.split(':')
                                    .next()
                                    .and_then(|b| b.parse::<i64>().ok())
                                    .is_some_and(|b| b < oldest)
                            })
                            .collect();
                        if !old.is_empty() {
                            pipe.hdel(&timeline, old).ignore();
                        }
                    }
                }
            }
            if batch.iter().any(|w| matches!(w, Write::Finished(_))) {
                // Scripts vanish when Redis restarts: load it (idempotent, cheap) before the batch.
                redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(FINISHED)
                    .query_async::<String>(&mut conn)
                    .await
                    .map_err(err)?;
            }
            pipe.query_async::<()>(&mut conn).await.map_err(err)
        })
    }

    fn runs<'a>(&'a self, job: &'a str, limit: usize) -> StoreFuture<'a, Vec<RunRecord>> {
        Box::pin(async move {
            let (running, finished): (Vec<String>, Vec<String>) = redis::pipe()
                .hvals(key("running"))
                .lrange(key(&format!("runs:{job}")), 0, limit as isize - 1)
                .query_async(&mut self.conn())
                .await
                .map_err(err)?;
            let mut runs = Vec::new();
            for record in running.iter().chain(&finished) {
                let run: RunRecord = parse(record)?;
                if run.job == job {
                    runs.push(run);
                }
            }
            runs.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
            runs.truncate(limit);
            Ok(runs)
        })
    }

    fn running(&self) -> StoreFuture<'_, Vec<RunRecord>> {
        Box::pin(async move {
            let all: Vec<String> =
                redis::cmd("HVALS").arg(key("running")).query_async(&mut self.conn()).await.map_err(err)?;
            let mut runs: Vec<RunRecord> = all.iter().map(|r| parse(r)).collect::<Result<_, _>>()?;
            runs.sort_by_key(|r| r.started_ms);
            Ok(runs)
        })
    }

    fn timeline<'a>(&'a self, job: &'a str, since_ms: i64) -> StoreFuture<'a, Vec<Bucket>> {
        Box::pin(async move {
            let all: HashMap<String, u64> = redis::cmd("HGETALL")
                .arg(key(&format!("timeline:{job}")))
                .query_async(&mut self.conn())
                .await
                .map_err(err)?;
            let since = bucket_of(since_ms);
            let mut buckets: Vec<Bucket> = all
                .into_iter()
                .filter_map(|(field, count)| {
                    let (start, outcome) = field.split_once(':')?;
                    let start: i64 = start.parse().ok()?;
                    let outcome: Outcome = serde_json::from_str(&format!("\"{outcome}\"")).ok()?;
                    (start >= since).then_some(Bucket { start_ms: start, outcome, count })
                })
                .collect();
            buckets.sort_by_key(|b| (b.start_ms, b.outcome.as_str()));
            Ok(buckets)
        })
    }

    fn request_stop<'a>(&'a self, job: &'a str, fence: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            redis::pipe()
                .hset(key("stop"), job, fence)
                .ignore()
                .incr(key("generation"), 1)
                .ignore()
                .query_async::<()>(&mut self.conn())
                .await
                .map_err(err)
        })
    }

    fn stop_requests(&self) -> StoreFuture<'_, Vec<(String, u64)>> {
        Box::pin(async move {
            let all: HashMap<String, u64> =
                redis::cmd("HGETALL").arg(key("stop")).query_async(&mut self.conn()).await.map_err(err)?;
            let mut out: Vec<(String, u64)> = all.into_iter().collect();
            out.sort();
            Ok(out)
        })
    }
}
