-- require "ngx" (also the global `ngx`): the subset of OpenResty's ngx API that timer programs and
-- lua-resty-timer use, on chime-lua's runtime. Times are seconds.
--
-- Log lines go to stderr in nginx's error-log shape; ngx.say/ngx.print write to stdout. Timers
-- (ngx.timer.at/every) are chime timers whose handler and arguments are held until they run, as
-- nginx holds them. At the worker's exit (the end of the program, or of the request handler with
-- --openresty) pending timers run once with premature = true and the exit hooks of resty.timer run.
local rt = require "chime.runtime"
local core = rt.core

local type, tostring, select, error, pcall, xpcall = type, tostring, select, error, pcall, xpcall
local concat, unpack = table.concat, table.unpack or unpack
local co_running = coroutine.running

local ngx = rawget(_G, "ngx") or {}
if ngx._chime then return ngx end
ngx._chime = true

ngx.OK, ngx.ERROR, ngx.AGAIN, ngx.DONE, ngx.DECLINED = 0, -1, -2, -4, -5
ngx.HTTP_OK, ngx.HTTP_NOT_FOUND, ngx.HTTP_INTERNAL_SERVER_ERROR = 200, 404, 500
ngx.STDERR, ngx.EMERG, ngx.ALERT, ngx.CRIT, ngx.ERR = 0, 1, 2, 3, 4
ngx.WARN, ngx.NOTICE, ngx.INFO, ngx.DEBUG = 5, 6, 7, 8
local LEVELS = { [0] = "stderr", "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug" }

ngx.null = newproxy and newproxy(false) or setmetatable({}, { __tostring = function() return "null" end })
ngx.ctx, ngx.var, ngx.status = {}, {}, 200
ngx.config = { subsystem = "http", nginx_version = 1025003, ngx_lua_version = 10026, debug = false,
  prefix = function() return "" end, nginx_configure = function() return "" end }

local worker_id, worker_count, pid = core.worker()

---------------------------------------------------------------------------------------------------
-- time
---------------------------------------------------------------------------------------------------

-- never stale: update_time() has nothing to refresh
function ngx.now() return math.floor(core.time() * 1000) / 1000 end
function ngx.time() return math.floor(core.time()) end
function ngx.update_time() end
function ngx.today() return os.date("%Y-%m-%d") end
function ngx.localtime() return os.date("%Y-%m-%d %H:%M:%S") end
function ngx.utctime() return os.date("!%Y-%m-%d %H:%M:%S") end

function ngx.sleep(s)
  if type(s) ~= "number" then rt.argerror(1, "sleep", "number", s, s == nil) end
  if not (s >= 0) then error("invalid sleep duration \"" .. tostring(s) .. "\"", 2) end
  rt.wait(s, "sleep")
end

---------------------------------------------------------------------------------------------------
-- output and the error log
---------------------------------------------------------------------------------------------------

local timer_ctx = setmetatable({}, { __mode = "k" }) -- coroutines running a timer handler
ngx._timer_ctx = timer_ctx
ngx._request_ctx = setmetatable({}, { __mode = "k" }) -- the --openresty request handler's coroutine

local function piece(v, n, fname)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" or t == "boolean" or v == nil then return tostring(v) end
  if v == ngx.null then return "null" end
  local mt = getmetatable(v)
  if t == "table" and mt and mt.__tostring then return tostring(v) end
  error(("bad argument #%d to '%s' (expected table to have __tostring metamethod)"):format(n, fname), 3)
end

local function context()
  local co = co_running()
  if timer_ctx[co] then return ", context: ngx.timer" end
  if ngx._request_ctx[co] then
    return ', client: 127.0.0.1, server: localhost, request: "GET /t HTTP/1.1", host: "localhost"'
  end
  return ""
end

-- one error-log line, as nginx writes it
local function logline(level, where, msg)
  io.stderr:write(os.date("%Y/%m/%d %H:%M:%S"), " [", LEVELS[level] or "error", "] ", pid, "#0: ",
    where, msg, context(), "\n")
end
ngx._logline = logline

local function position(level)
  local at, name = core.where(level)
  if at == nil or at == "" then return "[lua] " end
  if name then return ("[lua] %s: %s(): "):format(at, name) end
  return ("[lua] %s: "):format(at)
end

function ngx.log(level, ...)
  if type(level) ~= "number" or not LEVELS[level] then
    error("bad log level", 2)
  end
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = piece((select(i, ...)), i + 1, "log") end
  logline(level, position(3), concat(parts))
end

-- OpenResty's print: the error log at NOTICE (installed as `print` with --openresty)
function ngx._print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = piece((select(i, ...)), i, "print") end
  logline(ngx.NOTICE, position(3), concat(parts))
end

local function flatten(out, v, n)
  if type(v) == "table" and v ~= ngx.null and not (getmetatable(v) or {}).__tostring then
    for i = 1, #v do flatten(out, v[i], n) end
  else
    out[#out + 1] = piece(v, n, "say")
  end
end

local function write(nl, ...)
  local out = {}
  for i = 1, select("#", ...) do flatten(out, (select(i, ...)), i) end
  if nl then out[#out + 1] = "\n" end
  io.stdout:write(concat(out))
  return 1
end
function ngx.say(...) return write(true, ...) end
function ngx.print(...) return write(false, ...) end
function ngx.flush() io.stdout:flush() return 1 end
function ngx.exit(status)
  ngx.status = status
  error(ngx._EXIT, 0)
end
ngx._EXIT = setmetatable({}, { __tostring = function() return "ngx.exit" end })

---------------------------------------------------------------------------------------------------
-- the worker
---------------------------------------------------------------------------------------------------

local exiting = false
ngx.worker = {
  id = function() return worker_id end,
  count = function() return worker_count end,
  pid = function() return pid end,
  exiting = function() return exiting end,
}

---------------------------------------------------------------------------------------------------
-- timers: the handler and its arguments are held until the timer runs (or the worker exits)
---------------------------------------------------------------------------------------------------

local pending = {}   -- slot id -> { f, n, args... } (strong: nginx holds them too)
local npending, nrunning = 0, 0

local function handler_failed(err)
  local co = co_running()
  local stack = rt.stack(co)
  logline(ngx.ERR, "", "lua entry thread aborted: runtime error: " .. tostring(err) ..
    (stack and ("\n" .. stack) or ""))
end

local function run_handler(entry, premature)
  local co = co_running()
  timer_ctx[co] = true
  nrunning = nrunning + 1
  local ok, err = xpcall(entry.f, function(m) return core.traceback(tostring(m), 2) end,
    premature, unpack(entry, 1, entry.n))
  nrunning = nrunning - 1
  timer_ctx[co] = nil
  if not ok then logline(ngx.ERR, "", "lua entry thread aborted: runtime error: " .. tostring(err)) end
end

local function fire(id)
  local entry = pending[id]
  if not entry then return end
  if not entry.every then
    pending[id] = nil
    npending = npending - 1
  elseif entry.running then
    return -- runs of one ngx.timer.every never overlap
  end
  entry.running = true
  run_handler(entry, false)
  entry.running = false
end

local function new_timer(fname, every, delay, f, ...)
  if type(delay) ~= "number" then rt.argerror(1, fname, "number", delay, delay == nil) end
  if type(f) ~= "function" then rt.argerror(2, fname, "function", f, f == nil) end
  if not (delay >= 0) or delay == math.huge or (every and delay == 0) then
    error(("bad argument #1 to '%s' (invalid delay: %s)"):format(fname, tostring(delay)), 3)
  end
  if exiting then return nil, "process exiting" end
  local id, err = core.arm(fire, delay, every and delay or nil)
  if not id then return nil, err end
  pending[id] = { f = f, every = every, running = false, n = select("#", ...), ... }
  npending = npending + 1
  return true
end

ngx.timer = {
  at = function(delay, f, ...) return new_timer("at", false, delay, f, ...) end,
  every = function(delay, f, ...) return new_timer("every", true, delay, f, ...) end,
  running_count = function() return nrunning end,
  pending_count = function() return npending end,
}

---------------------------------------------------------------------------------------------------
-- shared dictionaries (--shdict NAME[=SIZE]); an undeclared name is nil
---------------------------------------------------------------------------------------------------

local shd = core.shd
local Dict = {}
Dict.__index = Dict

local function key_of(self, key, fname)
  if type(self) ~= "table" or getmetatable(self) ~= Dict then
    error(("bad argument #1 to '%s' (shared dictionary expected; use a colon: dict:%s(...))"):format(fname, fname), 3)
  end
  if key == nil then return nil, "nil key" end
  if type(key) ~= "string" then key = tostring(key) end
  if #key == 0 then return nil, "empty key" end
  if #key > 65535 then return nil, "key too long" end
  return key
end

local function exptime_of(v, fname)
  if v == nil then return 0 end
  if type(v) ~= "number" or not (v >= 0) then error("bad \"exptime\" argument to '" .. fname .. "'", 3) end
  return v
end

for _, op in ipairs { "set", "safe_set", "add", "safe_add", "replace" } do
  local mode = op:gsub("^safe_", "")
  Dict[op] = function(self, key, value, exptime, flags)
    local k, err = key_of(self, key, op)
    if not k then return false, err, false end
    return shd(mode, self.name, k, value, exptime_of(exptime, op), flags)
  end
end

function Dict:get(key)
  local k, err = key_of(self, key, "get")
  if not k then return nil, err end
  local v, flags = shd("get", self.name, k)
  return v, flags
end

function Dict:get_stale(key)
  local k, err = key_of(self, key, "get_stale")
  if not k then return nil, err end
  return shd("get_stale", self.name, k)
end

function Dict:incr(key, value, init, init_ttl)
  local k, err = key_of(self, key, "incr")
  if not k then return nil, err end
  if type(value) ~= "number" then return nil, "value not a number" end
  if init ~= nil and type(init) ~= "number" then return nil, "init not a number" end
  return shd("incr", self.name, k, value, init, exptime_of(init_ttl, "incr"))
end

function Dict:delete(key)
  local k = key_of(self, key, "delete")
  if k then shd("delete", self.name, k) end
end

function Dict:ttl(key)
  local k, err = key_of(self, key, "ttl")
  if not k then return nil, err end
  return shd("ttl", self.name, k)
end

function Dict:expire(key, exptime)
  local k, err = key_of(self, key, "expire")
  if not k then return nil, err end
  return shd("expire", self.name, k, exptime_of(exptime, "expire"))
end

function Dict:flush_all() shd("flush_all", self.name, "-") end
function Dict:flush_expired(max) return shd("flush_expired", self.name, "-", max or 0) end
function Dict:get_keys(max) return shd("get_keys", self.name, "-", max or 1024) end
function Dict:capacity() return shd("capacity", self.name, "-") end
function Dict:free_space() return shd("free_space", self.name, "-") end

ngx.shared = {}
for name in pairs(core.shdict_declared()) do
  ngx.shared[name] = setmetatable({ name = name }, Dict)
end

---------------------------------------------------------------------------------------------------
-- the worker's exit: premature timers, then the modules' own hooks (resty.timer's CANCEL_SYSTEM),
-- then the loop, for at most `exit_timeout` seconds, for what they started
---------------------------------------------------------------------------------------------------

ngx._exit_hooks = {}
ngx._exit_timeout = 5

rt.atexit(function()
  exiting = true
  local ids = {}
  for id in pairs(pending) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do
    local entry = pending[id]
    pending[id] = nil
    npending = npending - 1
    core.cancel(id)
    rt.run_callback(function() run_handler(entry, true) end, 0, 0)
  end
  for _, hook in ipairs(ngx._exit_hooks) do hook() end
  local bound = core.arm(function()
    logline(ngx.ALERT, "", "worker exit timed out after " .. ngx._exit_timeout .. " s")
    core.stop()
  end, ngx._exit_timeout)
  core.hold(-1) -- the bound itself does not keep the loop running
  if rt.busy() or core.pending() > 0 then rt.run() end
  core.hold(1)
  core.cancel(bound)
end)

_G.ngx = ngx
return ngx
