//! One member of a cluster-wide timer on an SQLite file. Start it in three terminals:
//!
//! ```sh
//! cargo run --example cluster                         # uses $TMPDIR/chime-cluster.db
//! cargo run --example cluster -- /path/to/claims.db 1000
//! ```
//!
//! Each tick (every second by default) runs in exactly one of them, with an increasing fence. Kill
//! the one that is running (Ctrl-C, or `kill -9`): another takes over within `lease + sub_interval`.

use std::time::Duration;

use chime::cluster::Sqlite;
use chime::{Fire, Scheduler};

#[tokio::main]
async fn main() -> Result<(), chime::Error> {
    let mut args = std::env::args().skip(1);
    let path = args.next().map_or_else(|| std::env::temp_dir().join("chime-cluster.db"), Into::into);
    let interval = Duration::from_millis(args.next().and_then(|ms| ms.parse().ok()).unwrap_or(1000));
    let pid = std::process::id();

    let sched = Scheduler::start();
    let store = Sqlite::open(&path)?;
    println!("member {pid}: claims in {}, a tick every {interval:?}", path.display());
    let timer = sched
        .timer(interval)
        .recurring()
        .key("example-report")
        .coordinator(store)
        .sub_interval(interval / 4)
        .lease(interval * 2)
        .on_expire(move |fire: &Fire| {
            println!(
                "member {pid}: running tick {} with fence {} (missed before it: {})",
                fire.tick().unwrap_or_default(),
                fire.fence().unwrap_or_default(),
                fire.missed()
            );
        })
        .arm()?;
    tokio::signal::ctrl_c().await.ok();
    println!("member {pid}: leaving; the lease is released at once");
    drop(timer);
    sched.shutdown().await;
    Ok(())
}
