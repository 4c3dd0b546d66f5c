-- require "cqueues.condition": condition variables for tasks. cond:wait([timeout]) parks the
-- running task until cond:signal([n]) (true) or until timeout seconds pass (false).
local rt = require "chime.runtime"

local Cond = {}
Cond.__index = Cond

function Cond:wait(timeout)
  if timeout ~= nil and type(timeout) ~= "number" then rt.argerror(1, "wait", "number", timeout) end
  local co = coroutine.running()
  local waiters = self.waiters
  waiters[#waiters + 1] = co
  local woken = rt.suspend(timeout)
  if not woken then
    for i = #waiters, 1, -1 do
      if waiters[i] == co then table.remove(waiters, i) break end
    end
    return false
  end
  return true
end

-- wakes up to n waiters (all by default), first come first served; returns how many
function Cond:signal(n)
  local waiters = self.waiters
  local count = 0
  n = n or math.huge
  while count < n and #waiters > 0 do
    local co = table.remove(waiters, 1)
    if rt.wake(co) then count = count + 1 end
  end
  return count
end

function Cond:getfd() return -1 end

local M = {}
function M.new()
  return setmetatable({ waiters = {} }, Cond)
end
function M.type(x) return getmetatable(x) == Cond and "condition" or nil end
return M
