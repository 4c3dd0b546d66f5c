//! Knot Resolver's id API, with its documented flaw fixed: ids are never reused.

mod common;

use chime::{Error, Fire, Scheduler};
use common::{Log, ms, ms_since};
use std::collections::HashSet;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_stale_id_never_reaches_a_newer_timer() {
    let sched = Scheduler::start();
    let log = Log::new();
    let old = sched.after(ms(5), |_| {}).unwrap();
    sched.sleep(ms(5)).await;
    let seen = log.clone();
    let new = sched.after(ms(50), move |_: &Fire| seen.push("new ran")).unwrap();
    assert_ne!(old, new);
    assert_eq!(sched.cancel(old), Err(Error::NotFound));
    assert_eq!(sched.reschedule(old, ms(1)), Err(Error::NotFound));
    sched.sleep(ms(50)).await;
    assert_eq!(log.get(), vec!["new ran"], "the new timer was untouched by the stale id");
}

#[tokio::test(start_paused = true)]
async fn ids_stay_unique_through_heavy_reuse() {
    let sched = Scheduler::start();
    let mut seen = HashSet::new();
    for _ in 0..10_000 {
        let id = sched.after(ms(1), |_| {}).unwrap();
        assert!(seen.insert(id), "id {id:?} was handed out twice");
        sched.cancel(id).unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn reschedule_from_inside_a_one_shot_rearms_it() {
    // Knot's example: halve the interval at each run.
    let sched = Scheduler::start();
    let start = Instant::now();
    let log = Log::new();
    let (inner, seen) = (sched.clone(), log.clone());
    let mut interval = ms(8000);
    let id = sched
        .after(ms(8000), move |f: &Fire| {
            seen.push((ms_since(start, Instant::now()), f.count()));
            interval /= 2;
            if interval >= ms(1000) {
                inner.reschedule(f.id(), interval).unwrap();
            }
        })
        .unwrap();
    sched.sleep(ms(20_000)).await;
    assert_eq!(log.get(), vec![(8000, 1), (12_000, 2), (14_000, 3), (15_000, 4)]);
    assert_eq!(sched.cancel(id), Err(Error::NotFound), "after its last run the id is gone");
}

#[tokio::test(start_paused = true)]
async fn reschedule_keeps_a_recurring_interval_from_the_new_run() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let log = Log::new();
    let seen = log.clone();
    let every = sched.recurrent(ms(5000), move |f: &Fire| seen.push(ms_since(start, f.scheduled()))).unwrap();
    sched.sleep(ms(2000)).await;
    sched.reschedule(every, ms(1000)).unwrap();
    sched.sleep(ms(10_000)).await;
    assert_eq!(log.get(), vec![3000, 8000]);
}

#[tokio::test(start_paused = true)]
async fn cancel_and_reschedule_on_ids_from_other_threads() {
    let sched = Scheduler::start();
    let log = Log::new();
    let seen = log.clone();
    let id = sched.after(ms(100), move |_: &Fire| seen.push("ran")).unwrap();
    let other = sched.clone();
    std::thread::spawn(move || other.reschedule(id, ms(1000))).join().unwrap().unwrap();
    sched.sleep(ms(200)).await;
    assert!(log.get().is_empty(), "moved to 1 s from another thread");
    let other = sched.clone();
    std::thread::spawn(move || other.cancel(id)).join().unwrap().unwrap();
    sched.sleep(ms(1000)).await;
    assert!(log.get().is_empty());
}
