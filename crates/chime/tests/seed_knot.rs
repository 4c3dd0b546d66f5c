//! Knot Resolver's `event` examples (from its module documentation): after, recurrent, reschedule
//! and cancel, reproduced under tokio's paused clock. `event.socket` is covered in `watch.rs`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chime::{Error, Fire, Scheduler, TimerId};
use common::seed::{Log, log, ms, secs, taken};
use tokio::time::Instant;

/// Knot Resolver, `event.after(time, function)`: `event.after(1 * minute, function() print('Hi!') end)`
/// runs the function once after a minute; "the first parameter of the callback is the event itself".
#[tokio::test(start_paused = true)]
async fn knot_event_after_runs_once_after_a_minute() -> Result<(), Error> {
    let sched = Scheduler::start();
    let start = Instant::now();
    let hits: Log<(Duration, TimerId, u64, Instant)> = log();
    let seen = hits.clone();
    let id = sched.after(Duration::from_secs(60), move |fire: &Fire| {
        seen.lock().unwrap().push((start.elapsed(), fire.id(), fire.count(), fire.scheduled()));
    })?;

    sched.sleep(ms(59_999)).await;
    assert!(taken(&hits).is_empty(), "never early");
    sched.sleep(ms(2)).await;
    assert_eq!(taken(&hits), vec![(secs(60), id, 1, start + secs(60))], "once, at 60 s, with its own id");

    sched.sleep(secs(600)).await;
    assert_eq!(taken(&hits).len(), 1, "a one-shot runs once");
    assert_eq!(sched.cancel(id), Err(Error::NotFound), "its id is gone once it ran");
    assert_eq!(sched.pending(), 0);
    Ok(())
}

/// Knot Resolver, `event.recurrent(interval, function)`:
/// `msg_count = 0; event.recurrent(5 * sec, function(e) msg_count = msg_count + 1; print('Hi #'..msg_count) end)`.
#[tokio::test(start_paused = true)]
async fn knot_event_recurrent_counts_messages_every_five_seconds() -> Result<(), Error> {
    let sched = Scheduler::start();
    let start = Instant::now();
    let msg_count = Arc::new(AtomicU64::new(0));
    let lines: Log<(Duration, String, u64, u64)> = log();
    let (count, seen) = (msg_count.clone(), lines.clone());
    let every = sched.recurrent(secs(5), move |fire: &Fire| {
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        seen.lock().unwrap().push((start.elapsed(), format!("Hi #{n}"), fire.count(), fire.missed()));
    })?;

    sched.sleep(secs(22)).await;
    assert_eq!(
        taken(&lines),
        vec![
            (secs(5), "Hi #1".to_string(), 1, 0),
            (secs(10), "Hi #2".to_string(), 2, 0),
            (secs(15), "Hi #3".to_string(), 3, 0),
            (secs(20), "Hi #4".to_string(), 4, 0),
        ]
    );
    assert_eq!(msg_count.load(Ordering::SeqCst), 4);

    sched.cancel(every)?;
    sched.sleep(secs(60)).await;
    assert_eq!(msg_count.load(Ordering::SeqCst), 4, "no run after cancel");
    assert_eq!(sched.cancel(every), Err(Error::NotFound));
    Ok(())
}

/// Knot Resolver, `event.reschedule(event_id, timeout)`:
/// `local interval = 1 * minute; event.after(1 * minute, function (ev) print('Good morning!');
/// interval = interval / 2; event.reschedule(ev, interval) end)`: a one-shot that re-arms itself from
/// its own callback, halving the interval each time; the event is the same throughout, so its run
/// count goes 1, 2, 3, ... (Stopped after six runs: halving forever converges on the two-minute mark.)
#[tokio::test(start_paused = true)]
async fn knot_event_reschedule_halves_the_interval_from_inside_the_callback() -> Result<(), Error> {
    const RUNS: usize = 6;
    let sched = Scheduler::start();
    let start = Instant::now();
    let mornings: Log<(Duration, Instant, u64, Result<(), Error>)> = log();
    let (seen, events) = (mornings.clone(), sched.clone());
    let mut interval = Duration::from_secs(60);
    let ev = sched.after(Duration::from_secs(60), move |fire: &Fire| {
        // print('Good morning!')
        let runs = seen.lock().unwrap().len() + 1;
        interval /= 2;
        let rescheduled = if runs < RUNS { events.reschedule(fire.id(), interval) } else { Ok(()) };
        seen.lock().unwrap().push((start.elapsed(), fire.scheduled(), fire.count(), rescheduled));
    })?;

    sched.sleep(secs(200)).await;
    // 60 s, then 30, 15, 7.5, 3.75 and 1.875 s later.
    let expected: Vec<Duration> =
        [60_000, 90_000, 105_000, 112_500, 116_250, 118_125].into_iter().map(ms).collect();
    let runs = taken(&mornings);
    assert_eq!(runs.iter().map(|r| r.0).collect::<Vec<_>>(), expected, "run instants");
    assert_eq!(
        runs.iter().map(|r| r.1).collect::<Vec<_>>(),
        expected.iter().map(|&d| start + d).collect::<Vec<_>>(),
        "each run was due exactly where it ran"
    );
    assert_eq!(
        runs.iter().map(|r| r.2).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6],
        "Fire::count() counts every run of the one event (runs so far, this one included)"
    );
    assert!(
        runs.iter().all(|r| r.3.is_ok()),
        "every reschedule from inside the callback succeeded: {runs:?}"
    );
    assert_eq!(sched.cancel(ev), Err(Error::NotFound), "not rescheduled after the last run: gone");
    assert_eq!(sched.pending(), 0);
    Ok(())
}

/// Knot Resolver, `event.cancel(event_id)`: `e = event.after(1 * minute, function() print('Hi!') end);
/// event.cancel(e)`: the event never runs; cancelling (or rescheduling) it again has no effect, and
/// its id is never reused by a newer event (Knot's documented flaw).
#[tokio::test(start_paused = true)]
async fn knot_event_cancel_stops_the_event() -> Result<(), Error> {
    let sched = Scheduler::start();
    let start = Instant::now();
    let hits: Log<(Duration, &'static str)> = log();
    let seen = hits.clone();
    let e = sched.after(Duration::from_secs(60), move |_: &Fire| {
        seen.lock().unwrap().push((start.elapsed(), "Hi!"))
    })?;
    sched.cancel(e)?;
    assert_eq!(sched.pending(), 0);

    // A newer event, possibly in the freed slot: the stale id must not reach it.
    let seen = hits.clone();
    let newer = sched.after(Duration::from_secs(60), move |_: &Fire| {
        seen.lock().unwrap().push((start.elapsed(), "newer"));
    })?;
    assert_ne!(newer, e);
    assert_eq!(sched.cancel(e), Err(Error::NotFound), "no effect on an already cancelled event");
    assert_eq!(sched.reschedule(e, secs(1)), Err(Error::NotFound), "no effect on a cancelled event");

    sched.sleep(secs(120)).await;
    assert_eq!(taken(&hits), vec![(secs(60), "newer")], "the cancelled event never ran");
    Ok(())
}

/// Knot Resolver, `event.socket(fd, cb)`: `e = event.socket(0, function(e, status, nevents)
/// print('activity detected') end); e.cancel(e)`: a callback with the event id when the descriptor
/// becomes active. (A pipe stands in for file descriptor 0.) Real time: the reactor is real I/O.
#[tokio::test]
async fn knot_event_socket_calls_back_on_activity_until_cancelled() -> Result<(), Error> {
    use std::io::{Read, Write};
    let sched = Scheduler::start();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let mut draining = reader.try_clone().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let e = sched.watch(
        &reader,
        chime::Interest::READABLE,
        move |e: chime::WatchId, status: chime::Readiness| {
            let mut buf = [0u8; 64];
            let _ = draining.read(&mut buf);
            let _ = tx.send((e, status.readable, "activity detected"));
        },
    )?;
    writer.write_all(b"input").unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("activity").unwrap();
    assert_eq!(seen, (e, true, "activity detected"));
    sched.unwatch(e)?;
    assert_eq!(sched.unwatch(e), Err(Error::UnknownWatch(e)));
    Ok(())
}

/// Knot Resolver, `worker.coroutine(function () for i = 0, 10 do print('executing', i);
/// worker.sleep(1) end end)`: a coroutine that sleeps a second between steps without blocking.
#[tokio::test(start_paused = true)]
async fn knot_worker_coroutine_sleeps_between_steps() {
    let sched = Scheduler::start();
    let start = Instant::now();
    let steps: Log<(u64, u64)> = log();
    let seen = steps.clone();
    let coroutine = sched.worker(move |mut queue: chime::Queue<()>| async move {
        for i in 0..=10 {
            seen.lock().unwrap().push((i, (Instant::now() - start).as_secs()));
            queue.pause_for(secs(1)).await; // worker.sleep(1)
        }
    });
    sched.sleep(secs(12)).await;
    assert_eq!(taken(&steps), (0..=10).map(|i| (i, i)).collect::<Vec<_>>());
    assert!(coroutine.is_finished());
}

/// Knot Resolver, `map 'worker.id'` over forks: `[1] => 0, [2] => 1`: the expression runs on every
/// member and the results come back ordered as the members.
#[tokio::test(start_paused = true)]
async fn knot_map_collects_worker_ids_in_order() -> Result<(), Error> {
    struct Fork {
        id: usize,
        cache: (u64, u64, u64, u64),
    }
    let sched = Scheduler::start();
    let forks = sched.group(2, |id| Fork { id, cache: (0, 0, 0, 0) });
    assert_eq!(forks.map(|w: &mut Fork| w.id).await?, vec![0, 1]);
    assert_eq!(forks.map(|w: &mut Fork| w.cache).await?, vec![(0, 0, 0, 0); 2], "map 'cache.stats()'");
    Ok(())
}
