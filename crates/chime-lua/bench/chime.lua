-- the chime-lua side: chime.after / chime.cancel (the API Knot's event.after maps onto)
local rss, report = (loadstring or load)(BENCH_COMMON)()
local chime = require "chime"
local workload, n = arg[1], tonumber(arg[2])
local ids, fired = {}, 0
local function cb() fired = fired + 1 end
for i = 1, n do ids[i] = false end -- the id table is allocated before measuring, on both sides
collectgarbage(); collectgarbage()

if workload == "arm_cancel" then
  local t0 = os.clock()
  for i = 1, n do ids[i] = chime.after(60, cb) end
  for i = 1, n do chime.cancel(ids[i]) end
  report(workload, n, os.clock() - t0, 0)
elseif workload == "pending" then
  local before = rss()
  for i = 1, n do ids[i] = chime.after(3600, cb) end
  collectgarbage(); collectgarbage()
  report(workload, n, 0, rss() - before)
elseif workload == "expire" then
  for i = 1, n do ids[i] = chime.after((i % 200) / 1000, cb) end
  local t0 = os.clock()
  chime.run()
  local cpu = os.clock() - t0
  assert(fired == n, "fired " .. fired)
  report(workload, n, cpu, 0)
end
