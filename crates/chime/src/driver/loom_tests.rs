//! The driver's concurrency protocol under loom's model checker: the real shard (its lock and
//! epoch), the real handshake and the real state transitions, driven by threads that play the
//! driver, an arming thread and a cancelling one. Run with
//! `RUSTFLAGS="--cfg chime_loom" cargo test -p chime --release --lib loom`.

use std::sync::atomic::Ordering;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize};
use loom::thread;

use super::handshake::{Handshake, Wake};
use super::shard::Shard;
use super::state::{self, Finished, Lent, Start};
use crate::id::TimerId;
use crate::record::{Extras, Fire, Plan, Record};
use crate::wheel::Key;

/// Explores with at most three preemptions per execution: enough for every interleaving of the
/// two threads' critical steps, small enough to finish in seconds.
fn model(test: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(test);
}

fn fire(key: Key) -> Fire {
    Fire {
        id: TimerId { shard: 0, key },
        count: 1,
        missed: 0,
        scheduled: tokio::time::Instant::now(),
        fence: None,
        tick: None,
    }
}

/// A one-shot whose runs and cancel callbacks are counted; `plain` leaves out the extras.
fn one_shot(runs: &Arc<AtomicUsize>, cancels: &Arc<AtomicUsize>, plain: bool) -> Record {
    let runs = runs.clone();
    let cancels = cancels.clone();
    let extras = Extras {
        plan: Plan { interval: 10, ..Plan::default() },
        on_cancel: Some(Box::new(move |_| {
            cancels.fetch_add(1, Ordering::SeqCst);
        })),
        ..Extras::default()
    };
    Record {
        expire: Box::new(move |_: &Fire| {
            runs.fetch_add(1, Ordering::SeqCst);
        }),
        extras: (!plain).then(|| Box::new(extras)),
    }
}

/// One pass of the driver over a shard at time `now`: rules 1, 2 (with the epoch shortcut for plain
/// timers) and 3, as `fire.rs` runs them. `before_start` runs between lending and the start check.
fn driver_pass(shard: &Shard, now: u64, before_start: impl FnOnce() -> bool) -> Option<bool> {
    let (key, lent, epoch) = {
        let mut wheels = shard.lock();
        let epoch = shard.epoch();
        let key = wheels.timers.poll(now)?;
        (key, state::lend(&mut wheels.timers, key, now)?, epoch)
    };
    let Lent { expire, missed, plain, .. } = lent;
    let saw_cancel = before_start();
    let start = if plain && shard.epoch() == epoch {
        Start::Run(expire)
    } else {
        shard.with(|w| state::start(&mut w.timers, key, expire, missed))
    };
    let mut expire = match start {
        Start::Run(expire) => expire,
        Start::Cancelled(_) | Start::Rearmed => return Some(false),
    };
    assert!(!saw_cancel, "a run started after its cancel was visible");
    expire.call(&fire(key));
    let finished = shard.with(|w| state::finish(&mut w.timers, key, expire, false, now));
    assert!(!matches!(finished, Finished::Cancelled(_)));
    Some(true)
}

/// Rule 4 as `timers.rs` runs it: remove under the lock, move the epoch, then (unlocked) the cancel
/// callback if a run was still to come.
fn cancel(shard: &Shard, key: Key) -> bool {
    let taken = {
        let mut wheels = shard.lock();
        let taken = state::cancel(&mut wheels.timers, key);
        shard.bump(&mut wheels);
        taken
    };
    let Some((record, pending)) = taken else { return false };
    if let Some(on_cancel) = record.extras.and_then(|mut e| e.on_cancel.take()).filter(|_| pending) {
        on_cancel(crate::record::CancelReason::User);
    }
    true
}

#[test]
fn loom_an_arm_during_the_drivers_look_is_never_lost() {
    model(|| {
        let shard = Arc::new(Shard::default());
        let handshake = Arc::new(Handshake::default());
        let permit = Arc::new(AtomicBool::new(false)); // what tokio's Notify keeps for the driver
        let (runs, cancels) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        shard.lock().timers.insert(200, one_shot(&runs, &cancels, true));
        let driver = {
            let (shard, handshake) = (shard.clone(), handshake.clone());
            thread::spawn(move || {
                handshake.awake();
                let next = shard.lock().next_deadline().unwrap_or(u64::MAX);
                handshake.sleeping_until(next);
                next
            })
        };
        let arm = {
            let (shard, handshake, permit) = (shard.clone(), handshake.clone(), permit.clone());
            thread::spawn(move || {
                shard.lock().timers.insert(100, one_shot(&runs, &cancels, true));
                if handshake.armed(100) != Wake::Nothing {
                    permit.store(true, Ordering::SeqCst);
                }
            })
        };
        arm.join().unwrap();
        let sleeps_until = driver.join().unwrap();
        assert!(
            sleeps_until <= 100 || permit.load(Ordering::SeqCst),
            "the driver sleeps past a deadline unwoken"
        );
    });
}

#[test]
fn loom_a_cancel_racing_a_run_either_prevents_it_or_finds_it_started() {
    model(|| {
        let shard = Arc::new(Shard::default());
        let (runs, cancels) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let key = shard.lock().timers.insert(10, one_shot(&runs, &cancels, false));
        let canceller = {
            let shard = shard.clone();
            thread::spawn(move || cancel(&shard, key))
        };
        driver_pass(&shard, 10, || false);
        canceller.join().unwrap();
        // Exactly one of: it ran (the cancel came too late, or during the run: nothing left to
        // cancel), or it was cancelled while a run was still to come (its cancel callback ran).
        assert_eq!(runs.load(Ordering::SeqCst) + cancels.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn loom_a_plain_timer_never_starts_once_its_cancel_is_visible() {
    model(|| {
        let shard = Arc::new(Shard::default());
        let (runs, cancels) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let key = shard.lock().timers.insert(10, one_shot(&runs, &cancels, true));
        let cancelled = Arc::new(AtomicBool::new(false));
        let canceller = {
            let (shard, cancelled) = (shard.clone(), cancelled.clone());
            thread::spawn(move || {
                let found = cancel(&shard, key);
                cancelled.store(true, Ordering::Release);
                found
            })
        };
        // The shortcut reads the epoch without the lock: a cancel the driver can see must have moved
        // it (driver_pass asserts that no run starts after `cancelled` was seen).
        let ran = driver_pass(&shard, 10, || cancelled.load(Ordering::Acquire));
        let found = canceller.join().unwrap();
        assert!(runs.load(Ordering::SeqCst) <= 1);
        assert!(found || ran == Some(true), "a timer neither cancelled nor run");
    });
}

#[test]
fn loom_a_reschedule_racing_a_run_leaves_the_timer_armed_or_run() {
    model(|| {
        let shard = Arc::new(Shard::default());
        let (runs, cancels) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let key = shard.lock().timers.insert(10, one_shot(&runs, &cancels, false));
        let rescheduler = {
            let shard = shard.clone();
            thread::spawn(move || {
                let mut wheels = shard.lock();
                let found = wheels.timers.rearm(key, 50);
                shard.bump(&mut wheels);
                found
            })
        };
        driver_pass(&shard, 10, || false);
        let rescheduled = rescheduler.join().unwrap();
        let deadline = shard.lock().timers.deadline(key);
        if rescheduled {
            assert_eq!(deadline, Some(50), "a reschedule that found the timer leaves it armed");
        } else {
            assert_eq!((runs.load(Ordering::SeqCst), deadline), (1, None), "it ran and was removed");
        }
        assert!(runs.load(Ordering::SeqCst) <= 1);
        assert_eq!(cancels.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn loom_parking_and_an_arm_leave_exactly_one_driver() {
    model(|| {
        let shard = Arc::new(Shard::default());
        let handshake = Arc::new(Handshake::default());
        let (runs, cancels) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let driver = {
            let (shard, handshake) = (shard.clone(), handshake.clone());
            thread::spawn(move || {
                handshake.awake();
                handshake.park(|| shard.lock().next_deadline().is_some())
            })
        };
        shard.lock().timers.insert(100, one_shot(&runs, &cancels, true));
        let wake = handshake.armed(100);
        let ended = driver.join().unwrap();
        let drivers = usize::from(!ended) + usize::from(wake == Wake::Respawn);
        assert_eq!(drivers, 1, "the timer needs one driver, and two would race (ended {ended}, {wake:?})");
    });
}
