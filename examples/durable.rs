//! Durable timers that survive a restart. Run it twice:
//!
//! ```sh
//! cargo run --example durable          # creates a reminder due in 10 s, then stops after 3 s
//! cargo run --example durable          # within 10 s of the first run: the reminder fires here
//! cargo run --example durable -- /path/to/timers.db
//! ```
//!
//! The first run stores the timer (in `$TMPDIR/chime-durable.db`, SQLite with `synchronous = FULL`)
//! and exits before it is due (kill it with Ctrl-C or `kill -9` instead: the same happens). The
//! second run finds it in the store and runs it when it is due, or at once if it is overdue by then.
//! A third run stores a new one.

use std::time::{Duration, SystemTime};

use chime::Scheduler;
use chime::cluster::Sqlite;
use chime::durable::{Created, DurableFire, State};

#[tokio::main]
async fn main() -> Result<(), chime::Error> {
    let path =
        std::env::args().nth(1).map_or_else(|| std::env::temp_dir().join("chime-durable.db"), Into::into);
    let pid = std::process::id();
    let sched = Scheduler::start();
    let (fired_tx, mut fired) = tokio::sync::mpsc::unbounded_channel();
    let timers = sched
        .durable(Sqlite::open(&path)?)
        .handler("remind", move |fire: &DurableFire| {
            let late = SystemTime::now().duration_since(fire.due()).unwrap_or_default();
            println!(
                "process {pid}: `{}` fired: {:?} (attempt {}, fence {}, {late:?} after its due time)",
                fire.key(),
                String::from_utf8_lossy(fire.payload()),
                fire.attempt(),
                fire.fence()
            );
            fired_tx.send(()).map_err(|_| std::io::Error::other("the example is ending"))
        })
        .on_report(move |report| eprintln!("process {pid}: {report}"))
        .start()
        .await?;
    println!("process {pid}: timers in {}", path.display());

    let waiting = timers.list(State::Pending, 1).await?.into_iter().next();
    match waiting {
        Some(t) => {
            let left = t.due().duration_since(SystemTime::now()).unwrap_or_default();
            println!("process {pid}: found `{}` in the store, due in {left:?}: waiting for it", t.key());
            tokio::time::timeout(left + Duration::from_secs(5), fired.recv()).await.ok();
        }
        None => {
            let key = format!(
                "reminder-{}",
                SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs()
            );
            let created =
                timers.after(&key, Duration::from_secs(10), "remind", b"water the plants".to_vec()).await?;
            assert_eq!(created, Created::New);
            // Creating the same key again changes nothing (creation is idempotent).
            let again = timers.after(&key, Duration::from_secs(1), "remind", Vec::new()).await?;
            assert!(matches!(again, Created::Exists(ref t) if t.payload() == b"water the plants"));
            println!("process {pid}: stored `{key}`, due in 10 s; stopping in 3 s. Run me again.");
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
    timers.shutdown().await;
    sched.shutdown().await;
    Ok(())
}
