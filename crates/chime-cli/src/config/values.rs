//! Values of the schedule file: durations, time zones, names, and the "did you mean" suggestions
//! for keys and words that are nearly right.

use std::time::Duration;

use jiff::tz::TimeZone;

/// Parses a duration: `30s`, `5m`, `1h30m`, `2 hours`, `1d` (a day is 24 hours), `PT5M`.
///
/// Negative durations and calendar units (months, years) are refused.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration `{text}`: expected a number and a unit (ms, s, m, h, d), e.g. `30s` or `1h30m`"
        )
    };
    let signed = match text.trim().parse::<jiff::SignedDuration>() {
        Ok(d) => d,
        Err(_) => {
            let span: jiff::Span = text.trim().parse().map_err(|_| bad())?;
            span.to_duration(jiff::SpanRelativeTo::days_are_24_hours()).map_err(|_| bad())?
        }
    };
    if signed.is_negative() {
        return Err(format!("invalid duration `{text}`: must not be negative"));
    }
    Duration::try_from(signed).map_err(|_| bad())
}

/// Formats a duration the way [`duration`] reads it back (`1h 30m`, `500ms`, `0s`).
pub(crate) fn format_duration(d: Duration) -> String {
    match jiff::SignedDuration::try_from(d) {
        Ok(signed) => format!("{signed:#}"),
        Err(_) => format!("{}s", d.as_secs()),
    }
}

/// Looks a time zone up in the tz database bundled with the binary (so every replica agrees),
/// suggesting the nearest name when there is none.
pub(crate) fn timezone(name: &str) -> Result<TimeZone, String> {
    if let Ok(tz) = TimeZone::get(name) {
        return Ok(tz);
    }
    let names: Vec<String> = jiff::tz::db().available().map(|n| n.to_string()).collect();
    let mut message = format!("unknown time zone `{name}`");
    if let Some(near) = nearest(name, names.iter().map(String::as_str)) {
        message.push_str(&format!("; did you mean `{near}`?"));
    }
    Err(message)
}

/// Job names are keys in the store, path segments in the API and metric labels: letters, digits,
/// `-`, `_`, `.`, 1 to 128 of them.
pub(crate) fn job_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a job's `name` must not be empty".into());
    }
    if name.len() > 128 {
        return Err(format!("job name `{name}` is longer than 128 characters"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(format!("job name `{name}` may contain only letters, digits, `-`, `_` and `.`"));
    }
    Ok(())
}

/// The candidate nearest to `word`, if one is near enough to be a likely typo.
pub(crate) fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase()), c))
        .filter(|&(distance, c)| distance <= (c.len().max(word.len()) / 3).max(2) && distance < c.len())
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, c)| c)
}

/// One of `choices` (case-sensitive), or a message naming them and the nearest.
pub(crate) fn choice<'a>(what: &str, value: &str, choices: &[&'a str]) -> Result<&'a str, String> {
    if let Some(found) = choices.iter().find(|c| **c == value) {
        return Ok(found);
    }
    let list = choices.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
    let mut message = format!("unknown {what} `{value}`; expected one of {list}");
    if let Some(near) = nearest(value, choices.iter().copied()) {
        message = format!("unknown {what} `{value}`; did you mean `{near}`? (expected one of {list})");
    }
    Err(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("2 hours"), Ok(Duration::from_secs(7200)));
        assert_eq!(duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("PT5M"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("-5s").unwrap_err(), "invalid duration `-5s`: must not be negative");
        assert!(duration("5 fortnights").unwrap_err().starts_with("invalid duration `5 fortnights`"));
        assert!(duration("1 month").is_err(), "calendar units have no fixed length");
        for d in [Duration::ZERO, Duration::from_millis(1500), Duration::from_secs(5400)] {
            assert_eq!(duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(nearest("scheduel", ["name", "schedule", "timezone"]), Some("schedule"));
        assert_eq!(nearest("zzz", ["name", "schedule"]), None);
        assert_eq!(
            timezone("Europe/Berln").unwrap_err(),
            "unknown time zone `Europe/Berln`; did you mean `Europe/Berlin`?"
        );
        assert!(timezone("America/Santiago").is_ok());
        assert_eq!(
            choice("overlap policy", "skp", &["skip", "allow"]).unwrap_err(),
            "unknown overlap policy `skp`; did you mean `skip`? (expected one of `skip`, `allow`)"
        );
    }

    #[test]
    fn names() {
        assert!(job_name("nightly-report.v2_x").is_ok());
        assert_eq!(
            job_name("a b").unwrap_err(),
            "job name `a b` may contain only letters, digits, `-`, `_` and `.`"
        );
        assert!(job_name("").is_err());
    }
}
