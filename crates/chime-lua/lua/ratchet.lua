-- require "ratchet" (also the global `ratchet`): Ratchet's threads and timerfd on chime-lua.
--
--   ratchet.new(init[, errh]) -> kernel; kernel:loop() runs init and every thread it attaches
--   ratchet.thread.attach/self/timer/pause/unpause/wait_all/kill/kill_all/alarm/space
--   ratchet.timerfd.new([clock]) on chime's kernel Ticker: settime, gettime, read, get_fd, close
--   ratchet.error.new(description, code, func, file, line, syscall, errno), ratchet.error.is
--
-- Threads are runtime tasks, run in the order they were attached. A thread's error goes to the
-- kernel's error handler as errh(err, thread); without one, kernel:loop() raises it. A thread's
-- alarm, when it goes off, stops the thread and runs the alarm callback; the handler then gets
-- the callback's error, or an "ALARM" error. kernel:loop() returns when every thread has ended and
-- raises a "DEADLOCK" error if threads remain that nothing can wake.
local rt = require "chime.runtime"
local core = rt.core

local type, select, error, pcall, tostring, setmetatable = type, select, error, pcall, tostring, setmetatable
local unpack = table.unpack or unpack
local co_running = coroutine.running

local ratchet = rawget(_G, "ratchet") or {}
if ratchet._chime then return ratchet end
ratchet._chime = true

---------------------------------------------------------------------------------------------------
-- errors
---------------------------------------------------------------------------------------------------

local ErrorMethods = {}
local ErrorMeta = { __index = ErrorMethods }

local function opt_string(v, n)
  if v ~= nil and type(v) ~= "string" and type(v) ~= "number" then rt.argerror(n, "new", "string", v) end
end

local function new_error(description, code, func, file, line, syscall, errno)
  if type(description) ~= "string" and type(description) ~= "number" then
    rt.argerror(1, "new", "string", description, description == nil)
  end
  opt_string(code, 2) opt_string(func, 3) opt_string(file, 4) opt_string(syscall, 6)
  local co, main = co_running()
  return setmetatable({
    thread = (not main) and co or nil, type = "ratchet_error", description = tostring(description),
    code = code, ["function"] = func, file = file, line = line, syscall = syscall, errno = errno,
  }, ErrorMeta)
end

local function is(err, code)
  if type(err) == "string" then return err == code end
  if type(err) ~= "table" or err.type ~= "ratchet_error" then return false end
  return err.code == code
end

function ErrorMethods.is(err, code) return is(err, code) end
function ErrorMethods.get_string(err)
  if err["function"] then return tostring(err["function"]) .. ": " .. err.description end
  if err.file then return ("%s:%d: %s"):format(err.file, err.line or -1, err.description) end
  return err.description
end
ErrorMeta.__tostring = function(err) return ErrorMethods.get_string(err) end

ratchet.error = { new = new_error, is = is }

local function raise(description, code, func)
  error(new_error(description, code, func), 2)
end

---------------------------------------------------------------------------------------------------
-- kernels and threads
---------------------------------------------------------------------------------------------------

local owner = setmetatable({}, { __mode = "k" })    -- thread -> its kernel
local ended = setmetatable({}, { __mode = "k" })    -- threads that finished, failed or were killed
local alarms = setmetatable({}, { __mode = "k" })   -- thread -> its alarm's timer id
local spaces = setmetatable({}, { __mode = "k" })   -- thread -> ratchet.thread.space()
local waiting = {}                                   -- { co = waiter, on = { threads } }

local Kernel = {}
Kernel.__index = Kernel

local function finish(co)
  if ended[co] then return end
  ended[co] = true
  local kernel = owner[co]
  if kernel then
    kernel.threads[co] = nil
    kernel.count = kernel.count - 1
  end
  if alarms[co] then
    core.cancel(alarms[co])
    alarms[co] = nil
  end
  for i = #waiting, 1, -1 do
    local w = waiting[i]
    local all = true
    for _, t in ipairs(w.on) do
      if not ended[t] then all = false break end
    end
    if all then
      table.remove(waiting, i)
      rt.wake(w.co)
    end
  end
end

-- a thread's error, as Ratchet's handle_thread_error: to errh, or out of kernel:loop()
local function failed(kernel, err, co)
  if kernel.errh then
    local ok, e = pcall(kernel.errh, err, co)
    if ok then return end
    err = e
  end
  if kernel.failure == nil then kernel.failure = err end
  core.stop()
end

local function attach_to(kernel, f, ...)
  if f == nil then rt.argerror(1, "attach", "value", f, true) end
  local co
  local function body(...)
    f(...)
    finish(co)
  end
  co = rt.spawn_with(function(err, c)
    finish(c)
    failed(kernel, err, c)
  end, nil, body, ...)
  owner[co] = kernel
  kernel.threads[co] = true
  kernel.count = kernel.count + 1
  return co
end

local function current(fname)
  local co = co_running()
  local kernel = co and owner[co]
  if not kernel then
    error(("ratchet.thread.%s() cannot be called from main thread."):format(fname), 3)
  end
  return co, kernel
end

function ratchet.new(init, errh)
  if errh ~= nil and type(errh) ~= "function" then rt.argerror(2, "new", "function", errh) end
  return setmetatable({ init = init, errh = errh, threads = {}, count = 0 }, Kernel)
end

function Kernel:loop()
  if self.init ~= nil then
    local init = self.init
    self.init = nil
    attach_to(self, init)
  end
  rt.run()
  local failure = self.failure
  if failure ~= nil then
    self.failure = nil
    error(failure, 0)
  end
  if self.count > 0 and not rt.exiting() then
    error(new_error("Non-IO deadlock detected.", "DEADLOCK", "ratchet.loop_once()"), 0)
  end
end

function Kernel:get_num_threads() return self.count end
function Kernel:get_method() return "chime" end
function Kernel:get_space(thread, value)
  if spaces[thread] == nil then spaces[thread] = value or {} end
  return spaces[thread]
end

---------------------------------------------------------------------------------------------------
-- ratchet.thread
---------------------------------------------------------------------------------------------------

local thread = {}
ratchet.thread = thread

function thread.attach(f, ...)
  local _, kernel = current("attach")
  return attach_to(kernel, f, ...)
end

function thread.self()
  local co = co_running()
  return (co and owner[co]) and co or nil
end

function thread.timer(seconds)
  current("timer")
  if type(seconds) ~= "number" then rt.argerror(1, "timer", "number", seconds, seconds == nil) end
  rt.sleep(seconds > 0 and seconds or 0)
end

local function rest(_, ...) return ... end

function thread.pause()
  current("pause")
  return rest(rt.suspend())
end

function thread.unpause(t, ...)
  if type(t) ~= "thread" then rt.argerror(1, "unpause", "thread", t, t == nil) end
  if ended[t] or not rt.wake(t, ...) then
    error("Thread is not yielding, cannot unpause.", 2)
  end
end

function thread.wait_all(list)
  local co = current("wait_all")
  if type(list) ~= "table" then rt.argerror(1, "wait_all", "table", list, list == nil) end
  local on = {}
  for i, t in ipairs(list) do
    if type(t) ~= "thread" then error(("Table item %d is not a thread."):format(i), 2) end
    if not ended[t] and coroutine.status(t) ~= "dead" then on[#on + 1] = t end
  end
  if #on == 0 then return end
  waiting[#waiting + 1] = { co = co, on = on }
  rt.suspend()
end

function thread.kill(t)
  if type(t) ~= "thread" then rt.argerror(1, "kill", "thread", t, t == nil) end
  rt.kill(t)
  finish(t)
  if t == co_running() then coroutine.yield(rt.PARK) end
end

function thread.kill_all(list)
  local me = co_running()
  local self_too = false
  for _, t in ipairs(list) do
    if t == me then self_too = true else thread.kill(t) end
  end
  if self_too then thread.kill(me) end
end

function thread.space(value)
  local co = current("space")
  if spaces[co] == nil then spaces[co] = value or {} end
  return spaces[co]
end

function thread.alarm(seconds, callback)
  local co, kernel = current("alarm")
  if type(seconds) ~= "number" then rt.argerror(1, "alarm", "number", seconds, seconds == nil) end
  if alarms[co] then core.cancel(alarms[co]) end
  alarms[co] = rt.arm(function()
    alarms[co] = nil
    if ended[co] then return end
    rt.kill(co)
    local err
    if callback then
      local ok, e = pcall(callback)
      if not ok then err = e end
    end
    finish(co)
    failed(kernel, err or new_error("Thread alarm!", "ALARM", "ratchet.thread.alarm()"), co)
  end, seconds > 0 and seconds or 0, nil, "alarm")
end

---------------------------------------------------------------------------------------------------
-- ratchet.timerfd
---------------------------------------------------------------------------------------------------

local Timerfd = {}
Timerfd.__index = Timerfd

local function id_of(self, fname)
  if getmetatable(self) ~= Timerfd then
    error(("bad argument #1 to '%s' (ratchet.timerfd expected)"):format(fname), 3)
  end
  if not self.id then raise("Bad file descriptor", "EBADF", "ratchet.timerfd." .. fname .. "()") end
  return self.id
end

function Timerfd:get_fd()
  return core.tfd_fd(id_of(self, "get_fd")) or -1
end

function Timerfd:settime(value, interval, how)
  local id = id_of(self, "settime")
  if value ~= nil and type(value) ~= "number" then rt.argerror(2, "settime", "number", value) end
  if interval ~= nil and type(interval) ~= "number" then rt.argerror(3, "settime", "number", interval) end
  if how ~= nil and how ~= "relative" and how ~= "absolute" then
    error(("bad argument #4 to 'settime' (invalid option '%s')"):format(tostring(how)), 2)
  end
  local old_value, old_interval, err = core.tfd_settime(id, value or 0, interval or 0, how == "absolute")
  if not old_value then raise(err, "EINVAL", "ratchet.timerfd.settime()") end
  return old_value, old_interval
end

function Timerfd:gettime()
  return core.tfd_gettime(id_of(self, "gettime"))
end

function Timerfd:read()
  local id = id_of(self, "read")
  while true do
    local n, err = core.tfd_try(id)
    if not n then raise(err, err:find("not armed") and "ENOTARMED" or "EIO", "ratchet.timerfd.read()") end
    if n > 0 then return n end
    if not rt.istask(co_running()) then
      error("ratchet.timerfd.read() must be called from a ratchet thread", 2)
    end
    local armed = core.tfd_gettime(id)
    if armed == 0 then
      raise("the timer is not armed: read() would wait forever", "ENOTARMED", "ratchet.timerfd.read()")
    end
    rt.await(true, function(target) core.tfd_wait(target, id) end)
    if not self.id then raise("Bad file descriptor", "EBADF", "ratchet.timerfd.read()") end
  end
end

function Timerfd:close()
  local id = self.id
  if not id then return nil end
  self.id = nil
  core.tfd_close(id)
  return true
end

ratchet.timerfd = {
  new = function(clock)
    if clock ~= nil and type(clock) ~= "string" then rt.argerror(1, "new", "string", clock) end
    local id, err = core.tfd_new(clock or "monotonic")
    if not id then
      if err:find("^invalid option") then error("bad argument #1 to 'new' (" .. err .. ")", 2) end
      raise(err, "EIO", "ratchet.timerfd.new()")
    end
    local self = setmetatable({ id = id }, Timerfd)
    -- closes the timerfd when the object is collected
    local proxy = newproxy(true)
    getmetatable(proxy).__gc = function() if self.id then core.tfd_close(self.id) self.id = nil end end
    self.proxy = proxy
    return self
  end,
}

_G.ratchet = ratchet
return ratchet
