-- require "chime": chime-lua's own timer API, the one the Copas and TINN modules are built on.
-- Times are in seconds (fractions welcome). Callbacks run in tasks, so they may `chime.sleep`.
local rt = require "chime.runtime"

local chime = {
  _VERSION = "chime-lua 0.1",
  cancel = rt.cancel,         -- cancel(id) -> true if a run was still to come
  spawn = rt.spawn,           -- spawn(f, ...) -> coroutine: a task, started at the next step
  sleep = rt.sleep,           -- sleep(s): parks the running task
  yield = rt.yield,           -- yield(): lets the other tasks run
  suspend = rt.suspend,       -- suspend([timeout]) -> true, ... (woken) | false (timed out)
  wake = rt.wake,             -- wake(co, ...) -> true if co was suspended or sleeping
  kill = rt.kill,             -- kill(co): never resumed again
  run = rt.run,               -- run(): the loop, until nothing is pending or stop()
  stop = rt.stop,             -- stop(): the running loop returns after this step
  running = rt.running,       -- running() -> whether a loop runs
  now = rt.now,               -- now() -> monotonic seconds since the runtime started
  time = rt.time,             -- time() -> wall-clock seconds since the epoch
  pending = rt.pending,       -- pending() -> armed timers (and other work) keeping the loop running
}

-- after(delay, f) -> id: f(id) once, `delay` seconds from now
-- every(interval, f[, first]) -> id: f(id) every interval (the first run after `first`)
-- reschedule(id, delay) -> true: the next run `delay` from now (false for an id that is gone)

-- seterrorhandler(f): f(msg, co) gets the errors of callbacks and tasks that have no handler of
-- their own (default: message and traceback on stderr)
function chime.seterrorhandler(f)
  if f ~= nil and type(f) ~= "function" then rt.argerror(1, "seterrorhandler", "function", f) end
  rt.setdefaulthandler(f)
end

chime.traceback = rt.traceback

local function check_delay(fname, n, d)
  if type(d) ~= "number" then rt.argerror(n, fname, "number", d, d == nil) end
end

function chime.after(delay, f)
  check_delay("after", 1, delay)
  if type(f) ~= "function" then rt.argerror(2, "after", "function", f, f == nil) end
  local id, err = rt.arm_raw(f, delay)
  if not id then error("bad argument #1 to 'after' (" .. err .. ")", 2) end
  return id
end

function chime.every(interval, f, first)
  check_delay("every", 1, interval)
  if type(f) ~= "function" then rt.argerror(2, "every", "function", f, f == nil) end
  if first ~= nil then check_delay("every", 3, first) end
  local id, err = rt.arm_raw(f, first or interval, interval)
  if not id then error("bad argument #1 to 'every' (" .. err .. ")", 2) end
  return id
end

function chime.reschedule(id, delay)
  check_delay("reschedule", 2, delay)
  if type(id) ~= "number" then return false end
  local ok, err = rt.reschedule_raw(id, delay)
  if ok == nil then error("bad argument #2 to 'reschedule' (" .. err .. ")", 2) end
  return ok
end

return chime
