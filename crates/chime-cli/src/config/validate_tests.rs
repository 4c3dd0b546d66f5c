//! Every kind of invalid schedule file, with its exact message and location.

use super::*;
use crate::config::api_job;

fn problems(text: &str) -> Vec<String> {
    match parse(text, Path::new("/srv")) {
        Ok(_) => vec![],
        Err(ps) => ps.iter().map(|p| format!("{}:{}: {}", p.line, p.column, p.message)).collect(),
    }
}

#[test]
fn a_valid_file() {
    let text = r#"
[store]
url = "sqlite://state/chime.db"
[server]
listen = "127.0.0.1:9191"
[defaults]
timezone = "Europe/Berlin"
overlap = "queue"
missed = { policy = "skip", grace = "1m" }
timeout = "10m"
[[job]]
name = "nightly-report"
schedule = "30 2 * * *"
jitter = "2m"
command = ["/usr/local/bin/report", "--since", "24h"]
[[job]]
name = "warm-cache"
schedule = "@every 5m"
timezone = "UTC"
local = true
http = { method = "post", url = "http://127.0.0.1:8080/warm", expect = [200, 204] }
"#;
    let config = parse(text, Path::new("/srv")).unwrap();
    assert_eq!(config.store, StoreUrl::Sqlite("/srv/state/chime.db".into()));
    assert_eq!(config.listen.to_string(), "127.0.0.1:9191");
    let [report, warm] = &config.jobs[..] else { panic!() };
    assert_eq!(
        (report.timezone_name.as_str(), report.overlap, report.missed),
        ("Europe/Berlin", Overlap::Queue, MissedPolicy::Skip)
    );
    assert_eq!(
        (report.jitter, report.timeout, report.grace),
        (Duration::from_secs(120), Duration::from_secs(600), Duration::from_secs(60))
    );
    assert!(!report.local && warm.local);
    let Target::Http(http) = &warm.target else { panic!() };
    assert_eq!((http.method.as_str(), &http.expect[..]), ("POST", &[200, 204][..]));
    assert_eq!(report.definition()["missed"], serde_json::json!({"policy": "skip", "grace": "1m"}));
}

#[test]
fn an_empty_file_has_no_jobs_and_the_default_store() {
    let config = parse("", Path::new("/srv")).unwrap();
    assert!(config.jobs.is_empty());
    assert_eq!(config.store, StoreUrl::Sqlite("/srv/chime.db".into()));
    assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(config.timers, TimerSettings::default());
    let text = "[timers]\nattempts = 3\nbackoff = \"2s\"\nretention = \"1h\"\n";
    let timers = parse(text, Path::new("/srv")).unwrap().timers;
    assert_eq!(
        (timers.attempts, timers.backoff, timers.retention),
        (3, Duration::from_secs(2), Duration::from_secs(3600))
    );
}

#[test]
fn every_kind_of_invalid_file() {
    let job = |body: &str| format!("[[job]]\nname = \"j\"\nschedule = \"@every 1m\"\n{body}\n");
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("[[job]\nname = 1".into(), vec!["1:7: unclosed array table, expected `]`"]),
        (
            "[[job]]\nname = \"a\"\nscheduel = \"* * * * *\"\n".into(),
            vec!["3:1: unknown key `scheduel` in [[job]]; did you mean `schedule`?"],
        ),
        (
            "[sever]\nlisten = \"x\"\n".into(),
            vec!["1:2: unknown key `sever` in the top level; did you mean `server`?"],
        ),
        (
            "[defaults]\ntimezon = \"UTC\"\n".into(),
            vec!["2:1: unknown key `timezon` in [defaults]; did you mean `timezone`?"],
        ),
        (
            job("command = \"x\"\nmissed = { polcy = \"once\" }"),
            vec!["5:12: unknown key `polcy` in `missed`; did you mean `policy`?"],
        ),
        (
            job("http = { url = \"http://x\", methd = \"GET\" }"),
            vec!["4:28: unknown key `methd` in `http`; did you mean `method`?"],
        ),
        (
            "[[job]]\nwhatever = 1\n".into(),
            vec![
                "2:1: unknown key `whatever` in [[job]]; expected one of `name`, `schedule`, `command`, `http`, `timezone`, `jitter`, `local`, `overlap`, `missed`, `timeout`, `lease`, `kill_grace`, `env`, `dir`",
            ],
        ),
        ("[[job]]\nname = 5\n".into(), vec!["2:8: invalid type: integer `5`, expected a string"]),
        ("[[job]]\nschedule = \"@daily\"\ncommand = \"x\"\n".into(), vec!["1:1: a [[job]] has no `name`"]),
        ("[[job]]\nname = \"j\"\ncommand = \"x\"\n".into(), vec!["1:1: job `j` has no `schedule`"]),
        (job(""), vec!["1:1: job `j` has neither `command` nor `http`"]),
        (
            job("command = \"x\"\nhttp = { url = \"http://x\" }"),
            vec!["4:11: job `j` has both `command` and `http`; give one"],
        ),
        (
            job("command = []"),
            vec!["4:11: `command` must name a program: its first element is empty or missing"],
        ),
        (job("command = [1]"), vec!["4:11: `command` must be an array of strings or a string"]),
        (job("command = \"  \""), vec!["4:11: `command` must not be empty"]),
        (
            "[[job]]\nname = \"a b\"\nschedule = \"@daily\"\ncommand = \"x\"\n".into(),
            vec!["2:8: job name `a b` may contain only letters, digits, `-`, `_` and `.`"],
        ),
        (
            "[[job]]\nname = \"j\"\nschedule = \"61 * * * *\"\ncommand = \"x\"\n".into(),
            vec!["3:12: invalid schedule `61 * * * *`: Component error: Number out of bounds."],
        ),
        (
            "[[job]]\nname = \"j\"\nschedule = \"* * * *\"\ncommand = \"x\"\n".into(),
            vec![
                "3:12: invalid schedule `* * * *`: a cron pattern has 5 fields (minute hour day month weekday) or 6 (seconds first), not 4",
            ],
        ),
        (
            job("command = \"x\"\ntimezone = \"Europe/Berln\""),
            vec!["5:12: unknown time zone `Europe/Berln`; did you mean `Europe/Berlin`?"],
        ),
        (
            job("command = \"x\"\njitter = \"2 minutes ago\""),
            vec!["5:10: invalid duration `2 minutes ago`: must not be negative"],
        ),
        (
            job("command = \"x\"\ntimeout = \"soon\""),
            vec![
                "5:11: invalid duration `soon`: expected a number and a unit (ms, s, m, h, d), e.g. `30s` or `1h30m`",
            ],
        ),
        (job("command = \"x\"\ntimeout = \"0s\""), vec!["5:11: `timeout` must be at least 1ms, not `0s`"]),
        (job("command = \"x\"\nlease = \"100ms\""), vec!["5:9: `lease` must be at least 1s, not `100ms`"]),
        (
            job("command = \"x\"\njitter = \"1m\""),
            vec!["5:10: `jitter` (1m) must be shorter than the schedule's interval"],
        ),
        (
            job("command = \"x\"\noverlap = \"skp\""),
            vec![
                "5:11: unknown overlap policy `skp`; did you mean `skip`? (expected one of `skip`, `allow`, `replace`, `queue`)",
            ],
        ),
        (
            job("command = \"x\"\nmissed = { policy = \"later\" }"),
            vec!["5:21: unknown missed policy `later`; expected one of `once`, `skip`"],
        ),
        (
            job("command = \"x\"\nlocal = \"yes\""),
            vec!["5:9: invalid type: string \"yes\", expected a boolean"],
        ),
        (
            job("command = \"x\"\nenv = { CHIME_JOB = \"x\" }"),
            vec!["5:7: `CHIME_JOB`: CHIME_* variables are set by the daemon"],
        ),
        (job("http = { url = \"ftp://x\" }"), vec!["4:16: `url` must be http:// or https://, not `ftp://x`"]),
        (job("http = { url = \"http://x\", method = \"G T\" }"), vec!["4:37: invalid HTTP method `G T`"]),
        (
            job("http = { url = \"http://x\", expect = [200, 99] }"),
            vec!["4:43: `expect` holds HTTP status codes (100 to 599), not 99"],
        ),
        (job("http = { method = \"GET\" }"), vec!["4:8: `http` has no `url`"]),
        (
            "[store]\nurl = \"mysql://db\"\n".into(),
            vec![
                "2:7: unsupported store URL `mysql://db`: use sqlite://FILE, redis://HOST or postgres://HOST/DB",
            ],
        ),
        (
            "[server]\nlisten = \"localhost\"\n".into(),
            vec!["2:10: invalid listen address `localhost`: expected IP:PORT, e.g. `127.0.0.1:9090`"],
        ),
        ("[server]\nhistory = 0\n".into(), vec!["2:11: `history` must be from 1 to 10000 runs, not 0"]),
        ("[timers]\nattempts = 0\n".into(), vec!["2:12: `attempts` must be from 1 to 100, not 0"]),
        ("[timers]\nbackoff = \"0s\"\n".into(), vec!["2:11: `backoff` must be at least 1ms, not `0s`"]),
        ("[timers]\nretention = \"1s\"\n".into(), vec!["2:13: `retention` must be at least 1m, not `1s`"]),
        (
            "[timers]\nattempt = 3\n".into(),
            vec!["2:1: unknown key `attempt` in [timers]; did you mean `attempts`?"],
        ),
        (
            format!("{}{}", job("command = \"x\""), job("command = \"y\"")),
            vec!["6:8: duplicate job name `j` (first defined at 1:1)"],
        ),
        (
            format!("{}{}", job("command = \"x\"\ntimeout = \"x\""), "[[job]]\nname = \"k\"\n"),
            vec![
                "5:11: invalid duration `x`: expected a number and a unit (ms, s, m, h, d), e.g. `30s` or `1h30m`",
                "6:1: job `k` has no `schedule`",
                "6:1: job `k` has neither `command` nor `http`",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (text, want) in &cases {
        let got = problems(text);
        if got != *want {
            failures.push(format!("--- file:\n{text}\n    got: {got:#?}\n    want: {want:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn api_jobs_share_the_rules_and_name_the_key() {
    let d = Defaults::default();
    let ok = api_job(
        "warm",
        &serde_json::json!({"schedule": "@every 5m", "command": ["true"], "jitter": null}),
        &d,
    )
    .unwrap();
    assert_eq!((ok.name.as_str(), ok.source), ("warm", Source::Api));
    let err = |body: serde_json::Value| api_job("warm", &body, &d).unwrap_err();
    assert_eq!(
        err(serde_json::json!({"schedule": 5, "command": "x"})),
        "`schedule`: invalid type: integer `5`, expected a string"
    );
    assert_eq!(
        err(serde_json::json!({"scheduel": "@daily", "command": "x"})),
        "unknown key `scheduel` in [[job]]; did you mean `schedule`?"
    );
    assert_eq!(
        err(serde_json::json!({"schedule": "@every 1m", "command": "x", "timeout": "x"})),
        "`timeout`: invalid duration `x`: expected a number and a unit (ms, s, m, h, d), e.g. `30s` or `1h30m`"
    );
    assert_eq!(
        err(serde_json::json!({"name": "other", "schedule": "@daily", "command": "x"})),
        "`name` is `other` but the path names `warm`"
    );
    assert_eq!(
        err(serde_json::json!([1])),
        "the body must be a JSON object with the keys of a [[job]] table"
    );
    // A definition read back is the same job.
    let again = api_job("warm", &ok.definition(), &d).unwrap();
    assert_eq!(again.definition(), ok.definition());
}
