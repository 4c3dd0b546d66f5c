//! The HTTP API against two running replicas sharing one SQLite store: listing, upserting and
//! deleting API jobs (seen by the other replica), refusals (no token, wrong token, read-only, file
//! jobs, bad bodies), a manual run with its own fence in the run history, pause and resume across
//! replicas, replicas and leases, health, and `/metrics` scraped and parsed.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Daemon, TOKEN, TempDir, eventually, get_json, http, lines};
use serde_json::{Value, json};

/// Parses Prometheus' text format: `name{labels} value` lines.
fn scrape(url: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    let text = http().get(url).send().unwrap().text().unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let labels = rest.trim_end_matches('}');
                    let labels = labels
                        .split("\",")
                        .filter(|kv| !kv.is_empty())
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').unwrap();
                            (k.to_string(), v.trim_matches('"').to_string())
                        })
                        .collect();
                    (name.to_string(), labels)
                }
                None => (series.to_string(), HashMap::new()),
            };
            (name, labels, value.parse().unwrap_or(f64::NAN))
        })
        .collect()
}

fn metric(
    all: &[(String, HashMap<String, String>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    all.iter()
        .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .map(|(_, _, v)| *v)
}

fn runs_of(log: &std::path::Path, job: &str) -> usize {
    lines(log).iter().filter(|l| l[0] == job).count()
}

#[test]
fn the_api_across_two_replicas() {
    let dir = TempDir::new("api");
    let log = dir.path("runs.log");
    let file = dir.write(
        "schedule.toml",
        &format!(
            r#"
[store]
url = "sqlite://store.db"
[defaults]
lease = "2s"
[[job]]
name = "fast"
schedule = "@every 1s"
command = ["sh", "-c", "echo fast $CHIME_FENCE $CHIME_TICK >> {log}"]
[[job]]
name = "slow"
schedule = "@every 1s"
command = ["sh", "-c", "echo slow $CHIME_FENCE >> {log}; sleep 1.6"]
"#,
            log = log.display()
        ),
    );
    let a = Daemon::start(&dir, &file, &[]);
    let b = Daemon::start_with(&dir, &file, &[], &[]); // no CHIME_TOKEN: read-only
    let client = http();
    let auth = format!("Bearer {TOKEN}");

    // Listing.
    let jobs = get_json(&a.url("/v1/jobs"));
    let fast = jobs["jobs"].as_array().unwrap().iter().find(|j| j["name"] == "fast").unwrap().clone();
    assert_eq!(
        (fast["source"].as_str(), fast["scope"].as_str(), fast["schedule"].as_str()),
        (Some("file"), Some("cluster"), Some("@every 1s"))
    );
    assert!(fast["next_run"].is_string(), "{fast}");
    eventually(Duration::from_secs(10), "a completed run in the listing", || {
        let jobs = get_json(&b.url("/v1/jobs"));
        let fast = jobs["jobs"].as_array().unwrap().iter().find(|j| j["name"] == "fast").unwrap().clone();
        (fast["last_status"] == "success").then_some(())
    });

    // Refusals.
    let job_body = json!({ "schedule": "@every 1s", "command": ["sh", "-c", format!("echo api $CHIME_FENCE >> {}", log.display())] });
    let put = |daemon: &Daemon, name: &str, body: &Value, token: Option<&str>| {
        let mut req = client.put(daemon.url(&format!("/v1/jobs/{name}"))).json(body);
        if let Some(token) = token {
            req = req.header("Authorization", token);
        }
        let response = req.send().unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().unwrap_or(Value::Null))
    };
    assert_eq!(put(&a, "api-job", &job_body, None).0, 401);
    assert_eq!(put(&a, "api-job", &job_body, Some("Bearer wrong")).0, 401);
    let (status, body) = put(&b, "api-job", &job_body, Some(&auth));
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("CHIME_TOKEN"), "{body}");
    let (status, body) = put(&a, "fast", &job_body, Some(&auth));
    assert_eq!(status, 409, "{body}");
    let (status, body) = put(
        &a,
        "api-job",
        &json!({ "schedule": "@every 1s", "command": "x", "overlap": "never" }),
        Some(&auth),
    );
    assert_eq!(status, 422);
    assert_eq!(
        body["error"],
        "`overlap`: unknown overlap policy `never`; expected one of `skip`, `allow`, `replace`, `queue`"
    );

    // Upsert: created, then updated (idempotent), seen and run by the cluster.
    let (status, body) = put(&a, "api-job", &job_body, Some(&auth));
    assert_eq!(status, 201, "{body}");
    let (status, body) = put(&a, "api-job", &job_body, Some(&auth));
    assert_eq!(status, 200, "{body}");
    eventually(Duration::from_secs(5), "the API job on the other replica", || {
        let jobs = get_json(&b.url("/v1/jobs"));
        jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["name"] == "api-job" && j["source"] == "api")
            .then_some(())
    });
    eventually(Duration::from_secs(10), "runs of the API job", || (runs_of(&log, "api") >= 2).then_some(()));
    let show = get_json(&b.url("/v1/jobs/api-job"));
    assert_eq!(show["definition"]["overlap"], "skip");

    // A manual run: its own fence, in the history as manual.
    let manual = eventually(Duration::from_secs(10), "a manual run accepted", || {
        let response = client.post(a.url("/v1/jobs/fast/run")).header("Authorization", &auth).send().unwrap();
        (response.status().as_u16() == 202).then(|| response.json::<Value>().unwrap())
    });
    assert_eq!(manual["status"], "started", "{manual}");
    let fence = manual["fence"].as_u64().unwrap();
    let run_id = manual["run_id"].as_str().unwrap().to_string();
    let recorded = eventually(Duration::from_secs(5), "the manual run in the history", || {
        let runs = get_json(&b.url("/v1/jobs/fast/runs?limit=50"));
        runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["run_id"] == run_id.as_str() && r["outcome"] == "success")
            .cloned()
    });
    assert_eq!((recorded["trigger"].as_str(), recorded["fence"].as_u64()), (Some("manual"), Some(fence)));
    assert!(recorded["output"].as_str().unwrap().is_empty(), "the job writes to its log file, not stdout");
    assert_eq!(
        client
            .post(a.url("/v1/jobs/nope/run"))
            .header("Authorization", &auth)
            .send()
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    assert_eq!(client.get(a.url("/v1/jobs/fast/runs?limit=0")).send().unwrap().status().as_u16(), 400);

    // Pause on one replica: no replica runs it; resume: it runs again.
    let paused = client.post(a.url("/v1/jobs/fast/pause")).header("Authorization", &auth).send().unwrap();
    assert_eq!(paused.status().as_u16(), 200);
    eventually(Duration::from_secs(5), "the pause on the other replica", || {
        get_json(&b.url("/v1/jobs/fast"))["paused"].as_bool().unwrap().then_some(())
    });
    // The other replica's engine learns of the pause at its next beat (a second), and a run it
    // claimed just before may still be writing: wait for two quiet seconds, then watch three more.
    let before = eventually(Duration::from_secs(15), "no more runs of the paused job", || {
        let n = runs_of(&log, "fast");
        std::thread::sleep(Duration::from_secs(2));
        (runs_of(&log, "fast") == n).then_some(n)
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(runs_of(&log, "fast"), before, "a paused job does not run anywhere");
    let resumed = client.post(b.url("/v1/jobs/fast/resume")).header("Authorization", &auth).send().unwrap();
    assert_eq!(resumed.status().as_u16(), 403, "the read-only replica refuses");
    let resumed = client.post(a.url("/v1/jobs/fast/resume")).header("Authorization", &auth).send().unwrap();
    assert_eq!(resumed.status().as_u16(), 200);
    eventually(Duration::from_secs(6), "runs after resume", || {
        (runs_of(&log, "fast") >= before + 2).then_some(())
    });

    // Replicas, leases, status, health.
    let replicas = get_json(&a.url("/v1/replicas"));
    let list = replicas["replicas"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{replicas}");
    assert!(list.iter().any(|r| r["id"] == a.replica.as_str() && r["self"] == true && r["alive"] == true));
    assert!(list.iter().any(|r| r["id"] == b.replica.as_str() && r["self"] == false));
    eventually(Duration::from_secs(5), "the slow job's lease in the replica list", || {
        let replicas = get_json(&a.url("/v1/replicas"));
        replicas["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["leases"].as_array().unwrap().clone())
            .find(|l| l["job"] == "slow")
    });
    let status = get_json(&a.url("/v1/status"));
    assert_eq!(
        (status["store"]["backend"].as_str(), status["store"]["up"].as_bool()),
        (Some("sqlite"), Some(true))
    );
    assert_eq!(client.get(a.url("/healthz")).send().unwrap().status().as_u16(), 200);
    assert_eq!(client.get(a.url("/readyz")).send().unwrap().status().as_u16(), 200);
    let timeline = get_json(&a.url("/v1/jobs/fast/timeline"));
    assert!(
        timeline["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["outcome"] == "success" && b["count"].as_u64().unwrap() > 0),
        "{timeline}"
    );

    // Metrics: both replicas ran and claimed; the slow job overlapped its own ticks.
    let mut totals: HashMap<&str, f64> = HashMap::new();
    for daemon in [&a, &b] {
        let all = scrape(&daemon.url("/metrics"));
        assert_eq!(metric(&all, "chime_store_up", &[]), Some(1.0));
        assert!(metric(&all, "chime_job_next_run_timestamp_seconds", &[("job", "fast")]).unwrap() > 1.7e9);
        assert!(metric(&all, "chime_job_running", &[("job", "slow")]).is_some());
        assert!(metric(&all, "chime_timers_pending", &[]).is_some());
        for (key, name, labels) in [
            ("runs", "chime_job_runs_total", vec![("job", "fast"), ("outcome", "success")]),
            ("won", "chime_job_claims_total", vec![("job", "fast"), ("result", "won")]),
            ("lost", "chime_job_claims_total", vec![("job", "fast"), ("result", "lost")]),
            ("overlap", "chime_job_ticks_missed_total", vec![("job", "slow"), ("reason", "overlap")]),
            ("duration", "chime_job_run_duration_seconds_count", vec![("job", "fast")]),
            ("success", "chime_job_last_success_timestamp_seconds", vec![("job", "fast")]),
        ] {
            *totals.entry(key).or_default() += metric(&all, name, &labels).unwrap_or(0.0);
        }
    }
    assert!(totals["runs"] >= 5.0 && totals["won"] >= totals["runs"], "{totals:?}");
    assert!(totals["lost"] >= 1.0, "the replicas compete for each tick: {totals:?}");
    assert!(totals["overlap"] >= 1.0, "{totals:?}");
    assert!(totals["duration"] >= totals["runs"] && totals["success"] > 1.7e9, "{totals:?}");

    // Delete: gone from both replicas; a second delete is a 404.
    let deleted = client.delete(a.url("/v1/jobs/api-job")).header("Authorization", &auth).send().unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    eventually(Duration::from_secs(5), "the API job gone from the other replica", || {
        (client.get(b.url("/v1/jobs/api-job")).send().unwrap().status().as_u16() == 404).then_some(())
    });
    assert_eq!(
        client
            .delete(a.url("/v1/jobs/api-job"))
            .header("Authorization", &auth)
            .send()
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        client
            .delete(a.url("/v1/jobs/fast"))
            .header("Authorization", &auth)
            .send()
            .unwrap()
            .status()
            .as_u16(),
        409
    );
}
