package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "check"
local copas = require "copas"

-- run order: threads start at the first step, in the order added; timers by deadline
local log = {}
copas.addthread(function(a, b) log[#log + 1] = "A" .. a .. b; copas.pause(0.02); log[#log + 1] = "A2" end, 1, 2)
local named = copas.addnamedthread("worker-b", function() log[#log + 1] = "B " .. copas.getthreadname() end)
t.eq(copas.getthreadname(named), "worker-b", "named thread")
t.eq(copas.running, false, "not running before the loop")
copas.loop(function() log[#log + 1] = "init " .. tostring(copas.running) end)
t.eq(table.concat(log, ","), "A12,B worker-b,init true,A2", "run order")
t.eq(copas.running, false, "not running after the loop")
t.eq(copas.finished(), true, "finished")

-- pause returns the time paused; sleep(<0) and pauseforever park until woken. The 20 ms pause
-- starts only once the thread is parked, so a runner that holds the thread back for tens of ms
-- cannot eat into the time it is parked.
local slept, forever
copas.loop(function()
  slept = copas.pause(0.03)
  local parking = false
  local co = copas.addthread(function() parking = true; forever = copas.pauseforever() end)
  while not parking do copas.pause(0) end
  copas.pause(0.02)
  copas.wakeup(co)
end)
t.ok(slept >= 0.03 and slept < 0.5, "pause(0.03) returned " .. slept)
t.ok(forever and forever >= 0.015, "pauseforever returned the time parked: " .. tostring(forever))

-- removethread: the thread never runs again and its sleep no longer keeps the loop running
local start, after = copas.gettime(), false
local victim = copas.addthread(function() copas.pause(5); after = true end)
copas.loop(function() copas.pause(0.02); copas.removethread(victim) end)
t.eq(after, false, "removed thread did not resume")
t.ok(copas.gettime() - start < 1, "the loop did not wait for the removed thread's sleep")

-- exit: waitforexit is released when the loop runs out of work, or by copas.exit()
local steps = {}
copas.addthread(function() copas.waitforexit(); steps[#steps + 1] = "exit seen " .. tostring(copas.exiting()) end)
copas.addthread(function() copas.pause(0.01); steps[#steps + 1] = "work done" end)
copas.loop()
t.eq(table.concat(steps, ","), "work done,exit seen true", "implicit exit")
copas.loop(function()
  t.eq(copas.exiting(), false, "a new loop is not exiting")
  copas.exit()
  t.eq(copas.exiting(), true, "exiting after copas.exit()")
end)

-- copas(...) is copas.loop(...)
local called = false
copas(function() called = true end)
t.ok(called, "copas() runs the loop")

-- errors: the thread's handler, then the default one; tracebacks name the thread
local caught = {}
copas.loop(function()
  copas.addnamedthread("failing", function()
    copas.seterrorhandler(function(msg, co, skt)
      caught[#caught + 1] = copas.gettraceback(msg, co, skt)
    end)
    copas.pause(0.01)
    error("inside")
  end)
  copas.addthread(function() copas.pause(0.02); error("default") end)
  local default = copas.geterrorhandler()
  copas.seterrorhandler(function(msg, co) caught[#caught + 1] = "default: " .. tostring(msg) end, true)
  t.ok(copas.geterrorhandler() ~= default, "default handler replaced")
end)
t.has(caught[1], "inside (coroutine: failing, socket: nil)", "traceback names the thread")
t.has(caught[1], "stack traceback:", "with a traceback")
t.has(caught[2], "default: ", "the default handler")
t.has(caught[2], "default", "message")
copas.setErrorHandler(function(msg, co, skt) print(copas.gettraceback(msg, co, skt)) end, true)

-- copas.timeout: the callback gets the coroutine; 0 cancels; errors go to the default handler
local timed, cancelled = nil, true
copas.loop(function()
  local me = coroutine.running()
  copas.timeout(0.01, function(co) timed = (co == me) end)
  copas.pause(0.03)
  copas.timeout(0.01, function() cancelled = false end)
  copas.timeout(0)
  copas.pause(0.03)
end)
t.eq(timed, true, "timeout callback got the thread")
t.eq(cancelled, true, "timeout(0) cancelled it")
t.eq(copas.gettimeouts(), 0, "no timeout left")

-- bad input
t.has(t.fails(copas.addthread, 1), "bad argument #1 to 'addthread' (function expected, got number)", "addthread")
t.has(t.fails(copas.addthread), "bad argument #1 to 'addthread' (function expected, got no value)", "no value")
t.has(t.fails(copas.pause, "x"), "bad argument #1 to 'pause' (number expected, got string)", "pause")
t.has(t.fails(copas.timeout, -1, print), "timout value must be greater than or equal to 0", "timeout")
t.has(t.fails(copas.setthreadname, 5), "bad argument #1 to 'setthreadname' (string expected, got number)", "name")
copas.loop(function() t.has(t.fails(copas.loop), "already running", "nested loop") end)

-- a runaway yield from user code reschedules the thread instead of losing it
local resumed = false
copas.loop(function() coroutine.yield(); resumed = true end)
t.ok(resumed, "a bare coroutine.yield() resumes at the next step")
t.done("copas_threads")
