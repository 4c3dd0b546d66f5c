//! The schedule file: reading it, validating every value, and reporting what is wrong as
//! `FILE:LINE:COLUMN: message` (every problem found, not just the first). Crontab files
//! ([`crontab`]) and jobs upserted through the API ([`api_job`]) go through the same validation.

mod api;
pub(crate) mod crontab;
mod ctx;
mod raw;
mod targets;
mod validate;
pub(crate) mod values;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::job::JobSpec;

pub(crate) use validate::{Defaults, listen_addr};

/// A validated schedule file.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The file it was read from (reloads read it again).
    pub(crate) path: PathBuf,
    /// Whether it is a crontab rather than a TOML schedule.
    pub(crate) crontab: bool,
    pub(crate) store: StoreUrl,
    pub(crate) listen: SocketAddr,
    /// How long running jobs may go on after SIGTERM before they are stopped.
    pub(crate) shutdown_timeout: Duration,
    /// Finished runs kept per job in the run history.
    pub(crate) history: usize,
    /// Durable timers' retries and retention.
    pub(crate) timers: TimerSettings,
    /// The defaults jobs upserted through the API get.
    pub(crate) defaults: Defaults,
    pub(crate) jobs: Vec<JobSpec>,
}

/// `[timers]`: what the durable timers' scheduler does with failed runs and finished timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimerSettings {
    /// Runs tried at most before a timer is marked failed.
    pub(crate) attempts: u32,
    /// The first retry's delay, doubling after each failure (up to ten minutes).
    pub(crate) backoff: Duration,
    /// How long fired, cancelled and skipped timers are kept (their keys stay taken meanwhile).
    pub(crate) retention: Duration,
}

impl Default for TimerSettings {
    fn default() -> Self {
        TimerSettings {
            attempts: 5,
            backoff: Duration::from_secs(1),
            retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// Where the daemon keeps claims and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreUrl {
    Sqlite(PathBuf),
    Redis(String),
    Postgres(String),
}

impl StoreUrl {
    /// Parses `sqlite://PATH` (relative to `base`), `redis://`, `rediss://`, `postgres://` or
    /// `postgresql://`.
    pub(crate) fn parse(url: &str, base: &Path) -> Result<StoreUrl, String> {
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err(format!("store URL `{url}` names no file"));
            }
            return Ok(StoreUrl::Sqlite(base.join(path)));
        }
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            return Ok(StoreUrl::Redis(url.to_string()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_string()));
        }
        Err(format!("unsupported store URL `{url}`: use sqlite://FILE, redis://HOST or postgres://HOST/DB"))
    }

    /// The URL with any password hidden, for logs and the API.
    pub(crate) fn redacted(&self) -> String {
        match self {
            StoreUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            StoreUrl::Redis(url) | StoreUrl::Postgres(url) => redact(url),
        }
    }
}

fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// One thing wrong with a file, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// Byte offset in the file.
    pub(crate) offset: usize,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

impl Problem {
    pub(crate) fn at(text: &str, offset: usize, message: impl Into<String>) -> Problem {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = text[line_start..offset].chars().count() + 1;
        Problem { offset, line, column, message: message.into() }
    }
}

/// A file that cannot be used, with everything wrong in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub(crate) file: String,
    pub(crate) problems: Vec<Problem>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: {}", self.file, p.line, p.column, p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

/// Reads and validates a schedule file (TOML, or a crontab when `crontab`).
pub(crate) fn load(path: &Path, crontab: bool) -> Result<Config, Invalid> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Invalid {
        file: file.clone(),
        problems: vec![Problem {
            offset: 0,
            line: 1,
            column: 1,
            message: format!("cannot read the file: {e}"),
        }],
    })?;
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let parsed = if crontab { crontab::parse(&text, base) } else { validate::parse(&text, base) };
    let mut config = parsed.map_err(|problems| Invalid { file, problems })?;
    config.path = path.to_path_buf();
    config.crontab = crontab;
    Ok(config)
}

/// Parses a job upserted through the API (the JSON form of a `[[job]]` table), with this daemon's
/// defaults; the message names the key that is wrong.
pub(crate) fn api_job(name: &str, body: &serde_json::Value, defaults: &Defaults) -> Result<JobSpec, String> {
    api::api_job(name, body, defaults)
}
