//! A durable timer's body (`PUT /v1/timers/{key}`): when (`at` or `after`), what (`command` or
//! `http`) and how (`timeout`, `kill_grace`, `env`, `dir`, `grace`). The target and its settings
//! are validated by the same code as a job's keys (so they take the same values and give the same
//! messages); the stored payload keeps the request as normalised (to recognise a repeated PUT) and
//! the definition the run uses (fixed when the timer is created, whatever later reloads change).

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::config::Defaults;
use crate::config::values::{self, format_duration, nearest};
use crate::job::JobSpec;

/// The keys a timer's body takes.
pub(crate) const KEYS: &[&str] =
    &["at", "after", "command", "http", "timeout", "kill_grace", "env", "dir", "grace"];
/// The keys handed to the job validation (the target and how it runs).
const RUN_KEYS: &[&str] = &["command", "http", "timeout", "kill_grace", "env", "dir"];
/// The longest key, in bytes (chime's limit for durable timers).
pub(crate) const MAX_KEY: usize = chime::durable::MAX_KEY_BYTES;

/// When a timer is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    At(Timestamp),
    After(Duration),
}

/// A validated body.
#[derive(Debug)]
pub(crate) struct TimerBody {
    pub(crate) when: When,
    /// Skip the timer if its first run would start later than this after its due time.
    pub(crate) grace: Option<Duration>,
    /// `command` or `http`: the durable handler that runs it.
    pub(crate) handler: &'static str,
    /// The stored payload: `{"request": .., "run": ..}`.
    pub(crate) payload: Value,
}

/// Checks a key from the path.
pub(crate) fn key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(format!("a timer's key must be 1 to {MAX_KEY} bytes, not {}", key.len()));
    }
    if key.chars().any(char::is_control) {
        return Err("a timer's key must not contain control characters".into());
    }
    Ok(())
}

/// Validates a body; the message names the key that is wrong.
pub(crate) fn parse(body: &Value, defaults: &Defaults) -> Result<TimerBody, String> {
    let Value::Object(fields) = body else {
        return Err("the body must be a JSON object: `at` or `after`, and `command` or `http`".into());
    };
    for key in fields.keys() {
        if !KEYS.contains(&key.as_str()) {
            let list = KEYS.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
            return Err(match nearest(key, KEYS.iter().copied()) {
                Some(near) => format!("unknown key `{key}` in a timer; did you mean `{near}`?"),
                None => format!("unknown key `{key}` in a timer; expected one of {list}"),
            });
        }
    }
    let text = |key: &str| -> Result<Option<&str>, String> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("`{key}` must be a string")),
        }
    };
    let mut request = Map::new();
    let when = match (text("at")?, text("after")?) {
        (Some(_), Some(_)) => return Err("`at` and `after`: give one, not both".into()),
        (None, None) => return Err("a timer needs `at` (an RFC 3339 time) or `after` (a duration)".into()),
        (Some(at), None) => {
            let at: Timestamp = at.parse().map_err(|e| {
                format!(
                    "`at`: `{at}` is not an RFC 3339 time with an offset, e.g. `2030-01-01T09:00:00Z` ({e})"
                )
            })?;
            if at.as_millisecond() < 0 || at.as_millisecond() > chime::durable::MAX_DUE_MS {
                return Err(format!("`at`: {at} is outside chime's range (the Unix epoch to the year 2554)"));
            }
            request.insert("at".into(), json!(at.to_string()));
            When::At(at)
        }
        (None, Some(after)) => {
            let after = values::duration(after).map_err(|e| format!("`after`: {e}"))?;
            request.insert("after".into(), json!(format_duration(after)));
            When::After(after)
        }
    };
    let grace = match text("grace")? {
        Some(g) => {
            let g = values::duration(g).map_err(|e| format!("`grace`: {e}"))?;
            request.insert("grace".into(), json!(format_duration(g)));
            Some(g)
        }
        None => None,
    };
    let mut job = Map::new();
    for key in RUN_KEYS {
        if let Some(value) = fields.get(*key).filter(|v| !v.is_null()) {
            job.insert((*key).into(), value.clone());
            request.insert((*key).into(), value.clone());
        }
    }
    let spec = run_spec(&Value::Object(job), defaults)?;
    let definition = spec.definition();
    let mut run = Map::new();
    for key in RUN_KEYS {
        if let Some(value) = definition.get(*key) {
            run.insert((*key).into(), value.clone());
        }
    }
    let handler = if run.contains_key("http") { "http" } else { "command" };
    for (key, value) in [("timeout", &spec.timeout), ("kill_grace", &spec.kill_grace)] {
        if let Some(v) = request.get_mut(key) {
            *v = json!(format_duration(*value));
        }
    }
    Ok(TimerBody { when, grace, handler, payload: json!({ "request": request, "run": run }) })
}

/// The job a timer runs, from its stored `run` definition (or a body's run keys): validated as a
/// job's keys are, under a schedule that is never used.
pub(crate) fn run_spec(run: &Value, defaults: &Defaults) -> Result<JobSpec, String> {
    let mut job = run.as_object().cloned().unwrap_or_default();
    job.insert("schedule".into(), json!("@every 1h"));
    crate::config::api_job("timer", &Value::Object(job), defaults).map_err(|e| {
        // The job validation speaks of jobs; a timer's body has no schedule or name.
        e.replace("job `timer` has neither `command` nor `http`", "a timer needs `command` or `http`")
            .replace(
                "job `timer` has both `command` and `http`; give one",
                "`command` and `http`: give one, not both",
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: Value) -> String {
        parse(&body, &Defaults::default()).unwrap_err()
    }

    #[test]
    fn valid_bodies_and_their_canonical_form() {
        let t = parse(
            &json!({"after": "600s", "command": ["echo", "hi"], "timeout": "PT1M"}),
            &Defaults::default(),
        )
        .unwrap();
        assert_eq!(t.when, When::After(Duration::from_secs(600)));
        assert_eq!(t.handler, "command");
        assert_eq!(t.payload["request"], json!({"after": "10m", "command": ["echo", "hi"], "timeout": "1m"}));
        assert_eq!(t.payload["run"]["timeout"], "1m");
        assert_eq!(t.payload["run"]["kill_grace"], "10s", "the defaults are fixed at creation");
        let t = parse(
            &json!({"at": "2030-01-01T10:00:00+01:00", "http": {"url": "http://127.0.0.1:1/x"}, "grace": "5m"}),
            &Defaults::default(),
        )
        .unwrap();
        assert_eq!(t.when, When::At("2030-01-01T09:00:00Z".parse().unwrap()));
        assert_eq!((t.handler, t.grace), ("http", Some(Duration::from_secs(300))));
        assert_eq!(t.payload["request"]["at"], "2030-01-01T09:00:00Z");
        assert_eq!(t.payload["run"]["http"]["method"], "GET");
        let spec = run_spec(&t.payload["run"], &Defaults::default()).unwrap();
        assert!(matches!(spec.target, crate::job::Target::Http(_)));
    }

    #[test]
    fn bad_bodies_name_the_key() {
        assert_eq!(
            err(json!([1])),
            "the body must be a JSON object: `at` or `after`, and `command` or `http`"
        );
        assert_eq!(
            err(json!({"command": "true"})),
            "a timer needs `at` (an RFC 3339 time) or `after` (a duration)"
        );
        assert_eq!(
            err(json!({"at": "2030-01-01T00:00:00Z", "after": "1m", "command": "true"})),
            "`at` and `after`: give one, not both"
        );
        assert!(
            err(json!({"at": "tomorrow", "command": "true"}))
                .starts_with("`at`: `tomorrow` is not an RFC 3339 time")
        );
        assert_eq!(err(json!({"after": 5, "command": "true"})), "`after` must be a string");
        assert!(
            err(json!({"after": "5 fortnights", "command": "true"})).starts_with("`after`: invalid duration")
        );
        assert_eq!(err(json!({"after": "1m"})), "a timer needs `command` or `http`");
        assert_eq!(
            err(json!({"after": "1m", "command": "true", "http": {"url": "http://x/"}})),
            "`command` and `http`: give one, not both"
        );
        assert_eq!(
            err(json!({"after": "1m", "comand": "true"})),
            "unknown key `comand` in a timer; did you mean `command`?"
        );
        assert!(
            err(json!({"after": "1m", "schedule": "@every 1s", "command": "true"}))
                .starts_with("unknown key `schedule` in a timer")
        );
        assert_eq!(
            err(json!({"after": "1m", "http": {"url": "ftp://x/"}})),
            "`url` must be http:// or https://, not `ftp://x/`"
        );
        assert_eq!(
            err(json!({"after": "1m", "command": "true", "timeout": "0s"})),
            "`timeout` must be at least 1ms, not `0s`"
        );
        assert!(
            err(json!({"after": "1m", "command": "true", "grace": "x"}))
                .starts_with("`grace`: invalid duration")
        );
        assert!(key("").is_err() && key(&"k".repeat(257)).is_err() && key("a\nb").is_err());
        assert!(key("invoice-42/retry:1").is_ok());
    }
}
