//! # chime
//!
//! Timers, workers and events for async Rust on tokio, after five Lua systems: Copas Timer, TINN,
//! Knot Resolver's `event` API, Ratchet's `timerfd` and Kong's `resty.timer`.
//!
//! The engine is a hierarchical [timing wheel](wheel) sharded per thread and driven by one tokio task
//! ([`Scheduler`]); it follows tokio's clock, so `#[tokio::test(start_paused = true)]` tests are exact.
//!
//! | facility | seeds | entry points |
//! |---|---|---|
//! | timers | all five | [`Scheduler::timer`], [`Scheduler::after`], [`Scheduler::recurrent`], [`Timer`] |
//! | sleeping, timeouts | TINN, Copas | [`Scheduler::sleep`], [`Scheduler::timeout`], [`Scheduler::wait_for`] |
//! | tickers (`timerfd`) | Ratchet | [`Ticker`], [`Scheduler::ticker`] |
//! | workers, groups | Copas, Knot | [`Scheduler::worker`], [`Queue`], [`Scheduler::group`] |
//! | events | Copas | [`Scheduler::events`], [`Scheduler::named_events`], [`Scheduler::lifecycle`] |
//! | fd watches | Knot | `Scheduler::watch` (Unix) |
//! | cluster-wide timers | resty.timer | [`TimerBuilder::key`], [`cluster`] |
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
//! use std::time::Duration;
//! use chime::{Scheduler, Fire, Missed};
//!
//! let sched = Scheduler::start();
//! // resty.timer / Copas style: a builder and an owning handle
//! let timer = sched
//!     .timer(Duration::from_millis(100))
//!     .recurring()
//!     .missed(Missed::Skip)
//!     .on_expire(|fire: &Fire| println!("tick {} (missed {})", fire.count(), fire.missed()))
//!     .arm()?;
//! // Knot style: detached timers by id
//! let once = sched.after(Duration::from_secs(60), |_| println!("Hi!"))?;
//! sched.cancel(once)?;
//! // TINN style: suspend the task, bound an operation
//! sched.sleep(Duration::from_millis(250)).await;
//! assert_eq!(timer.count(), 2);
//! let report = sched.shutdown().await;   // the recurring timer is cancelled with CancelReason::Shutdown
//! assert_eq!(report.timers_cancelled, 1);
//! # Ok(()) }
//! ```
//!
//! ## Semantics
//!
//! - Timers never fire early; equal deadlines fire in arming order.
//! - Recurring timers run on a drift-free grid (`start + k * interval`); [`Missed`] chooses what an
//!   overrun does.
//! - Ids are generational and never reused: a stale [`TimerId`] is [`Error::NotFound`], never another
//!   timer.
//! - A panicking callback is caught, logged through `tracing` and reported to the
//!   [panic hook](SchedulerBuilder::on_panic); nothing else is affected.
//! - [`Scheduler::shutdown`] runs every pending timer's cancel callback with
//!   [`CancelReason::Shutdown`].

// Examples are code users copy: they must compile without a warning.
#![doc(test(attr(deny(warnings))))]

// The layers, lowest first; a module uses only modules of its own layer or below (the test
// `tests/layers.rs` checks it):
//   0. wheel                       the timing wheel, a plain data structure
//   1. clock, error, id, sync,     time bases, errors, timer ids, the protocol's primitives (std's
//      unwind                      or loom's), panic reports
//   2. record                      what the wheel stores for a timer; what a callback sees
//   3. driver                      the wheels on tokio: shards, the firing pass, the loop
//   4. scheduler, sleep, ticker    the handle users hold; futures and tickers on the wheel
//   5. worker, watch, cluster      facilities on top of the scheduler
//   6. events, timer               event buses (handlers are workers); the timer builder (which
//                                  hands cluster timers to `cluster`)
//   7. durable                     timers kept in a cluster coordinator's store
pub mod wheel;

mod clock;
mod error;
mod id;
mod sync;
mod unwind;

mod record;

mod driver;

mod scheduler;
mod sleep;
mod ticker;

pub mod cluster;
#[cfg(unix)]
mod watch;
mod worker;

mod events;
mod timer;

pub mod durable;

pub use clock::{Clock, TimeSource, WallClock};
pub use error::{Cause, Elapsed, Error, InvalidOption};
pub use events::{Dispatch, Events, NamedEvent, NamedEvents, Subscription};
pub use id::{TimerId, WatchId};
pub use record::{CancelReason, Fire, Missed};
pub use scheduler::{Lifecycle, Scheduler, SchedulerBuilder, ShutdownReport};
pub use sleep::{Sleep, Timeout};
pub use ticker::{Ticker, TickerTimes};
pub use timer::{Timer, TimerBuilder};
pub use unwind::PanicReport;
#[cfg(unix)]
pub use watch::{Interest, Readiness};
pub use worker::{Group, ItemState, PushError, Queue, SendError, Ticket, Worker, WorkerBuilder, WorkerExit};
