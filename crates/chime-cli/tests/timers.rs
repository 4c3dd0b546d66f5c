//! Durable one-shot timers through the API (`/v1/timers/{key}`), with real processes: a timer
//! created on one replica fires on another after the first is SIGKILLed before it was due; a timer
//! whose replica is SIGKILLed mid-run runs again on another replica (next attempt, higher fence)
//! after the lease; PUT's 201/200/409/422 answers, GET, DELETE, the list, HTTP timers' headers,
//! failed timers after their retries, and the figures in `/v1/status` and `/metrics`.

mod common;

use std::time::Duration;

use common::{Daemon, TOKEN, TempDir, eventually, get_json, http, lines, server};
use serde_json::{Value, json};

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// `PUT /v1/timers/{key}` with the token: (status, body).
fn put(daemon: &Daemon, key: &str, body: &Value) -> (u16, Value) {
    let response = http()
        .put(daemon.url(&format!("/v1/timers/{key}")))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .json(body)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn delete(daemon: &Daemon, key: &str) -> u16 {
    let request = http().delete(daemon.url(&format!("/v1/timers/{key}")));
    request.header("Authorization", format!("Bearer {TOKEN}")).send().unwrap().status().as_u16()
}

fn timer(daemon: &Daemon, key: &str) -> Value {
    get_json(&daemon.url(&format!("/v1/timers/{key}")))
}

fn metric(daemon: &Daemon, name: &str) -> Option<f64> {
    let text = http().get(daemon.url("/metrics")).send().unwrap().text().unwrap();
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn timers_fire_on_another_replica_when_theirs_is_killed() {
    let dir = TempDir::new("timers-failover");
    let log = dir.path("fired.log");
    let file = dir.write("s.toml", "[store]\nurl = \"sqlite://store.db\"\n[defaults]\nlease = \"2s\"\n");
    let mut replicas: Vec<Daemon> = (0..3).map(|_| Daemon::start(&dir, &file, &[])).collect();
    // `fired KEY FENCE ATTEMPT PID NOW_MS` per start, `end KEY FENCE` per end.
    let command = |sleep: f64| {
        json!([
            "sh",
            "-c",
            format!(
                "echo start $CHIME_TIMER $CHIME_FENCE $CHIME_ATTEMPT $PPID $(date +%s%3N) $CHIME_TICK >> {log}; sleep {sleep}; echo end $CHIME_TIMER $CHIME_FENCE >> {log}",
                log = log.display()
            )
        ])
    };
    let starts = |key: &str| -> Vec<Vec<String>> {
        lines(&log).into_iter().filter(|l| l[0] == "start" && l[1] == key).collect()
    };

    // Created on the first replica, which is killed before the timer is due: another one runs it,
    // not early.
    let created_ms = now_ms();
    let (status, body) = put(&replicas[0], "handover", &json!({ "after": "3s", "command": command(0.0) }));
    assert_eq!(status, 201, "{body}");
    let due_ms = body["timer"]["due"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap().as_millisecond();
    assert!((created_ms + 2_900..created_ms + 4_000).contains(&due_ms), "due in 3 s: {body}");
    let mut first = replicas.remove(0);
    first.kill();
    let fired = eventually(Duration::from_secs(15), "the timer fired by another replica", || {
        starts("handover").into_iter().next()
    });
    let pid: i32 = fired[4].parse().unwrap();
    assert!(replicas.iter().any(|d| d.pid() == pid), "run by a live replica: {fired:?}");
    assert!(fired[5].parse::<i64>().unwrap() >= due_ms, "never early: {fired:?}");
    assert_eq!((fired[2].as_str(), fired[3].as_str()), ("1", "1"), "fence and attempt: {fired:?}");
    assert_eq!(
        fired[6].parse::<jiff::Timestamp>().unwrap().as_millisecond(),
        due_ms,
        "CHIME_TICK is the due time"
    );
    eventually(Duration::from_secs(5), "the timer marked fired", || {
        (timer(&replicas[0], "handover")["state"] == "fired").then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(starts("handover").len(), 1, "it ran once");

    // A run whose replica is killed mid-run runs again elsewhere after the lease, with the next
    // attempt and a higher fence.
    let (status, body) = put(&replicas[0], "long", &json!({ "after": "0s", "command": command(4.0) }));
    assert_eq!(status, 201, "{body}");
    let run =
        eventually(Duration::from_secs(10), "the long timer started", || starts("long").into_iter().next());
    let runner: i32 = run[4].parse().unwrap();
    let victim = replicas.iter().position(|d| d.pid() == runner).expect("a replica runs it");
    let killed_ms = now_ms();
    replicas[victim].kill();
    let survivor = &replicas[1 - victim];
    let again =
        eventually(Duration::from_secs(15), "the long timer run again", || starts("long").into_iter().nth(1));
    assert_eq!(again[4].parse::<i32>().unwrap(), survivor.pid(), "{again:?}");
    assert_eq!(again[3], "2", "the next attempt: {again:?}");
    assert!(again[2].parse::<u64>().unwrap() > run[2].parse::<u64>().unwrap(), "a higher fence: {again:?}");
    let took = again[5].parse::<i64>().unwrap() - killed_ms;
    // The lease (2 s) plus a poll (1 s), with slack for a loaded machine.
    assert!(took < 8_000, "failover took {took} ms");
    let done = eventually(Duration::from_secs(15), "the long timer fired", || {
        let t = timer(survivor, "long");
        (t["state"] == "fired").then_some(t)
    });
    assert_eq!(done["attempt"], 2, "{done}");
    assert_eq!(done["fence"].to_string(), again[2], "{done}");
}

#[test]
fn the_timer_api() {
    let (addr, seen) = server();
    let dir = TempDir::new("timers-api");
    let file = dir.write(
        "s.toml",
        "[store]\nurl = \"sqlite://store.db\"\n[timers]\nattempts = 2\nbackoff = \"100ms\"\n",
    );
    let daemon = Daemon::start(&dir, &file, &[]);
    let read_only = Daemon::start_with(&dir, &file, &[], &[]);
    let later = json!({ "at": "2099-01-01T00:00:00+01:00", "command": ["true"], "timeout": "90s" });

    // Refusals.
    let anonymous = http().put(daemon.url("/v1/timers/k")).json(&later).send().unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    assert_eq!(put(&read_only, "k", &later).0, 403);
    for (body, message) in [
        (json!({ "command": "true" }), "a timer needs `at` (an RFC 3339 time) or `after` (a duration)"),
        (
            json!({ "after": "1m", "at": "2099-01-01T00:00:00Z", "command": "true" }),
            "`at` and `after`: give one, not both",
        ),
        (json!({ "after": "1m" }), "a timer needs `command` or `http`"),
        (
            json!({ "after": "soon", "command": "true" }),
            "`after`: invalid duration `soon`: expected a number and a unit (ms, s, m, h, d), e.g. `30s` or `1h30m`",
        ),
        (
            json!({ "after": "1m", "command": "true", "schedul": "x" }),
            "unknown key `schedul` in a timer; expected one of `at`, `after`, `command`, `http`, `timeout`, `kill_grace`, `env`, `dir`, `grace`",
        ),
        (
            json!({ "after": "1m", "command": [] }),
            "`command` must name a program: its first element is empty or missing",
        ),
        (
            json!({ "after": "1m", "command": "true", "env": { "CHIME_X": "1" } }),
            "`CHIME_X`: CHIME_* variables are set by the daemon",
        ),
    ] {
        let (status, answer) = put(&daemon, "bad", &body);
        assert_eq!((status, answer["error"].as_str()), (422, Some(message)), "{body}");
    }
    let (status, answer) = put(&daemon, &"k".repeat(300), &later);
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        http().get(daemon.url("/v1/timers/bad")).send().unwrap().status().as_u16(),
        404,
        "nothing stored"
    );

    // Created (201), the same request again (200, nothing changed), another one (409).
    let (status, body) = put(&daemon, "later", &later);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["timer"]["state"], "pending");
    assert_eq!(body["timer"]["due"], "2098-12-31T23:00:00Z");
    assert_eq!(body["timer"]["definition"]["timeout"], "1m 30s");
    let (status, again) = put(&daemon, "later", &later);
    assert_eq!((status, &again["created"]), (200, &json!(false)), "{again}");
    assert_eq!(again["timer"], body["timer"]);
    let (status, other) = put(&daemon, "later", &json!({ "after": "1m", "command": ["true"] }));
    assert_eq!(status, 409, "{other}");
    assert!(
        other["error"]
            .as_str()
            .unwrap()
            .starts_with("timer `later` exists (pending) with another definition")
    );
    assert_eq!(timer(&read_only, "later")["request"]["at"], "2098-12-31T23:00:00Z", "every replica reads it");

    // The figures: one pending, due then.
    let status = eventually(Duration::from_secs(5), "one pending timer in /v1/status", || {
        let s = get_json(&daemon.url("/v1/status"));
        (s["timers"]["pending"] == 1).then_some(s)
    });
    assert_eq!(status["timers"]["next_due"], "2098-12-31T23:00:00Z", "{status}");
    eventually(Duration::from_secs(15), "chime_timers_pending 1", || {
        (metric(&daemon, "chime_timers_pending") == Some(1.0)).then_some(())
    });

    // An HTTP timer: its headers; fired.
    let (status, body) = put(
        &daemon,
        "ping",
        &json!({ "after": "0s", "http": { "method": "POST", "url": format!("http://{addr}/ok") } }),
    );
    assert_eq!(status, 201, "{body}");
    let request = eventually(Duration::from_secs(10), "the timer's request", || {
        seen.lock().unwrap().iter().find(|(line, _, _)| line.starts_with("POST /ok")).cloned()
    });
    let header =
        |name: &str| request.1.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(header("idempotency-key"), "timer/ping");
    assert_eq!((header("chime-fence").is_empty(), header("chime-attempt").as_str()), (false, "1"));
    assert_eq!(header("chime-scheduled-at"), body["timer"]["due"].as_str().unwrap());
    eventually(Duration::from_secs(5), "the HTTP timer fired", || {
        (timer(&daemon, "ping")["state"] == "fired").then_some(())
    });

    // A failing command: retried once (attempts = 2), then failed, with its error and output.
    let (status, _) = put(&daemon, "broken", &json!({ "after": "0s", "command": "echo oops; exit 3" }));
    assert_eq!(status, 201);
    let failed = eventually(Duration::from_secs(15), "the broken timer failed", || {
        let t = timer(&daemon, "broken");
        (t["state"] == "failed").then_some(t)
    });
    assert_eq!(
        (failed["attempt"].as_u64(), failed["error"].as_str()),
        (Some(2), Some("exited with status 3; output: oops")),
        "{failed}"
    );
    let listed = get_json(&daemon.url("/v1/timers?state=failed"));
    assert_eq!(listed["timers"][0]["key"], "broken", "{listed}");
    eventually(Duration::from_secs(5), "one failed timer in /v1/status", || {
        (get_json(&daemon.url("/v1/status"))["timers"]["failed"] == 1).then_some(())
    });
    assert_eq!(http().get(daemon.url("/v1/timers?state=nope")).send().unwrap().status().as_u16(), 400);

    // Cancelling: 204, again 204; a fired timer 409; no such timer 404.
    assert_eq!(delete(&daemon, "later"), 204);
    assert_eq!(delete(&daemon, "later"), 204);
    assert_eq!(timer(&daemon, "later")["state"], "cancelled");
    assert_eq!(delete(&daemon, "ping"), 409);
    assert_eq!(delete(&daemon, "nothing"), 404);
    eventually(Duration::from_secs(5), "no pending timer", || {
        (get_json(&daemon.url("/v1/status"))["timers"]["pending"] == 0).then_some(())
    });
}
