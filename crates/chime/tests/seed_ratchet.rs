//! Ratchet's advanced timer example (from its `ratchet.timerfd` manual), with chime's ticker.

use std::time::Duration;

use chime::{Error, Scheduler};
use tokio::time::Instant;

/// "Arm the timer for 5 seconds, and keep resetting to 5 seconds. Do 60 seconds of processing...
/// `local ticks = tfd:read()` -- would return 12 right away; `tfd:read()` -- pauses thread until next
/// 5 second tick." Also: a new timer is disarmed; `gettime` returns the time left and the interval;
/// `settime()` with no arguments disarms.
#[tokio::test(start_paused = true)]
async fn ratchet_read_returns_twelve_after_a_minute_then_waits_for_the_next_tick() -> Result<(), Error> {
    let sched = Scheduler::start();
    let mut tfd = sched.ticker();
    assert_eq!(tfd.gettime(), (None, None), "on creation, the timer is disarmed");
    tfd.settime(Some(Duration::from_secs(5)), Some(Duration::from_secs(5)))?;
    tokio::time::sleep(Duration::from_secs(60)).await; // 60 seconds of processing
    let before = Instant::now();
    assert_eq!(tfd.read().await?, 12, "would return 12 right away");
    assert_eq!(Instant::now(), before, "right away");
    assert_eq!(tfd.gettime(), (Some(Duration::from_secs(5)), Some(Duration::from_secs(5))));
    assert_eq!(tfd.read().await?, 1, "pauses until the next 5 second tick");
    assert_eq!(Instant::now() - before, Duration::from_secs(5));
    let old = tfd.settime(None, None)?; // "passing no arguments will instantly disarm the timer"
    assert_eq!(old, (Some(Duration::from_secs(5)), Some(Duration::from_secs(5))));
    assert_eq!(tfd.gettime(), (None, None));
    Ok(())
}
