//! When a job runs: cron patterns (through `croner`, which follows Vixie cron across daylight-saving
//! changes) in a `jiff` time zone, or `@every <duration>` on a grid counted from the Unix epoch.
//!
//! A tick is identified by its nominal instant in UTC, so every replica names the same tick the
//! same way. Vixie cron's DST rules: in a spring-forward gap, a fixed-time job (single second,
//! minute and hour) runs once at the end of the gap, and a wildcard or stepped job skips the times
//! that do not exist; in an autumn fold, a fixed-time job runs once (the first time its wall-clock
//! time comes), and a wildcard job runs in both halves, at distinct instants. No nominal tick ever
//! repeats.

use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A parsed `schedule`.
#[derive(Debug, Clone)]
pub(crate) enum Schedule {
    /// A cron pattern of 5 or 6 fields (seconds first) or a nickname (`@daily`...).
    Cron(Box<Cron>),
    /// `@every <duration>`: ticks at whole multiples of the duration since the Unix epoch.
    Every(Duration),
}

/// The shortest `@every` interval.
const SHORTEST_EVERY: Duration = Duration::from_secs(1);

impl Schedule {
    /// Parses a cron pattern or `@every <duration>`.
    pub(crate) fn parse(text: &str) -> Result<Schedule, String> {
        let trimmed = text.trim();
        if let Some(rest) = strip_prefix_ignore_case(trimmed, "@every") {
            let every = crate::config::values::duration(rest.trim())
                .map_err(|e| format!("invalid schedule `{text}`: {e}"))?;
            if every < SHORTEST_EVERY {
                return Err(format!("invalid schedule `{text}`: the shortest `@every` is 1s"));
            }
            if every.subsec_nanos() % 1_000_000 != 0 {
                return Err(format!("invalid schedule `{text}`: `@every` takes whole milliseconds"));
            }
            return Ok(Schedule::Every(every));
        }
        if trimmed.eq_ignore_ascii_case("@reboot") {
            return Err(format!("invalid schedule `{text}`: `@reboot` is not supported"));
        }
        if !trimmed.starts_with('@') {
            let fields = trimmed.split_whitespace().count();
            if !(5..=6).contains(&fields) {
                return Err(format!(
                    "invalid schedule `{text}`: a cron pattern has 5 fields (minute hour day month weekday) \
                     or 6 (seconds first), not {fields}"
                ));
            }
        }
        let parser = CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build();
        let cron = parser.parse(trimmed).map_err(|e| format!("invalid schedule `{text}`: {e}"))?;
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// Parses a crontab's fields (5, or 7 with seconds first and a year last), as supercronic does.
    pub(crate) fn parse_with_year(text: &str) -> Result<Schedule, String> {
        let parser = CronParser::builder().seconds(Seconds::Optional).year(Year::Optional).build();
        let cron = parser.parse(text).map_err(|e| format!("invalid schedule `{text}`: {e}"))?;
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// The first nominal tick strictly after `after`, in `tz` (ignored by `@every`).
    pub(crate) fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        match self {
            Schedule::Every(every) => {
                let every = every.as_millis() as i64;
                let next = (after.as_millisecond().div_euclid(every) + 1).checked_mul(every)?;
                Timestamp::from_millisecond(next).ok()
            }
            Schedule::Cron(cron) => {
                // croner counts whole seconds: start from the second `after` falls in.
                let second = Timestamp::from_second(after.as_second()).ok()?;
                let next = cron.find_next_occurrence(&second.to_zoned(tz.clone()), false).ok()?;
                Some(next.timestamp())
            }
        }
    }

    /// The latest nominal tick at or before `at`.
    pub(crate) fn latest_at_or_before(&self, at: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        match self {
            Schedule::Every(every) => {
                let every = every.as_millis() as i64;
                Timestamp::from_millisecond(at.as_millisecond().div_euclid(every) * every).ok()
            }
            Schedule::Cron(cron) => {
                let second = Timestamp::from_second(at.as_second()).ok()?;
                let previous = cron.find_previous_occurrence(&second.to_zoned(tz.clone()), true).ok()?;
                Some(previous.timestamp())
            }
        }
    }

    /// The next `n` nominal ticks after `after`.
    pub(crate) fn upcoming(&self, after: Timestamp, tz: &TimeZone, n: usize) -> Vec<Timestamp> {
        let mut out = Vec::with_capacity(n);
        let mut at = after;
        while out.len() < n {
            match self.next_after(at, tz) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// The delay added to a tick: derived from a hash of the job's name and the tick, so every replica
/// computes the same fire time for the same tick, and different jobs spread out. Uniform in
/// `[0, jitter)` at millisecond resolution.
pub(crate) fn jitter_for(job: &str, tick: Timestamp, jitter: Duration) -> Duration {
    let range = jitter.as_millis() as u64;
    if range == 0 {
        return Duration::ZERO;
    }
    // FNV-1a: stable across builds and platforms (std's hashers promise neither).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in job.bytes().chain([0xff]).chain(tick.as_millisecond().to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // A final mix, so nearby ticks do not get nearby delays.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    Duration::from_millis(hash % range)
}

#[cfg(test)]
#[path = "schedule_dst_tests.rs"]
mod dst_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn every_is_a_grid_from_the_epoch() {
        let every = Schedule::parse("@every 30s").unwrap();
        let utc = TimeZone::UTC;
        assert_eq!(every.next_after(ts("2024-01-01T00:00:10Z"), &utc), Some(ts("2024-01-01T00:00:30Z")));
        assert_eq!(every.next_after(ts("2024-01-01T00:00:30Z"), &utc), Some(ts("2024-01-01T00:01:00Z")));
        assert_eq!(
            every.latest_at_or_before(ts("2024-01-01T00:00:59.999Z"), &utc),
            Some(ts("2024-01-01T00:00:30Z"))
        );
        assert!(
            matches!(Schedule::parse("@EVERY 1h30m"), Ok(Schedule::Every(d)) if d == Duration::from_secs(5400))
        );
    }

    #[test]
    fn invalid_schedules_say_why() {
        assert_eq!(
            Schedule::parse("@every 500ms").unwrap_err(),
            "invalid schedule `@every 500ms`: the shortest `@every` is 1s"
        );
        assert_eq!(
            Schedule::parse("* * * *").unwrap_err(),
            "invalid schedule `* * * *`: a cron pattern has 5 fields (minute hour day month weekday) or 6 (seconds first), not 4"
        );
        assert!(Schedule::parse("61 * * * *").unwrap_err().starts_with("invalid schedule `61 * * * *`: "));
        assert!(Schedule::parse("@reboot").is_err());
        assert!(
            Schedule::parse("@every soon")
                .unwrap_err()
                .starts_with("invalid schedule `@every soon`: invalid duration")
        );
    }

    #[test]
    fn cron_nicknames_and_seconds() {
        let utc = TimeZone::UTC;
        let daily = Schedule::parse("@daily").unwrap();
        assert_eq!(daily.next_after(ts("2024-01-01T10:00:00Z"), &utc), Some(ts("2024-01-02T00:00:00Z")));
        let secs = Schedule::parse("*/5 * * * * *").unwrap();
        assert_eq!(secs.next_after(ts("2024-01-01T10:00:00.500Z"), &utc), Some(ts("2024-01-01T10:00:05Z")));
        assert_eq!(
            secs.upcoming(ts("2024-01-01T10:00:00Z"), &utc, 2),
            vec![ts("2024-01-01T10:00:05Z"), ts("2024-01-01T10:00:10Z")]
        );
    }

    #[test]
    fn jitter_is_stable_bounded_and_spread() {
        let tick = ts("2024-01-01T00:00:00Z");
        let j = Duration::from_secs(120);
        assert_eq!(jitter_for("report", tick, j), jitter_for("report", tick, j));
        assert!(jitter_for("report", tick, j) < j);
        assert_eq!(jitter_for("report", tick, Duration::ZERO), Duration::ZERO);
        let distinct: std::collections::BTreeSet<_> =
            (0..50).map(|i| jitter_for(&format!("job-{i}"), tick, j)).collect();
        assert!(distinct.len() > 40, "jitter should spread jobs: {distinct:?}");
    }
}
