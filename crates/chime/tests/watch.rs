//! fd watches (Knot's `event.socket`) on a real pipe.
#![cfg(unix)]

mod common;

use chime::{Error, Interest, Readiness, Scheduler, WatchId};
use std::io::{Read, Write};
use std::time::Duration;
use tokio::sync::mpsc;

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("the callback ran").expect("open")
}

#[tokio::test]
async fn the_callback_sees_readable_after_a_write_and_stops_when_unwatched() {
    let sched = Scheduler::start();
    let (mut reader, mut writer) = std::io::pipe().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut reading = reader.try_clone().unwrap();
    let id = sched
        .watch(&reader, Interest::READABLE, move |id: WatchId, ready: Readiness| {
            let mut buf = [0u8; 16];
            let n = reading.read(&mut buf).unwrap_or(0); // consume, so the watch waits for more
            let _ = tx.send((id, ready.readable, buf[..n].to_vec()));
        })
        .unwrap();
    writer.write_all(b"ping").unwrap();
    assert_eq!(next(&mut rx).await, (id, true, b"ping".to_vec()));
    writer.write_all(b"again").unwrap();
    assert_eq!(next(&mut rx).await, (id, true, b"again".to_vec()));
    sched.unwatch(id).unwrap();
    assert_eq!(sched.unwatch(id), Err(Error::UnknownWatch(id)));
    writer.write_all(b"unheard").unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rx.try_recv().is_err(), "an unwatched descriptor calls nobody");
    let mut rest = [0u8; 7];
    reader.read_exact(&mut rest).unwrap();
    assert_eq!(&rest, b"unheard");
}

#[tokio::test]
async fn a_panicking_callback_stops_its_watch_only() {
    let panics = common::Log::new();
    let seen = panics.clone();
    let sched = Scheduler::builder().on_panic(move |r| seen.push(r.source().to_string())).start();
    let (bad_reader, mut bad_writer) = std::io::pipe().unwrap();
    let (good_reader, mut good_writer) = std::io::pipe().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let bad = sched.watch(&bad_reader, Interest::READABLE, |_, _| panic!("watch callback fails")).unwrap();
    let mut reading = good_reader.try_clone().unwrap();
    let good = sched
        .watch(&good_reader, Interest::READABLE, move |id, _| {
            let mut buf = [0u8; 8];
            let _ = reading.read(&mut buf);
            let _ = tx.send(id);
        })
        .unwrap();
    bad_writer.write_all(b"x").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while panics.len() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(panics.get(), vec![bad.to_string()]);
    assert_eq!(sched.unwatch(bad), Err(Error::UnknownWatch(bad)), "the panicking watch is gone");
    good_writer.write_all(b"y").unwrap();
    assert_eq!(next(&mut rx).await, good, "the other watch goes on");
    bad_writer.write_all(b"z").unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(panics.len(), 1);
    assert_eq!(sched.shutdown().await.watches_stopped, 1);
}

#[tokio::test]
async fn a_regular_file_cannot_be_watched() {
    let sched = Scheduler::start();
    let file =
        std::fs::File::open("/proc/self/status").or_else(|_| std::fs::File::open("Cargo.toml")).unwrap();
    assert!(matches!(sched.watch(&file, Interest::READABLE, |_, _| {}), Err(Error::Io { .. })));
}

/// A watch that outlives every scheduler handle goes on by itself: the driver, with nothing pending
/// and no handle left, parks at once (it has no timer to run), and when the watch ends no task is
/// left behind.
#[tokio::test]
async fn the_driver_exits_after_the_last_watch_ends() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let sched = Scheduler::builder().on_panic(|_| {}).start();
    let (reader, mut writer) = std::io::pipe().unwrap();
    sched.watch(&reader, Interest::READABLE, |_, _| panic!("the watch ends here")).unwrap();
    drop(sched);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(metrics.num_alive_tasks(), 1, "the watch; the driver parked");
    writer.write_all(b"x").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while metrics.num_alive_tasks() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(metrics.num_alive_tasks(), 0, "nothing left behind");
}
