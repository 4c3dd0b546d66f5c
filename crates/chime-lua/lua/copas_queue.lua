-- require "copas.queue": Copas 4's queue (FIFO, nil-safe, any number of workers); a pop with a
-- timeout is a chime timer, an idle worker parks without one (it does not keep the loop running).
local copas = require "copas"
local rt = require "chime.runtime"

local type, error, tostring, setmetatable, rawget, xpcall = type, error, tostring, setmetatable, rawget, xpcall
local co_running = coroutine.running

local DEFAULT_TIMEOUT = 10
local NIL = setmetatable({}, { __tostring = function() return "nil" end })

local Queue = {}
Queue.__index = Queue
local M = {}
local count = 0

function M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then rt.argerror(1, "new", "table or nil", opts) end
  opts = opts or {}
  count = count + 1
  return setmetatable({
    name = opts.name or ("copas_queue_" .. count),
    items = {}, head = 1, tail = 0,        -- items[head..tail]
    waiting = {}, wfirst = 1, wlast = 0,   -- consumers parked in pop
    workers = setmetatable({}, { __mode = "k" }), worker_id = 0,
    finishers = {},
  }, Queue)
end

local function wake_finishers(self)
  for co in pairs(self.finishers) do
    self.finishers[co] = nil
    rt.wake(co)
  end
end

local destroyed_mt = { __index = function() return function() return nil, "destroyed" end end }

function Queue:destroy()
  self.destroyed = true
  for i = self.wfirst, self.wlast do
    local w = self.waiting[i]
    if w then rt.wake(w.co) end
  end
  self.waiting, self.items = {}, {}
  wake_finishers(self)
  setmetatable(self, destroyed_mt)
  return true
end

function Queue:push(item)
  if self.stopping then return nil, "stopping" end
  if item == nil then item = NIL end
  -- a parked consumer takes it directly, in arrival order
  while self.wfirst <= self.wlast do
    local w = self.waiting[self.wfirst]
    self.waiting[self.wfirst] = nil
    self.wfirst = self.wfirst + 1
    if w then
      w.item = item
      rt.wake(w.co)
      return true
    end
  end
  self.tail = self.tail + 1
  self.items[self.tail] = item
  return true
end

local function take(self)
  local item = self.items[self.head]
  self.items[self.head] = nil
  self.head = self.head + 1
  if self.head > self.tail then
    self.head, self.tail = 1, 0
  end
  return item
end

local function after_take(self, item)
  if self.stopping and self:get_size() == 0 then self:destroy() end
  if item == NIL then return nil end
  return item
end

-- pop([timeout]): the next item, or nil, "timeout" | "destroyed" (default timeout 10 s, as Copas)
function Queue:pop(timeout)
  if self.head <= self.tail and self.wfirst > self.wlast then
    return after_take(self, take(self))
  end
  timeout = timeout or DEFAULT_TIMEOUT
  if timeout == 0 then return nil, "timeout" end
  local waiter = { co = co_running() }
  self.wlast = self.wlast + 1
  local slot = self.wlast
  self.waiting[slot] = waiter
  rt.suspend(timeout)
  if waiter.item ~= nil then return after_take(self, waiter.item) end
  if rawget(self, "destroyed") then return nil, "destroyed" end
  self.waiting[slot] = nil
  return nil, "timeout"
end

function Queue:get_size()
  return self.tail - self.head + 1
end

function Queue:stop()
  if not self.stopping then
    self.stopping = true
    if self:get_size() == 0 then self:destroy() end
  end
  return true
end

-- finish([timeout[, no_destroy_on_timeout]]): stops the queue and waits until its workers have
-- handled every item and exited; true, or nil, "timeout" (the queue is then destroyed, unless told not)
function Queue:finish(timeout, no_destroy_on_timeout)
  self:stop()
  local deadline = rt.now() + (timeout or DEFAULT_TIMEOUT)
  local co = co_running()
  while not (rawget(self, "destroyed") and next(rawget(self, "workers")) == nil) do
    local left = deadline - rt.now()
    if left <= 0 then
      if not no_destroy_on_timeout and not rawget(self, "destroyed") then self:destroy() end
      return nil, "timeout"
    end
    rawget(self, "finishers")[co] = true
    rt.suspend(left)
    rawget(self, "finishers")[co] = nil
  end
  return true
end

-- add_worker(fn): a thread that calls fn(item) for every item until the queue is destroyed; an
-- error in fn goes to the copas error handler and the worker goes on
function Queue:add_worker(worker)
  if type(worker) ~= "function" then rt.argerror(1, "add_worker", "function", worker, worker == nil) end
  self.worker_id = self.worker_id + 1
  local co
  local function handle(err)
    copas._thread_error(err, co_running())
    return err
  end
  co = copas.addnamedthread(self.name .. ":worker_" .. self.worker_id, function()
    while true do
      local item, err = self:pop(math.huge)
      if err then break end
      xpcall(worker, handle, item)
    end
    local workers = rawget(self, "workers")
    workers[co] = nil
    wake_finishers(self)
  end)
  self.workers[co] = true
  return co
end

function Queue:get_workers()
  local list = {}
  for co in pairs(self.workers) do
    if coroutine.status(co) ~= "dead" then list[#list + 1] = co end
  end
  return list
end

return M
