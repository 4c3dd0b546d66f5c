//! Invalid options and combinations: a typed error naming the option, never a panic or a clamp.

mod common;

use chime::{Error, Missed, Scheduler};
use common::{invalid_option, ms};
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn each_invalid_option_is_named() {
    let sched = Scheduler::start();
    let noop = |_: &chime::Fire| {};
    assert_eq!(invalid_option(sched.timer(ms(10)).immediate().on_expire(noop).arm()), "immediate");
    assert_eq!(invalid_option(sched.timer(Duration::ZERO).recurring().on_expire(noop).arm()), "interval");
    assert_eq!(invalid_option(sched.timer(ms(10)).first(ms(5)).on_expire(noop).arm()), "first");
    assert_eq!(
        invalid_option(sched.timer(ms(10)).recurring().immediate().first(ms(5)).on_expire(noop).arm()),
        "first"
    );
    assert_eq!(invalid_option(sched.timer(ms(10)).missed(Missed::Burst).on_expire(noop).arm()), "missed");
    assert_eq!(invalid_option(sched.timer(ms(10)).arm()), "on_expire");
    assert_eq!(invalid_option(sched.timer(ms(10)).on_expire(noop).on_expire(noop).arm()), "on_expire");
    assert_eq!(
        invalid_option(sched.timer(ms(10)).on_expire(noop).on_expire_async(|_| async {}).arm()),
        "on_expire_async"
    );
    assert_eq!(invalid_option(sched.timer(ms(10)).jitter(Duration::MAX).on_expire(noop).arm()), "jitter");
    assert_eq!(invalid_option(sched.timer(Duration::MAX).on_expire(noop).arm()), "interval");
    assert_eq!(
        invalid_option(sched.timer(ms(10)).recurring().first(Duration::MAX).on_expire(noop).arm()),
        "first"
    );
    assert_eq!(invalid_option(sched.after(Duration::MAX, noop)), "delay");
    assert_eq!(invalid_option(sched.recurrent(Duration::ZERO, noop)), "interval");
    assert_eq!(sched.pending(), 0, "nothing invalid was armed");
}

#[tokio::test(start_paused = true)]
async fn jitter_that_would_overflow_is_refused_whatever_the_draw() {
    let sched = Scheduler::start();
    let almost_all = Duration::from_nanos(u64::MAX - 5_000_000); // + the 10 ms interval overflows
    for _ in 0..20 {
        let result = sched.timer(ms(10)).jitter(almost_all).on_expire(|_| {}).arm();
        assert_eq!(invalid_option(result), "jitter");
    }
}

#[tokio::test(start_paused = true)]
async fn messages_name_the_option_and_the_reason() {
    let sched = Scheduler::start();
    let err = sched.timer(ms(10)).immediate().on_expire(|_| {}).arm().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid option `immediate`: requires .recurring(): a one-shot runs once, after its delay"
    );
    let err = sched.timer(Duration::ZERO).recurring().on_expire(|_| {}).arm().unwrap_err();
    assert!(err.to_string().contains("`interval`"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn rearming_a_recurring_timer_with_zero_is_refused_and_changes_nothing() {
    let sched = Scheduler::start();
    let timer = sched.timer(ms(100)).recurring().on_expire(|_| {}).arm().unwrap();
    assert_eq!(invalid_option(timer.arm(Duration::ZERO)), "interval");
    assert_eq!(timer.remaining(), Some(ms(100)));
    assert_eq!(timer.interval(), ms(100));
    assert!(!matches!(sched.reschedule(timer.id(), Duration::MAX), Ok(()) | Err(Error::NotFound)));
}

#[test]
fn starting_outside_a_runtime_is_an_error() {
    let result = Scheduler::builder().try_start();
    assert!(matches!(result, Err(chime::Error::NoRuntime)), "{result:?}");
}
