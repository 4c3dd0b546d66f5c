//! The Rust half of Knot Resolver's `event` API: `reschedule` as Knot's `event.c` does it (the event
//! becomes a one-shot at the new time), slot states for the event table, and `event.socket` on
//! chime's fd watches.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chime::{Interest, Readiness, WatchId};
use mlua::{Lua, Table, Value};

use crate::core::{Core, fail, seconds};
use crate::slots::Kind;

struct Watch {
    id: WatchId,
    /// A message is posted and its Lua callback has not run yet.
    pending: Arc<AtomicBool>,
    /// chime called back while one was pending.
    again: Arc<AtomicBool>,
    fd: OwnedFd,
}

/// Whether `fd` is readable or hung up now (a zero-timeout `poll`).
fn ready_now(fd: &OwnedFd) -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let zero = rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 };
    matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
        && fds[0].revents().intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR)
}

/// A descriptor by number, without `unsafe`: the standard streams by their handles, any other
/// through `/proc/self/fd` (pipes, FIFOs and terminals reopen there; sockets do not).
fn descriptor(fd: i64) -> Result<OwnedFd, String> {
    let owned = match fd {
        0 => std::io::stdin().as_fd().try_clone_to_owned(),
        1 => std::io::stdout().as_fd().try_clone_to_owned(),
        2 => std::io::stderr().as_fd().try_clone_to_owned(),
        n if n >= 0 => std::fs::File::open(format!("/proc/self/fd/{n}")).map(OwnedFd::from),
        _ => return Err(format!("bad file descriptor {fd}")),
    };
    owned.map_err(|e| format!("file descriptor {fd}: {e}"))
}

/// Knot's `events` bits for a readiness: UV_READABLE (1); status is 0, or -1 for an error.
fn payload(ready: Readiness) -> u64 {
    if ready.error { 2 } else { 1 }
}

/// Adds the Knot functions to the private `core` table.
pub(crate) fn install(core: &Rc<Core>, lua: &Lua, t: &Table) -> mlua::Result<()> {
    let c = core.clone();
    t.set(
        "rearm",
        lua.create_function(move |_, (id, delay): (f64, f64)| {
            let Some(delay) = seconds(delay) else {
                return Ok(fail("timeout must be a finite number of milliseconds, at least 0"));
            };
            c.rearm(id as u64, delay)
        })?,
    )?;
    let c = core.clone();
    t.set(
        "slot_state",
        lua.create_function(move |_, id: f64| {
            Ok(match c.slot(id as u64) {
                Some(Kind::Timer { .. }) => Some("timer"),
                Some(Kind::Firing) => Some("firing"),
                Some(Kind::Target { .. }) => Some("target"),
                None => None,
            })
        })?,
    )?;

    let watches: Rc<RefCell<HashMap<u64, Watch>>> = Rc::default();
    let (c, w) = (core.clone(), watches.clone());
    t.set(
        "watch",
        lua.create_function(move |_, (value, fd): (Value, i64)| {
            let owned = match descriptor(fd) {
                Ok(fd) => fd,
                Err(e) => return Ok(fail(e)),
            };
            let slot = c.target(value, true)?;
            let pending = Arc::new(AtomicBool::new(false));
            let again = Arc::new(AtomicBool::new(false));
            let (mailbox, flag, missed) = (c.mailbox.clone(), pending.clone(), again.clone());
            let watched = {
                let _guard = c.rt.enter();
                c.sched.watch(&owned, Interest::READABLE, move |_id, ready| {
                    // one message until the Lua callback has run (a level-triggered watch would
                    // otherwise post at every turn while the descriptor stays ready); a call in
                    // between is remembered, and `watch_done` looks again
                    if flag.swap(true, Ordering::AcqRel) {
                        missed.store(true, Ordering::Release);
                    } else {
                        mailbox.post(slot, payload(ready));
                    }
                })
            };
            match watched {
                Ok(id) => {
                    w.borrow_mut().insert(slot, Watch { id, pending, again, fd: owned });
                    Ok((Some(Value::Number(slot as f64)), None))
                }
                Err(e) => {
                    c.free(slot)?;
                    Ok(fail(e.to_string()))
                }
            }
        })?,
    )?;
    let (c, w) = (core.clone(), watches.clone());
    t.set(
        "watch_done",
        lua.create_function(move |_, slot: f64| {
            if let Some(watch) = w.borrow().get(&(slot as u64)) {
                watch.pending.store(false, Ordering::Release);
                // still readable (or hung up) after the callback: call it again, as a
                // level-triggered poll does
                if watch.again.swap(false, Ordering::AcqRel)
                    && ready_now(&watch.fd)
                    && !watch.pending.swap(true, Ordering::AcqRel)
                {
                    c.mailbox.post(slot as u64, 1);
                }
            }
            Ok(())
        })?,
    )?;
    let (c, w) = (core.clone(), watches);
    t.set(
        "unwatch",
        lua.create_function(move |_, slot: f64| {
            let Some(watch) = w.borrow_mut().remove(&(slot as u64)) else { return Ok(false) };
            let _ = c.sched.unwatch(watch.id);
            c.free(slot as u64)?;
            Ok(true)
        })?,
    )?;
    Ok(())
}
