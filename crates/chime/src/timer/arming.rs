//! Arming: the builder's options checked, local timers handed to the driver, cluster timers to
//! [`crate::cluster`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use super::{Timer, TimerBuilder};
use crate::clock::nanos;
use crate::cluster::{self, ClusterPlan};
use crate::driver::Driver;
use crate::driver::spawned::spawn_runs;
use crate::error::Error;
use crate::id::TimerId;
use crate::record::{ArmFn, ExpireFn, Extras, Missed, Plan, Record, Run, SharedArmFn, draw};

impl TimerBuilder<'_> {
    /// Arms the timer, owned by the returned handle (dropping it cancels the timer).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming the option: `immediate`, `first` or `missed` without
    /// `recurring`; `first` with `immediate`; a zero `interval` on a recurring timer; no expire
    /// callback (`on_expire`), or two (`on_expire`, `on_expire_async`); an `interval`, `first` or
    /// `jitter` past chime's 584-year range. For a cluster timer: a [`key`](Self::key) without a
    /// [`coordinator`](Self::coordinator) (`coordinator`) or the reverse (`key`); `sub_interval`,
    /// `lease` or `misfire` without a key; a key on a one-shot (`key`); an `interval`,
    /// `sub_interval` or `lease` under 1 ms; a `sub_interval` over the interval; `jitter`, `first`,
    /// or a `missed` policy other than [`Missed::Skip`](crate::Missed::Skip).
    ///
    /// [`Error::Shutdown`] after shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let timer = sched.timer(ms(100)).on_expire(|_| {}).arm()?;
    /// assert!(timer.is_armed());
    /// sched.sleep(ms(100)).await;
    /// assert_eq!(timer.count(), 1);
    /// let err = sched.timer(ms(100)).arm().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid option `on_expire`: a timer needs .on_expire(..) or .on_expire_async(..)");
    /// # Ok(()) }
    /// ```
    ///
    /// Copas' `copas.newtimer(..):arm(interval)`; resty.timer's `resty_timer(opts)`, which answers
    /// `nil, err` for bad options where chime answers an error naming the option.
    #[inline]
    pub fn arm(mut self) -> Result<Timer, Error> {
        if self.has_no_option() {
            match self.expire.take() {
                Some(Run::Sync(expire)) => return self.arm_bare(expire),
                other => self.expire = other,
            }
        }
        let driver = self.sched.driver().clone();
        let interval = self.interval;
        let id = self.arm_with(true)?;
        Ok(Timer::new(driver, id, interval))
    }

    /// Arms the timer detached: no handle owns it; it runs until cancelled by id (a detached
    /// one-shot is gone once it has run).
    ///
    /// # Errors
    ///
    /// As [`arm`](Self::arm).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let id = sched.timer(ms(1000)).recurring().on_expire(|_| {}).arm_detached()?;
    /// sched.sleep(ms(2500)).await;
    /// assert_eq!(sched.pending(), 1, "still running, with no handle");
    /// sched.cancel(id)?;
    /// assert_eq!(sched.pending(), 0);
    /// # Ok(()) }
    /// ```
    ///
    /// resty.timer's `detached = true`.
    pub fn arm_detached(self) -> Result<TimerId, Error> {
        self.arm_with(false)
    }

    /// A one-shot with no option but its callback: with a synchronous callback, Copas' and
    /// resty.timer's common case, and the one a timeout takes (armed, then dropped or cancelled
    /// before it fires).
    #[inline]
    fn has_no_option(&self) -> bool {
        !self.recurring
            && !self.immediate
            && self.first.is_none()
            && self.jitter.is_zero()
            && self.missed == Missed::Skip
            && self.on_arm.is_none()
            && self.on_cancel.is_none()
            && !self.cancel_on_panic
            && self.cluster.as_deref().is_none_or(ClusterPlan::is_unset)
            && self.conflict.is_none()
    }

    /// [`arm`](Self::arm) for a one-shot with a synchronous callback and no option: the only path
    /// that arms a record with no extras, which it needs none of (its callback carries the owned
    /// mark, [`crate::record::Owned`]; the handle keeps its interval; a jitter would have to be kept
    /// for re-arms, so a jittered one-shot takes `arm_with`). The same checks as `arm_with`, in the
    /// same order: a stopped scheduler, then the interval's range.
    #[inline]
    fn arm_bare(self, expire: ExpireFn) -> Result<Timer, Error> {
        let driver = self.sched.driver();
        if driver.is_stopped() {
            return Err(Error::Shutdown);
        }
        let deadline = driver.deadline_in("interval", self.interval)?;
        let id = driver.insert(deadline, Record { expire, extras: None })?;
        Ok(Timer::new(driver.clone(), id, self.interval))
    }

    fn arm_with(self, owned: bool) -> Result<TimerId, Error> {
        if let Some(conflict) = self.conflict {
            return Err(*conflict);
        }
        let driver = self.sched.driver();
        if driver.is_stopped() {
            return Err(Error::Shutdown);
        }
        let plan = Plan {
            interval: nanos(self.interval).ok_or_else(|| Error::out_of_range("interval"))?,
            recurring: self.recurring,
            immediate: self.immediate,
            first: self.first.map(|f| nanos(f).ok_or_else(|| Error::out_of_range("first"))).transpose()?,
            jitter: nanos(self.jitter).ok_or_else(|| Error::out_of_range("jitter"))?,
            missed: self.missed,
        };
        plan.validate()?;
        let run = self.expire.ok_or_else(|| {
            Error::invalid("on_expire", "a timer needs .on_expire(..) or .on_expire_async(..)")
        })?;
        let cluster = self.cluster.filter(|cluster| !cluster.is_unset());
        let (plan, expire, on_cancel, fixed) = if let Some(cluster) = cluster {
            let beat = cluster::heartbeat(self.sched, *cluster, plan, self.interval, run, self.on_cancel)?;
            (beat.plan, beat.expire, Some(beat.on_cancel), true)
        } else {
            let expire = match run {
                Run::Sync(expire) => expire,
                Run::Async(start) => spawn_runs(driver, start),
            };
            (plan, expire, self.on_cancel, false)
        };
        let (deadline, grid) = plan.start(driver.time.arm_now(), draw(plan.jitter))?;
        let on_arm = self.on_arm.map(|on_arm| first_arm(driver, on_arm));
        let extras = Extras {
            plan,
            grid,
            on_cancel,
            on_arm,
            cancel_on_panic: self.cancel_on_panic,
            owned,
            fixed,
            ..Extras::default()
        };
        driver.insert(deadline, Record { expire, extras: Some(Box::new(extras)) })
    }
}

/// Runs the arm callback for the first arming (Copas' order: before the timer is armed), and keeps
/// it for re-arms.
fn first_arm(driver: &Driver, mut on_arm: ArmFn) -> SharedArmFn {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(&mut on_arm)) {
        driver.report_panic(None, &*payload);
    }
    Arc::new(Mutex::new(on_arm))
}
