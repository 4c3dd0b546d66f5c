//! A job as the daemon runs it: the validated form of one `[[job]]` table (or crontab line, or API
//! upsert), and its canonical definition (every key explicit), which the API shows, the store keeps
//! for API jobs and a reload compares.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::json;

use crate::config::values::format_duration;
use crate::schedule::Schedule;

/// What a run does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub(crate) enum Command {
    /// Executed directly, without a shell.
    Argv(Vec<String>),
    /// Run by `/bin/sh -c` (or `$SHELL` from a crontab).
    Shell(String),
}

/// An HTTP request as a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct HttpTarget {
    pub(crate) method: String,
    pub(crate) url: String,
    /// Accepted status codes; empty: any 2xx.
    pub(crate) expect: Vec<u16>,
    pub(crate) headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) body: Option<String>,
}

/// A job runs a command or sends a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Command { command: Command, shell: String },
    Http(HttpTarget),
}

/// What a tick does while the job still runs (anywhere in the cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Overlap {
    /// The tick is skipped (counted as missed, reason `overlap`).
    Skip,
    /// The tick runs beside the running one.
    Allow,
    /// The running one is stopped, then the tick runs.
    Replace,
    /// The tick waits for the running one to end (within the missed grace), then runs.
    Queue,
}

impl Overlap {
    pub(crate) const NAMES: &'static [&'static str] = &["skip", "allow", "replace", "queue"];

    pub(crate) fn from_name(name: &str) -> Option<Overlap> {
        Some(match name {
            "skip" => Overlap::Skip,
            "allow" => Overlap::Allow,
            "replace" => Overlap::Replace,
            "queue" => Overlap::Queue,
            _ => return None,
        })
    }
}

/// What happens to a tick that could not start on time (all replicas down, the store away, the
/// machine suspended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MissedPolicy {
    /// Run the latest missed tick once, late, within the grace.
    Once,
    /// Run only ticks that are on time.
    Skip,
}

/// Where a job was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Source {
    File,
    Crontab,
    Api,
}

/// One job, validated.
#[derive(Debug, Clone)]
pub(crate) struct JobSpec {
    pub(crate) name: String,
    pub(crate) schedule: Schedule,
    pub(crate) schedule_text: String,
    pub(crate) timezone: TimeZone,
    pub(crate) timezone_name: String,
    pub(crate) jitter: Duration,
    pub(crate) target: Target,
    pub(crate) local: bool,
    pub(crate) overlap: Overlap,
    pub(crate) missed: MissedPolicy,
    pub(crate) grace: Duration,
    pub(crate) timeout: Duration,
    pub(crate) lease: Duration,
    pub(crate) kill_grace: Duration,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) source: Source,
}

impl JobSpec {
    /// The canonical definition: every key explicit, in the file's vocabulary. Two specs with the
    /// same definition run the same way.
    pub(crate) fn definition(&self) -> serde_json::Value {
        let mut def = json!({
            "name": self.name,
            "schedule": self.schedule_text,
            "timezone": self.timezone_name,
            "jitter": format_duration(self.jitter),
            "local": self.local,
            "overlap": self.overlap,
            "missed": { "policy": self.missed, "grace": format_duration(self.grace) },
            "timeout": format_duration(self.timeout),
            "lease": format_duration(self.lease),
            "kill_grace": format_duration(self.kill_grace),
            "env": self.env,
        });
        match &self.target {
            Target::Command { command, .. } => def["command"] = json!(command),
            Target::Http(http) => def["http"] = json!(http),
        }
        if let Some(dir) = &self.dir {
            def["dir"] = json!(dir.display().to_string());
        }
        def
    }

    /// `cluster` (one run per tick across replicas) or `local` (every replica runs it).
    pub(crate) fn scope(&self) -> &'static str {
        if self.local { "local" } else { "cluster" }
    }
}
