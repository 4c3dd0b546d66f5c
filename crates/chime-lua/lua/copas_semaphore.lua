-- require "copas.semaphore": Copas 4's semaphore; waiting threads park in the runtime, a take with
-- a timeout is a chime timer.
local rt = require "chime.runtime"

local type, error, tostring, setmetatable = type, error, tostring, setmetatable
local co_running = coroutine.running

local DEFAULT_TIMEOUT = 10

local Sema = {}
Sema.__index = Sema
local M = {}

function M.new(max, start, seconds)
  local timeout = tonumber(seconds or DEFAULT_TIMEOUT) or -1
  if timeout < 0 then
    error("expected timeout (2nd argument) to be a number greater than or equal to 0, got: " .. tostring(seconds), 2)
  end
  if type(max) ~= "number" or max < 1 then
    error("expected max resources (1st argument) to be a number greater than 0, got: " .. tostring(max), 2)
  end
  return setmetatable({ count = start or 0, max = max, timeout = timeout, waiting = {}, first = 1, last = 0 }, Sema)
end

local function serve(self)
  local w = self.waiting
  while self.first <= self.last do
    local waiter = w[self.first]
    if waiter then
      if self.count < waiter.requested then return end
      self.count = self.count - waiter.requested
      waiter.granted = true
      rt.wake(waiter.co)
    end
    w[self.first] = nil
    self.first = self.first + 1
  end
  self.first, self.last = 1, 0
end

function Sema:give(given)
  given = given or 1
  local count, err = self.count + given, nil
  if count > self.max then
    count, err = self.max, "too many"
  end
  self.count = count
  serve(self)
  if err then return nil, err end
  return true
end

function Sema:take(requested, timeout)
  requested = requested or 1
  if self.first > self.last and self.count >= requested then
    self.count = self.count - requested
    return true
  end
  if requested > self.max then return nil, "too many" end
  local to = timeout or self.timeout
  if to == 0 then return nil, "timeout" end
  local waiter = { co = co_running(), requested = requested }
  self.last = self.last + 1
  local slot = self.last
  self.waiting[slot] = waiter
  rt.suspend(to)
  if rawget(self, "destroyed") then return nil, "destroyed" end
  if waiter.granted then return true end
  self.waiting[slot] = nil -- timed out: leave the line
  serve(self)
  return nil, "timeout"
end

function Sema:get_count()
  return self.count
end

function Sema:get_wait()
  local wait = 0
  for i = self.first, self.last do
    local w = self.waiting[i]
    if w then wait = wait + w.requested end
  end
  return wait - self.count
end

local destroyed_mt = { __index = function() return function() return nil, "destroyed" end end }

function Sema:destroy()
  self.destroyed = true
  for i = self.first, self.last do
    local w = self.waiting[i]
    if w then rt.wake(w.co) end
  end
  self.waiting = {}
  setmetatable(self, destroyed_mt)
  return true
end

return M
