//! Worker groups: Knot's `map` over forks, within one process.

use chime::{Error, Scheduler};

struct Fork {
    id: usize,
    cache: Vec<String>,
}

#[tokio::test(start_paused = true)]
async fn map_runs_on_every_member_and_orders_results_by_index() {
    let sched = Scheduler::start();
    let group = sched.group(4, |id| Fork { id, cache: Vec::new() });
    assert_eq!(group.len(), 4);
    assert_eq!(group.map(|f: &mut Fork| f.id).await.unwrap(), vec![0, 1, 2, 3]);
    group.run_on(2, |f: &mut Fork| f.cache.push("hit".into())).await.unwrap();
    assert_eq!(group.map(|f: &mut Fork| f.cache.len()).await.unwrap(), vec![0, 0, 1, 0]);
    assert_eq!(group.run_on(9, |f: &mut Fork| f.id).await, Err(Error::NoSuchMember { index: 9, members: 4 }));
}

#[tokio::test(start_paused = true)]
async fn a_member_that_panics_is_gone() {
    let sched = Scheduler::start();
    let group = sched.group(2, |id| Fork { id, cache: Vec::new() });
    let result = group.map(|f: &mut Fork| if f.id == 1 { panic!("member 1 fails") } else { f.id }).await;
    assert_eq!(result, Err(Error::WorkerGone));
    assert_eq!(group.run_on(0, |f: &mut Fork| f.id).await, Ok(0), "member 0 goes on");
    assert_eq!(group.run_on(1, |f: &mut Fork| f.id).await, Err(Error::WorkerGone));
    group.close();
    assert_eq!(group.run_on(0, |f: &mut Fork| f.id).await, Err(Error::WorkerGone));
}
