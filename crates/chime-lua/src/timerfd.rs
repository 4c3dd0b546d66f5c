//! The Rust half of Ratchet's `ratchet.timerfd`: each timer is a chime kernel [`Ticker`] (a Linux
//! `timerfd`). A `read` that finds nothing parks the Lua thread on an async read whose count is
//! banked here, so a reader killed while waiting loses no expiration.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant as StdInstant, SystemTime, UNIX_EPOCH};

use chime::{Clock, Ticker};
use mlua::{Lua, Table};
use rustix::time::ClockId;

use crate::core::Core;

struct State {
    ticker: Ticker,
    /// Expirations an async read took that no Lua read has returned yet.
    banked: u64,
    /// The error an async read ended with.
    error: Option<String>,
}

struct Tfd {
    state: Arc<Mutex<State>>,
    clock: Clock,
    wait: Option<tokio::task::AbortHandle>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn clock_of(name: &str) -> Option<Clock> {
    match name {
        "monotonic" => Some(Clock::Monotonic),
        "realtime" => Some(Clock::Realtime),
        "boottime" => Some(Clock::Boottime),
        _ => None,
    }
}

fn duration(seconds: f64) -> Option<Option<Duration>> {
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(seconds).ok().filter(|d| !d.is_zero()))
}

fn secs(d: Option<Duration>) -> f64 {
    d.map_or(0.0, |d| d.as_secs_f64())
}

type Timers = Rc<RefCell<HashMap<u64, Tfd>>>;

/// Adds the timerfd functions to the private `core` table.
pub(crate) fn install(core: &Rc<Core>, lua: &Lua, t: &Table) -> mlua::Result<()> {
    let timers: Timers = Rc::default();
    let next = Rc::new(std::cell::Cell::new(1u64));

    let (c, ts) = (core.clone(), timers.clone());
    t.set(
        "tfd_new",
        lua.create_function(move |_, clock: String| {
            let Some(clock) = clock_of(&clock) else {
                return Ok((None, Some(format!("invalid option '{clock}'"))));
            };
            let ticker = {
                let _guard = c.rt.enter();
                Ticker::new(clock)
            };
            match ticker {
                Ok(ticker) => {
                    let id = next.get();
                    next.set(id + 1);
                    let state = Arc::new(Mutex::new(State { ticker, banked: 0, error: None }));
                    ts.borrow_mut().insert(id, Tfd { state, clock, wait: None });
                    Ok((Some(id), None))
                }
                Err(e) => Ok((None, Some(e.to_string()))),
            }
        })?,
    )?;

    // tfd_settime(id, value, interval, absolute) -> old value, old interval | nil, err
    let ts = timers.clone();
    t.set(
        "tfd_settime",
        lua.create_function(move |_, (id, value, interval, absolute): (u64, f64, f64, bool)| {
            let map = ts.borrow();
            let Some(tfd) = map.get(&id) else { return Ok((None, None, Some("closed".to_string()))) };
            let (Some(value), Some(interval)) = (duration(value), duration(interval)) else {
                return Ok((None, None, Some("times must be finite numbers of seconds, at least 0".into())));
            };
            let mut state = lock(&tfd.state);
            state.banked = 0; // settime resets the count, as timerfd_settime does
            let old = match (value, absolute) {
                (Some(at), true) => {
                    let deadline = absolute_deadline(tfd.clock, at);
                    state.ticker.settime_at(deadline, interval)
                }
                (value, _) => state.ticker.settime(value, interval),
            };
            match old {
                Ok((v, i)) => Ok((Some(secs(v)), Some(secs(i)), None)),
                Err(e) => Ok((None, None, Some(e.to_string()))),
            }
        })?,
    )?;

    let ts = timers.clone();
    t.set(
        "tfd_gettime",
        lua.create_function(move |_, id: u64| {
            let map = ts.borrow();
            let Some(tfd) = map.get(&id) else { return Ok((None, None)) };
            let (v, i) = lock(&tfd.state).ticker.gettime();
            Ok((Some(secs(v)), Some(secs(i))))
        })?,
    )?;

    // tfd_try(id) -> count (0: none yet) | nil, err
    let ts = timers.clone();
    t.set(
        "tfd_try",
        lua.create_function(move |_, id: u64| {
            let map = ts.borrow();
            let Some(tfd) = map.get(&id) else { return Ok((None, Some("closed".to_string()))) };
            let mut state = lock(&tfd.state);
            if let Some(e) = state.error.take() {
                return Ok((None, Some(e)));
            }
            let banked = std::mem::take(&mut state.banked);
            match state.ticker.try_read() {
                Ok(n) => Ok((Some(banked + n), None)),
                Err(e) => Ok((None, Some(e.to_string()))),
            }
        })?,
    )?;

    // tfd_wait(target, id): posts to `target` once an expiration (or an error) is banked
    let (c, ts) = (core.clone(), timers.clone());
    t.set(
        "tfd_wait",
        lua.create_function(move |_, (target, id): (f64, u64)| {
            let mut map = ts.borrow_mut();
            let Some(tfd) = map.get_mut(&id) else { return Ok(false) };
            if let Some(old) = tfd.wait.take() {
                old.abort();
            }
            let (state, mailbox, target) = (tfd.state.clone(), c.mailbox.clone(), target as u64);
            let task = c.rt.spawn(async move {
                let read = std::future::poll_fn(|cx| lock(&state).ticker.poll_read(cx)).await;
                {
                    let mut state = lock(&state);
                    match read {
                        Ok(n) => state.banked += n,
                        Err(e) => state.error = Some(e.to_string()),
                    }
                }
                mailbox.post(target, 1);
            });
            tfd.wait = Some(task.abort_handle());
            Ok(true)
        })?,
    )?;

    let ts = timers.clone();
    t.set(
        "tfd_fd",
        lua.create_function(move |_, id: u64| {
            let map = ts.borrow();
            Ok(map.get(&id).and_then(|tfd| lock(&tfd.state).ticker.as_fd().map(|fd| fd.as_raw_fd())))
        })?,
    )?;

    let ts = timers;
    t.set(
        "tfd_close",
        lua.create_function(move |_, id: u64| {
            let Some(tfd) = ts.borrow_mut().remove(&id) else { return Ok(false) };
            if let Some(wait) = tfd.wait {
                wait.abort();
            }
            Ok(true)
        })?,
    )?;
    Ok(())
}

/// An absolute time of `clock` (seconds since its epoch) as a monotonic deadline.
fn absolute_deadline(clock: Clock, at: Duration) -> tokio::time::Instant {
    let now = match clock {
        Clock::Realtime => SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default(),
        other => {
            let id = if other == Clock::Boottime { ClockId::Boottime } else { ClockId::Monotonic };
            let ts = rustix::time::clock_gettime(id);
            Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.max(0) as u32)
        }
    };
    let base = tokio::time::Instant::from_std(StdInstant::now());
    match at.checked_sub(now) {
        Some(ahead) => base + ahead,
        None => base,
    }
}
