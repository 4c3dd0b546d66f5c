-- chime-lua's runtime, the Lua half: the dispatcher, tasks (coroutines the runtime resumes), parking
-- and waking, and the public `chime` module. The Rust half (`core`, passed in) owns the timers: every
-- wait here is a chime timer behind a slot, and the loop sleeps in tokio until chime fires one.
--
-- Where things are kept, so that the garbage collector can do its work:
--   core.values[index]  the slot's value: a callback, or the coroutine a timer wakes (strong: an armed
--                        timer is pending work)
--   tasks[co]           every coroutine the runtime runs, with its error handler (weak keys)
--   parked[co]          what a parked task waits on: a timer id, or false for "until woken" (weak
--                        keys: a task nobody can wake is garbage, as in Copas)
--   runq                tasks to resume at the next step (strong)
-- The dispatcher allocates nothing on the Lua heap for a timer run or a wake-up without values.

local core = ...
local values, next_msg, fired, arm, cancel = core.values, core.next, core.fired, core.arm, core.cancel
local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local co_status, co_running = coroutine.status, coroutine.running
local unpack = table.unpack or unpack
local select, type, xpcall, pcall, tostring, error = select, type, xpcall, pcall, tostring, error

local PARK = setmetatable({}, { __tostring = function() return "chime-lua park" end })
local DONE = setmetatable({}, { __tostring = function() return "chime-lua done" end })

local tasks = setmetatable({}, { __mode = "k" })
local parked = setmetatable({}, { __mode = "k" })
local stacks = setmetatable({}, { __mode = "k" })
local killed = setmetatable({}, { __mode = "k" })
local names = setmetatable({}, { __mode = "k" })

-- the run queue, double-buffered: entries added while a step runs wait for the next step
local runq, runa, runv, runq_n = {}, {}, {}, 0
local spare_q, spare_a, spare_v = {}, {}, {}
local pool, pool_n = {}, 0

local M = {}

---------------------------------------------------------------------------------------------------
-- errors
---------------------------------------------------------------------------------------------------

local function is_main(co)
  local _, main = co_running()
  return co == nil or main
end

-- The xpcall handler of tasks and callbacks: keeps the failing coroutine's stack, which the safe
-- Lua state's debug library could not fetch later.
local function capture(msg)
  local co, main = co_running()
  if co and not main then
    stacks[co] = core.traceback(nil, 2)
  end
  return msg
end

local function default_report(msg, co)
  local name = co and names[co]
  io.stderr:write("chime-lua: ", name and ("error in " .. name .. ": ") or "", tostring(msg), "\n",
    (co and stacks[co]) or "", "\n")
end
local default_handler = default_report

local function report(handler, msg, co)
  if core.exiting() then return end -- os.exit unwinding through a task, not an error
  local ok, err = pcall(handler or default_handler, msg, co)
  if not ok then
    io.stderr:write("chime-lua: the error handler failed: ", tostring(err), "\n(while reporting: ",
      tostring(msg), ")\n")
  end
end

-- a Lua-style argument error, raised at the caller of the API function
function M.argerror(n, fname, expected, value, absent)
  local got = absent and "no value" or type(value)
  error(("bad argument #%d to '%s' (%s expected, got %s)"):format(n, fname, expected, got), 3)
end

---------------------------------------------------------------------------------------------------
-- tasks
---------------------------------------------------------------------------------------------------

local function push_run(co, a, ...)
  local n = runq_n + 1
  runq_n = n
  runq[n], runa[n] = co, a
  if select("#", ...) > 0 then
    runv[n] = { n = select("#", ...), ... }
  end
end

local function task_body(f, ...)
  local function finish(ok, ...)
    if not ok then
      error((...), 0)
    end
    return ...
  end
  return finish(xpcall(f, capture, ...))
end

-- A pooled coroutine runs callbacks one after another; a callback that parks keeps it, and it comes
-- back to the pool when that callback ends.
local function pool_body(f, id, payload)
  while true do
    local ok, err = xpcall(f, capture, id, payload)
    if not ok then
      local co = co_running()
      report(tasks[co], err, co)
    end
    f, id, payload = co_yield(DONE)
  end
end

local function resume(co, ...)
  local ok, a = co_resume(co, ...)
  if not ok then
    local handler = tasks[co]
    tasks[co], parked[co] = nil, nil
    report(handler, a, co)
  elseif a == DONE then
    names[co] = nil
    pool_n = pool_n + 1
    pool[pool_n] = co
  elseif a == PARK then
    -- parked: whatever parked it arranged how it wakes
  elseif co_status(co) == "dead" then
    tasks[co] = nil
  elseif tasks[co] ~= nil then
    push_run(co) -- a bare coroutine.yield() from a task: run again at the next step
  end
end

local function run_callback(f, id, payload, handler, name)
  local co
  if pool_n > 0 then
    co = pool[pool_n]
    pool[pool_n] = nil
    pool_n = pool_n - 1
  else
    co = co_create(pool_body)
  end
  tasks[co] = handler or false
  if name then names[co] = name end
  resume(co, f, id, payload)
end

-- One turn of the loop: the messages chime posted, then the tasks that were runnable.
local function step()
  while true do
    local index, id, once, payload = next_msg()
    if not index then break end
    local v = values[index]
    if type(v) == "thread" then
      if parked[v] == id then
        parked[v] = nil
        if once then
          fired(id)
          if not killed[v] then resume(v, false) end -- a sleep or a suspend's timeout
        else
          core.release(id)
          if not killed[v] then resume(v, true, payload) end -- an awaited async operation
        end
      elseif once then
        fired(id)
      end
    elseif v ~= nil then
      run_callback(v, id, payload)
      if once then fired(id) end
    end
  end
  local n = runq_n
  if n > 0 then
    local q, a, v = runq, runa, runv
    runq, runa, runv, runq_n = spare_q, spare_a, spare_v, 0
    for i = 1, n do
      local co, x, extra = q[i], a[i], v[i]
      q[i], a[i], v[i] = nil, nil, nil
      if not killed[co] then
        if extra then resume(co, x, unpack(extra, 1, extra.n)) else resume(co, x) end
      end
    end
    spare_q, spare_a, spare_v = q, a, v
  end
  return runq_n > 0
end

local function current_task(what, level)
  local co, main = co_running()
  if co == nil or main or tasks[co] == nil then
    error(what .. " must be called from a task (a coroutine the runtime runs), not from the main chunk"
      .. " or a coroutine of your own", (level or 2) + 1)
  end
  return co
end

-- Starts `f(...)` as a task at the next step; `handler(msg, co)` gets its error, if any.
function M.spawn_with(handler, name, f, ...)
  local co = co_create(task_body)
  tasks[co] = handler or false
  if name then names[co] = name end
  push_run(co, f, ...)
  return co
end

function M.spawn(f, ...)
  if type(f) ~= "function" then M.argerror(1, "spawn", "function", f, select("#", ...) == 0 and f == nil) end
  return M.spawn_with(nil, nil, f, ...)
end

-- Parks the running task for `s` seconds.
function M.sleep(s)
  local co = current_task("sleep")
  if type(s) ~= "number" then M.argerror(1, "sleep", "number", s, s == nil) end
  if s <= 0 then
    push_run(co)
    co_yield(PARK)
    return
  end
  local id, err = arm(co, s)
  if not id then error("bad argument #1 to 'sleep' (" .. err .. ")", 2) end
  parked[co] = id
  co_yield(PARK)
end

-- Parks the running task until `wake(co, ...)` (returns true, ...) or, with a timeout in seconds,
-- until it passes (returns false). A task parked without a timeout does not keep the loop running.
function M.suspend(timeout)
  local co = current_task("suspend")
  if timeout ~= nil and timeout ~= math.huge then
    if type(timeout) ~= "number" then M.argerror(1, "suspend", "number", timeout) end
    local id, err = arm(co, timeout > 0 and timeout or 0)
    if not id then error("bad argument #1 to 'suspend' (" .. err .. ")", 2) end
    parked[co] = id
  else
    parked[co] = false
  end
  return co_yield(PARK)
end

-- Parks the running task until the async operation that `start(target, ...)` begins posts to
-- `target` (a slot id); returns its payload, or nil if the task was woken first. A `counted` wait
-- keeps the loop running.
function M.await(counted, start, ...)
  local co = current_task("await")
  local id = core.target(co, counted and true or false)
  parked[co] = id
  start(id, ...)
  local _, payload = co_yield(PARK)
  return payload
end

-- Makes a parked task runnable at the next step, resuming it with (true, ...); false if it was
-- not parked.
function M.wake(co, ...)
  local p = parked[co]
  if p == nil or killed[co] then return false end
  parked[co] = nil
  if p then cancel(p) end
  push_run(co, true, ...)
  return true
end

-- Whether the task waits in `suspend`/`sleep`.
function M.parked(co)
  return parked[co] ~= nil
end

-- The runtime never resumes `co` again (its timer is cancelled); false if it is not a task.
function M.kill(co)
  if tasks[co] == nil or killed[co] then return false end
  local p = parked[co]
  if p then cancel(p) end
  parked[co], tasks[co] = nil, nil
  killed[co] = true
  return true
end

function M.busy()
  return runq_n > 0
end

function M.istask(co)
  return tasks[co] ~= nil
end

function M.seterrorhandler(co, handler)
  if tasks[co] ~= nil then tasks[co] = handler or false end
end

function M.setdefaulthandler(handler)
  default_handler = handler or default_report
end

function M.setname(co, name) names[co] = name end
function M.getname(co) return names[co] end

-- Yields the running task to the others (it runs again at the next step).
function M.yield()
  local co = current_task("yield")
  push_run(co)
  co_yield(PARK)
end

---------------------------------------------------------------------------------------------------
-- timers: callbacks run in pooled tasks, so they may sleep
---------------------------------------------------------------------------------------------------

function M.cancel(id)
  if type(id) ~= "number" then return false end
  return core.cancel(id)
end

-- internal: arm with any slot value (a coroutine or a wrapper), raising errors at `level`
function M.arm(value, delay, interval, fname, level)
  local id, err = arm(value, delay, interval)
  if not id then error("bad argument #1 to '" .. fname .. "' (" .. err .. ")", (level or 2) + 1) end
  return id
end

M.run_callback = run_callback
M.arm_raw = arm
M.reschedule_raw = core.reschedule
M.now, M.time, M.pending = core.now, core.time, core.pending
M.hold, M.target, M.release = core.hold, core.target, core.release
M.PARK = PARK
M.worker_new, M.worker_push, M.worker_want = core.worker_new, core.worker_push, core.worker_want
M.worker_stop, M.await_tickets = core.worker_stop, core.await_tickets

---------------------------------------------------------------------------------------------------
-- the loop
---------------------------------------------------------------------------------------------------

local function no_idle() return false end

-- Runs until nothing is pending (no timer armed, no task runnable), or `stop()`.
function M.run(idle)
  local ok, err = core.run(step, idle or no_idle)
  if not ok then error(err, 2) end
  -- os.exit in an embedded runtime: the code that started the loop does not go on either
  if core.exiting() then error("os.exit", 0) end
end

M.stop, M.running, M.exiting = core.stop, core.running, core.exiting

---------------------------------------------------------------------------------------------------
-- debug.traceback for a safe Lua state (which has no `debug` library)
---------------------------------------------------------------------------------------------------

local function traceback(thread, msg, level)
  if type(thread) ~= "thread" then
    thread, msg, level = nil, thread, msg
  end
  if msg ~= nil and type(msg) ~= "string" and type(msg) ~= "number" then
    return msg
  end
  local current = co_running()
  if thread == nil or thread == current then
    local text = core.traceback(msg and tostring(msg), (level or 1) + 1)
    return text -- not a tail call: the level counts this function's frame
  end
  local stack = stacks[thread]
    or "stack traceback:\n\t(not available for a suspended coroutine in chime-lua)"
  if msg == nil then return stack end
  return tostring(msg) .. "\n" .. stack
end

-- Runs the main chunk (or the loop) the way lua.c does: an error comes back with its traceback.
local function msghandler(msg)
  if type(msg) ~= "string" and type(msg) ~= "number" then
    local mt = getmetatable(msg)
    if mt and mt.__tostring then
      msg = tostring(msg)
    else
      msg = ("(error object is a %s value)"):format(type(msg))
    end
  end
  local text = traceback(msg, 2)
  return text
end

function M.main(f, ...)
  local ok, err = xpcall(f, msghandler, ...)
  if ok then return true end
  return false, tostring(err)
end

debug = debug or {}
debug.traceback = debug.traceback or traceback
M.traceback = traceback
M.stack = function(co) return stacks[co] end

return M
