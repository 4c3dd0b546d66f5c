package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "check"
require "tinn"
local Timer = require "Timer"

-- spawn/yield/sleep/wait/delay/periodic and run's end when nothing is pending
local log = {}
local function add(s) log[#log + 1] = s end
run(function(x)
  add("main " .. x)
  spawn(function() add("spawned"); yield(); add("after yield") end)
  local t0 = IOProcessor.Clock:Milliseconds()
  sleep(20)
  t.ok(IOProcessor.Clock:Milliseconds() - t0 >= 19, "slept 20 ms")
  wait(5)
  local ticks = 0
  local p
  p = periodic(function() ticks = ticks + 1; if ticks == 3 then p:cancel() end end, 10)
  delay(function() add("delayed") end, 15)
  local cancelled = delay(function() add("never") end, 15)
  cancelled:cancel()
  -- waited for, not slept for: ticks missed while a loaded runner holds the thread back are skipped
  t.eq(waitFor(function() return ticks >= 3 end, 2000), true, "periodic ran 3 times")
  t.eq(ticks, 3, "periodic ran 3 times, then cancelled itself")
end, "x")
t.eq(table.concat(log, ","), "main x,spawned,after yield,delayed", "task log")

-- signals
local got = {}
run(function()
  onSignal(function() got[#got + 1] = "on" end, "go")
  spawn(function() local v = waitForSignal("go"); got[#got + 1] = "wait " .. tostring(v) end)
  spawn(function() local v = waitSignal("go"); got[#got + 1] = "waitSignal " .. tostring(v) end)
  yield(); yield()
  t.eq(signalOne("go", 1), true, "one woken")
  t.eq(signalAll("go", 2), 2, "two woken")
  t.eq(signalAll("nobody"), 0, "nobody waiting")
end)
table.sort(got)
t.eq(table.concat(got, ","), "on,wait 2,waitSignal 2", "signals delivered")

-- Timer{Delay, Period, OnTime|TimerFunc, Running}
local runs, manual = {}, 0
run(function()
  -- runs due at 50, 100, 150 and 200 ms; a tick missed while a loaded runner holds the thread back
  -- is skipped, so 2 allows the thread held back for up to about 150 ms
  local tm = Timer { Delay = 50, Period = 50, OnTime = function(timer) runs[#runs + 1] = timer end }
  t.eq(tm.Running, true, "OnTime starts at once")
  local ok, err = tm:start()
  t.eq(ok, false, "double start refused"); t.eq(err, "already running", "double start message")
  sleep(225)
  tm:stop()
  local n = #runs
  sleep(60) -- more than a period: a timer that did not stop would run meanwhile
  t.eq(#runs, n, "stopped at once")
  t.ok(n >= 2 and n <= 5, "about 4 runs: " .. n)
  t.eq(runs[1], tm, "the callback gets the timer")
  local m = Timer { Delay = 5, TimerFunc = function() manual = manual + 1 end }
  t.eq(m.Running, false, "TimerFunc waits for start()")
  sleep(20)
  t.eq(manual, 0, "not started")
  m:start()
  sleep(20)
  t.eq(manual, 1, "one-shot after Delay")
  Timer { Period = 5, TimerFunc = function(self) manual = manual + 1; self:cancel() end, Running = true }
end)
t.eq(manual, 2, "Running = true started it; it cancelled itself")

-- when / whenever / waitFor with and without a timeout, stop() (last: whenever waits for ever,
-- and its predicate keeps any later loop running, as in TINN)
local count, hits, done, counter = 0, 0, false, nil
run(function()
  counter = periodic(function() count = count + 1 end, 5)
  -- a predicate polls cannot step over (a held-back poll may miss a multiple of 3)
  whenever(function() return count >= 3 * (hits + 1) end, function() hits = hits + 1 end)
  when(function() return count >= 10 end, function() done = true; stop() end)
  t.eq(waitFor(function() return count >= 2 end), true, "waitFor met")
  t.eq(waitFor(function() return false end, 20), false, "waitFor timed out")
end)
t.eq(done, true, "when fired and stopped the loop")
t.eq(counter:cancel(), true, "stop() left the periodic timer armed (for a later run)")
t.ok(hits >= 2, "whenever fired repeatedly: " .. hits)

-- bad input
t.has(t.fails(spawn, 1), "bad argument #1 to 'spawn' (function expected, got number)", "spawn")
t.has(t.fails(Timer, nil), "bad argument #1 to 'Timer' (table expected", "Timer")
t.has(t.fails(Timer, { Period = 5 }), "OnTime or TimerFunc must be a function", "Timer callback")
t.has(t.fails(periodic, print, 0), "the period must be more than 0 ms", "periodic 0")
t.has(t.fails(sleep, 5), "sleep must be called from a task", "sleep outside a task")
t.done("tinn")
