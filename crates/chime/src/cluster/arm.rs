//! How a cluster timer is armed: its options checked, its [member](super::member) made, and the
//! heartbeat (an ordinary recurring timer) that drives the member's checks. The timer builder hands
//! everything cluster-specific to [`heartbeat`] and arms what it returns like any other timer.

use std::sync::Arc;
use std::time::Duration;

use super::member::Member;
use super::{Coordinator, Misfire};
use crate::clock::nanos;
use crate::error::Error;
use crate::record::{CancelFn, ExpireFn, Fire, Missed, Plan, Run};
use crate::scheduler::Scheduler;

/// What the builder collects for a cluster timer.
#[derive(Clone, Default)]
pub(crate) struct ClusterPlan {
    pub(crate) key: Option<String>,
    pub(crate) coordinator: Option<Arc<dyn Coordinator>>,
    pub(crate) sub_interval: Option<Duration>,
    pub(crate) lease: Option<Duration>,
    pub(crate) misfire: Misfire,
}

impl ClusterPlan {
    /// Whether no cluster option was given: the timer is a local one.
    pub(crate) fn is_unset(&self) -> bool {
        self.key.is_none()
            && self.coordinator.is_none()
            && self.sub_interval.is_none()
            && self.lease.is_none()
            && self.misfire == Misfire::default()
    }
}

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
    if let Some(stray) = stray_option(&cluster) {
        return Err(stray);
    }
    validate(&cluster, &plan, interval)?;
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

/// The options a cluster timer refuses or needs.
fn validate(cluster: &ClusterPlan, plan: &Plan, interval: Duration) -> Result<(), Error> {
    if cluster.key.is_none() {
        return Err(Error::invalid(
            "key",
            "a .coordinator(..) timer needs a .key(..) naming it across members",
        ));
    }
    if cluster.coordinator.is_none() {
        return Err(Error::invalid(
            "coordinator",
            "a .key(..) timer needs a .coordinator(..) to claim ticks in",
        ));
    }
    if !plan.recurring {
        return Err(Error::invalid(
            "key",
            "requires .recurring(): a cluster timer runs each tick of a shared grid",
        ));
    }
    if interval < Duration::from_millis(1) {
        return Err(Error::invalid("interval", "a cluster timer's interval must be at least 1 ms"));
    }
    if plan.jitter > 0 {
        return Err(Error::invalid("jitter", "conflicts with .key(): every member must agree on the grid"));
    }
    if plan.first.is_some() {
        return Err(Error::invalid(
            "first",
            "conflicts with .key(): ticks are numbered from a shared anchor",
        ));
    }
    if plan.missed != Missed::Skip {
        return Err(Error::invalid("missed", "a cluster timer's missed ticks follow .misfire(..)"));
    }
    match cluster.sub_interval {
        Some(sub) if sub > interval => Err(Error::invalid("sub_interval", "must not exceed the interval")),
        Some(sub) if sub < Duration::from_millis(1) => {
            Err(Error::invalid("sub_interval", "must be at least 1 ms"))
        }
        _ => Ok(()),
    }
    .and_then(|()| match cluster.lease {
        Some(lease) if lease < Duration::from_millis(1) => {
            Err(Error::invalid("lease", "must be at least 1 ms"))
        }
        _ => Ok(()),
    })
}

/// Cluster options given without `.key()` or `.coordinator()`.
fn stray_option(cluster: &ClusterPlan) -> Option<Error> {
    if cluster.key.is_some() || cluster.coordinator.is_some() {
        return None;
    }
    let needs_key = |option| Some(Error::invalid(option, "requires .key()"));
    if cluster.sub_interval.is_some() {
        return needs_key("sub_interval");
    }
    if cluster.lease.is_some() {
        return needs_key("lease");
    }
    if cluster.misfire != Misfire::default() {
        return needs_key("misfire");
    }
    None
}
