-- require "chime": chime-lua's own timer API, the one the Copas and TINN modules are built on.
-- Times are in seconds (fractions welcome). Callbacks run in tasks, so they may `chime.sleep`.
local rt = require "chime.runtime"

local chime = {
  _VERSION = "chime-lua 0.1",
  after = rt.after,           -- after(delay, f) -> id: f(id) once, `delay` seconds from now
  every = rt.every,           -- every(interval, f[, first]) -> id: f(id) every interval (first run after `first`)
  cancel = rt.cancel,         -- cancel(id) -> true if a run was still to come
  reschedule = rt.reschedule, -- reschedule(id, delay) -> true: next run `delay` from now
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

-- seterrorhandler(f): f(msg, co) gets the errors of callbacks and tasks that have no handler of
-- their own (default: message and traceback on stderr)
function chime.seterrorhandler(f)
  if f ~= nil and type(f) ~= "function" then rt.argerror(1, "seterrorhandler", "function", f) end
  rt.setdefaulthandler(f)
end

chime.traceback = rt.traceback

return chime
