//! From the file's shape ([`super::raw`]) to a [`Config`]: defaults applied, every value checked,
//! every problem collected with its location.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::tz::TimeZone;
use toml::Spanned;

use super::ctx::Ctx;
use super::raw::{DefaultsToml, FileToml, JobToml, MissedToml, TABLES, TimersToml};
use super::targets::{command, http};
use super::values::{self, choice, nearest};
use super::{Config, Problem, StoreUrl, TimerSettings};
use crate::job::{JobSpec, MissedPolicy, Overlap, Source, Target};
use crate::schedule::Schedule;

pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:9090";

/// What a job gets for the keys it leaves out.
#[derive(Debug, Clone)]
pub(crate) struct Defaults {
    pub(crate) timezone_name: String,
    pub(crate) timezone: TimeZone,
    pub(crate) jitter: Duration,
    pub(crate) local: bool,
    pub(crate) overlap: Overlap,
    pub(crate) missed: MissedPolicy,
    pub(crate) grace: Duration,
    pub(crate) timeout: Duration,
    pub(crate) lease: Duration,
    pub(crate) kill_grace: Duration,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) dir: Option<PathBuf>,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timezone_name: "UTC".into(),
            timezone: TimeZone::UTC,
            jitter: Duration::ZERO,
            local: false,
            overlap: Overlap::Skip,
            missed: MissedPolicy::Once,
            grace: Duration::from_secs(300),
            timeout: Duration::from_secs(3600),
            lease: Duration::from_secs(10),
            kill_grace: Duration::from_secs(10),
            env: BTreeMap::new(),
            dir: None,
        }
    }
}

/// Parses a whole TOML schedule.
pub(crate) fn parse(text: &str, base: &Path) -> Result<Config, Vec<Problem>> {
    let file: FileToml = toml::from_str(text).map_err(|e| vec![toml_problem(text, &e)])?;
    let mut ctx = Ctx { text, problems: Vec::new() };
    let mut store = StoreUrl::Sqlite(base.join("chime.db"));
    if let Some(url) = file.store.as_ref().and_then(|s| s.get_ref().url.as_ref())
        && let Some(parsed) = ctx.check(url, |u| StoreUrl::parse(u, base))
    {
        store = parsed;
    }
    let mut listen: SocketAddr = DEFAULT_LISTEN.parse().expect("a valid address");
    let mut shutdown_timeout = Duration::from_secs(30);
    let mut history = 50;
    if let Some(server) = &file.server {
        let server = server.get_ref();
        if let Some(addr) = &server.listen {
            listen = ctx.check(addr, |a| listen_addr(a)).unwrap_or(listen);
        }
        if let Some(t) = &server.shutdown_timeout {
            shutdown_timeout = ctx.check(t, |t| values::duration(t)).unwrap_or(shutdown_timeout);
        }
        if let Some(h) = &server.history {
            history = ctx
                .check(h, |&h| {
                    usize::try_from(h)
                        .ok()
                        .filter(|h| (1..=10_000).contains(h))
                        .ok_or_else(|| format!("`history` must be from 1 to 10000 runs, not {h}"))
                })
                .unwrap_or(history);
        }
    }
    let timers =
        file.timers.as_ref().map_or_else(Default::default, |t| timer_settings(&mut ctx, t.get_ref()));
    let defaults = match &file.defaults {
        Some(d) => defaults(&mut ctx, d.get_ref(), base),
        None => Defaults::default(),
    };
    let mut jobs = Vec::new();
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    for raw in &file.job {
        let Some(job) = job(&mut ctx, raw, &defaults, base, Source::File) else { continue };
        let at = Problem::at(text, raw.span().start, "");
        if let Some((line, column)) = seen.get(&job.name) {
            let span = raw.get_ref().name.as_ref().map_or(raw.span(), Spanned::span);
            ctx.report(span, format!("duplicate job name `{}` (first defined at {line}:{column})", job.name));
            continue;
        }
        seen.insert(job.name.clone(), (at.line, at.column));
        jobs.push(job);
    }
    if !ctx.problems.is_empty() {
        return Err(ctx.problems);
    }
    Ok(Config {
        path: PathBuf::new(),
        crontab: false,
        store,
        listen,
        shutdown_timeout,
        history,
        timers,
        defaults,
        jobs,
    })
}

fn timer_settings(ctx: &mut Ctx<'_>, raw: &TimersToml) -> TimerSettings {
    let mut t = TimerSettings::default();
    if let Some(a) = &raw.attempts {
        t.attempts = ctx
            .check(a, |&a| {
                u32::try_from(a)
                    .ok()
                    .filter(|a| (1..=100).contains(a))
                    .ok_or_else(|| format!("`attempts` must be from 1 to 100, not {a}"))
            })
            .unwrap_or(t.attempts);
    }
    t.backoff =
        duration_at_least(ctx, &raw.backoff, "backoff", Duration::from_millis(1)).unwrap_or(t.backoff);
    t.retention =
        duration_at_least(ctx, &raw.retention, "retention", Duration::from_secs(60)).unwrap_or(t.retention);
    t
}

pub(crate) fn listen_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("invalid listen address `{text}`: expected IP:PORT, e.g. `{DEFAULT_LISTEN}`"))
}

/// A toml/serde error as a problem: unknown keys get the nearest valid key suggested.
pub(crate) fn toml_problem(text: &str, e: &toml::de::Error) -> Problem {
    let offset = e.span().map_or(0, |s| s.start);
    let message = e.message().trim();
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let rewritten = if let (Some(rest), Some((key, expected))) =
        (message.strip_prefix("unknown field "), quoted.split_first())
    {
        let _ = rest;
        let table = TABLES
            .iter()
            .find(|(_, keys)| keys.len() == expected.len() && keys.iter().all(|k| expected.contains(k)))
            .map_or("this table", |(table, _)| *table);
        match nearest(key, expected.iter().copied()) {
            Some(near) => format!("unknown key `{key}` in {table}; did you mean `{near}`?"),
            None => {
                let list = expected.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
                format!("unknown key `{key}` in {table}; expected one of {list}")
            }
        }
    } else {
        message.to_string()
    };
    Problem::at(text, offset, rewritten)
}

fn duration_at_least(
    ctx: &mut Ctx<'_>,
    field: &Option<Spanned<String>>,
    key: &str,
    least: Duration,
) -> Option<Duration> {
    let field = field.as_ref()?;
    ctx.check(field, |text| {
        let d = values::duration(text)?;
        if d < least {
            return Err(format!("`{key}` must be at least {}, not `{text}`", values::format_duration(least)));
        }
        Ok(d)
    })
}

fn dir(ctx: &mut Ctx<'_>, field: &Option<Spanned<String>>, base: &Path) -> Option<PathBuf> {
    let field = field.as_ref()?;
    ctx.check(field, |d| if d.is_empty() { Err("`dir` must not be empty".into()) } else { Ok(base.join(d)) })
}

fn missed(ctx: &mut Ctx<'_>, field: &Spanned<MissedToml>) -> (Option<MissedPolicy>, Option<Duration>) {
    let raw = field.get_ref();
    let policy = raw.policy.as_ref().and_then(|p| {
        ctx.check(p, |p| {
            choice("missed policy", p, &["once", "skip"])
                .map(|c| if c == "once" { MissedPolicy::Once } else { MissedPolicy::Skip })
        })
    });
    let grace = duration_at_least(ctx, &raw.grace, "grace", Duration::ZERO);
    (policy, grace)
}

fn overlap(ctx: &mut Ctx<'_>, field: &Option<Spanned<String>>) -> Option<Overlap> {
    let field = field.as_ref()?;
    ctx.check(field, |o| {
        choice("overlap policy", o, Overlap::NAMES).map(|c| Overlap::from_name(c).expect("listed"))
    })
}

fn defaults(ctx: &mut Ctx<'_>, raw: &DefaultsToml, base: &Path) -> Defaults {
    let mut d = Defaults::default();
    if let Some(tz) = &raw.timezone
        && let Some(zone) = ctx.check(tz, |name| values::timezone(name))
    {
        d.timezone = zone;
        d.timezone_name = tz.get_ref().clone();
    }
    d.jitter = duration_at_least(ctx, &raw.jitter, "jitter", Duration::ZERO).unwrap_or(d.jitter);
    d.local = raw.local.as_ref().map_or(d.local, |l| *l.get_ref());
    d.overlap = overlap(ctx, &raw.overlap).unwrap_or(d.overlap);
    if let Some(m) = &raw.missed {
        let (policy, grace) = missed(ctx, m);
        d.missed = policy.unwrap_or(d.missed);
        d.grace = grace.unwrap_or(d.grace);
    }
    d.timeout =
        duration_at_least(ctx, &raw.timeout, "timeout", Duration::from_millis(1)).unwrap_or(d.timeout);
    d.lease = duration_at_least(ctx, &raw.lease, "lease", Duration::from_secs(1)).unwrap_or(d.lease);
    d.kill_grace =
        duration_at_least(ctx, &raw.kill_grace, "kill_grace", Duration::ZERO).unwrap_or(d.kill_grace);
    if let Some(env) = &raw.env {
        d.env = ctx.check(env, env_vars).unwrap_or_default();
    }
    d.dir = dir(ctx, &raw.dir, base);
    d
}

fn env_vars(env: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
    for key in env.keys() {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(format!("invalid environment variable name `{key}`"));
        }
        if key.starts_with("CHIME_") {
            return Err(format!("`{key}`: CHIME_* variables are set by the daemon"));
        }
    }
    Ok(env.clone())
}

/// Validates one job; `None` when something was reported.
pub(crate) fn job(
    ctx: &mut Ctx<'_>,
    spanned: &Spanned<JobToml>,
    defaults: &Defaults,
    base: &Path,
    source: Source,
) -> Option<JobSpec> {
    let before = ctx.problems.len();
    let raw = spanned.get_ref();
    let span = spanned.span();
    let name = match &raw.name {
        Some(n) => ctx.check(n, |n| values::job_name(n).map(|()| n.clone())),
        None => {
            ctx.report(span.clone(), "a [[job]] has no `name`");
            None
        }
    };
    let label = name.as_deref().map_or_else(|| "this job".to_string(), |n| format!("job `{n}`"));
    let schedule = match &raw.schedule {
        Some(s) => ctx.check(s, |s| Schedule::parse(s).map(|p| (p, s.clone()))),
        None => {
            ctx.report(span.clone(), format!("{label} has no `schedule`"));
            None
        }
    };
    let (timezone_name, timezone) = match &raw.timezone {
        Some(tz) => match ctx.check(tz, |n| values::timezone(n)) {
            Some(zone) => (tz.get_ref().clone(), zone),
            None => (String::new(), TimeZone::UTC),
        },
        None => (defaults.timezone_name.clone(), defaults.timezone.clone()),
    };
    let target = match (&raw.command, &raw.http) {
        (Some(c), None) => {
            ctx.check(c, command).map(|command| Target::Command { command, shell: "/bin/sh".to_string() })
        }
        (None, Some(h)) => http(ctx, h).map(Target::Http),
        (Some(c), Some(_)) => {
            ctx.report(c.span(), format!("{label} has both `command` and `http`; give one"));
            None
        }
        (None, None) => {
            ctx.report(span.clone(), format!("{label} has neither `command` nor `http`"));
            None
        }
    };
    let jitter = duration_at_least(ctx, &raw.jitter, "jitter", Duration::ZERO).unwrap_or(defaults.jitter);
    if let (Some((Schedule::Every(every), _)), Some(j)) = (&schedule, &raw.jitter)
        && jitter >= *every
    {
        ctx.report(
            j.span(),
            format!("`jitter` ({}) must be shorter than the schedule's interval", j.get_ref()),
        );
    }
    let (mut policy, mut grace) = (defaults.missed, defaults.grace);
    if let Some(m) = &raw.missed {
        let (p, g) = missed(ctx, m);
        policy = p.unwrap_or(policy);
        grace = g.unwrap_or(grace);
    }
    let env = match &raw.env {
        Some(e) => {
            let mut merged = defaults.env.clone();
            merged.extend(ctx.check(e, env_vars).unwrap_or_default());
            merged
        }
        None => defaults.env.clone(),
    };
    // Every key is checked (and reported) before any missing one ends the job's validation.
    let overlap = overlap(ctx, &raw.overlap).unwrap_or(defaults.overlap);
    let timeout =
        duration_at_least(ctx, &raw.timeout, "timeout", Duration::from_millis(1)).unwrap_or(defaults.timeout);
    let lease = duration_at_least(ctx, &raw.lease, "lease", Duration::from_secs(1)).unwrap_or(defaults.lease);
    let kill_grace =
        duration_at_least(ctx, &raw.kill_grace, "kill_grace", Duration::ZERO).unwrap_or(defaults.kill_grace);
    let dir = dir(ctx, &raw.dir, base).or_else(|| defaults.dir.clone());
    let (schedule, schedule_text) = schedule?;
    let spec = JobSpec {
        name: name?,
        schedule,
        schedule_text,
        timezone,
        timezone_name,
        jitter,
        target: target?,
        local: raw.local.as_ref().map_or(defaults.local, |l| *l.get_ref()),
        overlap,
        missed: policy,
        grace,
        timeout,
        lease,
        kill_grace,
        env,
        dir,
        source,
    };
    (ctx.problems.len() == before).then_some(spec)
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
