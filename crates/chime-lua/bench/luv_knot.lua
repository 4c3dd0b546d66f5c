-- the lua-luv side of the Knot-style workloads: what Knot's event.c does on libuv: a timer handle
-- per event, kept by id; cancel stops and closes it; a fired one-shot closes its handle
local rss, report = (loadstring or load)(BENCH_COMMON)()
local uv = require "luv"
local workload, n = arg[1], tonumber(arg[2])
local events, fired = {}, 0
for i = 1, n do events[i] = false end
collectgarbage(); collectgarbage()

local function after(id, ms)
  local t = uv.new_timer()
  t:start(ms, 0, function()
    fired = fired + 1
    t:close()
    events[id] = false
  end)
  events[id] = t
end

if workload == "knot_arm_cancel" then
  local t0 = os.clock()
  for i = 1, n do after(i, 60000) end
  for i = 1, n do
    local t = events[i]
    t:stop()
    t:close()
    events[i] = false
  end
  uv.run()
  report(workload, n, os.clock() - t0, 0)
elseif workload == "knot_pending" then
  local before = rss()
  for i = 1, n do after(i, 3600000) end
  collectgarbage(); collectgarbage()
  report(workload, n, 0, rss() - before)
elseif workload == "knot_expire" then
  for i = 1, n do after(i, i % 200) end
  local t0 = os.clock()
  uv.run()
  local cpu = os.clock() - t0
  assert(fired == n, "fired " .. fired)
  report(workload, n, cpu, 0)
end
