//! Durable timers on SQLite under tokio's paused clock: what creating checks (every limit, each
//! refused with the field's name and nothing stored), idempotent creation, cancel, listing by state
//! with pages, and purging after the retention.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use chime::cluster::Sqlite;
use chime::durable::{
    Created, DurableFire, DurableTimers, MAX_KEY_BYTES, MAX_PAYLOAD_BYTES, NewTimer, State,
};
use chime::{Scheduler, WallClock};
use common::{Log, invalid_option, ms};
use tokio::time::Instant;

fn sched() -> Scheduler {
    Scheduler::builder().wall_clock(WallClock::FollowTokio).start()
}

fn store() -> Sqlite {
    Sqlite::open(":memory:").unwrap()
}

/// A scheduler whose `remind` handler logs (key, attempt, fence, when) and succeeds.
async fn logging(sched: &Scheduler, store: Sqlite, log: &Log<(String, u32, u64, Instant)>) -> DurableTimers {
    let log = log.clone();
    sched
        .durable(store)
        .handler("remind", move |f: &DurableFire| {
            log.push((f.key().to_string(), f.attempt(), f.fence(), Instant::now()));
            Ok::<_, std::io::Error>(())
        })
        .start()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn creation_is_checked_before_anything_is_stored() {
    let (sched, log) = (sched(), Log::new());
    let timers = logging(&sched, store(), &log).await;
    let d = ms(1000);
    let long_key = "k".repeat(MAX_KEY_BYTES + 1);
    let big = vec![0u8; MAX_PAYLOAD_BYTES + 1];
    assert_eq!(invalid_option(timers.after("", d, "remind", Vec::new()).await), "key");
    assert_eq!(invalid_option(timers.after(long_key, d, "remind", Vec::new()).await), "key");
    assert_eq!(invalid_option(timers.after("k", d, "remind", big).await), "payload");
    assert_eq!(invalid_option(timers.after("k", d, "bill", Vec::new()).await), "handler");
    assert_eq!(invalid_option(timers.after("k", Duration::MAX, "remind", Vec::new()).await), "delay");
    let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
    assert_eq!(invalid_option(timers.at("k", before_epoch, "remind", Vec::new()).await), "due");
    let far = UNIX_EPOCH + Duration::from_secs(600 * 365 * 24 * 3600);
    assert_eq!(invalid_option(timers.at("k", far, "remind", Vec::new()).await), "due");
    let err = timers.after("k", d, "bill", Vec::new()).await.unwrap_err();
    assert!(err.to_string().contains("`bill` is not a handler"), "{err}");
    // A batch with one bad timer stores none, and says which.
    let batch = vec![
        NewTimer::after("a", d, "remind", Vec::new()),
        NewTimer::after("b", d, "remind", Vec::new()),
        NewTimer::after("", d, "remind", Vec::new()),
    ];
    let err = timers.create_many(batch).await.unwrap_err();
    assert_eq!(err.to_string(), "invalid option `key`: timer 2 of the batch: must not be empty");
    for state in State::ALL {
        assert!(timers.list(state, 10).await.unwrap().is_empty(), "nothing stored ({state})");
    }
    // The limits themselves are fine.
    let edge = "e".repeat(MAX_KEY_BYTES);
    timers.after(edge.clone(), d, "remind", vec![7; MAX_PAYLOAD_BYTES]).await.unwrap();
    assert_eq!(timers.get(&edge).await.unwrap().unwrap().payload().len(), MAX_PAYLOAD_BYTES);
}

#[tokio::test(start_paused = true)]
async fn creating_a_key_again_changes_nothing_and_answers_the_stored_timer() {
    let (sched, log) = (sched(), Log::new());
    let timers = logging(&sched, store(), &log).await;
    assert!(timers.after("k", ms(5_000), "remind", b"first".to_vec()).await.unwrap().is_new());
    let Created::Exists(stored) = timers.after("k", ms(1_000), "remind", b"second".to_vec()).await.unwrap()
    else {
        panic!("the key is taken")
    };
    assert_eq!((stored.payload(), stored.state()), (&b"first"[..], State::Pending));
    let batch = (0..3).map(|i| {
        NewTimer::after(if i == 1 { "k".to_string() } else { format!("n{i}") }, ms(1), "remind", Vec::new())
    });
    let created =
        timers.create_many(batch.chain([NewTimer::after("n0", ms(1), "remind", Vec::new())])).await.unwrap();
    assert_eq!(created.iter().map(Created::is_new).collect::<Vec<_>>(), [true, false, true, false]);
    let created_at = Instant::now();
    tokio::time::sleep(ms(10_000)).await;
    // Runs due together run side by side on the sync workers, so they may start and end (and log)
    // in either order: compare them as a set, each with its due time.
    let mut runs: Vec<_> = log.take().into_iter().map(|r| (r.0, r.3 - created_at)).collect();
    runs.sort();
    let due = |key: &str, at: u64| (key.to_string(), ms(at));
    assert_eq!(
        runs,
        [due("k", 5_000), due("n0", 1), due("n2", 1)],
        "one run per key, at the first creation's due time"
    );
    // Fired, the key stays taken until purged.
    assert!(!timers.after("k", ms(1), "remind", Vec::new()).await.unwrap().is_new());
}

#[tokio::test(start_paused = true)]
async fn cancel_list_and_purge() {
    let sched = sched();
    let log = Log::new();
    let l = log.clone();
    let timers = sched
        .durable(store())
        .handler("remind", move |f: &DurableFire| {
            l.push(f.key().to_string());
            Ok::<_, std::io::Error>(())
        })
        .retention(ms(10_000))
        .start()
        .await
        .unwrap();
    for (key, secs) in [("c", 3), ("a", 1), ("b", 2), ("d", 4), ("e", 500)] {
        timers.after(key, ms(secs * 1000), "remind", Vec::new()).await.unwrap();
    }
    assert!(timers.cancel("d").await.unwrap());
    assert!(!timers.cancel("nothing").await.unwrap());
    let keys =
        |ts: Vec<chime::durable::DurableTimer>| ts.iter().map(|t| t.key().to_string()).collect::<Vec<_>>();
    let page = timers.list(State::Pending, 2).await.unwrap();
    assert_eq!(keys(page.clone()), ["a", "b"]);
    assert_eq!(keys(timers.list_after(State::Pending, &page[1], 10).await.unwrap()), ["c", "e"]);
    assert_eq!(keys(timers.list(State::Cancelled, 10).await.unwrap()), ["d"]);
    tokio::time::sleep(ms(3_500)).await;
    assert_eq!(log.take(), ["a", "b", "c"]);
    assert!(!timers.cancel("a").await.unwrap(), "a fired timer cannot be cancelled");
    assert_eq!(keys(timers.list(State::Fired, 10).await.unwrap()), ["a", "b", "c"]);
    // Retention 10 s: gone within 10 s + half of it (the purge round), not before 10 s.
    tokio::time::sleep(ms(6_000)).await;
    assert!(timers.get("c").await.unwrap().is_some(), "kept for the retention");
    tokio::time::sleep(ms(10_000)).await;
    for key in ["a", "b", "c", "d"] {
        assert_eq!(timers.get(key).await.unwrap(), None, "{key} purged");
    }
    assert_eq!(timers.get("e").await.unwrap().unwrap().state(), State::Pending, "pending timers stay");
    assert!(
        timers.after("a", ms(1), "remind", Vec::new()).await.unwrap().is_new(),
        "a purged key is free again"
    );
    tokio::time::sleep(ms(10)).await;
    let again = timers.get("a").await.unwrap().unwrap();
    assert_eq!((again.state(), again.attempt()), (State::Fired, 1));
    assert!(again.fence() > 3, "fences keep increasing across a purge: {}", again.fence());
}

/// The API as the issue and SPEC section 6 write it, end to end.
#[tokio::test(start_paused = true)]
async fn the_documented_api_works_as_written() -> Result<(), Box<dyn std::error::Error>> {
    use chime::durable::DurableTimer;
    use std::time::SystemTime;
    let dir = std::env::temp_dir().join(format!(
        "chime-durable-api-{}-{:x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir)?;
    let (reminder, bill) = (dir.join("reminder.txt"), dir.join("bill.txt"));
    let sched = sched();
    let store = chime::cluster::Sqlite::open(dir.join("timers.db"))?;
    let timers = sched
        .durable(store)
        .handler("remind", move |fire: &DurableFire| std::fs::write(&reminder, fire.payload()))
        .handler_async("bill", move |fire: DurableFire| {
            let bill = bill.clone();
            async move { tokio::fs::write(bill, fire.payload()).await }
        })
        .start()
        .await?;
    let c: Created =
        timers.after("invoice-42", Duration::from_secs(3600), "remind", b"payload".to_vec()).await?;
    assert_eq!(c, Created::New);
    timers.at("invoice-43", SystemTime::now() + Duration::from_secs(60), "remind", b"43".to_vec()).await?;
    timers.after("invoice-44", Duration::from_secs(30), "bill", b"44".to_vec()).await?;
    let gone: bool = timers.cancel("invoice-42").await?;
    assert!(gone);
    let t: Option<DurableTimer> = timers.get("invoice-43").await?;
    assert_eq!(t.map(|t| t.state()), Some(State::Pending));
    // The wall clock that follows tokio's starts at the minute's start: `SystemTime::now() + 60 s`
    // may be two minutes away on it.
    tokio::time::sleep(Duration::from_secs(121)).await;
    assert_eq!(std::fs::read(dir.join("reminder.txt"))?, b"43", "invoice-42 was cancelled");
    assert_eq!(std::fs::read(dir.join("bill.txt"))?, b"44");
    timers.shutdown().await;
    sched.shutdown().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
