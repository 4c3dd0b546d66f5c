-- require "copas.timer": Copas 4's timer objects (`new{...}`, `:arm()`, `:cancel()`) on chime timers,
-- and, for the Copas Timer seed, the copas table itself: this module falls back to `copas`, so
-- `require("copas.timer").newtimer(...)` and `.loop()` work as the seed's documentation shows.
--
-- A timer's callback runs in a runtime task named after the timer (so it may copas.pause, and its
-- errors reach its errorhandler with a traceback naming it). A recurring timer runs on chime's
-- drift-free grid; a tick that comes while the previous callback is still paused is skipped.
local copas = require "copas"
local rt = require "chime.runtime"

local type, error, xpcall, setmetatable, select = type, error, xpcall, setmetatable, select
local co_running = coroutine.running
local armed = copas._armed

local Timer = {}
Timer.__index = Timer

local count = 0

local function fire(self)
  if self.busy then return end -- the previous run is still going (paused): this tick is skipped
  if not self.recurring then
    self.id = nil
    self.cancelled = true
    armed[self] = nil
  end
  local co = co_running()
  copas.setthreadname(self.name, co)
  copas.seterrorhandler(nil)
  self.busy = co
  xpcall(self.callback, function(err)
    if rt.exiting() then return err end -- os.exit unwinding, not an error
    local handler = self.errorhandler or copas.geterrorhandler()
    handler(err, co_running(), nil)
    return err
  end, self, self.params)
  self.busy = nil
end

local function check_delay(value, what, absent_ok)
  if value == nil and absent_ok then return end
  if type(value) ~= "number" or not (value >= 0) then
    error(("bad argument #1 to 'new' (%s must be a number greater than or equal to 0, got %s)")
      :format(what, value == nil and "nil" or tostring(value)), 3)
  end
end

local M = setmetatable({}, { __index = copas })

-- new{delay, callback[, recurring, initial_delay, params, name, errorhandler]}: an armed timer
function M.new(...)
  local opts = ...
  if type(opts) ~= "table" then rt.argerror(1, "new", "table", opts, select("#", ...) == 0) end
  check_delay(opts.delay, "delay")
  check_delay(opts.initial_delay, "initial_delay", true)
  if type(opts.callback) ~= "function" then
    error("bad argument #1 to 'new' (callback must be a function, got " .. type(opts.callback) .. ")", 2)
  end
  if opts.errorhandler ~= nil and type(opts.errorhandler) ~= "function" then
    error("bad argument #1 to 'new' (errorhandler must be a function, got " .. type(opts.errorhandler) .. ")", 2)
  end
  if opts.recurring and opts.delay == 0 then
    error("bad argument #1 to 'new' (a recurring timer's delay must be more than 0)", 2)
  end
  if opts.name ~= nil and type(opts.name) ~= "string" then
    error("bad argument #1 to 'new' (name must be a string, got " .. type(opts.name) .. ")", 2)
  end
  count = count + 1
  local self = setmetatable({
    name = opts.name or ("copas_timer_" .. count),
    delay = opts.delay,
    callback = opts.callback,
    recurring = not not opts.recurring,
    params = opts.params,
    errorhandler = opts.errorhandler,
    cancelled = false,
  }, Timer)
  self.fire = function() fire(self) end
  local ok, err = self:arm(opts.initial_delay)
  if not ok then error(err, 2) end
  return self
end

-- arm([initial_delay]): the timer object, or nil, "already armed"
function Timer:arm(initial_delay)
  if initial_delay ~= nil and (type(initial_delay) ~= "number" or not (initial_delay >= 0)) then
    error("bad argument #1 to 'arm' (delay must be a number greater than or equal to 0, got "
      .. tostring(initial_delay) .. ")", 2)
  end
  if self.id then return nil, "already armed" end
  self.cancelled = false
  self.id = rt.arm(self.fire, initial_delay or self.delay, self.recurring and self.delay or nil, "arm")
  armed[self] = true
  return self
end

-- cancel(): the timer object, or nil, "not armed" (a one-shot that fired, a cancelled timer)
function Timer:cancel()
  if not self.id then return nil, "not armed" end
  if self.cancelled then return nil, "already cancelled" end
  rt.cancel(self.id)
  self.id = nil
  self.cancelled = true
  armed[self] = nil
  local busy = self.busy
  if busy and busy ~= co_running() then
    -- Copas drops the timer's thread: a callback paused inside never resumes
    rt.kill(busy)
    self.busy = nil
  end
  return self
end

return M
