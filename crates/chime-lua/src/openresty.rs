//! The Rust half of `ngx` and `resty.timer`: timers with resty's options (jitter, immediate),
//! node-wide timers on chime's cluster timers, `ngx.shared` on [`Shdicts`](crate::shdict), the
//! caller's position for `ngx.log`, and the worker's place in its run.

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use mlua::{Lua, MultiValue, Table, Value};

use crate::core::{Core, Reply, fail, seconds};
use crate::shdict::{Mode, Val};

fn duration(value: f64, what: &str) -> Result<Duration, String> {
    seconds(value).ok_or_else(|| {
        if value.is_finite() && value > 0.0 {
            format!("{what} is too large ({value} seconds)")
        } else {
            format!("{what} must be a finite number of seconds, at least 0")
        }
    })
}

fn to_val(value: &Value) -> Result<Option<Val>, &'static str> {
    match value {
        Value::Nil => Ok(None),
        Value::Boolean(b) => Ok(Some(Val::Bool(*b))),
        Value::Integer(n) => Ok(Some(Val::Num(*n as f64))),
        Value::Number(n) => Ok(Some(Val::Num(*n))),
        Value::String(s) => Ok(Some(Val::Str(s.as_bytes().to_vec()))),
        _ => Err("bad value type"),
    }
}

fn from_val(lua: &Lua, value: Val) -> mlua::Result<Value> {
    Ok(match value {
        Val::Bool(b) => Value::Boolean(b),
        Val::Num(n) => Value::Number(n),
        Val::Str(s) => Value::String(lua.create_string(&s)?),
    })
}

/// Adds the `ngx` / `resty.timer` functions to the private `core` table.
pub(crate) fn install(core: &Rc<Core>, lua: &Lua, t: &Table) -> mlua::Result<()> {
    // resty_arm(value, interval, recurring, immediate, jitter) -> id | nil, err: a local resty timer
    let c = core.clone();
    t.set(
        "resty_arm",
        lua.create_function(
            move |_, (value, interval, recurring, immediate, jitter): (Value, f64, bool, bool, f64)| {
                let (interval, jitter) = match (duration(interval, "interval"), duration(jitter, "jitter")) {
                    (Ok(i), Ok(j)) => (i, j),
                    (Err(e), _) | (_, Err(e)) => return Ok(fail(e)),
                };
                c.arm_with(value, recurring, |sched, _id, expire| {
                    let mut b = sched.timer(interval).jitter(jitter);
                    if recurring {
                        b = b.recurring();
                    }
                    if immediate {
                        b = b.immediate();
                    }
                    b.on_expire(expire).arm_detached()
                })
            },
        )?,
    )?;

    // cluster_arm(value, key, interval, sub_interval, immediate) -> id | nil, err: a node-wide timer
    let c = core.clone();
    t.set(
        "cluster_arm",
        lua.create_function(
            move |_,
                  (value, key, interval, sub, immediate): (Value, String, f64, f64, bool)|
                  -> mlua::Result<Reply> {
                let (interval, sub) = match (duration(interval, "interval"), duration(sub, "sub_interval")) {
                    (Ok(i), Ok(s)) => (i, s),
                    (Err(e), _) | (_, Err(e)) => return Ok(fail(e)),
                };
                let store = match c.node.store(&c.rt) {
                    Ok(store) => store,
                    Err(e) => return Ok(fail(e)),
                };
                let anchor: SystemTime = match store.anchor(&key, &c.rt) {
                    Ok(anchor) => anchor,
                    Err(e) => return Ok(fail(e)),
                };
                let _guard = c.rt.enter();
                let (mailbox, runs) = (c.mailbox.clone(), c.runs.clone());
                c.arm_with(value, true, |sched, slot, _expire| {
                    // each run holds its lease until the Lua callback has ended (`cluster_done`),
                    // so runs never overlap across workers; the fence travels as the payload
                    let run = move |fire: chime::Fire| {
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        runs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(slot, tx);
                        mailbox.post(slot, fire.fence().unwrap_or(0));
                        async move {
                            let _ = rx.await;
                        }
                    };
                    let mut b = sched.timer(interval).recurring().key(key).coordinator(store);
                    if !sub.is_zero() {
                        b = b.sub_interval(sub);
                    }
                    b = b.anchor(anchor);
                    if immediate {
                        b = b.immediate();
                    }
                    b.on_expire_async(run).arm_detached()
                })
            },
        )?,
    )?;

    // cluster_done(slot): the Lua callback of a cluster timer's run has ended; its lease goes
    let c = core.clone();
    t.set(
        "cluster_done",
        lua.create_function(move |_, slot: f64| {
            let done =
                c.runs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&(slot as u64));
            if let Some(tx) = done {
                let _ = tx.send(());
            }
            Ok(())
        })?,
    )?;

    // where(level) -> "source:line", "function": the caller's position, for ngx.log
    t.set(
        "where",
        lua.create_function(|lua, level: usize| {
            Ok(lua
                .inspect_stack(level, |d| {
                    let source = d.source().short_src.map(|s| s.to_string()).unwrap_or_default();
                    // a chunk (the request handler, the main chunk) has no name of its own
                    let name =
                        if d.source().what == "main" { None } else { d.names().name.map(|n| n.to_string()) };
                    (format!("{source}:{}", d.current_line().unwrap_or(0)), name)
                })
                .unwrap_or_default())
        })?,
    )?;

    let c = core.clone();
    t.set(
        "worker",
        lua.create_function(move |_, ()| {
            let n = &c.node.config;
            Ok((n.worker_id, n.workers, std::process::id()))
        })?,
    )?;

    install_shdict(core, lua, t)
}

/// `shd(op, dict, ...)`: every `ngx.shared.DICT` operation. Errors of the store are raised; the
/// dictionary's own answers (`"exists"`, `"not found"`...) come back as values, as OpenResty's do.
fn install_shdict(core: &Rc<Core>, lua: &Lua, t: &Table) -> mlua::Result<()> {
    let c = core.clone();
    t.set(
        "shdict_declared",
        lua.create_function(move |lua, ()| {
            let names = lua.create_table()?;
            for (name, _) in &c.node.config.shdicts {
                names.raw_set(name.as_str(), true)?;
            }
            Ok(names)
        })?,
    )?;
    let c = core.clone();
    t.set(
        "shd",
        lua.create_function(move |lua, args: MultiValue| {
            let dicts = c.node.shdicts().map_err(mlua::Error::runtime)?;
            let s = |text: &str| lua.create_string(text).map(Value::String);
            let mut args = args.into_iter();
            let op: String = lua.unpack(args.next().unwrap_or(Value::Nil))?;
            let dict: String = lua.unpack(args.next().unwrap_or(Value::Nil))?;
            let key: mlua::String = lua.unpack(args.next().unwrap_or(Value::Nil))?;
            let key = key.as_bytes().to_vec();
            let mut rest: Vec<Value> = args.collect();
            rest.resize(4, Value::Nil);
            let num = |v: &Value| -> Option<f64> {
                match v {
                    Value::Integer(n) => Some(*n as f64),
                    Value::Number(n) => Some(*n),
                    _ => None,
                }
            };
            let err = mlua::Error::runtime;
            let out: Vec<Value> = match op.as_str() {
                "get" | "get_stale" => {
                    match dicts.borrow().get(&dict, &key, op == "get_stale").map_err(err)? {
                        None => vec![Value::Nil],
                        Some((v, flags, stale)) => {
                            let flags = if flags != 0 { Value::Number(flags as f64) } else { Value::Nil };
                            vec![from_val(lua, v)?, flags, Value::Boolean(stale)]
                        }
                    }
                }
                "set" | "add" | "replace" => {
                    let value = match to_val(&rest[0]) {
                        Ok(v) => v,
                        Err(e) => return lua.pack_multi((false, e, false)),
                    };
                    let mode = match op.as_str() {
                        "add" => Mode::Add,
                        "replace" => Mode::Replace,
                        _ => Mode::Set,
                    };
                    let exptime = num(&rest[1]).unwrap_or(0.0);
                    let flags = num(&rest[2]).unwrap_or(0.0) as i64;
                    match dicts.borrow_mut().store(&dict, &key, value, exptime, flags, mode).map_err(err)? {
                        None => vec![Value::Boolean(true), Value::Nil, Value::Boolean(false)],
                        Some(e) => vec![Value::Boolean(false), s(e)?, Value::Boolean(false)],
                    }
                }
                "incr" => {
                    let Some(by) = num(&rest[0]) else {
                        return lua.pack_multi((Value::Nil, "value not a number"));
                    };
                    match dicts
                        .borrow_mut()
                        .incr(&dict, &key, by, num(&rest[1]), num(&rest[2]).unwrap_or(0.0))
                        .map_err(err)?
                    {
                        Ok(v) => vec![Value::Number(v), Value::Nil],
                        Err(e) => vec![Value::Nil, s(e)?],
                    }
                }
                "delete" => {
                    dicts.borrow().delete(&dict, &key).map_err(err)?;
                    vec![]
                }
                "ttl" => match dicts.borrow().ttl(&dict, &key).map_err(err)? {
                    Some(t) => vec![Value::Number(t)],
                    None => vec![Value::Nil, s("not found")?],
                },
                "expire" => {
                    match dicts.borrow().expire(&dict, &key, num(&rest[0]).unwrap_or(0.0)).map_err(err)? {
                        true => vec![Value::Boolean(true)],
                        false => vec![Value::Nil, s("not found")?],
                    }
                }
                "flush_all" | "flush_expired" => {
                    let max = num(&rest[0]).unwrap_or(0.0) as i64;
                    vec![Value::Number(
                        dicts.borrow().flush(&dict, op == "flush_expired", max).map_err(err)? as f64
                    )]
                }
                "get_keys" => {
                    let max = num(&rest[0]).unwrap_or(1024.0) as i64;
                    let keys = dicts.borrow().keys(&dict, max).map_err(err)?;
                    let list = lua.create_table()?;
                    for (i, k) in keys.iter().enumerate() {
                        list.raw_set(i + 1, lua.create_string(k)?)?;
                    }
                    vec![Value::Table(list)]
                }
                "capacity" => vec![Value::Number(dicts.borrow().capacity(&dict).unwrap_or(0) as f64)],
                "free_space" => {
                    let cap = dicts.borrow().capacity(&dict).unwrap_or(0);
                    vec![Value::Number(cap.saturating_sub(dicts.borrow().used(&dict).map_err(err)?) as f64)]
                }
                other => {
                    return Err(mlua::Error::runtime(format!("unknown shared dictionary operation {other}")));
                }
            };
            Ok(MultiValue::from_iter(out))
        })?,
    )?;
    Ok(())
}
