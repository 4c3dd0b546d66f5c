//! Copas Timer's workers on chime [`Worker`]s, and waits on their items' [`Ticket`]s.
//!
//! A Lua worker is a coroutine; its queue is a chime `Worker<u64>` whose task is a relay: each time
//! the coroutine calls `queue:pop()`, the relay takes the next item from chime's queue (which marks
//! the previous one completed, as Copas' `pop` does) and posts its key to the target slot the
//! coroutine waits on. The item's data stays on the Lua side, in the worker's table, under that key;
//! only the key crosses threads. `push` returns the chime [`Ticket`] as a userdata, so an item can
//! be cancelled while queued and its state read (`queued`, `running`, `completed`, `cancelled`...).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chime::{ItemState, Queue, Ticket, Worker};
use mlua::{AnyUserData, Lua, Table, UserData, UserDataMethods, Variadic};
use tokio::sync::Notify;

use crate::core::{Core, seconds};
use crate::mailbox::Mailbox;

/// What the relay is asked to do next.
#[derive(Debug, Default)]
struct Control {
    /// The target slot to post the next item to, once the coroutine asked for one.
    want: Mutex<Option<u64>>,
    stop: std::sync::atomic::AtomicBool,
    notify: Notify,
}

struct Entry {
    worker: Worker<u64>,
    control: Arc<Control>,
}

/// The Lua side's view of one pushed item.
struct LuaTicket(Ticket);

fn state_name(state: ItemState) -> &'static str {
    match state {
        ItemState::Queued => "queued",
        ItemState::Running => "running",
        ItemState::Completed => "completed",
        ItemState::Cancelled => "cancelled",
        ItemState::Failed => "failed",
        _ => "returned",
    }
}

impl UserData for LuaTicket {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("state", |_, this, ()| Ok(state_name(this.0.state())));
        methods.add_method("cancel", |_, this, ()| Ok(this.0.cancel()));
    }
}

async fn relay(mut queue: Queue<u64>, control: Arc<Control>, mailbox: Arc<Mailbox>) {
    loop {
        let target = loop {
            let notified = control.notify.notified();
            if control.stop.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            if let Some(target) = control.want.lock().unwrap_or_else(PoisonError::into_inner).take() {
                break target;
            }
            notified.await;
        };
        match queue.pop().await {
            // payload 0 means "closed": item keys are posted as key + 1
            Some(key) => mailbox.post(target, key + 1),
            None => {
                mailbox.post(target, 0);
                return;
            }
        }
    }
}

/// Adds the worker functions to the private `core` table.
pub(crate) fn install(core: &Rc<Core>, lua: &Lua, t: &Table) -> mlua::Result<()> {
    let workers: Rc<RefCell<HashMap<u64, Entry>>> = Rc::default();
    let next = Rc::new(Cell::new(1u64));

    let (c, w) = (core.clone(), workers.clone());
    t.set(
        "worker_new",
        lua.create_function(move |_, name: String| {
            let control = Arc::new(Control::default());
            let (ctl, mailbox) = (control.clone(), c.mailbox.clone());
            let worker = {
                let _guard = c.rt.enter();
                c.sched
                    .worker_builder()
                    .name(name)
                    .spawn(move |queue| relay(queue, ctl.clone(), mailbox.clone()))
            };
            let id = next.get();
            next.set(id + 1);
            w.borrow_mut().insert(id, Entry { worker, control });
            Ok(id)
        })?,
    )?;

    let w = workers.clone();
    t.set(
        "worker_push",
        lua.create_function(move |lua, (id, key): (u64, u64)| {
            let map = w.borrow();
            let Some(entry) = map.get(&id) else { return Ok((None, Some("the worker has stopped"))) };
            match entry.worker.push(key) {
                Ok(ticket) => Ok((Some(lua.create_userdata(LuaTicket(ticket))?), None)),
                Err(_) => Ok((None, Some("the worker has stopped"))),
            }
        })?,
    )?;

    let w = workers.clone();
    t.set(
        "worker_want",
        lua.create_function(move |_, (target, id): (f64, u64)| {
            let map = w.borrow();
            let Some(entry) = map.get(&id) else { return Ok(false) };
            *entry.control.want.lock().unwrap_or_else(PoisonError::into_inner) = Some(target as u64);
            entry.control.notify.notify_one();
            Ok(true)
        })?,
    )?;

    let w = workers.clone();
    t.set(
        "worker_stop",
        lua.create_function(move |_, id: u64| {
            let Some(entry) = w.borrow_mut().remove(&id) else { return Ok(false) };
            entry.control.stop.store(true, std::sync::atomic::Ordering::Release);
            entry.control.notify.notify_one();
            entry.worker.close();
            Ok(true)
        })?,
    )?;

    // await_tickets(target, timeout, ticket...): posts 1 to `target` when every item has reached a
    // final state, 0 if `timeout` seconds pass first.
    let c = core.clone();
    t.set(
        "await_tickets",
        lua.create_function(
            move |_, (target, timeout, tickets): (f64, Option<f64>, Variadic<AnyUserData>)| {
                let tickets: Vec<Ticket> = tickets
                    .iter()
                    .map(|ud| ud.borrow::<LuaTicket>().map(|t| t.0.clone()))
                    .collect::<mlua::Result<_>>()?;
                let limit = timeout.and_then(seconds).unwrap_or(Duration::MAX);
                let (sched, mailbox, target) = (c.sched.clone(), c.mailbox.clone(), target as u64);
                c.rt.spawn(async move {
                    let all = async {
                        for ticket in &tickets {
                            ticket.done().await;
                        }
                    };
                    let done = if limit == Duration::MAX {
                        all.await;
                        true
                    } else {
                        sched.timeout(limit, all).await.is_ok()
                    };
                    mailbox.post(target, u64::from(done));
                });
                Ok(())
            },
        )?,
    )?;
    Ok(())
}
