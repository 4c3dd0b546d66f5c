package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "check"
local chime = require "chime"

-- order: equal deadlines run in arming order, earlier deadlines first (c is armed first but due
-- 140 ms after a and b: a runner that holds the thread back for tens of ms between the arms cannot
-- swap them)
local order = {}
chime.after(0.15, function() order[#order + 1] = "c" end)
chime.after(0.01, function() order[#order + 1] = "a" end)
chime.after(0.01, function() order[#order + 1] = "b" end)
chime.spawn(function(x) order[#order + 1] = "task " .. x end, 1)
t.eq(#order, 0, "nothing runs before the loop")
chime.run()
t.eq(table.concat(order, ","), "task 1,a,b,c", "run order")
t.eq(chime.pending(), 0, "nothing pending after the loop")

-- ids are never reused; cancel answers whether a run was still to come
local a = chime.after(1, function() end)
t.eq(chime.cancel(a), true, "cancel of an armed timer")
t.eq(chime.cancel(a), false, "second cancel")
local b = chime.after(1, function() end)
t.ok(a ~= b, "a new timer never gets an old id")
t.eq(chime.cancel(b), true, "cancel b")
t.eq(chime.cancel(12345), false, "unknown id")
t.eq(chime.cancel("x"), false, "not an id")

-- recurring timers, reschedule, and a one-shot rescheduled from its own callback
local ticks, again = 0, 0
local every = chime.every(0.01, function(id)
  ticks = ticks + 1
  if ticks == 5 then chime.cancel(id) end
end)
local once
once = chime.after(0.01, function(id)
  again = again + 1
  if again < 3 then t.eq(chime.reschedule(id, 0.01), true, "reschedule from its own callback") end
end)
chime.run()
t.eq(ticks, 5, "a recurring timer ran until it cancelled itself")
t.eq(again, 3, "a one-shot re-armed twice from its own callback")
t.eq(chime.cancel(every), false, "cancelled already")
t.eq(chime.reschedule(once, 1), false, "reschedule of a finished timer")

-- never early; median lateness under 100 ms: chime is not stuck behind its deadlines (not a load
-- measurement: a loaded runner may hold the thread back for tens of ms, and the driver's tick is 1 ms)
local lateness = {}
for i = 1, 9 do
  local armed, delay = chime.now(), 0.02 + i * 0.003
  chime.after(delay, function()
    local late = chime.now() - armed - delay
    t.ok(late >= -0.0005, "never early (" .. late .. ")")
    lateness[#lateness + 1] = late
  end)
end
chime.run()
table.sort(lateness)
t.ok(lateness[5] < 0.1, "median lateness " .. lateness[5])

-- tasks: sleep, suspend/wake, kill, yield
local log = {}
local sleeper = chime.spawn(function()
  local before = chime.now()
  chime.sleep(0.02)
  log[#log + 1] = chime.now() - before >= 0.02 and "slept" or "woke early"
  local woken, v = chime.suspend()
  log[#log + 1] = ("woken %s %s"):format(tostring(woken), tostring(v))
  local r = chime.suspend(0.01)
  log[#log + 1] = "timeout " .. tostring(r)
end)
-- the wake is due 130 ms after the sleep ends, so a runner that holds the thread back for tens of ms
-- before the sleeper arms its sleep cannot wake it from the sleep instead of the suspend
chime.after(0.15, function() t.eq(chime.wake(sleeper, "v"), true, "wake") end)
local victim = chime.spawn(function() chime.sleep(10); log[#log + 1] = "never" end)
chime.after(0.01, function() t.eq(chime.kill(victim), true, "kill") end)
chime.run()
t.eq(table.concat(log, ";"), "slept;woken true v;timeout false", "task log")
t.eq(chime.wake(sleeper), false, "a finished task cannot be woken")

-- a suspended task does not keep the loop running, and is garbage once unreachable
local weak = setmetatable({}, { __mode = "k" })
weak[chime.spawn(function() chime.suspend() end)] = true
chime.run()
collectgarbage(); collectgarbage()
t.eq(next(weak), nil, "a task parked forever was collected")

-- errors: a callback error is reported and never stops the loop nor leaks its timer
local seen = {}
chime.seterrorhandler(function(msg, co) seen[#seen + 1] = msg end)
local survivor = 0
chime.after(0.01, function() error("first") end)
chime.every(0.01, function(id)
  survivor = survivor + 1
  if survivor == 3 then chime.cancel(id) end
  error("tick " .. survivor)
end)
chime.spawn(function() error({ code = 1 }) end)
chime.run()
t.eq(survivor, 3, "a failing recurring timer kept running")
t.eq(#seen, 5, "every error reported")
t.eq(type(seen[1]), "table", "the task's error object comes first (tasks start at the first step)")
t.has(seen[2], "first", "then the one-shot's message")
t.eq(chime.pending(), 0, "no timer leaked")
chime.seterrorhandler(nil)

-- stop() ends the loop with timers still armed; they run at the next loop (`later` is due 140 ms
-- after the stop: a runner that holds the thread back for tens of ms cannot put both in one batch)
local later = 0
chime.after(0.01, function() chime.stop() end)
chime.after(0.15, function() later = later + 1 end)
chime.run()
t.eq(later, 0, "stopped before")
t.eq(chime.pending(), 1, "still armed")
chime.run()
t.eq(later, 1, "ran in the next loop")

-- bad input: Lua-style errors
t.has(t.fails(chime.after), "bad argument #1 to 'after' (number expected, got no value)", "after")
t.has(t.fails(chime.after, 1), "bad argument #2 to 'after' (function expected, got no value)", "after f")
t.has(t.fails(chime.after, -1, print), "bad argument #1 to 'after' (delay must be", "negative")
t.has(t.fails(chime.after, 0 / 0, print), "bad argument #1 to 'after'", "nan")
t.has(t.fails(chime.every, 0, print), "bad argument #1 to 'every' (interval must be", "zero interval")
t.has(t.fails(chime.sleep, 1), "sleep must be called from a task", "sleep outside a task")
t.has(t.fails(chime.spawn, 1), "bad argument #1 to 'spawn' (function expected, got number)", "spawn")
chime.spawn(function()
  t.has(t.fails(chime.run), "already running", "nested loop")
end)
chime.run()
t.done("chime_api")
