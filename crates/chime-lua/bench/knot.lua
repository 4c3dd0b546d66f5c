-- the chime-lua side of the Knot-style workloads: Knot's event.after / event.cancel (times in ms)
local rss, report = (loadstring or load)(BENCH_COMMON)()
require "knot"
local workload, n = arg[1], tonumber(arg[2])
local ids, fired = {}, 0
local function cb() fired = fired + 1 end
for i = 1, n do ids[i] = false end
collectgarbage(); collectgarbage()

if workload == "knot_arm_cancel" then
  local t0 = os.clock()
  for i = 1, n do ids[i] = event.after(60000, cb) end
  for i = 1, n do event.cancel(ids[i]) end
  report(workload, n, os.clock() - t0, 0)
elseif workload == "knot_pending" then
  local before = rss()
  for i = 1, n do ids[i] = event.after(3600000, cb) end
  collectgarbage(); collectgarbage()
  report(workload, n, 0, rss() - before)
  os.exit(0)
elseif workload == "knot_expire" then
  for i = 1, n do ids[i] = event.after(i % 200, cb) end
  local t0 = os.clock()
  require("chime").run()
  local cpu = os.clock() - t0
  assert(fired == n, "fired " .. fired)
  report(workload, n, cpu, 0)
end
