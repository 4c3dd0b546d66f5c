-- require "Timer": TINN's Timer{Delay, Period, TimerFunc or OnTime, Running} on a chime timer.
-- Delay (ms) is the first run, Period (ms) the interval after it (one run after Delay without a
-- Period). A timer given OnTime (TINN's later Timer.lua) or Running = true starts at once; one given
-- TimerFunc waits for :start(). The callback gets the timer. :stop() and :cancel() stop it at once
-- (TINN's loop ran the callback once more after a stop); :start() on a running timer answers
-- false, "already running" (TINN started a second loop).
local rt = require "chime.runtime"
require "tinn"

local type, error, setmetatable = type, error, setmetatable

local Timer = {}
Timer.__index = Timer

local function fire(self)
  if not self.Period then
    self.id = nil
    self.Running = false
  end
  local f = self.OnTime or self.TimerFunc
  f(self)
end

local function ms(params, key)
  local v = params[key]
  if v ~= nil and (type(v) ~= "number" or not (v >= 0)) then
    error(("bad argument #1 to 'Timer' (%s must be a number of milliseconds, at least 0)"):format(key), 4)
  end
  return v
end

function Timer.create(_, params)
  if type(params) ~= "table" then rt.argerror(1, "Timer", "table", params, params == nil) end
  local f = params.OnTime or params.TimerFunc
  if type(f) ~= "function" then
    error("bad argument #1 to 'Timer' (OnTime or TimerFunc must be a function)", 3)
  end
  local self = setmetatable({
    Delay = ms(params, "Delay"), Period = ms(params, "Period"),
    OnTime = params.OnTime, TimerFunc = params.TimerFunc, Running = false,
  }, Timer)
  if self.Period == 0 then error("bad argument #1 to 'Timer' (Period must be more than 0 ms)", 3) end
  if not self.Delay and not self.Period then
    error("bad argument #1 to 'Timer' (a Delay or a Period is needed)", 3)
  end
  self.fire = function() fire(self) end
  if params.Running or params.OnTime then self:start() end
  return self
end

function Timer:start()
  if self.Running then return false, "already running" end
  self.Running = true
  local period = self.Period and self.Period / 1000
  self.id = rt.arm(self.fire, (self.Delay or self.Period) / 1000, period, "start")
  return true
end

function Timer:stop()
  self.Running = false
  if self.id then
    rt.cancel(self.id)
    self.id = nil
  end
  return true
end
Timer.cancel = Timer.stop

return setmetatable(Timer, { __call = function(self, params) return self:create(params) end })
