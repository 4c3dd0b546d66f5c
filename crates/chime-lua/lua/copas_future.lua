-- require "copas.future": Copas 4's futures: a thread whose results can be waited for.
local copas = require "copas"
local rt = require "chime.runtime"

local type, select, error, tostring, pcall, setmetatable = type, select, error, tostring, pcall, setmetatable
local co_running = coroutine.running
local unpack = table.unpack or unpack

local M = { SUCCESS = true, PENDING = false, ERROR = "error" }
setmetatable(M, {
  __index = function(_, key)
    error("unknown field 'future." .. tostring(key) .. "'", 2)
  end,
})

local Future = {}
Future.__index = Future
Future.__call = function(self, ...) return self:get(...) end

local function settle(self, results)
  if self.results then return end
  self.results = results
  for co in pairs(self.waiters) do
    self.waiters[co] = nil
    rt.wake(co)
  end
end

-- get(): true, results... or false, error (waits for the task)
function Future:get()
  while not self.results do
    local co = co_running()
    self.waiters[co] = true
    rt.suspend()
    self.waiters[co] = nil
  end
  return unpack(self.results, 1, self.results.n)
end

function Future:try()
  local r = self.results
  if not r then return M.PENDING end
  if r[1] then return M.SUCCESS, unpack(r, 2, r.n) end
  return M.ERROR, r[2]
end

function Future:cancel()
  if self.results then return false end
  settle(self, { n = 2, false, "cancelled" })
  copas.removethread(self.co)
  return true
end

function M.addnamedthread(name, func, ...)
  if type(func) ~= "function" then rt.argerror(2, "addnamedthread", "function", func, func == nil) end
  local self = setmetatable({ waiters = {} }, Future)
  self.co = copas.addnamedthread(name, function(...)
    local function pack(ok, ...) return { n = select("#", ...) + 1, ok, ... } end
    settle(self, pack(pcall(func, ...)))
  end, ...)
  return self
end

function M.addthread(func, ...)
  if type(func) ~= "function" then rt.argerror(1, "addthread", "function", func, func == nil) end
  return M.addnamedthread(nil, func, ...)
end

return M
