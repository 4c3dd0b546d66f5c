//! A cluster timer's options as the builder collects them, and the rules they must follow.

use std::sync::Arc;
use std::time::Duration;

use super::{Coordinator, Misfire};
use crate::error::Error;
use crate::record::{Missed, Plan};

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

    /// Checks the cluster options against the timer's own `plan` (validated as a local one).
    pub(crate) fn validate(&self, plan: &Plan, interval: Duration) -> Result<(), Error> {
        match stray_option(self) {
            Some(stray) => Err(stray),
            None => validate_rules(self, plan, interval),
        }
    }
}

/// The options a cluster timer refuses or needs.
fn validate_rules(cluster: &ClusterPlan, plan: &Plan, interval: Duration) -> Result<(), Error> {
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
