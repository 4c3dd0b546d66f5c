//! Copas' eventer: a module with its own events, two subscribers, and a dispatch that is waited for.
//!
//! Run it with `cargo run --example eventer`.

use std::time::Duration;

use chime::{Events, Queue, Scheduler};

/// The module's events (Copas: `decorate(my_module, {"start", "txerror", "rxerror", "stop"})`).
#[derive(Clone, Debug)]
enum Link {
    Start(String),
    TxError(u32),
    RxError(u32),
    Stop,
}

/// A module that owns an event bus and dispatches on it.
struct MyModule {
    events: Events<Link>,
}

impl MyModule {
    fn new(sched: &Scheduler) -> Self {
        MyModule { events: sched.events() }
    }

    async fn start(&self) {
        // Resolves once every subscriber has finished with the event.
        self.events.dispatch(Link::Start("start data 1".into())).wait().await;
        println!("module: every subscriber has handled Start");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let sched = Scheduler::start();
    let module = MyModule::new(&sched);

    let _logger = module.events.subscribe(|mut queue: Queue<Link>| async move {
        while let Some(event) = queue.pop().await {
            println!("logger: {event:?}");
        }
    });
    let _app = module.events.subscribe(|mut queue: Queue<Link>| async move {
        while let Some(event) = queue.pop().await {
            match event {
                Link::Start(data) => {
                    println!("app: initialising with {data:?} (takes 200 ms)");
                    queue.pause_for(Duration::from_millis(200)).await;
                    println!("app: ready");
                }
                Link::TxError(code) | Link::RxError(code) => println!("app: link error {code}, retrying"),
                Link::Stop => println!("app: stopping"),
            }
        }
    });

    module.start().await;
    for n in 1..=2 {
        module.events.dispatch(Link::TxError(n)).wait().await;
    }
    module.events.dispatch(Link::RxError(7)).wait().await;
    let stop = module.events.dispatch(Link::Stop);
    println!("Stop delivered to {} subscriber(s)", stop.delivered());
    stop.wait_timeout(Duration::from_secs(1)).await.expect("handlers are quick");
    sched.shutdown().await;
}
