-- require "tinn" (also "Application" and "IOProcessor", TINN's own module names): TINN's scheduler
-- functions as globals, on chime-lua's runtime. Times are milliseconds.
--
-- Tasks are runtime tasks; sleep/wait arm a chime timer; delay and periodic are chime timers (a
-- periodic one runs on chime's drift-free grid); when/whenever/waitFor predicates are checked on a
-- chime timer every `tinn.poll_interval` ms (10 by default) while any is waiting, where TINN checks
-- them at every turn of its busy loop; signals park tasks without a timer.
local rt = require "chime.runtime"

local type, error, pcall, tostring, setmetatable = type, error, pcall, tostring, setmetatable
local co_running = coroutine.running

local app = { poll_interval = 10 }

local function ms(value, n, fname)
  if value == nil then return nil end
  if type(value) ~= "number" then rt.argerror(n, fname, "number", value) end
  if not (value >= 0) then error(("bad argument #%d to '%s' (milliseconds must be at least 0)"):format(n, fname), 3) end
  return value / 1000
end

local function check_function(f, n, fname)
  if type(f) ~= "function" then rt.argerror(n, fname, "function", f, f == nil) end
end

-- a timer's handle: cancel() stops it
local Handle = {}
Handle.__index = Handle
function Handle:cancel()
  if not self.id then return false end
  local ok = rt.cancel(self.id)
  self.id = nil
  return ok
end
Handle.stop = Handle.cancel

---------------------------------------------------------------------------------------------------
-- tasks
---------------------------------------------------------------------------------------------------

function app.spawn(f, ...)
  check_function(f, 1, "spawn")
  return rt.spawn(f, ...)
end
app.coop = app.spawn

function app.yield() rt.yield() end

function app.sleep(millis)
  rt.sleep(ms(millis or 0, 1, "sleep"))
end
app.wait = app.sleep

function app.delay(f, millis)
  check_function(f, 1, "delay")
  local h = setmetatable({}, Handle)
  h.id = rt.arm(function() h.id = nil; f() end, ms(millis or 1000, 2, "delay"), nil, "delay")
  return h
end

function app.periodic(f, millis)
  check_function(f, 1, "periodic")
  local period = ms(millis or 1000, 2, "periodic")
  if period == 0 then error("bad argument #2 to 'periodic' (the period must be more than 0 ms)", 2) end
  local h = setmetatable({}, Handle)
  h.id = rt.arm(function() f() end, period, period, "periodic")
  return h
end

function app.taskIsFinished(task)
  return function() return coroutine.status(task) == "dead" end
end

---------------------------------------------------------------------------------------------------
-- predicates
---------------------------------------------------------------------------------------------------

local waiters = {} -- { co, pred, deadline }
local poller

local function poll()
  local now = rt.now()
  local i = 1
  while i <= #waiters do
    local w = waiters[i]
    local ok, met = pcall(w.pred)
    if not ok or met or (w.deadline and now >= w.deadline) then
      table.remove(waiters, i)
      if not ok then
        rt.wake(w.co, false, met)
      else
        rt.wake(w.co, not not met)
      end
    else
      i = i + 1
    end
  end
  if #waiters == 0 and poller then
    rt.cancel(poller)
    poller = nil
  end
end

-- waitFor(predicate[, timeout]): waits until predicate() is true (true), or timeout ms pass (false);
-- an error in the predicate is raised here
function app.waitFor(pred, timeout)
  check_function(pred, 1, "waitFor")
  local seconds = ms(timeout, 2, "waitFor")
  local ok, met = pcall(pred)
  if not ok then error(met, 0) end
  if met then return true end
  waiters[#waiters + 1] = { co = co_running(), pred = pred, deadline = seconds and rt.now() + seconds }
  if not poller then
    local every = app.poll_interval / 1000
    poller = rt.arm(poll, every, every, "waitFor")
  end
  local _, result, err = rt.suspend()
  if err ~= nil then error(err, 0) end
  return result
end

function app.when(pred, f)
  check_function(pred, 1, "when")
  check_function(f, 2, "when")
  return rt.spawn(function()
    app.waitFor(pred)
    f()
  end)
end

function app.whenever(pred, f)
  check_function(pred, 1, "whenever")
  check_function(f, 2, "whenever")
  return rt.spawn(function()
    while true do
      app.waitFor(pred)
      f()
      rt.yield() -- let the state move on before checking again
    end
  end)
end

---------------------------------------------------------------------------------------------------
-- signals
---------------------------------------------------------------------------------------------------

local signals = {} -- name -> list of parked coroutines

function app.waitForSignal(name)
  local list = signals[name]
  if not list then list = {}; signals[name] = list end
  list[#list + 1] = co_running()
  local _, value = rt.suspend()
  return value
end
app.waitSignal = app.waitForSignal

function app.signalOne(name, value)
  local list = signals[name]
  while list and #list > 0 do
    local co = table.remove(list, 1)
    if rt.wake(co, value) then return true end
  end
  return false
end

function app.signalAll(name, value)
  local list = signals[name]
  signals[name] = nil
  local n = 0
  for _, co in ipairs(list or {}) do
    if rt.wake(co, value) then n = n + 1 end
  end
  return n
end

function app.onSignal(f, name)
  check_function(f, 1, "onSignal")
  return rt.spawn(function()
    app.waitForSignal(name)
    f()
  end)
end

---------------------------------------------------------------------------------------------------
-- the loop
---------------------------------------------------------------------------------------------------

-- run([main, ...]): runs main as a task and the loop, until nothing is pending or stop()
function app.run(main, ...)
  if main ~= nil then app.spawn(main, ...) end
  rt.run()
end
app.start = app.run

function app.stop() rt.stop() end

app.Clock = {}
function app.Clock:Milliseconds() return math.floor(rt.now() * 1000) end
function app.Clock:Seconds() return rt.now() end
function app.Clock:Reset() end

local names = { "coop", "delay", "onSignal", "periodic", "run", "signalAll", "signalOne", "sleep", "wait",
  "spawn", "stop", "taskIsFinished", "waitSignal", "waitForSignal", "waitFor", "when", "whenever", "yield" }

function app.exportGlobals()
  for _, name in ipairs(names) do _G[name] = app[name] end
  _G.IOProcessor = app
  return app
end

app.exportGlobals()
return app
