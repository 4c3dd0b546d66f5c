//! The schedule file's shape, as serde reads it: every key optional (the validation in
//! [`super::validate`] names what is missing, with the location of the table it is missing from),
//! unknown keys refused, values carrying their spans for `FILE:LINE:COLUMN` messages.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileToml {
    pub(crate) store: Option<Spanned<StoreToml>>,
    pub(crate) server: Option<Spanned<ServerToml>>,
    pub(crate) defaults: Option<Spanned<DefaultsToml>>,
    pub(crate) timers: Option<Spanned<TimersToml>>,
    #[serde(default)]
    pub(crate) job: Vec<Spanned<JobToml>>,
}

/// `[store]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreToml {
    pub(crate) url: Option<Spanned<String>>,
}

/// `[server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerToml {
    pub(crate) listen: Option<Spanned<String>>,
    pub(crate) shutdown_timeout: Option<Spanned<String>>,
    pub(crate) history: Option<Spanned<i64>>,
}

/// `[timers]`: durable timers' retries and retention.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimersToml {
    pub(crate) attempts: Option<Spanned<i64>>,
    pub(crate) backoff: Option<Spanned<String>>,
    pub(crate) retention: Option<Spanned<String>>,
}

/// `[defaults]`: the keys a job may leave out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefaultsToml {
    pub(crate) timezone: Option<Spanned<String>>,
    pub(crate) jitter: Option<Spanned<String>>,
    pub(crate) local: Option<Spanned<bool>>,
    pub(crate) overlap: Option<Spanned<String>>,
    pub(crate) missed: Option<Spanned<MissedToml>>,
    pub(crate) timeout: Option<Spanned<String>>,
    pub(crate) lease: Option<Spanned<String>>,
    pub(crate) kill_grace: Option<Spanned<String>>,
    pub(crate) env: Option<Spanned<BTreeMap<String, String>>>,
    pub(crate) dir: Option<Spanned<String>>,
}

/// One `[[job]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobToml {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) schedule: Option<Spanned<String>>,
    pub(crate) command: Option<Spanned<toml::Value>>,
    pub(crate) http: Option<Spanned<HttpToml>>,
    pub(crate) timezone: Option<Spanned<String>>,
    pub(crate) jitter: Option<Spanned<String>>,
    pub(crate) local: Option<Spanned<bool>>,
    pub(crate) overlap: Option<Spanned<String>>,
    pub(crate) missed: Option<Spanned<MissedToml>>,
    pub(crate) timeout: Option<Spanned<String>>,
    pub(crate) lease: Option<Spanned<String>>,
    pub(crate) kill_grace: Option<Spanned<String>>,
    pub(crate) env: Option<Spanned<BTreeMap<String, String>>>,
    pub(crate) dir: Option<Spanned<String>>,
}

/// `missed = { policy = "once", grace = "5m" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MissedToml {
    pub(crate) policy: Option<Spanned<String>>,
    pub(crate) grace: Option<Spanned<String>>,
}

/// `http = { method = "POST", url = "...", expect = [200] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpToml {
    pub(crate) url: Option<Spanned<String>>,
    pub(crate) method: Option<Spanned<String>>,
    pub(crate) expect: Option<Spanned<Vec<Spanned<i64>>>>,
    pub(crate) headers: Option<Spanned<BTreeMap<String, String>>>,
    pub(crate) body: Option<Spanned<String>>,
}

/// Every table's keys, so an unknown key's message can say which table it was found in.
pub(crate) const TABLES: &[(&str, &[&str])] = &[
    ("the top level", &["store", "server", "defaults", "timers", "job"]),
    ("[store]", &["url"]),
    ("[timers]", &["attempts", "backoff", "retention"]),
    ("[server]", &["listen", "shutdown_timeout", "history"]),
    (
        "[defaults]",
        &["timezone", "jitter", "local", "overlap", "missed", "timeout", "lease", "kill_grace", "env", "dir"],
    ),
    (
        "[[job]]",
        &[
            "name",
            "schedule",
            "command",
            "http",
            "timezone",
            "jitter",
            "local",
            "overlap",
            "missed",
            "timeout",
            "lease",
            "kill_grace",
            "env",
            "dir",
        ],
    ),
    ("`missed`", &["policy", "grace"]),
    ("`http`", &["url", "method", "expect", "headers", "body"]),
];
