-- require "copas.lock": Copas 4's lock (re-entrant unless asked not to be); waiting threads park in
-- the runtime, a get with a timeout is a chime timer.
local rt = require "chime.runtime"

local error, tostring, setmetatable, rawget = error, tostring, setmetatable, rawget
local co_running = coroutine.running

local DEFAULT_TIMEOUT = 10

local Lock = {}
Lock.__index = Lock
local M = {}

function M.new(seconds, not_reentrant)
  local timeout = tonumber(seconds or DEFAULT_TIMEOUT) or -1
  if timeout < 0 then
    error("expected timeout (1st argument) to be a number greater than or equal to 0, got: " .. tostring(seconds), 2)
  end
  return setmetatable({ timeout = timeout, not_reentrant = not_reentrant, waiting = {}, first = 1, last = 0 }, Lock)
end

-- get([timeout]): the seconds waited, or nil, "timeout" | "destroyed", seconds waited
function Lock:get(timeout)
  local co = co_running()
  if self.owner == nil then
    self.owner, self.calls = co, 1
    return 0
  end
  if self.owner == co and not self.not_reentrant then
    self.calls = self.calls + 1
    return 0
  end
  timeout = timeout or self.timeout
  if timeout == 0 then return nil, "timeout", 0 end
  local start = rt.time()
  local waiter = { co = co }
  self.last = self.last + 1
  local slot = self.last
  self.waiting[slot] = waiter
  rt.suspend(timeout)
  local waited = rt.time() - start
  if rawget(self, "destroyed") then return nil, "destroyed", waited end
  if waiter.granted then return waited end
  self.waiting[slot] = nil
  return nil, "timeout", waited
end

function Lock:release()
  if co_running() ~= self.owner then return nil, "cannot release a lock not owned" end
  self.calls = self.calls - 1
  if self.calls > 0 then return true end
  while self.first <= self.last do
    local waiter = self.waiting[self.first]
    self.waiting[self.first] = nil
    self.first = self.first + 1
    if waiter then
      self.owner, self.calls = waiter.co, 1
      waiter.granted = true
      rt.wake(waiter.co)
      return true
    end
  end
  self.owner, self.first, self.last = nil, 1, 0
  return true
end

local destroyed_mt = { __index = function() return function() return nil, "destroyed" end end }

function Lock:destroy()
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
