//! Workers: Copas' background workers with their own queues.

mod common;

use chime::{Error, ItemState, PushError, Queue, Scheduler, SendError};
use common::{Log, ms};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn items_are_processed_in_order_and_tickets_follow_them() {
    let sched = Scheduler::start();
    let log = Log::new();
    let seen = log.clone();
    let worker = sched.worker(|mut queue: Queue<u32>| async move {
        while let Some(item) = queue.pop().await {
            seen.push(item);
            queue.pause_for(ms(10)).await;
        }
    });
    let tickets: Vec<_> = (1..=3).map(|i| worker.push(i).unwrap()).collect();
    assert_eq!(tickets[0].state(), ItemState::Queued);
    let start = Instant::now();
    assert_eq!(tickets[2].done().await, ItemState::Completed);
    assert_eq!(Instant::now() - start, ms(30), "each item took its 10 ms pause");
    assert_eq!(log.get(), vec![1, 2, 3]);
    assert!(tickets.iter().all(|t| t.state() == ItemState::Completed));
}

#[tokio::test(start_paused = true)]
async fn a_queued_item_can_be_cancelled_but_not_a_taken_one() {
    let sched = Scheduler::start();
    let log = Log::new();
    let seen = log.clone();
    let worker = sched.worker(|mut queue: Queue<&'static str>| async move {
        while let Some(item) = queue.pop().await {
            seen.push(item);
            queue.pause_for(ms(100)).await;
        }
    });
    let first = worker.push("first").unwrap();
    let second = worker.push("second").unwrap();
    let third = worker.push("third").unwrap();
    tokio::task::yield_now().await;
    assert_eq!(first.state(), ItemState::Running);
    assert!(!first.cancel(), "the worker holds it");
    assert!(second.cancel());
    assert_eq!(second.state(), ItemState::Cancelled);
    assert_eq!(third.done().await, ItemState::Completed);
    assert_eq!(log.get(), vec!["first", "third"]);
}

#[tokio::test(start_paused = true)]
async fn pause_yields_without_taking_data() {
    let sched = Scheduler::start();
    let log = Log::new();
    let (a, b) = (log.clone(), log.clone());
    let w1 = sched.worker(|mut queue: Queue<u8>| async move {
        while queue.pop().await.is_some() {
            for step in 0..3 {
                a.push(format!("w1 step {step}"));
                queue.pause().await;
            }
        }
    });
    let w2 = sched.worker(|mut queue: Queue<u8>| async move {
        while queue.pop().await.is_some() {
            for step in 0..3 {
                b.push(format!("w2 step {step}"));
                queue.pause().await;
            }
        }
    });
    let (t1, t2) = (w1.push(0).unwrap(), w2.push(0).unwrap());
    t1.done().await;
    t2.done().await;
    let steps = log.get();
    assert_eq!(steps.len(), 6);
    assert_ne!(steps[..3], ["w1 step 0", "w1 step 1", "w1 step 2"], "pause let the other worker in");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_worker_fails_its_item_hands_back_the_rest_and_refuses_pushes() {
    let panics = Log::new();
    let seen = panics.clone();
    let sched = Scheduler::builder()
        .on_panic(move |r| seen.push((r.source().to_string(), r.message().to_string())))
        .start();
    let worker = sched.worker_builder().name("fragile").spawn(|mut queue: Queue<u32>| async move {
        while let Some(item) = queue.pop().await {
            if item == 2 {
                panic!("cannot handle 2");
            }
        }
    });
    let one = worker.push(1).unwrap();
    let two = worker.push(2).unwrap();
    let rest: Vec<_> = (3..=5).map(|i| worker.push(i).unwrap()).collect();
    assert_eq!(two.done().await, ItemState::Failed);
    assert_eq!(one.state(), ItemState::Completed);
    assert!(rest.iter().all(|t| t.state() == ItemState::Returned));
    assert_eq!(worker.push(6).unwrap_err(), PushError::Gone(6));
    let refused: Error = worker.push(7).unwrap_err().into();
    assert_eq!(refused, Error::WorkerGone);
    let exit = worker.join().await;
    assert_eq!(exit.unprocessed, vec![3, 4, 5]);
    assert_eq!(exit.panic.as_deref(), Some("cannot handle 2"));
    assert_eq!(panics.get(), vec![("worker \"fragile\"".to_string(), "cannot handle 2".to_string())]);
}

#[tokio::test(start_paused = true)]
async fn close_then_join_drains_or_hands_back() {
    let sched = Scheduler::start();
    let drains = sched.worker(|mut queue: Queue<u32>| async move { while queue.pop().await.is_some() {} });
    (0..3).for_each(|i| drop(drains.push(i).unwrap()));
    drains.close();
    assert!(drains.push(9).is_err());
    let exit = drains.join().await;
    assert!(exit.unprocessed.is_empty() && exit.panic.is_none());

    let quits = sched.worker(|mut queue: Queue<u32>| async move {
        queue.pop().await; // takes one item, then returns
    });
    (0..4).for_each(|i| drop(quits.push(i).unwrap()));
    let exit = quits.join().await;
    assert_eq!(exit.unprocessed, vec![1, 2, 3], "never dropped silently");
}

#[tokio::test(start_paused = true)]
async fn restart_on_panic_keeps_the_queue() {
    let sched = Scheduler::start();
    let log = Log::new();
    let seen = log.clone();
    let worker = sched.worker_builder().restart_on_panic(2).spawn(move |mut queue: Queue<u32>| {
        let seen = seen.clone();
        async move {
            while let Some(item) = queue.pop().await {
                if item % 2 == 0 {
                    panic!("even");
                }
                seen.push(item);
            }
        }
    });
    let tickets: Vec<_> = (1..=7).map(|i| worker.push(i).unwrap()).collect();
    tickets[6].done().await;
    let states: Vec<_> = tickets.iter().map(|t| t.state()).collect();
    use ItemState::*;
    assert_eq!(states, vec![Completed, Failed, Completed, Failed, Completed, Failed, Returned]);
    assert_eq!(log.get(), vec![1, 3, 5], "two restarts, then the third panic stopped it");
}

#[tokio::test(start_paused = true)]
async fn a_bounded_worker_says_full_and_send_waits_for_room() {
    let sched = Scheduler::start();
    let worker = sched.worker_builder().bounded(2).spawn(|mut queue: Queue<u32>| async move {
        while queue.pop().await.is_some() {
            queue.pause_for(ms(10)).await;
        }
    });
    worker.push(1).unwrap();
    tokio::task::yield_now().await; // the worker takes 1 and pauses 10 ms
    worker.push(2).unwrap();
    worker.push(3).unwrap();
    assert_eq!(worker.push(4).unwrap_err(), PushError::Full(4));
    let refused: Error = worker.push(4).unwrap_err().into();
    assert_eq!(refused, Error::QueueFull);
    let start = Instant::now();
    let ticket = worker.send(4).await.unwrap();
    assert_eq!(Instant::now() - start, ms(10), "room came when the worker took item 2");
    assert_eq!(ticket.done().await, ItemState::Completed);
    assert_eq!(Instant::now() - start, ms(40));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_closes_the_worker() {
    let sched = Scheduler::start();
    let log = Log::new();
    let seen = log.clone();
    let worker = sched.worker(|mut queue: Queue<u32>| async move {
        while let Some(item) = queue.pop().await {
            seen.push(item);
        }
        seen.push(99);
    });
    let clone = worker.clone();
    worker.push(1).unwrap();
    drop(worker);
    clone.push(2).unwrap();
    drop(clone);
    sched.sleep(ms(1)).await;
    assert_eq!(log.get(), vec![1, 2, 99], "drained, then pop returned None");
}

#[tokio::test(start_paused = true)]
async fn shutdown_closes_workers_and_counts_what_they_left() {
    let sched = Scheduler::start();
    let slow = sched.worker(|mut queue: Queue<u32>| async move {
        while queue.pop().await.is_some() {
            queue.pause_for(ms(1000)).await;
        }
    });
    let quits = sched.worker(|mut queue: Queue<u32>| async move {
        queue.pop().await;
    });
    (0..3).for_each(|i| drop(slow.push(i).unwrap()));
    (0..3).for_each(|i| drop(quits.push(i).unwrap()));
    tokio::task::yield_now().await;
    let report = sched.shutdown().await;
    assert_eq!(report.workers_closed, 2);
    assert_eq!(report.items_unprocessed, 2, "the slow worker drained (its pauses end at shutdown)");
    assert_eq!(quits.join().await.unprocessed, vec![1, 2]);
    assert!(slow.join().await.unprocessed.is_empty());
}

/// A cancelled item frees its place in a bounded queue: a sender waiting for room gets it, and the
/// worker does not end up waiting on an empty queue while the sender waits on a full one.
#[tokio::test(start_paused = true)]
async fn a_cancelled_item_frees_its_place_in_a_bounded_queue() {
    let sched = Scheduler::start();
    let log = Log::new();
    let seen = log.clone();
    let worker = sched.worker_builder().bounded(1).spawn(move |mut queue: Queue<u32>| {
        let seen = seen.clone();
        async move {
            while let Some(item) = queue.pop().await {
                seen.push(item);
                queue.pause_for(ms(10)).await;
            }
        }
    });
    worker.push(0).unwrap();
    tokio::task::yield_now().await; // the worker holds item 0 for 10 ms
    let doomed = worker.push(1).unwrap();
    assert!(doomed.cancel());
    let ticket = worker.push(2).expect("the cancelled item holds no place");
    assert_eq!(worker.push(3).unwrap_err(), PushError::Full(3));
    let sender = tokio::spawn({
        let worker = worker.clone();
        async move { worker.send(3).await.map(|_| ()) }
    });
    assert_eq!(ticket.done().await, ItemState::Completed);
    tokio::time::timeout(ms(100), sender).await.expect("the sender got room").unwrap().unwrap();
    sched.sleep(ms(50)).await;
    assert_eq!(log.get(), vec![0, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn send_to_a_worker_that_is_gone_hands_the_item_back_in_its_own_error() {
    let sched = Scheduler::start();
    let worker = sched.worker_builder().bounded(1).spawn(|mut queue: Queue<u32>| async move {
        queue.pop().await;
        std::future::pending::<()>().await;
    });
    worker.push(1).unwrap();
    tokio::task::yield_now().await; // the worker takes 1 and holds it forever
    worker.push(2).unwrap();
    let waiting = tokio::spawn({
        let worker = worker.clone();
        async move { worker.send(3).await }
    });
    tokio::task::yield_now().await;
    worker.close();
    let refused: SendError<u32> = waiting.await.unwrap().unwrap_err();
    assert_eq!(refused, SendError(3));
    assert_eq!(Error::from(refused), Error::WorkerGone);
    let pushed = worker.push(4).unwrap_err();
    assert!(pushed.is_gone() && !pushed.is_full());
}

#[tokio::test(start_paused = true)]
async fn a_zero_capacity_worker_is_a_rendezvous() {
    let sched = Scheduler::start();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let worker = sched.worker_builder().bounded(0).spawn(move |mut queue: Queue<u32>| {
        let tx = tx.clone();
        async move {
            queue.pause_for(ms(10)).await; // not waiting for an item yet
            while let Some(item) = queue.pop().await {
                tx.send((item, Instant::now())).unwrap();
            }
        }
    });
    let start = Instant::now();
    assert!(worker.push(1).unwrap_err().is_full(), "nobody waits in pop yet: no room");
    worker.send(1).await.unwrap();
    assert_eq!(Instant::now() - start, ms(10), "handed over once the worker waited in pop");
    assert_eq!(rx.recv().await, Some((1, start + ms(10))));
}
