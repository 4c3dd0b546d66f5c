//! Crontab files, as supercronic reads them: `NAME=value` lines set the environment of the jobs
//! below them, `#` starts a comment, and each job line is a schedule and a shell command. The
//! schedule is a nickname (`@daily`...), `@every <duration>`, or 5 to 7 fields as supercronic's
//! parser takes them: 5 (minute to weekday), 6 (a year after them) or 7 (seconds first, year last).
//! A job is named `line-N` after its line, or by a `# name: NAME` comment just above it. Jobs are
//! cluster-wide, with the built-in defaults.

use std::collections::BTreeMap;
use std::path::Path;

use super::validate::{DEFAULT_LISTEN, Defaults};
use super::{Config, Problem, StoreUrl, values};
use crate::job::{Command, JobSpec, Source, Target};
use crate::schedule::Schedule;

const NICKNAMES: &[&str] = &["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];

/// Parses a crontab into a config with the built-in server and store settings.
pub(crate) fn parse(text: &str, base: &Path) -> Result<Config, Vec<Problem>> {
    let defaults = Defaults::default();
    let mut problems = Vec::new();
    let mut jobs: Vec<JobSpec> = Vec::new();
    let mut env = BTreeMap::new();
    let mut shell = "/bin/sh".to_string();
    let mut pending_name: Option<String> = None;
    let mut offset = 0;
    for (index, raw_line) in text.split_inclusive('\n').enumerate() {
        let line_offset = offset;
        offset += raw_line.len();
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let at = |message: String| Problem::at(text, line_offset + indent, message);
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            if let Some(name) = comment.trim().strip_prefix("name:") {
                let name = name.trim().to_string();
                match values::job_name(&name) {
                    Ok(()) => pending_name = Some(name),
                    Err(e) => problems.push(at(e)),
                }
            }
            continue;
        }
        if let Some((key, value)) = env_assignment(trimmed) {
            if key == "SHELL" {
                shell = value.clone();
            }
            env.insert(key, value);
            continue;
        }
        let name = pending_name.take().unwrap_or_else(|| format!("line-{}", index + 1));
        match job_line(trimmed) {
            Ok((schedule, schedule_text, command)) => {
                if jobs.iter().any(|j| j.name == name) {
                    problems.push(at(format!("duplicate job name `{name}`")));
                    continue;
                }
                jobs.push(JobSpec {
                    name,
                    schedule,
                    schedule_text,
                    timezone: defaults.timezone.clone(),
                    timezone_name: defaults.timezone_name.clone(),
                    jitter: defaults.jitter,
                    target: Target::Command { command: Command::Shell(command), shell: shell.clone() },
                    local: false,
                    overlap: defaults.overlap,
                    missed: defaults.missed,
                    grace: defaults.grace,
                    timeout: defaults.timeout,
                    lease: defaults.lease,
                    kill_grace: defaults.kill_grace,
                    env: env.clone(),
                    dir: None,
                    source: Source::Crontab,
                });
            }
            Err(message) => problems.push(at(message)),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Config {
        path: Default::default(),
        crontab: true,
        store: StoreUrl::Sqlite(base.join("chime.db")),
        listen: DEFAULT_LISTEN.parse().expect("a valid address"),
        shutdown_timeout: std::time::Duration::from_secs(30),
        history: 50,
        timers: Default::default(),
        defaults,
        jobs,
    })
}

/// `NAME=value` (value optionally quoted), as supercronic accepts it.
fn env_assignment(line: &str) -> Option<(String, String)> {
    let (key, value) = line.split_once('=')?;
    let key = key.trim();
    let valid = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return None;
    }
    let value = value.trim();
    let unquoted = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    Some((key.to_string(), unquoted.to_string()))
}

/// Splits a job line into its schedule and its command.
fn job_line(line: &str) -> Result<(Schedule, String, String), String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let rest_after = |n: usize| -> String {
        let mut rest = line;
        for _ in 0..n {
            rest = rest.trim_start();
            rest = &rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..];
        }
        rest.trim().to_string()
    };
    let first = fields.first().copied().unwrap_or_default();
    if first.starts_with('@') {
        let (schedule_text, used) = if first.eq_ignore_ascii_case("@every") {
            (format!("@every {}", fields.get(1).copied().unwrap_or_default()), 2)
        } else if NICKNAMES.iter().any(|n| n.eq_ignore_ascii_case(first)) {
            (first.to_string(), 1)
        } else {
            return Err(format!("unknown schedule nickname `{first}`"));
        };
        let schedule = Schedule::parse(&schedule_text)?;
        let command = rest_after(used);
        if command.is_empty() {
            return Err(format!("the line has a schedule (`{schedule_text}`) but no command"));
        }
        return Ok((schedule, schedule_text, command));
    }
    let mut last_error = None;
    for n in [7, 6, 5] {
        if fields.len() <= n {
            continue;
        }
        let text = fields[..n].join(" ");
        let cron = if n == 6 { format!("0 {text}") } else { text.clone() };
        match Schedule::parse_with_year(&cron) {
            Ok(schedule) => return Ok((schedule, text, rest_after(n))),
            Err(e) if n == 5 => last_error = Some(e),
            Err(_) => {}
        }
    }
    Err(match last_error {
        Some(e) => e,
        None => "a job line needs a schedule (5 to 7 fields, or a nickname) and a command".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Config {
        parse(text, Path::new("/etc")).unwrap_or_else(|p| panic!("{p:?}"))
    }

    #[test]
    fn supercronic_lines() {
        let config = parse_ok(
            "# a comment\nFOO=bar\nGREETING = \"hello world\"\n*/5 * * * * echo $FOO\n\
             # name: seconds\n*/10 * * * * * * echo ten\n0 12 * * * 2099 echo noon\n@hourly  date  >> /tmp/x\n\
             @every 90s echo every\n",
        );
        let names: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["line-4", "seconds", "line-7", "line-8", "line-9"]);
        let first = &config.jobs[0];
        assert_eq!(first.env.get("GREETING").map(String::as_str), Some("hello world"));
        assert_eq!(
            first.target,
            Target::Command { command: Command::Shell("echo $FOO".into()), shell: "/bin/sh".into() }
        );
        assert_eq!(
            config.jobs[3].target,
            Target::Command { command: Command::Shell("date  >> /tmp/x".into()), shell: "/bin/sh".into() }
        );
        let utc = jiff::tz::TimeZone::UTC;
        let t0: jiff::Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            config.jobs[1].schedule.next_after(t0, &utc),
            Some("2024-01-01T00:00:10Z".parse().unwrap())
        );
        assert_eq!(
            config.jobs[2].schedule.next_after(t0, &utc),
            Some("2099-01-01T12:00:00Z".parse().unwrap())
        );
        assert_eq!(config.store, StoreUrl::Sqlite("/etc/chime.db".into()));
    }

    #[test]
    fn bad_lines_are_located() {
        let problems =
            parse("FOO=1\n  61 * * * * echo\n@fortnightly echo\n@daily\n", Path::new(".")).unwrap_err();
        let located: Vec<(usize, usize)> = problems.iter().map(|p| (p.line, p.column)).collect();
        assert_eq!(located, [(2, 3), (3, 1), (4, 1)]);
        assert!(problems[0].message.starts_with("invalid schedule `61 * * * *`"), "{}", problems[0].message);
        assert_eq!(problems[1].message, "unknown schedule nickname `@fortnightly`");
        assert_eq!(problems[2].message, "the line has a schedule (`@daily`) but no command");
    }
}
