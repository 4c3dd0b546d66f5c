//! A live tour of chime: every kind of timer, in real time, in a few seconds.
//!
//! Run it with `cargo run --example tour`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chime::{CancelReason, Clock, Error, Fire, Interest, Lifecycle, Missed, Queue, Scheduler, Ticker};
use tokio::time::Instant;

/// Milliseconds since the tour started, for the log lines.
fn at(start: Instant) -> String {
    format!("{:>5} ms", start.elapsed().as_millis())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // chime catches callback panics and reports them through its own hook (below); std's default
    // printer would add a backtrace to the tour's output.
    std::panic::set_hook(Box::new(|_| {}));
    let start = Instant::now();
    let sched = Scheduler::builder()
        .on_panic(move |report| {
            println!("{}  panic hook: {} panicked: {}", at(start), report.source(), report.message())
        })
        .start();
    let ms = Duration::from_millis;

    println!("== resty.timer / Copas: a recurring timer with a handle, immediate first run, jitter");
    let heartbeat = sched
        .timer(ms(200))
        .recurring()
        .immediate()
        .jitter(ms(20))
        .on_arm(move || println!("{}  heartbeat armed", at(start)))
        .on_expire(move |fire: &Fire| {
            println!("{}  heartbeat #{} (due {:?} ago)", at(start), fire.count(), fire.scheduled().elapsed())
        })
        .on_cancel(move |reason: CancelReason| println!("{}  heartbeat cancelled: {reason}", at(start)))
        .arm()?;

    println!("== TINN: Timer{{Delay = 300, Period = 150}}, stopped from its own callback after 3 runs");
    let inner = sched.clone();
    sched
        .timer(ms(150))
        .recurring()
        .first(ms(300))
        .on_expire(move |fire: &Fire| {
            println!("{}  TINN timer run {}", at(start), fire.count());
            if fire.count() == 3 {
                inner.cancel(fire.id()).expect("cancel from inside its own callback");
            }
        })
        .on_cancel(move |reason| println!("{}  TINN timer stopped: {reason}", at(start)))
        .arm_detached()?;

    println!("== Knot: after / recurrent / reschedule (halving the interval) / cancel by id");
    let knot = sched.clone();
    let mut interval = ms(400);
    sched.after(interval, move |ev: &Fire| {
        println!("{}  Good morning! (run {})", at(start), ev.count());
        interval /= 2;
        if interval >= ms(50) {
            knot.reschedule(ev.id(), interval).expect("reschedule from inside its callback");
        }
    })?;
    let never = sched.after(Duration::from_secs(60), |_| println!("never printed"))?;
    sched.cancel(never)?;
    println!("{}  cancelled {never}; cancelling it again: {:?}", at(start), sched.cancel(never).unwrap_err());

    println!("== Missed ticks: the runtime is blocked for 350 ms under a 100 ms timer");
    let skip = sched
        .timer(ms(100))
        .recurring()
        .missed(Missed::Skip)
        .on_expire(move |fire: &Fire| {
            if fire.missed() > 0 {
                println!("{}  Skip policy: ran once, {} tick(s) missed", at(start), fire.missed());
            }
        })
        .arm()?;

    println!("== Async expire: runs are tasks and never overlap");
    let busy = sched
        .timer(ms(100))
        .recurring()
        .on_expire_async(move |fire: Fire| async move {
            println!("{}  async run {} starts (missed {})", at(start), fire.count(), fire.missed());
            tokio::time::sleep(Duration::from_millis(250)).await;
        })
        .arm()?;

    println!("== A panicking callback is caught; the timer keeps running");
    let flaky = sched
        .timer(ms(500))
        .recurring()
        .on_expire(|fire: &Fire| {
            if fire.count() == 1 {
                panic!("flaky timer's first run fails");
            }
            println!("           flaky timer run {} fine", fire.count());
        })
        .arm()?;

    println!("== Invalid options are typed errors");
    let refused = sched.timer(Duration::ZERO).recurring().on_expire(|_| {}).arm().unwrap_err();
    println!("{}  {refused}", at(start));

    sched.sleep(ms(600)).await;
    println!("{}  blocking the runtime's thread for 350 ms...", at(start));
    std::thread::sleep(ms(350));
    sched.sleep(ms(500)).await;
    drop((skip, busy));

    println!("== TINN wait / timeouts / Copas waitforcondition");
    let slow = sched.timeout(ms(100), tokio::time::sleep(ms(500))).await;
    println!("{}  timeout on a 500 ms operation: {:?}", at(start), slow.map_err(|e| e.to_string()));
    let ready = Arc::new(AtomicBool::new(false));
    let flag = ready.clone();
    sched.after(ms(120), move |_| flag.store(true, Ordering::SeqCst))?;
    let waited = sched.wait_for(ms(50), ms(1000), || ready.load(Ordering::SeqCst)).await;
    println!("{}  wait_for(condition): {waited:?}", at(start));

    ticker_section(&sched, start).await?;
    worker_section(&sched, start).await?;
    let _lifecycle = events_section(&sched, start).await;
    watch_section(&sched, start).await?;
    cluster_section(start).await?;

    println!("== Re-arming a handle, then shutting down");
    heartbeat.arm(ms(300))?;
    sched.sleep(ms(400)).await;
    drop(flaky);
    let report = sched.shutdown().await;
    println!(
        "{}  shutdown: {} timer(s) cancelled, {} worker(s) drained, {} item(s) handed back, {} watch(es) stopped",
        at(start),
        report.timers_cancelled,
        report.workers_closed,
        report.items_unprocessed,
        report.watches_stopped
    );
    println!("{}  arming after shutdown: {}", at(start), sched.after(ms(1), |_| {}).unwrap_err());
    Ok(())
}

/// Ratchet's timerfd: how many ticks passed while we were busy.
async fn ticker_section(sched: &Scheduler, start: Instant) -> Result<(), Error> {
    println!("== Ratchet timerfd: a ticker says how many ticks passed while we were busy");
    let mut wheel = sched.ticker();
    wheel.settime(Some(Duration::from_millis(20)), Some(Duration::from_millis(20)))?;
    let mut kernel = Ticker::new(Clock::Monotonic)?;
    kernel.settime(Some(Duration::from_millis(20)), Some(Duration::from_millis(20)))?;
    tokio::time::sleep(Duration::from_millis(210)).await;
    println!(
        "{}  after 210 ms of work: wheel ticker read {}, kernel timerfd read {}",
        at(start),
        wheel.read().await?,
        kernel.read().await?
    );
    let (remaining, interval) = kernel.gettime();
    println!("{}  gettime: next in {remaining:?}, every {interval:?}", at(start));
    Ok(())
}

/// Copas workers: a queue each, tickets, a panic that hands back what was left; a Knot-style group.
async fn worker_section(sched: &Scheduler, start: Instant) -> Result<(), Error> {
    println!(
        "== Copas workers: each has its own queue; a panicking worker hands back what it did not process"
    );
    let worker = sched.worker(move |mut queue: Queue<String>| async move {
        while let Some(item) = queue.pop().await {
            if item == "poison" {
                panic!("worker cannot digest {item}");
            }
            println!("{}  worker handled {item:?}", at(start));
            queue.pause().await;
        }
    });
    let first = worker.push("data".to_string())?;
    worker.push("poison".to_string())?;
    worker.push("left over".to_string())?;
    println!("{}  first item: {:?}", at(start), first.done().await);
    let exit = worker.clone().join().await;
    println!("{}  worker stopped ({:?}); handed back {:?}", at(start), exit.panic, exit.unprocessed);
    println!("{}  pushing now: {}", at(start), worker.push("late".to_string()).unwrap_err());

    println!("== Knot map over a group of workers");
    let group = sched.group(3, |id| id * 10);
    let ids = group.map(|state: &mut usize| *state).await?;
    println!("{}  map over 3 members: {ids:?}", at(start));
    group.close();
    Ok(())
}

/// Copas eventer: typed events whose dispatch can be waited for, and the scheduler's lifecycle.
async fn events_section(sched: &Scheduler, start: Instant) -> chime::Subscription {
    println!("== Copas eventer: two subscribers; dispatch(..).wait() resolves when both are done");
    let events = sched.events::<&'static str>();
    let fast = events.subscribe(move |mut queue: Queue<&'static str>| async move {
        while let Some(e) = queue.pop().await {
            println!("{}  fast handler: {e}", at(start));
        }
    });
    let slow = events.subscribe(move |mut queue: Queue<&'static str>| async move {
        while let Some(e) = queue.pop().await {
            queue.pause_for(Duration::from_millis(100)).await;
            println!("{}  slow handler: {e} (after 100 ms)", at(start));
        }
    });
    events.dispatch("start").wait().await;
    println!("{}  both handled \"start\"", at(start));
    drop((fast, slow));
    // Kept by the caller until the shutdown at the end of the tour.
    sched.lifecycle().subscribe(move |mut queue: Queue<Lifecycle>| async move {
        while let Some(stage) = queue.pop().await {
            println!("{}  lifecycle: {stage:?}", at(start));
        }
    })
}

/// Knot event.socket: a callback when a descriptor becomes readable.
async fn watch_section(sched: &Scheduler, start: Instant) -> Result<(), Error> {
    use std::io::{Read, Write};
    println!("== Knot event.socket: a callback when a pipe becomes readable");
    let (reader, mut writer) = std::io::pipe().expect("a pipe");
    let mut reading = reader.try_clone().expect("a second reader");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let id = sched.watch(&reader, Interest::READABLE, move |id, ready| {
        let mut buf = [0u8; 32];
        let n = reading.read(&mut buf).unwrap_or(0);
        let _ = tx.send(format!(
            "{id}: readable={} read {:?}",
            ready.readable,
            String::from_utf8_lossy(&buf[..n])
        ));
    })?;
    writer.write_all(b"hello").expect("write to the pipe");
    if let Some(line) = rx.recv().await {
        println!("{}  {line}", at(start));
    }
    sched.unwatch(id)?;
    Ok(())
}

/// resty.timer's key_name, made safe: two schedulers share a key; each tick runs on one of them.
async fn cluster_section(start: Instant) -> Result<(), Error> {
    println!("== Cluster-wide timer: two schedulers share a key; each tick runs once, with a fence");
    let store = chime::cluster::Local::new(); // or cluster::Sqlite::open(path), Redis, Postgres
    let members = [Scheduler::start(), Scheduler::start()];
    let mut timers = Vec::new();
    for (who, member) in members.iter().enumerate() {
        timers.push(
            member
                .timer(Duration::from_millis(100))
                .recurring()
                .key("tour")
                .coordinator(store.clone())
                .sub_interval(Duration::from_millis(25))
                .on_expire(move |fire: &Fire| {
                    println!(
                        "{}  member {who} runs tick {} (fence {})",
                        at(start),
                        fire.tick().unwrap_or_default(),
                        fire.fence().unwrap_or_default()
                    );
                })
                .arm()?,
        );
    }
    tokio::time::sleep(Duration::from_millis(450)).await;
    drop(timers);
    for member in &members {
        member.shutdown().await;
    }
    Ok(())
}
