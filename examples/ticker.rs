//! Ratchet's advanced timer: a 1 s job fed by a 100 ms ticker learns how many ticks it missed.
//!
//! Run it with `cargo run --example ticker`.

use std::time::Duration;

use chime::{Clock, Ticker};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), chime::Error> {
    // A kernel timerfd on Linux; on other systems the monotonic ticker runs on chime's wheel.
    let mut ticker = Ticker::new(Clock::Monotonic)?;
    ticker.settime(Some(Duration::from_millis(100)), Some(Duration::from_millis(100)))?;
    println!("ticker armed: every 100 ms (kernel timerfd: {})", ticker.is_kernel());
    for round in 1..=3 {
        let ticks = ticker.read().await?;
        println!("round {round}: {ticks} tick(s) since the last look; working for 1 s...");
        tokio::time::sleep(Duration::from_secs(1)).await; // the job
    }
    let ticks = ticker.read().await?;
    println!("after the last job: {ticks} tick(s) had passed (about 10 per job)");
    let (remaining, interval) = ticker.gettime();
    println!("gettime: next in {remaining:?}, every {interval:?}");
    ticker.settime(None, None)?;
    println!("disarmed; reading now says: {}", ticker.read().await.unwrap_err());
    Ok(())
}
