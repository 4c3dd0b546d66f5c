//! Which tick is due and which comes next, free of I/O: from a job's schedule, its jitter and the
//! wall clock. The engine arms a timer for the next fire time and, when it fires (or at start), asks
//! [`plan`] what to do now: ticks that came and went while nothing ran are counted as missed, and
//! only the latest due tick is considered, on time or late within the missed-policy's grace.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::job::{JobSpec, MissedPolicy};
use crate::schedule::jitter_for;

/// How late a tick may start and still count as on time.
pub(crate) const ON_TIME: Duration = Duration::from_secs(2);

/// The most ticks counted one by one between two fires (beyond, the count is capped).
const MAX_COUNTED: u64 = 10_000;

/// A tick and the instant it fires (the nominal tick plus its jitter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tick {
    pub(crate) nominal: Timestamp,
    pub(crate) fire: Timestamp,
}

impl Tick {
    pub(crate) fn of(spec: &JobSpec, nominal: Timestamp) -> Tick {
        let jitter = jitter_for(&spec.name, nominal, spec.jitter);
        let fire =
            nominal.checked_add(SignedDuration::try_from(jitter).unwrap_or_default()).unwrap_or(nominal);
        Tick { nominal, fire }
    }

    /// The claim's tick number: the nominal instant in milliseconds, times 1000, leaving room for
    /// up to 999 manual runs between two scheduled ticks (see `claim::manual_tick`).
    pub(crate) fn key(&self) -> u64 {
        key_of(self.nominal)
    }
}

pub(crate) fn key_of(nominal: Timestamp) -> u64 {
    (nominal.as_millisecond().max(0) as u64).saturating_mul(1000)
}

/// What to do at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The latest tick whose fire time has passed (`None`: none yet).
    pub(crate) due: Option<Tick>,
    /// The first tick whose fire time is still ahead.
    pub(crate) next: Option<Tick>,
}

/// The latest due tick and the next one at `now`.
pub(crate) fn plan(spec: &JobSpec, now: Timestamp) -> Plan {
    let latest = spec.schedule.latest_at_or_before(now, &spec.timezone).map(|t| Tick::of(spec, t));
    match latest {
        // Its jitter has not run out yet: it is the next one, and the one before it is due.
        Some(tick) if tick.fire > now => {
            let before = now_minus_ms(tick.nominal)
                .and_then(|t| spec.schedule.latest_at_or_before(t, &spec.timezone))
                .map(|t| Tick::of(spec, t))
                .filter(|t| t.fire <= now);
            Plan { due: before, next: Some(tick) }
        }
        Some(tick) => {
            let next = spec.schedule.next_after(tick.nominal, &spec.timezone).map(|t| Tick::of(spec, t));
            Plan { due: Some(tick), next }
        }
        None => {
            Plan { due: None, next: spec.schedule.next_after(now, &spec.timezone).map(|t| Tick::of(spec, t)) }
        }
    }
}

fn now_minus_ms(t: Timestamp) -> Option<Timestamp> {
    t.checked_sub(SignedDuration::from_millis(1)).ok()
}

/// Ticks strictly between `from` and `to` (capped): the ones nothing ran.
pub(crate) fn ticks_between(spec: &JobSpec, from: Timestamp, to: Timestamp) -> u64 {
    let mut count = 0;
    let mut at = from;
    while count < MAX_COUNTED {
        match spec.schedule.next_after(at, &spec.timezone) {
            Some(t) if t < to => {
                count += 1;
                at = t;
            }
            _ => break,
        }
    }
    count
}

/// Whether a due tick still runs at `now`: on time, or late within the grace of `missed = once`.
/// A tick older than when the job was first seen is never caught up.
pub(crate) fn runs_late(spec: &JobSpec, tick: Tick, now: Timestamp, seen_ms: Option<i64>) -> bool {
    let late = now.duration_since(tick.fire);
    if late <= SignedDuration::try_from(ON_TIME).unwrap_or_default() {
        return true;
    }
    if seen_ms.is_some_and(|seen| tick.nominal.as_millisecond() < seen) {
        return false;
    }
    spec.missed == MissedPolicy::Once
        && now.duration_since(tick.nominal) <= SignedDuration::try_from(spec.grace).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Defaults;

    fn spec(schedule: &str, jitter: Duration) -> JobSpec {
        let body = serde_json::json!({"schedule": schedule, "command": "true", "jitter": crate::config::values::format_duration(jitter)});
        crate::config::api_job("j", &body, &Defaults::default()).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn due_and_next_without_jitter() {
        let s = spec("@every 1m", Duration::ZERO);
        let p = plan(&s, ts("2024-01-01T00:01:30Z"));
        assert_eq!(p.due.map(|t| t.nominal), Some(ts("2024-01-01T00:01:00Z")));
        assert_eq!(p.next.map(|t| t.fire), Some(ts("2024-01-01T00:02:00Z")));
        // Exactly at a tick: it is due.
        let p = plan(&s, ts("2024-01-01T00:02:00Z"));
        assert_eq!(p.due.map(|t| t.nominal), Some(ts("2024-01-01T00:02:00Z")));
    }

    #[test]
    fn jitter_delays_the_fire_not_the_tick() {
        let s = spec("@every 1m", Duration::from_secs(50));
        let tick = Tick::of(&s, ts("2024-01-01T00:01:00Z"));
        assert!(tick.fire > tick.nominal);
        let just_before = tick.fire.checked_sub(SignedDuration::from_millis(1)).unwrap();
        let p = plan(&s, just_before);
        assert_eq!(p.next, Some(tick), "not fired yet: it is next");
        assert_eq!(p.due.map(|t| t.nominal), Some(ts("2024-01-01T00:00:00Z")));
        assert_eq!(plan(&s, tick.fire).due, Some(tick));
        assert_eq!(tick.key(), ts("2024-01-01T00:01:00Z").as_millisecond() as u64 * 1000);
    }

    #[test]
    fn lateness_and_the_missed_policy() {
        let mut s = spec("@every 1m", Duration::ZERO);
        let tick = Tick::of(&s, ts("2024-01-01T00:01:00Z"));
        assert!(runs_late(&s, tick, ts("2024-01-01T00:01:01Z"), None), "on time");
        assert!(runs_late(&s, tick, ts("2024-01-01T00:05:00Z"), None), "late within the 5m grace");
        assert!(!runs_late(&s, tick, ts("2024-01-01T00:06:01Z"), None), "past the grace");
        assert!(
            !runs_late(
                &s,
                tick,
                ts("2024-01-01T00:05:00Z"),
                Some(ts("2024-01-01T00:04:00Z").as_millisecond())
            ),
            "before the job existed"
        );
        s.missed = MissedPolicy::Skip;
        assert!(!runs_late(&s, tick, ts("2024-01-01T00:01:30Z"), None));
        assert_eq!(ticks_between(&s, ts("2024-01-01T00:01:00Z"), ts("2024-01-01T00:05:00Z")), 3);
    }
}
