-- require "copas": Copas 4's scheduler without sockets, on chime-lua's runtime, plus the Copas
-- Timer seed's additions to the copas table (newtimer, addworker, waitforcondition, ...).
--
-- Threads are runtime tasks; copas.pause/sleep arm a chime timer for the thread; a thread paused
-- forever is parked without one (and so is garbage once nobody can wake it, as in Copas);
-- copas.timeout is a chime timer per thread. The loop is the runtime's: it ends when no timer is
-- armed and no thread is runnable, after releasing copas.waitforexit() once, as Copas 4 does.
local rt = require "chime.runtime"

local type, select, tostring, error, pcall, xpcall = type, select, tostring, error, pcall, xpcall
local co_running = coroutine.running

local submodules = { timer = true, queue = true, lock = true, semaphore = true, future = true }

local copas = setmetatable({}, {
  __index = function(self, key)
    if submodules[key] then
      submodules[key] = nil
      local mod = require("copas." .. key)
      rawset(self, key, mod)
      return mod
    end
  end,
  __call = function(self, ...)
    return self.loop(...)
  end,
})

copas._VERSION = "Copas 4.11 (chime-lua: no sockets)"
copas._DESCRIPTION = "Copas' scheduler on chime's timers"
copas.autoclose = true
copas.running = false
copas.gettime = rt.time

---------------------------------------------------------------------------------------------------
-- names and errors
---------------------------------------------------------------------------------------------------

local names = setmetatable({}, { __mode = "k" })
local function name_of(obj)
  local name = names[obj]
  if name == nil and obj ~= nil then
    name = tostring(obj)
  end
  return name
end

function copas.setthreadname(name, co)
  if type(name) ~= "string" then rt.argerror(1, "setthreadname", "string", name, name == nil) end
  co = co or co_running()
  if type(co) ~= "thread" then rt.argerror(2, "setthreadname", "coroutine or nil", co) end
  names[co] = name
  rt.setname(co, name)
end

function copas.getthreadname(co)
  co = co or co_running()
  if type(co) ~= "thread" then rt.argerror(1, "getthreadname", "coroutine or nil", co) end
  return name_of(co)
end

function copas.setsocketname() error("copas.setsocketname: chime-lua has no sockets", 2) end
function copas.getsocketname(skt) return skt == nil and "nil" or tostring(skt) end

function copas.gettraceback(msg, co, skt)
  local co_str = co == nil and "nil" or name_of(co)
  local skt_str = skt == nil and "nil" or tostring(skt)
  local text = msg == nil and "" or tostring(msg)
  text = (text == "" and "(coroutine: %s, socket: %s)" or text .. " (coroutine: %s, socket: %s)")
    :format(co_str, skt_str)
  if type(co) == "thread" then
    return rt.traceback(co, text)
  end
  return rt.traceback(text, 2)
end

local function default_error(msg, co, skt)
  print(copas.gettraceback(msg, co, skt))
end
local handlers = setmetatable({}, { __mode = "k" })

function copas.seterrorhandler(handler, default)
  if handler ~= nil and type(handler) ~= "function" then
    rt.argerror(1, "seterrorhandler", "function or nil", handler)
  end
  if default then
    if handler == nil then error("bad argument #1 to 'seterrorhandler' (a default handler cannot be nil)", 2) end
    default_error = handler
  else
    local co = co_running()
    if co then handlers[co] = handler end
  end
end
copas.setErrorHandler = copas.seterrorhandler

function copas.geterrorhandler(co)
  co = co or co_running()
  return (co and handlers[co]) or default_error
end

-- every Copas thread's errors come here (through the runtime's task error hook)
local function thread_error(msg, co)
  if rt.exiting() then return end -- os.exit unwinding through the thread, not an error
  local handler = handlers[co] or default_error
  handlers[co] = nil
  local ok, err = pcall(handler, msg, co, nil)
  if not ok then
    print("Failed executing error handler: " .. tostring(err))
  end
end
copas._thread_error = thread_error

-- runs f(...) in the current task, errors to the copas handler (used for timeouts and timers)
local function report_here(msg)
  local co = co_running()
  thread_error(msg, co)
  return msg
end
copas._report_here = report_here

---------------------------------------------------------------------------------------------------
-- threads
---------------------------------------------------------------------------------------------------

function copas.addnamedthread(name, handler, ...)
  if type(name) == "function" and type(handler) == "string" then
    name, handler = handler, name
  end
  if type(handler) ~= "function" then rt.argerror(2, "addnamedthread", "function", handler, handler == nil) end
  if name ~= nil and type(name) ~= "string" then rt.argerror(1, "addnamedthread", "string or nil", name) end
  local co = rt.spawn_with(thread_error, name, handler, ...)
  if name then names[co] = name end
  return co
end

function copas.addthread(handler, ...)
  if type(handler) ~= "function" then rt.argerror(1, "addthread", "function", handler, handler == nil) end
  return copas.addnamedthread(nil, handler, ...)
end

function copas.removethread(co)
  rt.kill(co)
end

function copas.sleep(sleeptime)
  sleeptime = sleeptime or 0
  if type(sleeptime) ~= "number" then rt.argerror(1, "sleep", "number", sleeptime) end
  if sleeptime < 0 then
    rt.suspend()
  else
    rt.sleep(sleeptime)
  end
end

function copas.pause(sleeptime)
  if sleeptime ~= nil and type(sleeptime) ~= "number" then rt.argerror(1, "pause", "number", sleeptime) end
  local s = rt.time()
  rt.sleep((sleeptime and sleeptime > 0) and sleeptime or 0)
  return rt.time() - s
end

function copas.pauseforever()
  local s = rt.time()
  rt.suspend()
  return rt.time() - s
end

function copas.wakeup(co)
  rt.wake(co)
end

-- copas.timeout(delay, callback): callback(co) runs if the current thread is still at it after
-- `delay` seconds; 0 or math.huge cancels.
do
  local timeouts = setmetatable({}, { __mode = "k" })
  local count = 0

  function copas.timeout(delay, callback)
    if type(delay) ~= "number" then rt.argerror(1, "timeout", "number", delay, delay == nil) end
    local co = co_running()
    local existing = timeouts[co]
    if existing then
      timeouts[co] = nil
      if rt.cancel(existing) then count = count - 1 end
    end
    if delay > 0 and delay ~= math.huge then
      if type(callback) ~= "function" then rt.argerror(2, "timeout", "function", callback, callback == nil) end
      local id
      id = rt.arm(function()
        if timeouts[co] == id then timeouts[co] = nil end
        count = count - 1
        xpcall(callback, report_here, co)
      end, delay, nil, "timeout")
      timeouts[co] = id
      count = count + 1
    elseif delay < 0 then
      error("timout value must be greater than or equal to 0, got: " .. tostring(delay), 2)
    end
    return true
  end

  function copas.gettimeouts()
    return count
  end
end

---------------------------------------------------------------------------------------------------
-- exit
---------------------------------------------------------------------------------------------------

local exiting = false
local exit_waiters = setmetatable({}, { __mode = "k" })

function copas.exit()
  if exiting then return end
  exiting = true
  for co in pairs(exit_waiters) do
    exit_waiters[co] = nil
    rt.wake(co)
  end
end

function copas.exiting()
  return exiting
end

function copas.waitforexit()
  if exiting then return end
  local co = co_running()
  exit_waiters[co] = true
  rt.suspend()
end

function copas.finished()
  return rt.pending() <= 0 and not rt.busy()
end

---------------------------------------------------------------------------------------------------
-- the loop
---------------------------------------------------------------------------------------------------

copas._armed = setmetatable({}, { __mode = "k" }) -- armed timers of both APIs, for cancelall
local loop_hooks = {} -- the seed layer's start and stop steps (eventer events, exitloop)
copas._loop_hooks = loop_hooks

local function idle()
  if not exiting then
    copas.exit()
    return true
  end
  return false
end

function copas.loop(initializer, timeout)
  if rt.running() then
    error("copas.loop: the loop is already running", 2)
  end
  if type(initializer) == "function" then
    copas.addnamedthread("copas_initializer", initializer)
  end
  exiting = false
  copas.running = true
  if loop_hooks.reset then loop_hooks.reset() end
  if loop_hooks.starting then loop_hooks.starting() end
  local ok, err = pcall(rt.run, idle)
  copas.running = false
  if loop_hooks.stopped then loop_hooks.stopped() end
  if not ok then error(err, 0) end
end

-- copas.step(): one turn of the loop (what is due or runnable now), without waiting.
function copas.step()
  if rt.running() then error("copas.step: the loop is already running", 2) end
  rt.spawn(function() rt.stop() end)
  rt.run()
  return true
end

function copas.status()
  return { timeouts = copas.gettimeouts(), pending = rt.pending(), running = copas.running }
end

function copas.useSocketTimeoutErrors() end

require("copas.worker")(copas) -- the Copas Timer seed's API on the same table

return copas
