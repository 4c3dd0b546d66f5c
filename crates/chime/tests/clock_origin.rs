//! The first scheduler of a process arms timers on time. The CPU counter's readings count from an
//! origin set once per process; a scheduler whose start was read before that origin existed once
//! counted from the origin instead, and so armed every timer early by the gap (tens of
//! microseconds, milliseconds on a loaded machine). One test in this file: it must start the
//! process's first scheduler.

use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_scheduler_of_a_process_never_arms_a_timer_early() {
    let sched = chime::Scheduler::start();
    // Arming reads the counter once its rate is measured (about a tenth of a second).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let hour = Duration::from_secs(3600);
    for _ in 0..1000 {
        let before = Instant::now();
        let timer = sched.timer(hour).on_expire(|_| {}).arm().unwrap();
        let remaining = timer.remaining().expect("armed");
        // The deadline is at least an hour after `before`, so what remains at least an hour less
        // what has passed since.
        let passed = before.elapsed();
        assert!(remaining + passed >= hour, "armed {:?} early", hour - (remaining + passed));
    }
}
