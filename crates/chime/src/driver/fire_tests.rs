//! The firing pass's lists: a storm fires whole, and the room it took is given back.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::Batches;
use crate::scheduler::Scheduler;

#[tokio::test(start_paused = true)]
async fn a_storm_over_many_shards_fires_whole_and_gives_back_the_room_it_took() {
    let sched = Scheduler::builder().shards(8).start();
    let fired = Arc::new(AtomicUsize::new(0));
    // Armed from eight threads: a thread arms in its own shard.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (sched, fired) = (sched.clone(), fired.clone());
            std::thread::spawn(move || {
                (0..1500)
                    .map(|_| {
                        let fired = fired.clone();
                        let on = move |_: &crate::Fire| {
                            fired.fetch_add(1, Ordering::Relaxed);
                        };
                        sched.after(Duration::from_secs(1), on).unwrap().shard
                    })
                    .collect::<HashSet<_>>()
            })
        })
        .collect();
    let shards: HashSet<u32> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(shards.len() >= 3, "a storm over several shards, not {shards:?}");
    // The test fires by hand (the driver's task never gets to run: nothing here yields).
    let driver = sched.driver();
    let now = driver.time.now() + 2_000_000_000;
    let mut batches = Batches::default();
    while driver.fire_due(now, &mut batches) {}
    assert_eq!(fired.load(Ordering::Relaxed), 12_000);
    assert!(batches.due.is_empty() && batches.ran.is_empty() && batches.dropped.is_empty());
    for capacity in [batches.due.capacity(), batches.ran.capacity(), batches.dropped.capacity()] {
        assert!(capacity <= Batches::KEPT, "kept room for {capacity} entries");
    }
}
