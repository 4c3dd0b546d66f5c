-- The Copas Timer seed's additions to the copas table: newtimer, addworker / removeworker /
-- getworker, waitforcondition, delayedexecutioner, exitloop / isexiting, cancelall.
--
-- newtimer's timers are chime timers (a recurring one runs on chime's drift-free grid); a worker's
-- queue is a chime Worker (see src/relay.rs): `push` returns the item, whose state follows chime's
-- Ticket, and `pop` takes the next item through the relay, which marks the previous one completed.
local rt = require "chime.runtime"

local type, select, tostring, error, xpcall, setmetatable = type, select, tostring, error, xpcall, setmetatable
local co_running = coroutine.running
local unpack = table.unpack or unpack

return function(copas)
  local armed = copas._armed

  -------------------------------------------------------------------------------------------------
  -- timers: newtimer(f_arm, f_expire, f_cancel, recurring, f_err)
  -------------------------------------------------------------------------------------------------

  local Timer = {}
  Timer.__index = Timer

  -- the default f_err: an xpcall message handler, so the traceback is the failing callback's
  local function default_terr(msg)
    print(rt.traceback("copas.timer: error in a timer callback: " .. tostring(msg), 2))
    return msg
  end

  local function call(self, f)
    if f then xpcall(f, self.f_err or default_terr, self) end
  end

  local function expire(self)
    if not self.recurring then
      self.id = nil
      armed[self] = nil
    end
    call(self, self.f_expire)
  end

  function copas.newtimer(f_arm, f_expire, f_cancel, recurring, f_err)
    local args = { f_arm, f_expire, f_cancel, [5] = f_err }
    for i = 1, 5 do
      local f = args[i]
      if i ~= 4 and f ~= nil and type(f) ~= "function" then
        rt.argerror(i, "newtimer", "function or nil", f)
      end
    end
    local self = setmetatable({
      f_arm = f_arm, f_expire = f_expire, f_cancel = f_cancel, f_err = f_err,
      recurring = not not recurring,
    }, Timer)
    self.fire = function() expire(self) end
    return self
  end

  -- arm(interval): (re)starts the timer `interval` seconds from now; without an interval, the last
  -- one is used (and a timer never armed is a Lua error, not Copas Timer's crash).
  function Timer:arm(interval)
    if interval == nil then interval = self.interval end
    if type(interval) ~= "number" then rt.argerror(1, "arm", "number", interval, interval == nil) end
    if not (interval >= 0) then error("bad argument #1 to 'arm' (interval must be at least 0)", 2) end
    if self.recurring and interval == 0 then
      error("bad argument #1 to 'arm' (a recurring timer's interval must be more than 0)", 2)
    end
    if self.id then rt.cancel(self.id) end
    self.interval = interval
    self.id = rt.arm(self.fire, interval, self.recurring and interval or nil, "arm")
    armed[self] = true
    call(self, self.f_arm)
    return self
  end

  -- cancel(): the cancel callback runs once, and only when a run was still to come (Copas Timer
  -- ran it on every call); a timer that is not armed answers nil, "not armed".
  function Timer:cancel()
    local id = self.id
    if not id then return nil, "not armed" end
    self.id = nil
    armed[self] = nil
    rt.cancel(id)
    call(self, self.f_cancel)
    return true
  end

  function Timer:isarmed()
    return self.id ~= nil
  end

  -- cancels every armed timer of both APIs (their cancel callbacks run)
  function copas.cancelall()
    local list = {}
    for t in pairs(armed) do list[#list + 1] = t end
    for _, t in ipairs(list) do t:cancel() end
  end

  function copas.delayedexecutioner(delay, func, ...)
    if type(func) ~= "function" then rt.argerror(2, "delayedexecutioner", "function", func, func == nil) end
    local args = { n = select("#", ...), ... }
    return copas.newtimer(nil, function() func(unpack(args, 1, args.n)) end, nil, false):arm(delay)
  end

  -- waitforcondition(interval, timeout, condition, handler, ...): checks condition(...) every
  -- interval; handler(true, ...) once it holds, handler(false, ...) after timeout seconds.
  function copas.waitforcondition(interval, timeout, condition, handler, ...)
    if type(interval) ~= "number" then rt.argerror(1, "waitforcondition", "number", interval, interval == nil) end
    if type(timeout) ~= "number" then rt.argerror(2, "waitforcondition", "number", timeout, timeout == nil) end
    if type(condition) ~= "function" then rt.argerror(3, "waitforcondition", "function", condition, condition == nil) end
    if type(handler) ~= "function" then rt.argerror(4, "waitforcondition", "function", handler, handler == nil) end
    local args = { n = select("#", ...), ... }
    local deadline = rt.now() + timeout
    local t
    local function finish(met)
      t:cancel()
      local ok, err = pcall(handler, met, unpack(args, 1, args.n))
      if not ok then
        print("copas.waitforcondition: the handler failed: " .. tostring(err))
      end
    end
    t = copas.newtimer(nil, function()
      local ok, met = pcall(condition, unpack(args, 1, args.n))
      if not ok then
        print("copas.waitforcondition: the condition failed: " .. tostring(met))
        t:cancel()
      elseif met then
        finish(met)
      elseif rt.now() >= deadline then
        finish(false)
      end
    end, nil, true)
    return t:arm(interval)
  end

  -------------------------------------------------------------------------------------------------
  -- workers: addworker([obj,] func[, errhandler])
  -------------------------------------------------------------------------------------------------

  local Worker = {}
  Worker.__index = Worker
  local Item = {}
  local by_thread = setmetatable({}, { __mode = "k" })
  local live = setmetatable({}, { __mode = "k" }) -- workers with a running thread
  local NIL = {}

  Item.__index = function(item, key)
    if key == "completed" then
      local s = item.ticket:state()
      return s ~= "queued" and s ~= "running"
    elseif key == "cancelled" then
      local s = item.ticket:state()
      return s == "cancelled" or s == "returned" or s == "failed"
    end
    return Item[key]
  end

  function Item:state() return self.ticket:state() end

  function Item:cancel()
    local w = self.worker
    if self.ticket:cancel() and w.items[self.key] then
      w.items[self.key] = nil
      w.tickets[self.key] = nil
      w.queued = w.queued - 1
      rt.hold(-1)
    end
    return true
  end

  local function default_werr(co, msg)
    print(rt.traceback(co, "copas.timer: error in a worker: " .. tostring(msg)))
  end

  local function finish_worker(w)
    if w.dead then return end
    w.dead = true
    live[w] = nil
    for _, ticket in pairs(w.tickets) do ticket:cancel() end -- Copas Timer cancels what is queued
    w.tickets = {}
    rt.worker_stop(w.wid)
    rt.hold(-w.queued)
    w.queued = 0
    w.items = {}
  end

  local function worker_error(msg, co)
    local w = by_thread[co]
    if not w then return end
    finish_worker(w)
    local ok, err = pcall(w.errhandler, co, msg)
    if not ok then print("copas.timer: the worker's error handler failed: " .. tostring(err)) end
  end

  local function worker_body(w, func, obj)
    if obj ~= nil then func(obj, w) else func(w) end
    finish_worker(w)
  end

  local worker_count = 0

  function copas.addworker(obj, func, errhandler)
    if type(obj) == "function" then
      obj, func, errhandler = nil, obj, func
    end
    if type(func) ~= "function" then rt.argerror(obj == nil and 1 or 2, "addworker", "function", func, func == nil) end
    if errhandler ~= nil and type(errhandler) ~= "function" then
      rt.argerror(obj == nil and 2 or 3, "addworker", "function or nil", errhandler)
    end
    worker_count = worker_count + 1
    local name = "copas_worker_" .. worker_count
    local w = setmetatable({ items = {}, tickets = {}, queued = 0, key = 0, errhandler = errhandler or default_werr }, Worker)
    w.wid = rt.worker_new(name)
    w.queue = w
    w.thread = rt.spawn_with(worker_error, name, worker_body, w, func, obj)
    by_thread[w.thread] = w
    live[w] = true
    return w
  end

  -- push(data): queues data for the worker; returns the queue item, or nil and an error
  function Worker:push(data)
    if self.dead then return nil, "cannot push data to dead worker" end
    local key = self.key + 1
    self.key = key
    local ticket, err = rt.worker_push(self.wid, key)
    if not ticket then return nil, err end
    if data == nil then self.items[key] = NIL else self.items[key] = data end
    self.tickets[key] = ticket
    self.queued = self.queued + 1
    rt.hold(1)
    return setmetatable({ data = data, worker = self, ticket = ticket, key = key }, Item)
  end

  local function own(self, what)
    if co_running() ~= self.thread then
      error(what .. "() may only be called by the worker's own thread", 3)
    end
  end

  -- pop(): the next item's data (the previous item is completed); waits while the queue is empty
  function Worker:pop()
    own(self, "pop")
    while not self.dead do
      local payload = rt.await(false, rt.worker_want, self.wid)
      if payload == nil or payload == 0 then return nil end
      local key = payload - 1
      local data = self.items[key]
      if data ~= nil then
        self.items[key] = nil
        self.tickets[key] = nil
        self.queued = self.queued - 1
        rt.hold(-1)
        if data == NIL then return nil end
        return data
      end
    end
  end

  -- pause([seconds]): yields without taking data (for `seconds`, or until the next step)
  function Worker:pause(seconds)
    own(self, "pause")
    if seconds and seconds > 0 then rt.sleep(seconds) else rt.yield() end
    return true
  end

  function copas.getworker(t)
    if type(t) == "thread" then return by_thread[t] end
    if type(t) == "table" and getmetatable(t) == Worker then return t end
    return nil
  end

  -- removeworker(worker or thread): the worker stops (its queued items are cancelled)
  function copas.removeworker(t)
    local w = copas.getworker(t)
    if not w or w.dead then return nil end
    finish_worker(w)
    if w.thread ~= co_running() then rt.kill(w.thread) end
    return w
  end

  -------------------------------------------------------------------------------------------------
  -- exitloop(timeout, keeptimers)
  -------------------------------------------------------------------------------------------------

  local seed_exiting = false

  function copas.isexiting()
    return seed_exiting
  end

  -- Ends the loop: the loopstopping event is handled (with the eventer), the workers' queues are
  -- worked off (at most `timeout` seconds), then every timer is cancelled unless `keeptimers`. A
  -- negative timeout ends the loop at once, without events.
  function copas.exitloop(timeout, keeptimers)
    if not copas.running or seed_exiting then return end
    seed_exiting = true
    timeout = tonumber(timeout)
    copas._exit_silent = timeout ~= nil and timeout < 0
    if copas._exit_silent then
      if not keeptimers then copas.cancelall() end
      rt.stop()
      return
    end
    copas.addnamedthread("copas_exitloop", function()
      if copas.eventer then copas:dispatch(copas.events.loopstopping):waitfor() end
      local waiting = {}
      for w in pairs(live) do
        if w.queued > 0 then waiting[#waiting + 1] = w end
      end
      local deadline = timeout and rt.now() + timeout
      for _, w in ipairs(waiting) do
        while not w.dead and w.queued > 0 and (not deadline or rt.now() < deadline) do
          rt.sleep(0.01)
        end
      end
      if not keeptimers then copas.cancelall() end
      rt.stop()
    end)
  end

  copas._loop_hooks.reset = function() seed_exiting = false end
end
