//! The fixed public surface (the names and signatures code outside this repository relies on),
//! compiled and run as written.

use chime::{
    CancelReason, Clock, Error, Events, Fire, Lifecycle, Missed, Queue, Scheduler, Ticker, Timer, TimerId,
    Worker,
};
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn contract() -> Result<(), chime::Error> {
    let sched = Scheduler::start();

    let timer: Timer = sched
        .timer(Duration::from_millis(100))
        .recurring()
        .immediate()
        .jitter(Duration::from_millis(20))
        .missed(Missed::Skip)
        .on_arm(|| {})
        .on_expire(|fire: &Fire| {
            let _ = (fire.id(), fire.missed(), fire.count());
        })
        .on_cancel(|reason: CancelReason| {
            let _ = reason;
        })
        .arm()?;
    let id: TimerId = timer.id();
    let tinn = sched
        .timer(Duration::from_millis(300))
        .recurring()
        .first(Duration::from_secs(1))
        .on_expire(|_f: &Fire| {})
        .arm()?;
    tinn.cancel()?;
    timer.cancel()?;
    assert_eq!(timer.cancel(), Err(Error::AlreadyCancelled));

    let once: TimerId = sched.after(Duration::from_secs(60), |_fire: &Fire| {})?;
    let every: TimerId = sched.recurrent(Duration::from_secs(5), |_fire: &Fire| {})?;
    sched.reschedule(every, Duration::from_secs(1))?;
    sched.cancel(once)?;
    assert_eq!(sched.cancel(once), Err(Error::NotFound));
    let _ = id;

    sched.sleep(Duration::from_millis(5)).await;
    let _r: Result<u8, chime::Elapsed> = sched.timeout(Duration::from_millis(5), async { 1u8 }).await;

    let _kernel = Ticker::new(Clock::Realtime)?;
    let mut ticker: Ticker = sched.ticker();
    let (_old_remaining, _old_interval) =
        ticker.settime(Some(Duration::from_millis(10)), Some(Duration::from_millis(10)))?;
    let (_remaining, _interval): (Option<Duration>, Option<Duration>) = ticker.gettime();
    let ticks: u64 = ticker.read().await?;
    assert_eq!(ticks, 1);

    let worker: Worker<String> = sched.worker(|mut queue: Queue<String>| async move {
        while let Some(item) = queue.pop().await {
            let _ = item;
            queue.pause().await;
        }
    });
    worker.push("data".to_string())?;

    #[derive(Clone, Debug)]
    enum MyEvent {
        Start,
        #[allow(dead_code)] // the fixed example declares it
        Stop,
    }
    let events: Events<MyEvent> = sched.events();
    let _subscription = events
        .subscribe(|mut queue: Queue<MyEvent>| async move { while let Some(_e) = queue.pop().await {} });
    events.dispatch(MyEvent::Start).wait().await;
    let _lifecycle: Events<Lifecycle> = sched.lifecycle();

    let report = sched.shutdown().await;
    assert_eq!(report.timers_cancelled, 1, "`every` was still pending");
    Ok(())
}

/// `Fire` has its fixed accessors, `CancelReason` its four reasons, `Error` its variants.
#[test]
fn named_types_have_the_fixed_members() {
    let reasons = [CancelReason::User, CancelReason::Dropped, CancelReason::Shutdown, CancelReason::Panicked];
    assert_eq!(reasons.len(), 4);
    let errors = [
        Error::invalid("x", "y"),
        Error::AlreadyCancelled,
        Error::NotFound,
        Error::Shutdown,
        Error::WorkerGone,
    ];
    assert!(matches!(errors[0], Error::InvalidOption(_)));
    let _accessors: [fn(&Fire) -> u64; 2] = [Fire::count, Fire::missed];
    let _fence: fn(&Fire) -> Option<u64> = Fire::fence;
    let _scheduled: fn(&Fire) -> tokio::time::Instant = Fire::scheduled;
    let _id: fn(&Fire) -> TimerId = Fire::id;
    fn clone_send_sync<T: Clone + Send + Sync>() {}
    clone_send_sync::<Scheduler>();
}
