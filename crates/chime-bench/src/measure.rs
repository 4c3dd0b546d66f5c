//! Measuring tools shared by the workloads: CPU time of every thread, resident memory, runtimes, a
//! no-op poll, timing loops and child processes.

use std::future::Future;
use std::pin::Pin;
use std::process::Command;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::runtime::Runtime;

/// CPU time (user + system) consumed so far by every thread of this process, live or exited
/// (`getrusage(RUSAGE_SELF)`, microsecond resolution). A background thread cannot hide cost from it.
pub(crate) fn cpu_time() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .expect("getrusage(RUSAGE_SELF) cannot fail on Linux");
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64) + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    micros(usage.user_time()) + micros(usage.system_time())
}

/// Resident memory of this process in bytes (`VmRSS` of `/proc/self/status`); 0 where it is unreadable.
pub(crate) fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// The deadline of the `i`-th pending timer: spread over four minutes, starting one minute out.
pub(crate) fn spread(i: usize) -> Duration {
    Duration::from_millis(60_000 + (i as u64).wrapping_mul(7919) % 240_000)
}

/// Polls `future` once with a waker that does nothing (enough to register a timer).
pub(crate) fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// `n` futures made by `make`, each boxed and polled once so its timer is registered: a pending set.
pub(crate) fn registered<F: Future>(n: usize, make: impl Fn(usize) -> F) -> Vec<Pin<Box<F>>> {
    (0..n)
        .map(|i| {
            let mut future = Box::pin(make(i));
            let _ = poll_once(future.as_mut());
            future
        })
        .collect()
}

/// A current-thread runtime with the time driver.
pub(crate) fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime")
}

/// A multi-thread runtime with `workers` worker threads and the time driver.
pub(crate) fn multi_thread(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

/// `rt.block_on(future)` without tokio's cooperative budget. Inside a budgeted poll, a tokio `Sleep`
/// polled after the task's 128th budgeted operation returns `Pending` *without registering* its
/// timer, which would make tight measuring loops skip most of tokio's work (and leave "pending"
/// sets mostly unregistered); real tasks register their first sleep within budget.
pub(crate) fn block_on_unbudgeted<F: Future>(rt: &Runtime, future: F) -> F::Output {
    rt.block_on(tokio::task::unconstrained(future))
}

/// Nanoseconds per call of `op(i)` for `i` in `0..calls`, timed as one loop.
pub(crate) fn ns_per_call(calls: usize, mut op: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    for i in 0..calls {
        op(i);
    }
    start.elapsed().as_nanos() as f64 / calls.max(1) as f64
}

/// The median of `values` (0 for none).
pub(crate) fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The value at quantile `q` (0..=1) of sorted `values`.
pub(crate) fn quantile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// `n` as the workloads name sizes: 1k, 100k, 1M, 10M.
pub(crate) fn size_label(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// What a measuring child process prints (one JSON line on stdout).
#[derive(Debug, Clone, Copy, serde::Serialize, Deserialize)]
pub(crate) struct ChildReport {
    /// Timers armed.
    pub(crate) n: usize,
    /// Resident bytes before arming (runtime and scheduler already running).
    pub(crate) rss_before: u64,
    /// Resident bytes with every timer pending.
    pub(crate) rss_after: u64,
    /// Wall nanoseconds per arm (for tasks: spawn plus the first poll that registers the sleep).
    pub(crate) arm_ns: f64,
    /// The slowest chunk of 1024 consecutive arms, in wall nanoseconds (a stall such as a storage
    /// reallocation shows here); 0 where not measured.
    #[serde(default)]
    pub(crate) worst_chunk_ns: u64,
}

impl ChildReport {
    /// Resident bytes per pending timer.
    pub(crate) fn bytes_per_timer(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.n.max(1) as f64
    }

    /// Prints the report for the parent and ends the process at once: tearing down millions of
    /// timers would only cost time.
    pub(crate) fn emit_and_exit(&self) -> ! {
        println!("{}", serde_json::to_string(self).expect("a plain struct serializes"));
        std::process::exit(0)
    }
}

/// What a child's arming left to keep alive until it exits (timers, handles, sleeps).
pub(crate) type Keep = Box<dyn std::any::Any>;

/// The body of a measuring child process: a current-thread runtime with tokio's budget off and a
/// chime scheduler, both warmed up; resident memory read before and after `arm`, which arms `n`
/// timers and returns the slowest 1024-arm chunk it saw (0 where not measured) and what must stay
/// alive. Prints the [`ChildReport`] and exits without tearing anything down.
pub(crate) fn child_process(n: usize, arm: impl AsyncFnOnce(&chime::Scheduler) -> (u64, Keep)) -> ! {
    let rt = current_thread();
    let report = block_on_unbudgeted(&rt, async {
        let sched = chime::Scheduler::start();
        // Warm up the runtime, the driver and the allocator on both kinds of timer.
        sched.after(Duration::from_secs(3600), |_| {}).expect("running");
        tokio::time::sleep(Duration::from_millis(2)).await;
        let rss_before = rss_bytes();
        let start = Instant::now();
        let (worst_chunk_ns, keep) = arm(&sched).await;
        let arm_ns = start.elapsed().as_nanos() as f64 / n.max(1) as f64;
        tokio::time::sleep(Duration::from_millis(2)).await;
        let report = ChildReport { n, rss_before, rss_after: rss_bytes(), arm_ns, worst_chunk_ns };
        std::mem::forget((keep, sched));
        report
    });
    report.emit_and_exit()
}

/// Runs this binary again with `args` and parses the [`ChildReport`] it prints, so every side's
/// memory is measured in a fresh process that no other side's allocations have touched.
pub(crate) fn run_child(args: &[&str]) -> Result<ChildReport, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let output = Command::new(exe).args(args).output().map_err(|e| format!("spawn {args:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "child {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_default();
    serde_json::from_str(line).map_err(|e| format!("child {args:?} printed {stdout:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn unbudgeted_polls_register_every_sleep() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        block_on_unbudgeted(&current_thread(), async {
            let mut sleeps: Vec<_> =
                (0..300).map(|_| Box::pin(tokio::time::sleep(Duration::from_millis(1)))).collect();
            for sleep in &mut sleeps {
                assert!(sleep.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
            }
            // Out of budget, a Sleep wakes its task at once instead of registering.
            assert_eq!(count.0.load(Ordering::SeqCst), 0, "no sleep skipped registration");
            tokio::time::sleep(Duration::from_millis(20)).await;
        });
        assert_eq!(count.0.load(Ordering::SeqCst), 300, "every sleep was registered and fired");
    }

    #[test]
    fn labels() {
        assert_eq!(size_label(1_000), "1k");
        assert_eq!(size_label(100_000), "100k");
        assert_eq!(size_label(10_000_000), "10M");
        assert_eq!(size_label(1_500), "1500");
    }

    #[test]
    fn quantiles_and_median() {
        let sorted: Vec<i64> = (0..=100).collect();
        assert_eq!(quantile(&sorted, 0.5), 50);
        assert_eq!(quantile(&sorted, 0.99), 99);
        assert_eq!(quantile(&sorted, 1.0), 100);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn process_counters_move() {
        assert!(rss_bytes() > 0);
        let before = cpu_time();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        assert!(cpu_time() >= before);
    }

    #[test]
    fn spread_is_minutes_out() {
        assert!(
            (0..10_000).map(spread).all(|d| d >= Duration::from_secs(60) && d < Duration::from_secs(300))
        );
    }
}
