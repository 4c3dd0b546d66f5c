//! How a cluster timer is armed: its options checked, its [member](super::member) made, and the
//! heartbeat (an ordinary recurring timer) that drives the member's checks. The timer builder hands
//! everything cluster-specific to [`heartbeat`] and arms what it returns like any other timer.

use std::time::Duration;

use super::member::Member;
use super::plan::ClusterPlan;
use crate::clock::nanos;
use crate::error::Error;
use crate::record::{CancelFn, ExpireFn, Fire, Plan, Run};
use crate::scheduler::Scheduler;

/// A cluster timer, as the driver arms it: the heartbeat's plan, and the callbacks that drive its
/// member.
pub(crate) struct Heartbeat {
    pub(crate) plan: Plan,
    pub(crate) expire: ExpireFn,
    pub(crate) on_cancel: CancelFn,
}

/// Checks a cluster timer's options (`plan` is the timer's, validated as a local one) and makes the
/// heartbeat that runs its member. The user's cancel callback runs after the member has stopped.
pub(crate) fn heartbeat(
    sched: &Scheduler,
    cluster: ClusterPlan,
    plan: Plan,
    interval: Duration,
    run: Run,
    user_cancel: Option<CancelFn>,
) -> Result<Heartbeat, Error> {
    cluster.validate(&plan, interval)?;
    let check_every =
        nanos(cluster.sub_interval.unwrap_or(interval)).ok_or_else(|| Error::out_of_range("sub_interval"))?;
    let member = Member::new(sched, cluster, interval, run);
    let first =
        if plan.immediate { 0 } else { nanos(member.next_check(sched.driver().time.wall_ms())).unwrap_or(0) };
    let heartbeat = Plan { interval: check_every, recurring: true, first: Some(first), ..Plan::default() };
    let on_beat = member.clone();
    let expire: ExpireFn = Box::new(move |fire: &Fire| on_beat.on_heartbeat(fire.id()));
    let on_cancel: CancelFn = Box::new(move |reason| {
        member.on_cancel(reason);
        if let Some(user_cancel) = user_cancel {
            user_cancel(reason);
        }
    });
    Ok(Heartbeat { plan: heartbeat, expire, on_cancel })
}
