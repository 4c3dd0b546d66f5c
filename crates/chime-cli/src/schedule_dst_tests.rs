//! The DST table: fixed-time and wildcard jobs across the spring and autumn changes of 2024 in
//! New York, Berlin, Lord Howe (a 30-minute shift), Cairo (a gap at midnight) and Santiago (changes
//! at midnight), each as Vixie cron runs it, and never twice for one nominal tick.

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// (zone, pattern, search from (UTC), the expected next runs with their local offsets, why)
const TABLE: &[(&str, &str, &str, &[&str], &str)] = &[
    // New York: 2024-03-10 02:00 EST -> 03:00 EDT; 2024-11-03 02:00 EDT -> 01:00 EST.
    (
        "America/New_York",
        "30 2 * * *",
        "2024-03-09T12:00:00Z",
        &["2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"],
        "fixed time in the gap: once, at its end",
    ),
    (
        "America/New_York",
        "*/30 * * * *",
        "2024-03-10T06:00:00Z",
        &["2024-03-10T01:30:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T03:30:00-04:00"],
        "wildcard: the gap's times are skipped",
    ),
    (
        "America/New_York",
        "30 1 * * *",
        "2024-11-02T12:00:00Z",
        &["2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"],
        "fixed time in the fold: once, the first time",
    ),
    (
        "America/New_York",
        "*/30 * * * *",
        "2024-11-03T04:45:00Z",
        &[
            "2024-11-03T01:00:00-04:00",
            "2024-11-03T01:30:00-04:00",
            "2024-11-03T01:00:00-05:00",
            "2024-11-03T01:30:00-05:00",
            "2024-11-03T02:00:00-05:00",
        ],
        "wildcard: both halves of the fold",
    ),
    // Berlin: 2024-03-31 02:00 CET -> 03:00 CEST; 2024-10-27 03:00 CEST -> 02:00 CET.
    (
        "Europe/Berlin",
        "30 2 * * *",
        "2024-03-30T12:00:00Z",
        &["2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"],
        "fixed time in the gap: once, at its end",
    ),
    (
        "Europe/Berlin",
        "15 * * * *",
        "2024-03-31T00:30:00Z",
        &["2024-03-31T03:15:00+02:00", "2024-03-31T04:15:00+02:00"],
        "every hour at :15: 02:15 does not exist",
    ),
    (
        "Europe/Berlin",
        "30 2 * * *",
        "2024-10-26T12:00:00Z",
        &["2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"],
        "fixed time in the fold: once",
    ),
    (
        "Europe/Berlin",
        "15 * * * *",
        "2024-10-26T23:30:00Z",
        &["2024-10-27T02:15:00+02:00", "2024-10-27T02:15:00+01:00", "2024-10-27T03:15:00+01:00"],
        "hourly: both 02:15s",
    ),
    // Lord Howe: 2024-10-06 02:00 -> 02:30 (+10:30 -> +11); 2024-04-07 02:00 -> 01:30 (+11 -> +10:30).
    (
        "Australia/Lord_Howe",
        "15 2 * * *",
        "2024-10-05T12:00:00Z",
        &["2024-10-06T02:30:00+11:00", "2024-10-07T02:15:00+11:00"],
        "fixed time in a 30-minute gap: at its end",
    ),
    (
        "Australia/Lord_Howe",
        "*/15 * * * *",
        "2024-10-05T15:20:00Z",
        &["2024-10-06T02:30:00+11:00", "2024-10-06T02:45:00+11:00"],
        "wildcard: 02:00 and 02:15 do not exist",
    ),
    (
        "Australia/Lord_Howe",
        "45 1 * * *",
        "2024-04-06T12:00:00Z",
        &["2024-04-07T01:45:00+11:00", "2024-04-08T01:45:00+10:30"],
        "fixed time in a 30-minute fold: once",
    ),
    (
        "Australia/Lord_Howe",
        "*/15 * * * *",
        "2024-04-06T14:20:00Z",
        &[
            "2024-04-07T01:30:00+11:00",
            "2024-04-07T01:45:00+11:00",
            "2024-04-07T01:30:00+10:30",
            "2024-04-07T01:45:00+10:30",
            "2024-04-07T02:00:00+10:30",
        ],
        "wildcard: both halves of the fold",
    ),
    // Cairo: 2024-04-26 00:00 -> 01:00 (+02 -> +03); 2024-10-31 24:00 -> 23:00 (+03 -> +02).
    (
        "Africa/Cairo",
        "0 0 * * *",
        "2024-04-24T12:00:00Z",
        &["2024-04-25T00:00:00+02:00", "2024-04-26T01:00:00+03:00", "2024-04-27T00:00:00+03:00"],
        "midnight does not exist: at 01:00",
    ),
    (
        "Africa/Cairo",
        "30 23 * * *",
        "2024-10-30T12:00:00Z",
        &["2024-10-30T23:30:00+03:00", "2024-10-31T23:30:00+03:00", "2024-11-01T23:30:00+02:00"],
        "fixed time in the fold: once",
    ),
    (
        "Africa/Cairo",
        "*/30 * * * *",
        "2024-10-31T19:45:00Z",
        &[
            "2024-10-31T23:00:00+03:00",
            "2024-10-31T23:30:00+03:00",
            "2024-10-31T23:00:00+02:00",
            "2024-10-31T23:30:00+02:00",
            "2024-11-01T00:00:00+02:00",
        ],
        "wildcard: both halves of the fold",
    ),
    // Santiago: 2024-09-08 00:00 -> 01:00 (-04 -> -03); 2024-04-07 00:00 -> 2024-04-06 23:00 (-03 -> -04).
    (
        "America/Santiago",
        "0 0 * * *",
        "2024-09-06T12:00:00Z",
        &["2024-09-07T00:00:00-04:00", "2024-09-08T01:00:00-03:00", "2024-09-09T00:00:00-03:00"],
        "midnight does not exist: at 01:00",
    ),
    (
        "America/Santiago",
        "*/30 * * * *",
        "2024-09-08T03:15:00Z",
        &["2024-09-07T23:30:00-04:00", "2024-09-08T01:00:00-03:00", "2024-09-08T01:30:00-03:00"],
        "wildcard: the gap is skipped",
    ),
    (
        "America/Santiago",
        "30 23 * * *",
        "2024-04-05T12:00:00Z",
        &["2024-04-05T23:30:00-03:00", "2024-04-06T23:30:00-03:00", "2024-04-07T23:30:00-04:00"],
        "fixed time in the fold: once",
    ),
    (
        "America/Santiago",
        "*/30 * * * *",
        "2024-04-07T01:45:00Z",
        &[
            "2024-04-06T23:00:00-03:00",
            "2024-04-06T23:30:00-03:00",
            "2024-04-06T23:00:00-04:00",
            "2024-04-06T23:30:00-04:00",
            "2024-04-07T00:00:00-04:00",
        ],
        "wildcard: both halves of the fold",
    ),
];

#[test]
fn the_dst_table() {
    let mut failures = Vec::new();
    for (zone, pattern, from, expected, why) in TABLE {
        let tz = TimeZone::get(zone).unwrap();
        let schedule = Schedule::parse(pattern).unwrap();
        let got = schedule.upcoming(ts(from), &tz, expected.len());
        let want: Vec<Timestamp> = expected.iter().map(|s| ts(s)).collect();
        if got != want {
            let local: Vec<String> =
                got.iter().map(|t| t.to_zoned(tz.clone()).strftime("%FT%T%:z").to_string()).collect();
            failures
                .push(format!("{zone} `{pattern}` from {from} ({why}): got {local:?}, want {expected:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Over all of 2024 in every zone of the table: ticks strictly increase (no nominal tick twice),
/// a daily fixed-time job runs exactly once per local date, and an hourly wildcard job runs once per
/// real hour (23 on the spring day, 25 on the autumn day where the shift is a whole hour).
#[test]
fn never_twice_per_tick_over_a_year() {
    let zones =
        ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Africa/Cairo", "America/Santiago"];
    for zone in zones {
        let tz = TimeZone::get(zone).unwrap();
        let start = ts("2024-01-01T00:00:00Z").to_zoned(tz.clone()).start_of_day().unwrap().timestamp();
        let end = ts("2025-01-01T00:00:00Z").to_zoned(tz.clone()).start_of_day().unwrap().timestamp();
        for pattern in ["30 2 * * *", "0 0 * * *", "30 23 * * *", "45 1 * * *"] {
            let schedule = Schedule::parse(pattern).unwrap();
            let mut dates = std::collections::BTreeMap::new();
            let mut previous = start;
            // From just before the first midnight, so a midnight job's first run is counted.
            let mut at = start - jiff::SignedDuration::from_secs(1);
            while let Some(next) = schedule.next_after(at, &tz).filter(|t| *t < end) {
                assert!(next > previous || previous == start, "{zone} `{pattern}`: {next} after {previous}");
                *dates.entry(next.to_zoned(tz.clone()).date()).or_insert(0) += 1;
                previous = next;
                at = next;
            }
            assert_eq!(dates.len(), 366, "{zone} `{pattern}`: one run for every date of 2024");
            assert!(dates.values().all(|&n| n == 1), "{zone} `{pattern}`: a date ran twice");
        }
        let hourly = Schedule::parse("0 * * * *").unwrap();
        let mut at = start;
        let mut count = 0;
        let mut previous: Option<Timestamp> = None;
        // Where a half-hour shift removes or repeats no whole hour, :00 is 90 minutes from the last.
        let max_gap = if zone == "Australia/Lord_Howe" { 90 } else { 60 };
        while let Some(next) = hourly.next_after(at, &tz).filter(|t| *t < end) {
            if let Some(p) = previous {
                assert!(next > p, "{zone} hourly: {next} not after {p}");
                assert!(
                    next.duration_since(p) <= jiff::SignedDuration::from_mins(max_gap),
                    "{zone}: a gap at {next}"
                );
            }
            previous = Some(next);
            at = next;
            count += 1;
        }
        // 8784 hours in 2024 (leap year) minus the first tick at midnight; Lord Howe's half-hour
        // shifts keep every real hour (the job runs at :00 only where :00 exists).
        assert!((8780..=8784).contains(&count), "{zone}: {count} hourly runs in 2024");
    }
}
