//! One test per ground rule's pure part: the transitions of `state.rs`, on a bare shard's timers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::record::{Extras, Grid, Owned, Plan, Timers};

/// A record whose callback counts its calls in `calls`.
fn record(calls: &Arc<AtomicU64>, extras: Option<Extras>) -> Record {
    let calls = calls.clone();
    Record {
        expire: Box::new(move |_: &Fire| {
            calls.fetch_add(1, Ordering::SeqCst);
        }),
        extras: extras.map(Box::new),
    }
}

fn recurring(interval: u64, anchor: u64) -> Extras {
    Extras {
        plan: Plan { interval, recurring: true, ..Plan::default() },
        grid: Some(Grid { anchor, k: 0, off_grid: false }),
        ..Extras::default()
    }
}

fn one_shot() -> Extras {
    Extras { plan: Plan { interval: 10, ..Plan::default() }, ..Extras::default() }
}

fn fire() -> Fire {
    Fire {
        id: crate::id::TimerId { shard: 0, key: Key { index: 0, generation: 0 } },
        count: 1,
        missed: 0,
        scheduled: tokio::time::Instant::now(),
        fence: None,
        tick: None,
    }
}

fn state_of(timers: &Timers, key: Key) -> RunState {
    timers.extras(key).map(|e| e.state).expect("a record with extras")
}

/// Lends the run due at `now` of the only entry of `timers`.
fn lend_due(timers: &mut Timers, now: u64) -> (Key, Lent) {
    let key = timers.poll(now).expect("an entry is due");
    let lent = lend(timers, key, now).expect("the entry is there");
    (key, lent)
}

#[test]
fn rule_1_lending_takes_the_callback_counts_the_run_and_folds_skipped_ticks() {
    let calls = Arc::new(AtomicU64::new(0));
    let mut timers = Timers::default();
    timers.insert(100, record(&calls, Some(recurring(100, 100))));
    // Due at 100, found at 350 under Missed::Skip: one run, for tick 300, two ticks skipped.
    let (key, mut lent) = lend_due(&mut timers, 350);
    assert_eq!((lent.deadline, lent.count, lent.missed), (300, 1, 2));
    assert_eq!(state_of(&timers, key), RunState::Lent);
    assert_eq!(timers.deadline(key), None, "a lent entry has no deadline");
    lent.expire.call(&fire());
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the lent callback is the user's");
    timers.get_mut(key).unwrap().expire.call(&fire());
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the record holds a placeholder meanwhile");
}

#[test]
fn rule_2_a_lent_run_starts_when_nothing_changed() {
    let calls = Arc::new(AtomicU64::new(0));
    let mut timers = Timers::default();
    timers.insert(10, record(&calls, Some(one_shot())));
    let (key, lent) = lend_due(&mut timers, 10);
    assert!(matches!(start(&mut timers, key, lent.expire, lent.missed), Start::Run(_)));
    assert_eq!(state_of(&timers, key), RunState::Running);
}

#[test]
fn rule_2_a_lent_run_of_a_cancelled_timer_does_not_start() {
    let calls = Arc::new(AtomicU64::new(0));
    let mut timers = Timers::default();
    timers.insert(10, record(&calls, None));
    let (key, lent) = lend_due(&mut timers, 10);
    drop(timers.remove(key));
    assert!(matches!(start(&mut timers, key, lent.expire, lent.missed), Start::Cancelled(_)));
}

#[test]
fn rule_2_a_lent_run_of_a_rearmed_timer_goes_back_whole() {
    let calls = Arc::new(AtomicU64::new(0));
    let mut timers = Timers::default();
    timers.insert(100, record(&calls, Some(recurring(100, 100))));
    let (key, lent) = lend_due(&mut timers, 350);
    timers.rearm(key, 1_000); // rule 5: re-armed while lent
    assert!(matches!(start(&mut timers, key, lent.expire, lent.missed), Start::Rearmed));
    let extras = timers.extras(key).unwrap();
    assert_eq!((extras.count, extras.missed, extras.state), (0, 2, RunState::Idle), "the loan is undone");
    timers.get_mut(key).unwrap().expire.call(&fire());
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the user's callback is back in the record");
}

/// Lends and starts the run due at `now`; returns the key and the callback in hand.
fn running(timers: &mut Timers, now: u64) -> (Key, ExpireFn) {
    let (key, lent) = lend_due(timers, now);
    match start(timers, key, lent.expire, lent.missed) {
        Start::Run(expire) => (key, expire),
        _ => panic!("the run should start"),
    }
}

#[test]
fn rule_3_a_recurring_timer_takes_its_next_grid_deadline() {
    let calls = Arc::new(AtomicU64::new(0));
    let mut timers = Timers::default();
    timers.insert(100, record(&calls, Some(recurring(100, 100))));
    let (key, expire) = running(&mut timers, 100);
    assert!(matches!(finish(&mut timers, key, expire, false, 130), Finished::Kept));
    assert_eq!(timers.deadline(key), Some(200), "drift-free: the grid, not the end of the run");
    assert_eq!(state_of(&timers, key), RunState::Idle);
}

#[test]
fn rule_3_a_timer_rearmed_during_its_run_keeps_the_new_deadline() {
    let calls = Arc::new(AtomicU64::new(0));
    let mut timers = Timers::default();
    timers.insert(100, record(&calls, Some(recurring(100, 100))));
    let (key, expire) = running(&mut timers, 100);
    timers.rearm(key, 150);
    assert!(matches!(finish(&mut timers, key, expire, false, 110), Finished::Kept));
    assert_eq!(timers.deadline(key), Some(150));
}

#[test]
fn rule_3_a_timer_cancelled_during_its_run_leaves_an_orphan() {
    let calls = Arc::new(AtomicU64::new(0));
    let mut timers = Timers::default();
    timers.insert(10, record(&calls, Some(one_shot())));
    let (key, expire) = running(&mut timers, 10);
    drop(timers.remove(key));
    assert!(matches!(finish(&mut timers, key, expire, false, 10), Finished::Orphan(_)));
}

#[test]
fn rule_3_a_panic_under_cancel_on_panic_removes_the_timer() {
    let calls = Arc::new(AtomicU64::new(0));
    let mut timers = Timers::default();
    timers.insert(100, record(&calls, Some(Extras { cancel_on_panic: true, ..recurring(100, 100) })));
    let (key, expire) = running(&mut timers, 100);
    assert!(matches!(finish(&mut timers, key, expire, true, 100), Finished::Cancelled(_)));
    assert!(!timers.contains(key));
}

#[test]
fn rule_3_an_owned_one_shot_stays_idle_and_a_detached_one_goes() {
    let calls = Arc::new(AtomicU64::new(0));
    let mut timers = Timers::default();
    let owned = timers.insert(10, record(&calls, Some(Extras { owned: true, ..one_shot() })));
    let (key, expire) = running(&mut timers, 10);
    assert_eq!(key, owned);
    assert!(matches!(finish(&mut timers, key, expire, false, 10), Finished::Kept));
    assert_eq!((timers.deadline(key), state_of(&timers, key)), (None, RunState::Idle));
    timers.insert(20, record(&calls, None));
    let (plain, expire) = running(&mut timers, 20);
    assert!(matches!(finish(&mut timers, plain, expire, false, 20), Finished::Removed(_)));
}

#[test]
fn rule_1_an_owned_one_shot_without_extras_gets_them_when_lent() {
    let calls = Arc::new(AtomicU64::new(0));
    let seen = calls.clone();
    let mut timers = Timers::default();
    let expire = Owned(move |_: &Fire| {
        seen.fetch_add(1, Ordering::SeqCst);
    });
    timers.insert(10, Record { expire: Box::new(expire), extras: None });
    let (key, expire) = running(&mut timers, 10);
    let extras = timers.extras(key).expect("made when lent");
    assert_eq!((extras.owned, extras.count, extras.state), (true, 1, RunState::Running));
    assert!(matches!(finish(&mut timers, key, expire, false, 10), Finished::Kept), "owned: it stays");
    timers.get_mut(key).unwrap().expire.call(&fire());
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the marked callback is back in the record");
}

#[test]
fn rule_4_a_cancel_counts_as_pending_only_while_a_run_is_to_come() {
    let calls = Arc::new(AtomicU64::new(0));
    let mut timers = Timers::default();
    let armed = timers.insert(50, record(&calls, Some(one_shot())));
    assert!(matches!(cancel(&mut timers, armed), Some((_, true))), "armed");
    timers.insert(10, record(&calls, Some(one_shot())));
    let (lent, _callback) = lend_due(&mut timers, 10);
    assert!(matches!(cancel(&mut timers, lent), Some((_, true))), "lent: the run is still to come");
    timers.insert(20, record(&calls, Some(one_shot())));
    let (one_shot_running, _callback) = running(&mut timers, 20);
    assert!(matches!(cancel(&mut timers, one_shot_running), Some((_, false))), "its only run started");
    timers.insert(30, record(&calls, Some(recurring(100, 30))));
    let (recurring_running, _callback) = running(&mut timers, 30);
    assert!(matches!(cancel(&mut timers, recurring_running), Some((_, true))), "more runs to come");
    assert!(cancel(&mut timers, armed).is_none(), "gone is gone");
}
