//! One conformance scenario for every metadata store: SQLite always; Redis and PostgreSQL against
//! the servers named by `CHIME_REDIS_URL` / `CHIME_POSTGRES_URL` (skipped, loudly, without them).

use super::*;

fn run(job: &str, id: &str, started_ms: i64, outcome: Outcome, fence: u64) -> RunRecord {
    RunRecord {
        run_id: id.into(),
        job: job.into(),
        tick: "2024-01-01T00:00:00Z".into(),
        tick_ms: started_ms,
        fence,
        replica: "r1".into(),
        trigger: Trigger::Schedule,
        due_ms: started_ms,
        claimed_ms: started_ms,
        started_ms,
        finished_ms: (outcome != Outcome::Running).then_some(started_ms + 5),
        outcome,
        duration_ms: None,
        exit_code: None,
        signal: None,
        http_status: None,
        error: None,
        output: "hello\n".into(),
        output_truncated: false,
    }
}

async fn conformance(store: &dyn MetaStore) {
    let tag = format!("t{:08x}", rand::random::<u32>());
    let job = format!("{tag}-job");
    let now = now_ms();

    // Replicas.
    let replica = ReplicaInfo {
        id: format!("{tag}-r1"),
        host: "h".into(),
        pid: 1,
        listen: "127.0.0.1:1".into(),
        version: "0".into(),
        started_ms: now,
        heartbeat_ms: now,
        jobs: 3,
    };
    store.heartbeat(&replica).await.unwrap();
    let again = ReplicaInfo { heartbeat_ms: now + 1000, ..replica.clone() };
    store.heartbeat(&again).await.unwrap();
    let mine: Vec<ReplicaInfo> =
        store.replicas().await.unwrap().into_iter().filter(|r| r.id.starts_with(&tag)).collect();
    assert_eq!(mine, vec![again.clone()]);
    store.leave(&again.id).await.unwrap();
    assert!(!store.replicas().await.unwrap().iter().any(|r| r.id == again.id));

    // API jobs and the generation.
    let g0 = store.generation().await.unwrap();
    let def = serde_json::json!({"name": job, "schedule": "@every 1m"});
    assert!(store.put_api_job(&job, &def).await.unwrap(), "new");
    assert!(!store.put_api_job(&job, &def).await.unwrap(), "replaced");
    assert!(store.api_jobs().await.unwrap().contains(&(job.clone(), def.clone())));
    assert!(store.generation().await.unwrap() >= g0 + 2);
    assert!(store.delete_api_job(&job).await.unwrap());
    assert!(!store.delete_api_job(&job).await.unwrap());
    assert!(!store.api_jobs().await.unwrap().iter().any(|(n, _)| *n == job));

    // First sighting, pause.
    store.see(std::slice::from_ref(&job), now).await.unwrap();
    store.see(std::slice::from_ref(&job), now + 5000).await.unwrap();
    let g1 = store.generation().await.unwrap();
    store.set_paused(&job, true, "tester", now).await.unwrap();
    assert!(store.generation().await.unwrap() > g1);
    let state = |states: Vec<JobState>| states.into_iter().find(|s| s.job == job).unwrap();
    let s = state(store.states().await.unwrap());
    assert_eq!((s.seen_ms, s.paused, s.paused_by.as_deref()), (Some(now), true, Some("tester")));
    store.set_paused(&job, false, "tester", now).await.unwrap();
    assert!(!state(store.states().await.unwrap()).paused);

    // Runs: started, finished, pruned to the history size; misses; the timeline.
    let first = run(&job, &format!("{tag}-1"), now, Outcome::Running, 1);
    store.write(&[Write::Started(first.clone())], 3).await.unwrap();
    assert!(store.running().await.unwrap().contains(&first));
    assert_eq!(store.runs(&job, 10).await.unwrap(), vec![first.clone()]);
    store.request_stop(&job, 1).await.unwrap();
    assert!(store.stop_requests().await.unwrap().contains(&(job.clone(), 1)));
    let mut batch = vec![Write::Finished(run(&job, &format!("{tag}-1"), now, Outcome::Success, 1))];
    for i in 2..=5 {
        let outcome = if i == 5 { Outcome::Failure } else { Outcome::Success };
        batch.push(Write::Finished(run(&job, &format!("{tag}-{i}"), now + i * 1000, outcome, i as u64)));
    }
    batch.push(Write::Missed(MissedTick {
        job: job.clone(),
        tick: "2024-01-01T00:01:00Z".into(),
        reason: "overlap".into(),
        replica: "r1".into(),
        at_ms: now,
    }));
    batch.push(Write::Prune(job.clone()));
    store.write(&batch, 3).await.unwrap();
    assert!(!store.running().await.unwrap().iter().any(|r| r.job == job));
    assert!(
        !store.stop_requests().await.unwrap().iter().any(|(j, _)| *j == job),
        "a finished run ends its stop request"
    );
    let runs = store.runs(&job, 10).await.unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.run_id.strip_prefix(&tag).unwrap()).collect();
    assert_eq!(ids, ["-5", "-4", "-3"], "newest first, three kept");
    let s = state(store.states().await.unwrap());
    assert_eq!(s.last_run.as_ref().map(|r| r.outcome), Some(Outcome::Failure));
    assert_eq!(s.last_success_ms, Some(now + 4000 + 5));
    assert_eq!((s.missed_total, s.last_missed.map(|m| m.reason)), (1, Some("overlap".to_string())));
    // An older run finishing late does not become the last run.
    store
        .write(&[Write::Finished(run(&job, &format!("{tag}-0"), now - 1000, Outcome::Success, 9))], 3)
        .await
        .unwrap();
    assert_eq!(state(store.states().await.unwrap()).last_run.map(|r| r.outcome), Some(Outcome::Failure));
    let buckets = store.timeline(&job, now - TIMELINE_MS).await.unwrap();
    let total: u64 = buckets.iter().map(|b| b.count).sum();
    assert_eq!(total, 6);
    assert!(buckets.iter().any(|b| b.outcome == Outcome::Failure && b.count == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store() {
    let dir = std::env::temp_dir().join(format!("chime-cli-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = sqlite::SqliteStore::open(&dir.join("meta.db")).unwrap();
    conformance(&store).await;
    std::fs::remove_dir_all(dir).ok();
}

fn server(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED {test}: {var} is not set (.ci/run starts a server and sets it)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store() {
    let Some(url) = server("CHIME_REDIS_URL", "redis_store") else { return };
    let store = redis::RedisStore::connect(&url).await.unwrap();
    conformance(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store() {
    let Some(url) = server("CHIME_POSTGRES_URL", "postgres_store") else { return };
    let store = postgres::PostgresStore::connect(&url).await.unwrap();
    conformance(&store).await;
}
