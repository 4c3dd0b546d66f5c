//! The `Timer` handle: re-arming, cancelling, dropping, detaching, and what it reports.

mod common;

use chime::{CancelReason, Error, Fire, Scheduler};
use common::{Log, ms, ms_since};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn arm_restarts_an_armed_timer_running_the_arm_callback_not_the_cancel_one() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let (arms, cancels, runs) = (Log::new(), Log::new(), Log::new());
    let (a, c, r) = (arms.clone(), cancels.clone(), runs.clone());
    let timer = sched
        .timer(ms(100))
        .recurring()
        .on_arm(move || a.push(ms_since(start, Instant::now())))
        .on_expire(move |f: &Fire| r.push(ms_since(start, f.scheduled())))
        .on_cancel(move |reason| c.push(reason))
        .arm()
        .unwrap();
    sched.sleep(ms(150)).await;
    timer.arm(ms(40)).unwrap();
    assert_eq!(timer.interval(), ms(40));
    sched.sleep(ms(100)).await;
    assert_eq!(arms.get(), vec![0, 150]);
    assert_eq!(runs.get(), vec![100, 190, 230], "restarted from 150 with the new interval");
    assert!(cancels.get().is_empty(), "re-arming is not cancelling");
    drop(timer);
    assert_eq!(cancels.get(), vec![CancelReason::Dropped]);
}

#[tokio::test(start_paused = true)]
async fn a_fired_one_shot_can_be_armed_again_but_a_cancelled_one_cannot() {
    let sched = Scheduler::start();
    let count = Arc::new(AtomicU32::new(0));
    let seen = count.clone();
    let timer = sched
        .timer(ms(10))
        .on_expire(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        })
        .arm()
        .unwrap();
    sched.sleep(ms(10)).await;
    assert_eq!((count.load(Ordering::SeqCst), timer.count(), timer.is_armed()), (1, 1, false));
    assert_eq!(timer.remaining(), None);
    timer.arm(ms(20)).unwrap();
    assert_eq!(timer.remaining(), Some(ms(20)));
    sched.sleep(ms(20)).await;
    assert_eq!((count.load(Ordering::SeqCst), timer.count()), (2, 2));
    timer.cancel().unwrap();
    assert!(timer.is_cancelled());
    assert_eq!(timer.arm(ms(5)), Err(Error::AlreadyCancelled));
    assert_eq!(timer.cancel(), Err(Error::AlreadyCancelled));
}

#[tokio::test(start_paused = true)]
async fn the_cancel_callback_runs_once_and_only_when_a_run_was_to_come() {
    let sched = Scheduler::start();
    let log = Log::new();
    let seen = log.clone();
    let pending =
        sched.timer(ms(10)).on_expire(|_| {}).on_cancel(move |r| seen.push(("pending", r))).arm().unwrap();
    pending.cancel().unwrap();
    assert_eq!(pending.cancel(), Err(Error::AlreadyCancelled));
    let seen = log.clone();
    let done =
        sched.timer(ms(10)).on_expire(|_| {}).on_cancel(move |r| seen.push(("done", r))).arm().unwrap();
    sched.sleep(ms(10)).await;
    done.cancel().unwrap();
    assert_eq!(log.get(), vec![("pending", CancelReason::User)], "a one-shot that ran has nothing to cancel");
}

#[tokio::test(start_paused = true)]
async fn dropping_cancels_and_detaching_keeps_running() {
    let sched = Scheduler::start();
    let (log, runs) = (Log::new(), Arc::new(AtomicU32::new(0)));
    let seen = log.clone();
    let dropped =
        sched.timer(ms(10)).recurring().on_expire(|_| {}).on_cancel(move |r| seen.push(r)).arm().unwrap();
    drop(dropped);
    assert_eq!(log.get(), vec![CancelReason::Dropped]);

    let (seen, counter) = (log.clone(), runs.clone());
    let kept = sched
        .timer(ms(10))
        .recurring()
        .on_expire(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .on_cancel(move |r| seen.push(r))
        .arm()
        .unwrap();
    let id = kept.detach();
    sched.sleep(ms(35)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 3, "a detached timer runs without its handle");
    sched.cancel(id).unwrap();
    assert_eq!(log.get(), vec![CancelReason::Dropped, CancelReason::User]);
}

#[tokio::test(start_paused = true)]
async fn detaching_a_one_shot_that_ran_releases_it() {
    let sched = Scheduler::start();
    let timer = sched.timer(ms(10)).on_expire(|_| {}).arm().unwrap();
    sched.sleep(ms(10)).await;
    assert_eq!(sched.pending(), 1, "the idle one-shot waits for its handle");
    let id = timer.detach();
    assert_eq!(sched.pending(), 0);
    assert_eq!(sched.cancel(id), Err(Error::NotFound));
}

#[tokio::test(start_paused = true)]
async fn cancelling_from_inside_its_own_callback_stops_it_cleanly() {
    let sched = Scheduler::start();
    let (runs, cancels) = (Log::new(), Log::new());
    let (inner, r, c) = (sched.clone(), runs.clone(), cancels.clone());
    sched
        .timer(ms(10))
        .recurring()
        .on_expire(move |f: &Fire| {
            r.push(f.count());
            if f.count() == 3 {
                assert_eq!(inner.cancel(f.id()), Ok(()));
                assert_eq!(inner.cancel(f.id()), Err(Error::NotFound));
            }
        })
        .on_cancel(move |reason| c.push(reason))
        .arm_detached()
        .unwrap();
    sched.sleep(ms(100)).await;
    assert_eq!(runs.get(), vec![1, 2, 3]);
    assert_eq!(cancels.get(), vec![CancelReason::User]);
    assert_eq!(sched.pending(), 0);
}

#[tokio::test(start_paused = true)]
async fn rearming_from_inside_its_own_callback_wins_over_the_grid() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let runs = Log::new();
    let (inner, r) = (sched.clone(), runs.clone());
    sched
        .timer(ms(100))
        .recurring()
        .on_expire(move |f: &Fire| {
            r.push(ms_since(start, f.scheduled()));
            if f.count() == 1 {
                inner.reschedule(f.id(), ms(30)).unwrap();
            }
        })
        .arm_detached()
        .unwrap();
    sched.sleep(ms(300)).await;
    assert_eq!(runs.get(), vec![100, 130, 230], "rescheduled to 130, then every 100 ms from there");
}

#[tokio::test(start_paused = true)]
async fn queries_report_the_schedule() {
    let sched = Scheduler::start();
    let timer = sched.timer(ms(100)).recurring().first(ms(250)).on_expire(|_| {}).arm().unwrap();
    assert_eq!((timer.remaining(), timer.interval(), timer.count()), (Some(ms(250)), ms(100), 0));
    sched.sleep(ms(260)).await;
    assert_eq!((timer.remaining(), timer.count(), timer.is_armed()), (Some(ms(90)), 1, true));
}

/// Two timers due together: the first one's callback cancels, or reschedules, the second, whose
/// callback the driver had already taken for the same pass. It must not run.
#[tokio::test(start_paused = true)]
async fn a_timer_cancelled_or_rescheduled_by_an_earlier_callback_of_the_same_pass_does_not_run() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let log = Log::new();
    let (seen, cancels) = (log.clone(), log.clone());
    let b = sched
        .timer(ms(10))
        .recurring()
        .on_expire(move |f: &Fire| seen.push(format!("b ran at {}", ms_since(start, f.scheduled()))))
        .on_cancel(move |reason| cancels.push(format!("b cancelled: {reason:?}")))
        .arm_detached()
        .unwrap();
    let (inner, seen) = (sched.clone(), log.clone());
    // One nanosecond earlier than b: it runs first in the pass that has already taken b's callback.
    sched
        .after(ms(10) - std::time::Duration::from_nanos(1), move |_: &Fire| {
            seen.push("a ran".to_string());
            inner.cancel(b).unwrap();
        })
        .unwrap();
    sched.sleep(ms(15)).await;
    assert_eq!(log.take(), vec!["a ran", "b cancelled: User"], "b never ran");

    let (seen, c_log) = (log.clone(), log.clone());
    let c = sched
        .after(ms(10), move |f: &Fire| c_log.push(format!("c ran at {}", ms_since(start, f.scheduled()))))
        .unwrap();
    let d = sched.after(ms(10), move |_: &Fire| seen.push("d ran".to_string())).unwrap();
    let (inner, seen) = (sched.clone(), log.clone());
    sched.cancel(d).unwrap();
    sched
        .after(ms(10) - std::time::Duration::from_nanos(1), move |_: &Fire| {
            seen.push("e ran".to_string());
            inner.reschedule(c, ms(100)).unwrap();
        })
        .unwrap();
    sched.sleep(ms(200)).await;
    assert_eq!(log.take(), vec!["e ran", "c ran at 125"], "c ran once, at its new time only");
}

/// A one-shot that cancels itself from inside its only run had nothing left to come: no cancel
/// callback, and shutdown does not count it.
#[tokio::test(start_paused = true)]
async fn a_one_shot_cancelling_itself_in_its_run_has_nothing_left_to_cancel() {
    let sched = Scheduler::start();
    let log = Log::new();
    let (inner, seen, cancels) = (sched.clone(), log.clone(), log.clone());
    sched
        .timer(ms(10))
        .on_expire(move |f: &Fire| seen.push(format!("ran; self-cancel: {:?}", inner.cancel(f.id()))))
        .on_cancel(move |reason| cancels.push(format!("cancelled: {reason:?}")))
        .arm_detached()
        .unwrap();
    sched.sleep(ms(20)).await;
    assert_eq!(log.get(), vec!["ran; self-cancel: Ok(())"]);
    assert_eq!(sched.shutdown().await.timers_cancelled, 0);
}

/// A one-shot with a handle and no other option is armed without extras (the hot path); everything
/// a handle reports and does must be as for any other timer, whichever path makes its extras.
#[tokio::test(start_paused = true)]
async fn a_bare_owned_one_shot_behaves_like_any_other_timer() {
    let sched = Scheduler::start();
    let timer = sched.timer(ms(100)).on_expire(|_| {}).arm().unwrap();
    assert_eq!((timer.interval(), timer.count(), timer.remaining()), (ms(100), 0, Some(ms(100))));
    sched.reschedule(timer.id(), ms(30)).unwrap();
    assert_eq!(
        (timer.interval(), timer.remaining()),
        (ms(100), Some(ms(30))),
        "reschedule keeps the interval"
    );
    sched.sleep(ms(30)).await;
    assert_eq!(
        (timer.count(), timer.is_armed(), timer.is_cancelled()),
        (1, false, false),
        "idle after its run"
    );
    assert_eq!(timer.interval(), ms(100));
    timer.arm(ms(20)).unwrap();
    assert_eq!((timer.interval(), timer.remaining()), (ms(20), Some(ms(20))));
    sched.sleep(ms(20)).await;
    assert_eq!(timer.count(), 2);

    let fired = sched.timer(ms(50)).on_expire(|_| {}).arm().unwrap();
    sched.sleep(ms(50)).await;
    assert_eq!((fired.count(), fired.interval(), sched.pending()), (1, ms(50), 2), "both idle, kept");
    drop(fired);
    assert_eq!(sched.pending(), 1, "dropping an idle one-shot removes it");

    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    let detached = sched
        .timer(ms(10))
        .on_expire(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .arm()
        .unwrap()
        .detach();
    sched.sleep(ms(10)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "a detached bare one-shot still runs");
    assert_eq!(sched.cancel(detached), Err(Error::NotFound), "and is gone after its run");

    let pending = sched.timer(ms(10)).on_expire(|_| {}).arm().unwrap();
    assert_eq!(sched.shutdown().await.timers_cancelled, 1, "the idle one has no run to come; this one has");
    assert!(pending.is_cancelled() && timer.is_cancelled());
}
