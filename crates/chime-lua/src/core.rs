//! [`Core`]: the Rust half of the Lua runtime's scheduler, and the loop.
//!
//! Lua never sees chime directly. The embedded `runtime.lua` (the Lua half) calls these functions
//! through a private table: `arm` puts a chime timer behind a slot, `cancel` and `reschedule` act on
//! it, `next` hands the dispatcher the next message the mailbox received, and `loop` runs the tokio
//! runtime (and with it chime's driver) whenever the Lua side has nothing runnable. Expected failures
//! come back as `nil, message` so that the Lua half can raise them in Lua's own style (an error
//! raised from Rust would reach Lua code as a userdata, not a string).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chime::{Fire, Scheduler, TimerId};
use mlua::{Function, Lua, Table, Value};
use tokio::time::Instant;

use crate::mailbox::{Mailbox, Msg};
use crate::slots::{Kind, Slots, split};

/// The scheduler state of one Lua runtime. Lives on the Lua thread (it is `!Send`); chime's
/// callbacks reach it only through the [`Mailbox`].
pub(crate) struct Core {
    pub(crate) sched: Scheduler,
    pub(crate) rt: Rc<tokio::runtime::Runtime>,
    pub(crate) mailbox: Arc<Mailbox>,
    /// This worker's share of its run (store, shared dictionaries).
    pub(crate) node: crate::node::Node,
    /// Runs of cluster timers waiting for their Lua callback to end (the run holds its lease until
    /// then), by slot id; freeing the slot ends the wait.
    pub(crate) runs: Arc<Mutex<HashMap<u64, tokio::sync::oneshot::Sender<()>>>>,
    slots: RefCell<Slots>,
    /// The Lua table holding each slot's value (callback or coroutine) at the slot's index + 1.
    values: Table,
    batch: RefCell<Vec<Msg>>,
    pos: Cell<usize>,
    start: Instant,
    /// Keep-alives taken by Lua modules (a worker with queued items, a dispatch being waited on).
    holds: Cell<i64>,
    stop: Cell<bool>,
    running: Cell<bool>,
    exit: Cell<Option<i32>>,
}

/// A duration from Lua seconds: finite and not negative.
pub(crate) fn seconds(value: f64) -> Option<Duration> {
    if value.is_finite() && value >= 0.0 { Duration::try_from_secs_f64(value).ok() } else { None }
}

pub(crate) type Reply = (Option<Value>, Option<String>);

/// The expire callback a slot's timer gets: it posts the slot's id.
pub(crate) type ExpireFn = Box<dyn FnMut(&Fire) + Send + 'static>;

/// A `core` table function: the Lua state, the core, the arguments.
type CoreFn = dyn Fn(&Lua, &Core, mlua::MultiValue) -> mlua::Result<mlua::MultiValue>;

pub(crate) fn fail(message: impl Into<String>) -> Reply {
    (None, Some(message.into()))
}

impl Core {
    pub(crate) fn new(
        lua: &Lua,
        sched: Scheduler,
        rt: Rc<tokio::runtime::Runtime>,
        node: crate::node::Node,
    ) -> mlua::Result<Core> {
        Ok(Core {
            sched,
            rt,
            mailbox: Arc::new(Mailbox::default()),
            node,
            runs: Arc::default(),
            slots: RefCell::new(Slots::default()),
            values: lua.create_table()?,
            batch: RefCell::new(Vec::new()),
            pos: Cell::new(0),
            start: Instant::now(),
            holds: Cell::new(0),
            stop: Cell::new(false),
            running: Cell::new(false),
            exit: Cell::new(None),
        })
    }

    /// `os.exit(code)` in an embedded runtime: the loop stops after this step.
    pub(crate) fn request_exit(&self, code: i32) {
        if self.exit.get().is_none() {
            self.exit.set(Some(code));
        }
        self.stop.set(true);
        self.mailbox.nudge();
    }

    /// The code `os.exit` was called with, if it was.
    pub(crate) fn exit_code(&self) -> Option<i32> {
        self.exit.get()
    }

    /// Things that keep the loop running: armed timers, counted targets, holds.
    pub(crate) fn pending(&self) -> i64 {
        self.slots.borrow().counted() as i64 + self.holds.get()
    }

    fn expire_callback(&self, key: u64) -> impl FnMut(&Fire) + Send + 'static {
        let mailbox = self.mailbox.clone();
        move |_fire: &Fire| mailbox.post(key, 0)
    }

    /// Arms a chime timer for `value`: after `delay` seconds, then every `interval` if given.
    fn arm(&self, value: Value, delay: f64, interval: Option<f64>) -> mlua::Result<Reply> {
        let Some(delay) = seconds(delay) else {
            return Ok(fail("delay must be a finite number of seconds, at least 0"));
        };
        let interval = match interval.map(seconds) {
            None => None,
            Some(Some(d)) if !d.is_zero() => Some(d),
            Some(_) => return Ok(fail("interval must be a finite number of seconds, more than 0")),
        };
        self.arm_with(value, interval.is_some(), |sched, _id, expire| match interval {
            None => sched.after(delay, expire),
            Some(interval) => sched.timer(interval).recurring().first(delay).on_expire(expire).arm_detached(),
        })
    }

    /// Puts a chime timer behind a new slot holding `value`: `arm` gets the scheduler, the slot's id
    /// and the expire callback that posts it, and arms the timer (detached). `Ok((id, nil))`, or
    /// `(nil, message)` when chime refuses it.
    pub(crate) fn arm_with(
        &self,
        value: Value,
        recurring: bool,
        arm: impl FnOnce(&Scheduler, u64, ExpireFn) -> Result<TimerId, chime::Error>,
    ) -> mlua::Result<Reply> {
        let (id, index) = self.slots.borrow_mut().insert(Kind::Firing);
        match arm(&self.sched, id, Box::new(self.expire_callback(id))) {
            Ok(tid) => {
                self.slots.borrow_mut().set(id, Kind::Timer { tid, recurring });
                self.values.raw_set(index + 1, value)?;
                Ok((Some(Value::Number(id as f64)), None))
            }
            Err(err) => {
                self.slots.borrow_mut().remove(id);
                Ok(fail(err.to_string()))
            }
        }
    }

    /// Knot's `reschedule`: whatever the slot's timer was (a recurring one too), it becomes a
    /// one-shot `delay` seconds from now, in the same slot. `false` for an id that is gone.
    pub(crate) fn rearm(&self, id: u64, delay: Duration) -> mlua::Result<Reply> {
        let kind = self.slots.borrow().get(id);
        match kind {
            Some(Kind::Timer { tid, .. }) => {
                let _ = self.sched.cancel(tid);
            }
            Some(Kind::Firing) => {}
            _ => return Ok((Some(Value::Boolean(false)), None)),
        }
        match self.sched.after(delay, self.expire_callback(id)) {
            Ok(tid) => {
                self.slots.borrow_mut().set(id, Kind::Timer { tid, recurring: false });
                Ok((Some(Value::Boolean(true)), None))
            }
            Err(err) => {
                self.free(id)?;
                Ok(fail(err.to_string()))
            }
        }
    }

    /// Frees a slot and its Lua value; what it was.
    pub(crate) fn free(&self, id: u64) -> mlua::Result<Option<Kind>> {
        let removed = self.slots.borrow_mut().remove(id);
        self.runs.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        match removed {
            Some((kind, index)) => {
                self.values.raw_set(index + 1, Value::Nil)?;
                Ok(Some(kind))
            }
            None => Ok(None),
        }
    }

    /// Cancels a timer or releases a target: `true` when a run (or message) was still to come.
    fn cancel(&self, id: u64) -> mlua::Result<bool> {
        Ok(match self.free(id)? {
            Some(Kind::Timer { tid, .. }) => {
                // NotFound: chime already fired it into the mailbox; the freed slot drops that
                // message, so the run is cancelled all the same.
                let _ = self.sched.cancel(tid);
                true
            }
            Some(Kind::Target { .. }) => true,
            Some(Kind::Firing) | None => false,
        })
    }

    /// Knot's `reschedule`: the next run `delay` from now (a firing one-shot is armed again).
    fn reschedule(&self, id: u64, delay: f64) -> mlua::Result<Reply> {
        let Some(delay) = seconds(delay) else {
            return Ok(fail("delay must be a finite number of seconds, at least 0"));
        };
        let kind = self.slots.borrow().get(id);
        let result = match kind {
            Some(Kind::Timer { tid, .. }) => self.sched.reschedule(tid, delay),
            Some(Kind::Firing) => self.sched.after(delay, self.expire_callback(id)).map(|tid| {
                self.slots.borrow_mut().set(id, Kind::Timer { tid, recurring: false });
            }),
            _ => return Ok((Some(Value::Boolean(false)), None)),
        };
        Ok(match result {
            Ok(()) => (Some(Value::Boolean(true)), None),
            Err(err) => fail(err.to_string()),
        })
    }

    /// What the slot with this id is, if it is live.
    pub(crate) fn slot(&self, id: u64) -> Option<Kind> {
        self.slots.borrow().get(id)
    }

    /// Releases a one-shot after its callback: `true` if it was freed (not re-armed meanwhile).
    fn fired(&self, id: u64) -> mlua::Result<bool> {
        if self.slots.borrow().get(id) == Some(Kind::Firing) {
            self.free(id)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// A slot that async Rust work (a worker relay) posts messages to.
    pub(crate) fn target(&self, value: Value, counted: bool) -> mlua::Result<u64> {
        let (id, index) = self.slots.borrow_mut().insert(Kind::Target { counted });
        self.values.raw_set(index + 1, value)?;
        Ok(id)
    }

    /// The next message of this step for a live slot: `(index, id, once, payload)`.
    fn next(&self) -> Option<(usize, u64, bool, u64)> {
        let batch = self.batch.borrow();
        loop {
            let pos = self.pos.get();
            let msg = *batch.get(pos)?;
            self.pos.set(pos + 1);
            let kind = self.slots.borrow().get(msg.key);
            let (index, _) = split(msg.key)?;
            match kind {
                Some(Kind::Timer { recurring: false, .. }) => {
                    self.slots.borrow_mut().set(msg.key, Kind::Firing);
                    return Some((index + 1, msg.key, true, msg.payload));
                }
                Some(Kind::Timer { recurring: true, .. } | Kind::Target { .. }) => {
                    return Some((index + 1, msg.key, false, msg.payload));
                }
                Some(Kind::Firing) | None => continue,
            }
        }
    }

    fn refill(&self) {
        let mut batch = self.batch.borrow_mut();
        batch.clear();
        self.pos.set(0);
        self.mailbox.take_into(&mut batch);
    }

    /// Runs the loop: `step()` runs what is due (it returns whether coroutines are still runnable);
    /// when nothing is pending, `idle()` may start more work (it returns whether it did).
    fn run(&self, step: &Function, idle: &Function) -> mlua::Result<Reply> {
        if self.running.replace(true) {
            return Ok(fail("the loop is already running (a loop cannot be started from inside one)"));
        }
        let result = self.run_inner(step, idle);
        self.running.set(false);
        result.map(|()| (Some(Value::Boolean(true)), None))
    }

    fn run_inner(&self, step: &Function, idle: &Function) -> mlua::Result<()> {
        self.stop.set(false);
        loop {
            self.refill();
            let busy: bool = step.call(())?;
            if self.stop.replace(false) || self.exit.get().is_some() {
                return Ok(());
            }
            if busy || !self.mailbox.is_empty() {
                // Let chime's driver (and the relays) run, without sleeping.
                self.rt.block_on(tokio::task::yield_now());
                continue;
            }
            if self.pending() <= 0 {
                let more: bool = idle.call(())?;
                if self.stop.replace(false) || !more {
                    return Ok(());
                }
                continue;
            }
            self.rt.block_on(self.mailbox.wait());
        }
    }

    /// Registers the functions of the private `core` table.
    pub(crate) fn install(core: &Rc<Core>, lua: &Lua) -> mlua::Result<Table> {
        let t = lua.create_table()?;
        t.set("values", core.values.clone())?;
        let add = |name: &str, f: Box<CoreFn>| {
            let core = core.clone();
            t.set(name, lua.create_function(move |lua, args: mlua::MultiValue| f(lua, &core, args))?)
        };
        macro_rules! func {
            ($name:literal, |$lua:ident, $core:ident, $args:tt : $ty:ty| $body:expr) => {
                add(
                    $name,
                    Box::new(|$lua: &Lua, $core: &Core, args: mlua::MultiValue| {
                        let $args: $ty = mlua::FromLuaMulti::from_lua_multi(args, $lua)?;
                        let result: mlua::Result<_> = $body;
                        let result = result?;
                        mlua::IntoLuaMulti::into_lua_multi(result, $lua)
                    }),
                )?;
            };
        }
        func!("arm", |_lua, core, (value, delay, interval): (Value, f64, Option<f64>)| core
            .arm(value, delay, interval));
        func!("cancel", |_lua, core, id: f64| core.cancel(id as u64));
        func!("reschedule", |_lua, core, (id, delay): (f64, f64)| core.reschedule(id as u64, delay));
        func!("fired", |_lua, core, id: f64| core.fired(id as u64));
        func!("target", |_lua, core, (value, counted): (Value, bool)| core.target(value, counted));
        func!("release", |_lua, core, id: f64| Ok(core.free(id as u64)?.is_some()));
        func!("next", |_lua, core, (): ()| {
            Ok(match core.next() {
                Some((i, id, once, p)) => (Some(i), Some(id as f64), Some(once), Some(p as f64)),
                None => (None, None, None, None),
            })
        });
        func!("now", |_lua, core, (): ()| Ok(core.start.elapsed().as_secs_f64()));
        func!("time", |_lua, _core, (): ()| {
            Ok(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()))
        });
        func!("hold", |_lua, core, n: i64| {
            core.holds.set(core.holds.get() + n);
            Ok(())
        });
        func!("pending", |_lua, core, (): ()| Ok(core.pending()));
        func!("stop", |_lua, core, (): ()| {
            core.stop.set(true);
            core.mailbox.nudge();
            Ok(())
        });
        func!("running", |_lua, core, (): ()| Ok(core.running.get()));
        func!("exiting", |_lua, core, (): ()| Ok(core.exit.get().is_some()));
        func!("run", |_lua, core, (step, idle): (Function, Function)| core.run(&step, &idle));
        func!("traceback", |lua, _core, (msg, level): (Option<String>, Option<usize>)| {
            lua.traceback(msg.as_deref(), level.unwrap_or(1))
        });
        Ok(t)
    }
}
