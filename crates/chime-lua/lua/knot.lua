-- require "knot" (or chime-lua --knot FILE): Knot Resolver's configuration globals on chime-lua's
-- runtime: `event` (after, recurrent, reschedule, cancel, socket), `worker` (coroutine, sleep,
-- bg_worker, id, count, pid), `sec`, `minute`, `hour`, `day` (times in milliseconds) and `map`.
-- The configuration runs first; Knot's event loop runs at the program's end (`finish`), until
-- nothing is pending.
--
-- As daemon/bindings/event.c: recurrent(0, f) is an error; a recurrent event runs at once, then
-- every interval; a callback error is logged and closes its event; reschedule makes an event a
-- one-shot at the new time (also a recurrent one); cancel and reschedule answer false for an id
-- that is gone. Unlike Knot's (luaL_ref slots), chime's event ids are never reused: a stale id is
-- always "gone", never another event.
local rt = require "chime.runtime"
local cqueues = require "cqueues"
local core = rt.core

if rawget(_G, "event") and rawget(_G, "event")._chime then return _G.event end

local type, tostring, select, error, xpcall = type, tostring, select, error, xpcall

local worker_id, worker_count, pid = core.worker()

-- Knot's lua_error_p: a traceback, then "ERROR: message"
local function knot_error(msg)
  error(core.traceback("error occurred here (config filename:lineno is at the bottom, if config is involved):", 3)
    .. "\nERROR: " .. msg, 0)
end

local function log_error(msg)
  io.stderr:write("[system] error: ", tostring(msg), "\n")
end

local function traceback(msg) return core.traceback(tostring(msg), 2) end

---------------------------------------------------------------------------------------------------
-- event
---------------------------------------------------------------------------------------------------

local callbacks = {} -- event id -> callback (what Knot keeps in the registry)
local sockets = {}   -- event id -> true for fd watches

local function close(id)
  callbacks[id] = nil
  if sockets[id] then
    sockets[id] = nil
    core.unwatch(id)
  else
    core.cancel(id)
  end
end

local function fire(id)
  local f = callbacks[id]
  if not f then return end
  local ok, err = xpcall(f, traceback, id)
  if not ok then
    log_error(err)
    if callbacks[id] then close(id) end -- an error closes the event, recurrent or not
    return
  end
  -- a one-shot that did not reschedule itself is over
  if callbacks[id] and core.slot_state(id) ~= "timer" then callbacks[id] = nil end
end

local function fd_fire(id, payload)
  local f = callbacks[id]
  if not f then return end
  local status = payload == 2 and -1 or 0
  local ok, err = xpcall(f, traceback, id, status, 1)
  core.watch_done(id)
  if not ok then
    log_error(err)
    if callbacks[id] then close(id) end
  end
end

local function ms_of(n)
  return (n >= 0 and math.floor(n) or math.ceil(n)) / 1000 -- lua_tointeger truncates
end

local event = { _chime = true }

function event.after(timeout, f)
  if select("#", timeout, f) < 2 or type(timeout) ~= "number" or type(f) ~= "function" or not (timeout >= 0) then
    knot_error("expected 'after(number timeout, function)'")
  end
  local id, err = core.arm(fire, ms_of(timeout))
  if not id then knot_error("couldn't start the event: " .. err) end
  callbacks[id] = f
  return id
end

function event.recurrent(interval, f)
  if type(interval) ~= "number" or math.floor(math.abs(interval)) == 0 or type(f) ~= "function"
    or not (interval > 0) then
    knot_error("expected 'recurrent(number interval, function)'")
  end
  local id, err = core.arm(fire, 0, ms_of(interval))
  if not id then knot_error("couldn't start the event: " .. err) end
  callbacks[id] = f
  return id
end

function event.cancel(id)
  if type(id) ~= "number" then knot_error("expected 'cancel(number event)'") end
  if not callbacks[id] then return false end
  close(id)
  return true
end

function event.reschedule(id, timeout)
  if type(id) ~= "number" or type(timeout) ~= "number" then
    knot_error("expected 'reschedule(number event, number timeout)'")
  end
  if not callbacks[id] or sockets[id] then return false end
  if not (timeout >= 0) then close(id) return false end
  local ok = core.rearm(id, ms_of(timeout))
  if not ok then callbacks[id] = nil return false end
  return true
end

function event.socket(fd, f)
  if type(fd) ~= "number" or type(f) ~= "function" then
    knot_error("expected 'socket(number fd, function)'")
  end
  local id, err = core.watch(fd_fire, fd)
  if not id then knot_error("couldn't start event poller: " .. err) end
  callbacks[id], sockets[id] = f, true
  return id
end

---------------------------------------------------------------------------------------------------
-- worker
---------------------------------------------------------------------------------------------------

local function coroutine_failed(err, co)
  io.stderr:write("[system] worker.background error: ", tostring(err), " ", rt.stack(co) or "", "\n")
end

local bg = setmetatable({ name = "worker.background", cq = cqueues.new() }, {
  __index = {
    wrap = function(self, f, ...)
      if type(f) ~= "function" then rt.argerror(1, "wrap", "function", f, f == nil) end
      rt.spawn_with(coroutine_failed, self.name, f, ...)
    end,
    loop = function() end,
    close = function() end,
  },
})
bg.cq.errorhandler = coroutine_failed

local worker = rawget(_G, "worker") or {}
worker.id, worker.count, worker.pid = worker_id, worker_count, pid
worker.sleep = cqueues.sleep
worker.bg_worker = bg
function worker.coroutine(f)
  if type(f) ~= "function" then rt.argerror(1, "coroutine", "function", f, f == nil) end
  bg:wrap(f)
end

---------------------------------------------------------------------------------------------------
-- map(expr): the expression's value on every worker, in worker order ({ n = count, ... })
---------------------------------------------------------------------------------------------------

local function serialize(v, seen)
  local t = type(v)
  if t == "nil" or t == "boolean" then return tostring(v) end
  if t == "number" then
    if v ~= v then return "0/0" end
    if v == math.huge then return "math.huge" end
    if v == -math.huge then return "-math.huge" end
    return ("%.17g"):format(v)
  end
  if t == "string" then return ("%q"):format(v) end
  if t == "table" then
    seen = seen or {}
    if seen[v] then error("cannot serialize a table that contains itself", 0) end
    seen[v] = true
    local out = {}
    for k, x in pairs(v) do
      out[#out + 1] = "[" .. serialize(k, seen) .. "]=" .. serialize(x, seen)
    end
    seen[v] = nil
    return "{" .. table.concat(out, ",") .. "}"
  end
  error("cannot serialize a " .. t, 0)
end

local function compile(expr)
  local f = (loadstring or load)("return (" .. expr .. ")", "=map")
  if not f then
    local err
    f, err = (loadstring or load)(expr, "=map")
    if not f then return nil, err end
  end
  return f
end

-- one worker's answer: "true, <value>" or "false, <message>", as Lua source
local function evaluate(expr)
  local f, err = compile(expr)
  if not f then return "false, " .. ("%q"):format(err) end
  local ok, v = xpcall(f, traceback)
  if not ok then return "false, " .. ("%q"):format(tostring(v)) end
  local done, text = pcall(serialize, v)
  if not done then return "false, " .. ("%q"):format("returned values cannot be serialized: " .. text) end
  return "true, " .. text
end

local function decode(text)
  local f = (loadstring or load)("return " .. text, "=map reply")
  if not f then return false, "map() protocol error: " .. text end
  if setfenv then setfenv(f, {}) end
  return f()
end

local serving = false
local function serve(_, rid)
  local expr = core.control_request(rid)
  if expr then core.control_reply(rid, evaluate(expr)) end
end

-- one request to worker `w`: its reply, or nil when it cannot be reached. From a task it parks the
-- task; from the main chunk it runs the loop until the reply is in (this worker serves meanwhile).
local function query(w, line)
  local function ask()
    local target
    rt.await(true, function(t) target = t core.control_ask(t, w, line) end)
    local got, text = core.control_result(target)
    return got and text or nil
  end
  if rt.istask(coroutine.running()) then return ask() end
  local reply
  rt.spawn(function() reply = ask() core.stop() end)
  rt.run()
  return reply
end

function map(expr)
  if type(expr) ~= "string" then knot_error("map() command must be a string") end
  if expr:find("\n", 1, true) then knot_error("map() command cannot contain literal \\n, escape it with \\010") end
  if #expr == 0 then knot_error("map() command must be non-empty") end
  local f, err = compile(expr)
  if not f then knot_error("failure when compiling map() command: " .. tostring(err)) end
  local results = { n = 0 }
  for w = 0, worker_count - 1 do
    local reply = w == worker_id and evaluate(expr) or query(w, "eval " .. expr)
    if reply then -- an unreachable worker (gone) is skipped, as Knot skips dead sockets
      local ok, value = decode(reply)
      if not ok then
        knot_error(("error when executing map() command on worker %d: %s"):format(w, tostring(value)))
      end
      results.n = results.n + 1
      results[results.n] = value
    end
  end
  return results
end

---------------------------------------------------------------------------------------------------
-- globals, the control socket, and the event loop at the end of the configuration
---------------------------------------------------------------------------------------------------

sec, minute = 1000, 60 * 1000
hour, day = 60 * minute, 24 * 60 * minute
kB, MB, GB = 1024, 1024 * 1024, 1024 * 1024 * 1024
_G.event, _G.worker = event, worker

if worker_count > 1 then
  serving = core.control_start(serve) == true
end

-- whether every other worker of the run has finished its own loop (or is gone)
local function siblings_done()
  for w = 0, worker_count - 1 do
    if w ~= worker_id then
      if query(w, "?state") == "running" then return false end
    end
  end
  return true
end

rt.atexit(function()
  rt.run() -- Knot's event loop: until nothing is pending
  if serving then
    -- linger, answering the siblings' map() calls, until every worker is done
    core.control_done()
    rt.spawn(function()
      while not siblings_done() do rt.sleep(0.05) end
      core.stop()
    end)
    rt.run()
  end
end)

return event
