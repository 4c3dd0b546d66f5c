//! Timers as users build and hold them: the [`TimerBuilder`] (every option of the seeds) and the
//! [`Timer`] handle that owns a timer (Copas' and resty.timer's timer objects).
//!
//! A timer is one-shot or recurring. Recurring deadlines lie on a grid, `anchor + k * interval`, so
//! slow callbacks never make a timer drift; [`Missed`](crate::Missed) says what happens when a run
//! overruns ticks. What a timer is once armed (its record in the wheel) is [`crate::record`]'s; this
//! module only checks options and hands records to the driver, or cluster timers to
//! [`crate::cluster`].

mod arming;
mod builder;
mod callbacks;
mod cluster;
mod handle;

pub use builder::TimerBuilder;
pub use handle::Timer;
