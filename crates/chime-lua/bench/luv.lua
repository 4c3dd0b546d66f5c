-- the lua-luv side: uv.new_timer / timer:start / timer:stop + close, on the same Lua
local rss, report = (loadstring or load)(BENCH_COMMON)()
local uv = require "luv"
local workload, n = arg[1], tonumber(arg[2])
local timers, fired = {}, 0
local function cb() fired = fired + 1 end
for i = 1, n do timers[i] = false end
collectgarbage(); collectgarbage()

if workload == "arm_cancel" then
  local t0 = os.clock()
  for i = 1, n do
    local t = uv.new_timer()
    t:start(60000, 0, cb)
    timers[i] = t
  end
  for i = 1, n do
    local t = timers[i]
    t:stop()
    t:close()
    timers[i] = false
  end
  uv.run() -- the closes complete in the loop
  report(workload, n, os.clock() - t0, 0)
elseif workload == "pending" then
  local before = rss()
  for i = 1, n do
    local t = uv.new_timer()
    t:start(3600000, 0, cb)
    timers[i] = t
  end
  collectgarbage(); collectgarbage()
  report(workload, n, 0, rss() - before)
elseif workload == "expire" then
  -- the shared callback does not close its handle (a closure per timer would cost luv more)
  for i = 1, n do
    local t = uv.new_timer()
    t:start(i % 200, 0, cb)
    timers[i] = t
  end
  local t0 = os.clock()
  uv.run()
  local cpu = os.clock() - t0
  assert(fired == n, "fired " .. fired)
  report(workload, n, cpu, 0)
end
