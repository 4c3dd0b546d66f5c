//! The Lua modules chime-lua serves, embedded in the binary and registered in `package.preload`
//! (so a script that puts its own directories first on `package.path` still gets these).
//!
//! Each module is thin glue in Lua over the runtime (`lua/runtime.lua`), which keeps every wait on a
//! chime timer. `socket` is not preloaded: a time-only stand-in (`gettime`, `sleep`) is found last,
//! after `package.path`, for scripts that only want LuaSocket's clock.

use mlua::{Lua, Table, Value};

/// `(module name, chunk name, source)`.
const MODULES: &[(&str, &str, &str)] = &[
    ("chime", "=[chime-lua] chime.lua", include_str!("../lua/chime.lua")),
    ("copas", "=[chime-lua] copas.lua", include_str!("../lua/copas.lua")),
    ("copas.timer", "=[chime-lua] copas/timer.lua", include_str!("../lua/copas_timer.lua")),
    ("copas.queue", "=[chime-lua] copas/queue.lua", include_str!("../lua/copas_queue.lua")),
    ("copas.lock", "=[chime-lua] copas/lock.lua", include_str!("../lua/copas_lock.lua")),
    ("copas.semaphore", "=[chime-lua] copas/semaphore.lua", include_str!("../lua/copas_semaphore.lua")),
    ("copas.future", "=[chime-lua] copas/future.lua", include_str!("../lua/copas_future.lua")),
    ("copas.eventer", "=[chime-lua] copas/eventer.lua", include_str!("../lua/copas_eventer.lua")),
    ("copas.worker", "=[chime-lua] copas/worker.lua", include_str!("../lua/copas_worker.lua")),
    ("tinn", "=[chime-lua] tinn.lua", include_str!("../lua/tinn.lua")),
    ("Application", "=[chime-lua] Application.lua", include_str!("../lua/tinn_application.lua")),
    ("IOProcessor", "=[chime-lua] IOProcessor.lua", include_str!("../lua/tinn_application.lua")),
    ("Timer", "=[chime-lua] Timer.lua", include_str!("../lua/tinn_timer.lua")),
];

/// The runtime's own Lua half, run once at start with the `core` table.
pub(crate) const RUNTIME: (&str, &str) = ("=[chime-lua] runtime.lua", include_str!("../lua/runtime.lua"));

/// The LuaSocket stand-in, found after `package.path` and `package.cpath`.
const SOCKET: (&str, &str) = ("=[chime-lua] socket.lua", include_str!("../lua/socket.lua"));

/// Registers every module in `package.preload`, and the `socket` stand-in as the last searcher.
pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let package: Table = lua.globals().get("package")?;
    let preload: Table = package.get("preload")?;
    for &(name, chunk, source) in MODULES {
        let loader = lua.create_function(move |lua, args: mlua::MultiValue| {
            lua.load(source).set_name(chunk).call::<Value>(args)
        })?;
        preload.set(name, loader)?;
    }
    let searchers: Table = match package.get::<Option<Table>>("searchers")? {
        Some(t) => t,
        None => package.get("loaders")?,
    };
    let socket = lua.create_function(|lua, name: String| {
        if name != "socket" {
            return Ok(Value::Nil);
        }
        let loader = lua.load(SOCKET.1).set_name(SOCKET.0).into_function()?;
        Ok(Value::Function(loader))
    })?;
    searchers.raw_set(searchers.raw_len() + 1, socket)?;
    Ok(())
}
