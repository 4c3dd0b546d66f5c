-- require "resty.timer": Kong's lua-resty-timer on chime. `new(opts, ...)` (or the module called)
-- checks the options in lua-resty-timer's order with its messages, and arms a chime timer:
--   * a one-shot or a recurring timer on chime's drift-free grid (jitter added once; with
--     `immediate`, to the second run, as resty.timer documents);
--   * with `key_name` (and `shm_name`), a chime cluster timer on the run's store: each tick runs
--     on one worker of all that share the key, and another takes over within interval +
--     sub_interval when it dies.
-- The callbacks and arguments live in the timer object only. The chime timer's slot holds a shared
-- dispatch function, and finds the object by slot id in a table that is weak for timers that are
-- not `detached`: an unreferenced timer is collected, and its proxy's finalizer cancels it with
-- reason "GC". At the worker's exit, pending timers are cancelled with "SYSTEM".
local rt = require "chime.runtime"
local ngx = require "ngx"
local core = rt.core

local type, tonumber, tostring, select, error, xpcall, pcall = type, tonumber, tostring, select, error, xpcall, pcall
local unpack = table.unpack or unpack

local KEY_PREFIX = "[lua-resty-timer]"
local LOG_PREFIX = "[resty-timer] "
local CANCEL_GC, CANCEL_SYSTEM, CANCEL_USER = "GC", "SYSTEM", "USER"

local anchored = {}                                   -- slot -> detached timer
local collectable = setmetatable({}, { __mode = "v" }) -- slot -> timer that may be collected

local function traceback(msg) return core.traceback(tostring(msg), 2) end

local function release(self)
  local slot = self.id
  if slot then
    anchored[slot], collectable[slot] = nil, nil
    self.id = nil
    core.cancel(slot)
  end
end

local function cancel(self)
  if self.cancel_flag then
    return nil, "already cancelled"
  end
  release(self)
  self.cancel_flag = true
  self.premature_reason = self.premature_reason or CANCEL_USER
  local args = self.args
  self.args = nil
  if self.cb_cancel then
    return self.cb_cancel(self.premature_reason, unpack(args, 1, args.n))
  end
  return true
end

-- The dispatch function every slot holds: runs the timer behind `slot`, if it is still there.
-- Allocates nothing on the Lua heap, so that an unreferenced timer lives until a collection runs.
local function fire(slot, fence)
  local self = collectable[slot] or anchored[slot]
  if not self then
    core.cancel(slot) -- collected: stop its chime timer too
    return
  end
  if self.cancel_flag then return end
  if self.starting then -- a node-wide timer's jitter delay ended: join the key's schedule now
    self.starting = false
    anchored[slot], collectable[slot], self.id = nil, nil, nil
    self:_arm()
    return
  end
  local args = self.args
  if not self.recurring then
    release(self) -- done: nothing keeps it any more
    self.cb_expire(unpack(args, 1, args.n))
    return
  end
  if self.running then -- runs of one timer never overlap
    if self.key_name then core.cluster_done(slot) end
    return
  end
  self.running = true
  if self.key_name then self.fence = fence end
  local ok, err = xpcall(self.cb_expire, traceback, unpack(args, 1, args.n))
  self.running = false
  if self.key_name then core.cluster_done(slot) end -- the run's lease goes
  if not ok then
    ngx.log(ngx.ERR, LOG_PREFIX, "timer callback failed with: ", tostring(err))
  end
end

local Timer = {}
local create

function Timer:_arm()
  local slot, err
  if self.key_name and self.recurring then
    slot, err = core.cluster_arm(fire, self.key_name, self.interval, self.sub_given or 0, self.immediate and true or false)
  else
    slot, err = core.resty_arm(fire, self.interval, self.recurring and true or false,
      self.immediate and true or false, self.jitter)
  end
  if not slot then return nil, err end
  if self.detached then anchored[slot] = self else collectable[slot] = self end
  self.id = slot
  return true
end

local function check(cond, msg)
  if not cond then error(msg, 0) end
end

local function new(...)
  local opts = ...
  if type(opts) ~= "table" then rt.argerror(1, "new", "table", opts, select("#", ...) == 0) end
  return create(opts, select(2, ...))
end

create = function(opts, ...)
  local self = {
    interval = tonumber(opts.interval),
    recurring = opts.recurring,
    immediate = opts.immediate,
    detached = opts.detached,
    args = { n = select("#", ...), ... },
    jitter = opts.jitter,
    cb_expire = opts.expire,
    cb_cancel = opts.cancel,
    shm = nil,
    key_name = opts.key_name,
    sub_interval = opts.sub_interval,
    cancel = cancel,
    id = nil,
    cancel_flag = false,
    premature_reason = nil,
    gc_proxy = nil,
    running = false,
    starting = false,
    fence = 0, -- a node-wide timer's fence for the run in progress (chime's Fire::fence)
    _arm = Timer._arm,
  }
  -- the checks, in lua-resty-timer's order, with its messages
  check(self.interval, "expected 'interval' to be a number")
  check(self.interval >= 0, "expected 'interval' to be greater than or equal to 0")
  check(type(self.cb_expire) == "function", "expected 'expire' to be a function")
  if not self.recurring then
    check(not self.immediate, "the 'immediate' option requires 'recurring'")
  end
  if self.cb_cancel then
    check(type(self.cb_cancel) == "function", "expected 'cancel' to be a function")
  end
  if self.sub_interval then
    self.sub_interval = tonumber(self.sub_interval)
    check(self.sub_interval, "expected 'sub_interval' to be a number")
    check(self.key_name, "'key_name' is required when specifying 'sub_interval'")
    check(self.immediate, "'immediate' is required when specifying 'sub_interval'")
    check(self.sub_interval >= 0, "expected 'sub_interval' to be greater than or equal to 0")
    check(self.sub_interval <= self.interval, "expected 'sub_interval' to be less than or equal to 'interval'")
    self.sub_given = self.sub_interval
  else
    self.sub_interval = self.interval
  end
  if self.jitter ~= nil then
    check(type(self.jitter) == "number", "expected 'jitter' to be a number")
    check(self.jitter >= 0, "expected 'jitter' to be greater than or equal to 0")
  else
    self.jitter = 0
  end
  if self.key_name then
    check(type(self.key_name) == "string", "expected 'key_name' to be a string")
    check(opts.shm_name, "'shm_name' is required when specifying 'key_name'")
    self.shm = ngx.shared[opts.shm_name]
    check(self.shm, "shm by name '" .. tostring(opts.shm_name) .. "' not found")
    self.key_name = KEY_PREFIX .. self.key_name
  end
  if ngx.worker.exiting() then
    return nil, "process exiting"
  end

  local ok, err
  if self.key_name and self.recurring and self.jitter > 0 then
    -- the shared schedule has no jitter: this worker joins it after a random delay instead
    self.starting = true
    local slot
    slot, err = core.resty_arm(fire, math.random() * self.jitter, false, false, 0)
    if slot then
      ok = true
      if self.detached then anchored[slot] = self else collectable[slot] = self end
      self.id = slot
    end
  else
    ok, err = self:_arm()
  end
  if not ok then
    ngx.log(ngx.ERR, LOG_PREFIX, "failed to create timer: " .. tostring(err))
    return nil, err
  end
  if not self.detached then
    -- a proxy whose finalizer cancels the timer once nothing references it
    self.gc_proxy = newproxy(true)
    getmetatable(self.gc_proxy).__gc = function()
      if self.cancel_flag then return end
      self.premature_reason = self.premature_reason or CANCEL_GC
      local done, e = pcall(cancel, self)
      if not done then ngx.log(ngx.ERR, LOG_PREFIX, "cancel callback failed with: ", tostring(e)) end
    end
  end
  return self
end

-- the worker's exit: every pending timer is cancelled with "SYSTEM"
ngx._exit_hooks[#ngx._exit_hooks + 1] = function()
  local live = {}
  for _, t in pairs(anchored) do live[#live + 1] = t end
  for _, t in pairs(collectable) do live[#live + 1] = t end
  table.sort(live, function(a, b) return (a.id or 0) < (b.id or 0) end)
  for _, t in ipairs(live) do
    if not t.cancel_flag then
      t.premature_reason = t.premature_reason or CANCEL_SYSTEM
      local ok, e = pcall(cancel, t)
      if not ok then ngx.log(ngx.ERR, LOG_PREFIX, "cancel callback failed with: ", tostring(e)) end
    end
  end
end

return setmetatable({
  new = new,
  CANCEL_GC = CANCEL_GC,
  CANCEL_SYSTEM = CANCEL_SYSTEM,
  CANCEL_USER = CANCEL_USER,
}, {
  __call = function(_, ...) return new(...) end,
})
