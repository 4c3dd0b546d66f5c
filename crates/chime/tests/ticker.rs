//! The ticker: timerfd semantics on chime's wheel (paused clock, exact) and on the kernel's
//! timerfd (real time, counts checked against the window actually measured).

mod common;

use chime::{Clock, Error, Missed, Scheduler, Ticker};
use common::{invalid_option, ms};
use std::time::{Duration, Instant as StdInstant, SystemTime};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn read_returns_the_ticks_missed_then_waits_for_the_next() {
    let sched = Scheduler::start();
    let mut ticker = sched.ticker();
    assert_eq!(ticker.gettime(), (None, None));
    ticker.settime(Some(ms(100)), Some(ms(100))).unwrap();
    tokio::time::sleep(ms(1250)).await;
    assert_eq!(ticker.read().await, Ok(12));
    let before = Instant::now();
    assert_eq!(ticker.read().await, Ok(1));
    assert_eq!(Instant::now() - before, ms(50));
}

#[tokio::test(start_paused = true)]
async fn settime_returns_the_old_values_and_resets_the_count() {
    let sched = Scheduler::start();
    let mut ticker = sched.ticker();
    assert_eq!(ticker.settime(Some(ms(30)), Some(ms(10))).unwrap(), (None, None));
    tokio::time::sleep(ms(55)).await;
    assert_eq!(ticker.gettime(), (Some(ms(5)), Some(ms(10))));
    let old = ticker.settime(Some(ms(200)), None).unwrap();
    assert_eq!(old, (Some(ms(5)), Some(ms(10))), "the old remaining and interval");
    assert_eq!(ticker.try_read(), Ok(0), "re-arming reset the count of 3");
    assert_eq!(ticker.settime(None, Some(ms(10))).unwrap(), (Some(ms(200)), None));
    assert_eq!(ticker.gettime(), (None, None), "None initial disarms");
    assert_eq!(ticker.read().await, Err(Error::NotArmed), "a disarmed ticker would wait forever");
    ticker.settime(Some(Duration::ZERO), Some(ms(10))).unwrap();
    assert_eq!(ticker.gettime(), (None, None), "zero initial disarms too, as with timerfd");
}

#[tokio::test(start_paused = true)]
async fn a_one_shot_counts_once_then_is_spent() {
    let sched = Scheduler::start();
    let mut ticker = sched.ticker();
    ticker.settime(Some(ms(40)), None).unwrap();
    assert_eq!(ticker.read().await, Ok(1));
    assert_eq!(ticker.gettime(), (None, None));
    assert_eq!(ticker.read().await, Err(Error::NotArmed));
    ticker.settime_at(Instant::now() - ms(5), None).unwrap();
    assert_eq!(ticker.try_read(), Ok(1), "a deadline in the past is due at once");
}

#[tokio::test(start_paused = true)]
async fn burst_hands_out_the_backlog_one_read_at_a_time() {
    let sched = Scheduler::start();
    let mut ticker = sched.ticker();
    ticker.set_missed(Missed::Burst).unwrap();
    ticker.settime(Some(ms(100)), Some(ms(100))).unwrap();
    tokio::time::sleep(ms(350)).await;
    let start = Instant::now();
    let reads = [ticker.read().await, ticker.read().await, ticker.read().await];
    assert_eq!(reads, [Ok(1), Ok(1), Ok(1)]);
    assert_eq!(Instant::now(), start, "the backlog is read without waiting");
    assert_eq!(ticker.read().await, Ok(1));
    assert_eq!(Instant::now() - start, ms(50), "then the grid goes on");
}

#[tokio::test(start_paused = true)]
async fn delay_moves_the_next_tick_an_interval_after_the_read() {
    let sched = Scheduler::start();
    let mut ticker = sched.ticker();
    ticker.set_missed(Missed::Delay).unwrap();
    ticker.settime(Some(ms(100)), Some(ms(100))).unwrap();
    tokio::time::sleep(ms(350)).await;
    assert_eq!(ticker.read().await, Ok(3), "the count stays honest");
    let start = Instant::now();
    assert_eq!(ticker.read().await, Ok(1));
    assert_eq!(Instant::now() - start, ms(100));
}

#[tokio::test(start_paused = true)]
async fn counts_come_out_as_a_stream_that_ends_when_disarmed() {
    use futures_core::Stream;
    let sched = Scheduler::start();
    let mut ticker = sched.ticker();
    ticker.settime(Some(ms(10)), Some(ms(10))).unwrap();
    async fn next(ticker: &mut Ticker) -> Option<Result<u64, Error>> {
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut *ticker).poll_next(cx)).await
    }
    assert_eq!(next(&mut ticker).await, Some(Ok(1)));
    assert_eq!(next(&mut ticker).await, Some(Ok(1)));
    ticker.settime(None, None).unwrap();
    assert_eq!(next(&mut ticker).await, None);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_read_ends_at_shutdown() {
    let sched = Scheduler::start();
    let mut ticker = sched.ticker();
    ticker.settime(Some(Duration::from_secs(3600)), None).unwrap();
    let reader = tokio::spawn(async move { ticker.read().await });
    tokio::task::yield_now().await;
    sched.shutdown().await;
    assert_eq!(reader.await.unwrap(), Err(Error::Shutdown));
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_refused() {
    let sched = Scheduler::start();
    let mut ticker = sched.ticker();
    assert_eq!(invalid_option(ticker.settime(Some(Duration::MAX), None)), "initial");
    assert_eq!(invalid_option(ticker.settime(Some(ms(1)), Some(Duration::MAX))), "interval");
    assert_eq!(invalid_option(ticker.settime_at_system(SystemTime::now(), None)), "deadline");
}

/// Arms a kernel ticker every `interval` for about `window`, and checks the count `read` returns
/// against the bounds of the window measured around the calls.
async fn kernel_counts(clock: Clock) {
    let interval = ms(20);
    let mut ticker = Ticker::new(clock).unwrap();
    assert!(ticker.is_kernel());
    assert_eq!(ticker.clock(), clock);
    assert_eq!(ticker.gettime(), (None, None));
    let before_set = StdInstant::now();
    ticker.settime(Some(interval), Some(interval)).unwrap();
    let after_set = StdInstant::now();
    tokio::time::sleep(ms(300)).await;
    let before_read = StdInstant::now();
    let count = ticker.read().await.unwrap();
    let after_read = StdInstant::now();
    let ticks = |d: Duration| (d.as_nanos() / interval.as_nanos()) as u64;
    let (least, most) = (ticks(before_read - after_set), ticks(after_read - before_set));
    assert!(
        count >= least.max(1) && count <= most,
        "{clock:?}: read {count}, window allows {least}..={most}"
    );
    let (remaining, every) = ticker.gettime();
    assert_eq!(every, Some(interval));
    assert!(remaining.is_some_and(|r| r <= interval), "{remaining:?}");
    let old = ticker.settime(None, None).unwrap();
    assert_eq!(old.1, Some(interval));
    assert_eq!(ticker.read().await, Err(Error::NotArmed));
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn kernel_ticker_counts_on_the_monotonic_clock() {
    kernel_counts(Clock::Monotonic).await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn kernel_ticker_counts_on_the_realtime_clock() {
    kernel_counts(Clock::Realtime).await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn kernel_ticker_counts_on_the_boottime_clock() {
    kernel_counts(Clock::Boottime).await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn kernel_ticker_one_shot_absolute_deadlines_and_errors() {
    let mut ticker = Ticker::new(Clock::Realtime).unwrap();
    let start = StdInstant::now();
    ticker.settime_at_system(SystemTime::now() + ms(30), None).unwrap();
    assert_eq!(ticker.read().await, Ok(1));
    assert!(start.elapsed() >= ms(29), "woke after {:?}", start.elapsed());
    assert_eq!(ticker.read().await, Err(Error::NotArmed));

    let mut mono = Ticker::new(Clock::Monotonic).unwrap();
    let start = StdInstant::now();
    mono.settime_at(Instant::now() + ms(30), None).unwrap();
    assert_eq!(mono.read().await, Ok(1));
    assert!(start.elapsed() >= ms(29));
    assert_eq!(invalid_option(mono.settime_at_system(SystemTime::now(), None)), "deadline");
    assert_eq!(invalid_option(mono.set_missed(Missed::Burst)), "missed");
    assert_eq!(invalid_option(mono.settime(Some(Duration::MAX), None)), "initial");
    assert_eq!(mono.try_read(), Ok(0));
}
