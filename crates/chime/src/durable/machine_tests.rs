//! The life of a stored timer, checked transition by transition.

use super::*;

fn rules(member: &str) -> ClaimRules {
    ClaimRules { member: member.into(), lease_ms: 1_000, max_attempts: 3, grace_ms: None }
}

fn run(row: &Row, member: &str, now: i64, fence: u64) -> Row {
    match claim(row, &rules(member), now, fence) {
        Some((Decision::Run, row)) => row,
        other => panic!("expected a grant, got {other:?}"),
    }
}

#[test]
fn a_dead_run_is_claimed_again_after_its_lease_with_the_next_attempt_and_fence() {
    let a = run(&Row::new("k", "h", Vec::new(), 100, None), "a", 150, 1);
    assert_eq!(claim(&a, &rules("b"), 1_149, 2), None, "the lease still holds at 1149");
    let b = run(&a, "b", 1_150, 2);
    assert_eq!((b.attempt, b.fence, b.owner.as_deref(), b.ready_ms), (2, 2, Some("b"), 2_150));
    assert_eq!(renew(&b, "a", 1, 1_000, 1_200), None, "a's run is stale");
    assert_eq!(finish(&b, "a", 1, &Outcome::Fired, 1_200), Finished::Stale);
    let Finished::Done(done) = finish(&b, "b", 2, &Outcome::Fired, 1_300) else { panic!() };
    assert_eq!((done.state, done.owner.as_deref(), done.ready_ms), (State::Fired, None, 1_300));
    assert_eq!(claim(&done, &rules("c"), 9_999, 3), None, "a fired timer never runs again");
}

#[test]
fn failures_retry_until_the_policy_gives_up_and_a_lost_last_attempt_fails_the_timer() {
    let mut row = Row::new("k", "h", Vec::new(), 0, None);
    for attempt in 1..=2u32 {
        let r = run(&row, "a", row.ready_ms, u64::from(attempt));
        let retry = Outcome::Retry { delay_ms: 50, error: format!("e{attempt}") };
        let Finished::Done(next) = finish(&r, "a", u64::from(attempt), &retry, r.ready_ms - 1_000) else {
            panic!()
        };
        assert_eq!((next.state, next.attempt), (State::Pending, attempt));
        row = next;
    }
    // The third and last attempt's scheduler dies: its lease runs out.
    let third = run(&row, "a", row.ready_ms, 3);
    let (decision, failed) = claim(&third, &rules("b"), third.ready_ms, 4).unwrap();
    assert_eq!(
        (decision, failed.state, failed.attempt, failed.fence),
        (Decision::Exhausted, State::Failed, 3, 3)
    );
    assert!(failed.error.unwrap().contains("attempt 3 never finished"));
}

#[test]
fn grace_skips_only_a_late_first_run_and_the_timer_s_own_grace_wins() {
    let strict = ClaimRules { grace_ms: Some(100), ..rules("a") };
    let row = Row::new("k", "h", Vec::new(), 1_000, None);
    assert_eq!(claim(&row, &strict, 1_100, 1).unwrap().0, Decision::Run, "exactly at the grace");
    let (decision, skipped) = claim(&row, &strict, 1_101, 1).unwrap();
    assert_eq!((decision, skipped.state, skipped.fence), (Decision::Skipped, State::Skipped, 0));
    let own = Row { grace_ms: Some(10_000), ..row.clone() };
    assert_eq!(claim(&own, &strict, 5_000, 1).unwrap().0, Decision::Run);
    // A retry is late by its backoff, not skipped.
    let retrying = Row { attempt: 1, ready_ms: 9_000, ..row };
    assert_eq!(claim(&retrying, &strict, 9_000, 1).unwrap().0, Decision::Run);
}

#[test]
fn cancel_stops_what_has_not_run_and_ends_the_run_s_lease() {
    let a = run(&Row::new("k", "h", Vec::new(), 0, None), "a", 0, 1);
    let cancelled = cancel(&a, 10).unwrap();
    assert_eq!(renew(&cancelled, "a", 1, 1_000, 20), None, "the run can no longer renew");
    assert_eq!(finish(&cancelled, "a", 1, &Outcome::Fired, 20), Finished::Already);
    assert_eq!(claim(&cancelled, &rules("b"), 5_000, 2), None);
    let Finished::Done(fired) = finish(&a, "a", 1, &Outcome::Fired, 5) else { panic!() };
    assert_eq!(cancel(&fired, 6), None, "a fired timer cannot be cancelled");
    let failed = Row { state: State::Failed, ..fired };
    assert_eq!(cancel(&failed, 7).unwrap().state, State::Cancelled, "a failed one can: it is then purged");
}

#[test]
fn released_runs_are_claimable_at_once_and_purges_spare_live_and_failed_rows() {
    let a = run(&Row::new("k", "h", Vec::new(), 0, None), "a", 0, 1);
    let Finished::Done(released) = finish(&a, "a", 1, &Outcome::Released, 40) else { panic!() };
    assert_eq!((released.state, released.ready_ms, released.attempt), (State::Pending, 40, 0));
    let again = run(&released, "b", 40, 2);
    assert_eq!((again.attempt, again.fence), (1, 2), "not an attempt, but a new fence");
    for state in State::ALL {
        let row = Row { state, ready_ms: 0, ..released.clone() };
        assert_eq!(is_purged(&row, 1), matches!(state, State::Fired | State::Cancelled | State::Skipped));
    }
}
