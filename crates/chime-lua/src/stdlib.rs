//! What the safe Lua state lacks or must do differently in chime-lua: `os.exit` in an embedded
//! runtime, and LuaJIT's `newproxy` in the Lua 5.4 flavour. (`debug.traceback` comes from
//! `lua/runtime.lua`: the safe state has no `debug` library.)

use std::rc::Rc;

use mlua::{Lua, Table, Value};

use crate::core::Core;

/// Lua 5.4 has no `newproxy`: a table whose metatable already has a `__gc` field stands in for the
/// userdata (Lua 5.4 only finalizes objects whose metatable had `__gc` when it was set, so the
/// placeholder is what lets a later `getmetatable(p).__gc = f` work).
#[cfg(feature = "lua54")]
const NEWPROXY: &str = r#"
local setmetatable, getmetatable, type = setmetatable, getmetatable, type
function newproxy(arg)
  if arg == true then
    return setmetatable({}, { __gc = function() end })
  elseif arg then
    local mt = getmetatable(arg)
    if type(mt) ~= "table" or type(arg) ~= "table" then
      error("bad argument #1 to 'newproxy' (boolean or proxy expected)", 2)
    end
    return setmetatable({}, mt)
  end
  return {}
end
"#;

/// The exit code `os.exit` gives for its argument, as `lua` does.
fn exit_code(value: &Value) -> i32 {
    match value {
        Value::Nil | Value::Boolean(true) => 0,
        Value::Boolean(false) => 1,
        Value::Integer(n) => *n as i32,
        Value::Number(n) => *n as i32,
        _ => 1,
    }
}

pub(crate) fn install(lua: &Lua, core: &Rc<Core>, exit_process: bool) -> mlua::Result<()> {
    #[cfg(feature = "lua54")]
    lua.load(NEWPROXY).set_name("=[chime-lua] newproxy").exec()?;
    let os: Table = lua.globals().get("os")?;
    if !exit_process {
        let core = core.clone();
        os.set(
            "exit",
            lua.create_function(move |_, code: Value| -> mlua::Result<()> {
                core.request_exit(exit_code(&code));
                Err(mlua::Error::runtime("os.exit"))
            })?,
        )?;
    } else {
        // Lua's own os.exit ends the process (C's exit flushes Lua's output); only the runtime's
        // loop must know it is not coming back, which it does not need to.
        let _ = core;
    }
    Ok(())
}
