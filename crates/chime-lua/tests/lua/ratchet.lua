-- Ratchet's threads, errors and timerfd on chime-lua.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "check"
require "ratchet"
t.eq(type(ratchet), "table", "require 'ratchet' sets the global")

-- errors
local e = ratchet.error.new("went wrong", "OOPS", "f()", "file.lua", 12)
t.eq(ratchet.error.is(e, "OOPS"), true, "is by code")
t.eq(e:is("OTHER"), false, "is, method")
t.eq(ratchet.error.is("OOPS", "OOPS"), true, "a string error compares as itself")
t.eq(ratchet.error.is({}, "OOPS"), false, "not a ratchet error")
t.eq(e:get_string(), "f(): went wrong", "get_string with a function")
t.eq(tostring(ratchet.error.new("x", nil, nil, "a.lua", 3)), "a.lua:3: x", "get_string with a file")
t.has(t.fails(ratchet.error.new), "bad argument #1 to 'new' (string expected, got no value)", "description required")

-- threads run in attach order; attach returns the thread; self(); pause/unpause carry values
local order = {}
local k = ratchet.new(function()
  local me = ratchet.thread.self()
  t.eq(type(me), "thread", "self in a thread")
  local a = ratchet.thread.attach(function(x) order[#order + 1] = "a" .. x end, 1)
  local b = ratchet.thread.attach(function(x) order[#order + 1] = "b" .. x end, 2)
  t.eq(type(a), "thread", "attach returns the thread")
  ratchet.thread.wait_all({ a, b })
  order[#order + 1] = "waited"
  local p1, p2
  p1 = ratchet.thread.attach(function()
    local x, y = ratchet.thread.pause()
    order[#order + 1] = "p1 " .. x .. y
    ratchet.thread.unpause(p2, "back")
  end)
  p2 = ratchet.thread.attach(function()
    ratchet.thread.unpause(p1, "x", "y")
    local back = ratchet.thread.pause()
    order[#order + 1] = "p2 " .. back
  end)
  ratchet.thread.wait_all({ p1, p2 })
  t.has(t.fails(ratchet.thread.unpause, p1), "Thread is not yielding, cannot unpause.", "unpause of a finished thread")
  -- timer sleeps
  local before = os.clock()
  local t0 = require("chime").now()
  ratchet.thread.timer(0.03)
  t.ok(require("chime").now() - t0 >= 0.029, "timer sleeps")
  local _ = before
  -- kill: a killed thread never runs again and counts as ended
  local killed_ran = false
  local victim = ratchet.thread.attach(function() ratchet.thread.timer(0.02) killed_ran = true end)
  ratchet.thread.attach(function() ratchet.thread.kill(victim) end)
  ratchet.thread.wait_all({ victim })
  ratchet.thread.timer(0.04)
  t.eq(killed_ran, false, "a killed thread never resumes")
  -- space
  local s = ratchet.thread.space()
  s.x = 1
  t.eq(ratchet.thread.space().x, 1, "thread space")
end)
t.eq(ratchet.thread.self(), nil, "self in the main thread")
t.has(t.fails(ratchet.thread.attach, print), "cannot be called from main thread", "attach outside a kernel")
k:loop()
t.eq(table.concat(order, ","), "a1,b2,waited,p1 xy,p2 back", "thread order and values")
t.eq(k:get_num_threads(), 0, "no threads left")

-- errors go to the handler with the thread; alarms: the callback's error, or ALARM
local errors = {}
local k2 = ratchet.new(function()
  ratchet.thread.attach(function() error(ratchet.error.new("bad", "BAD")) end)
  ratchet.thread.attach(function()
    ratchet.thread.alarm(0.01, function() errors.cleanup = true end)
    ratchet.thread.timer(1)
    errors.survived = true
  end)
  ratchet.thread.attach(function()
    ratchet.thread.alarm(0.01, function() error(ratchet.error.new("cleanup failed", "CLEANUP")) end)
    ratchet.thread.timer(1)
  end)
  ratchet.thread.attach(function()
    -- ends before its alarm: the alarm never goes off (due 199 ms after the sleep, so a runner that
    -- holds the thread back for tens of ms between the two cannot let it go off first)
    ratchet.thread.alarm(0.2)
    ratchet.thread.timer(0.001)
  end)
end, function(err, thread)
  t.eq(type(thread), "thread", "the handler gets the thread")
  errors[#errors + 1] = err.code
end)
local t0 = require("chime").now()
k2:loop()
t.ok(require("chime").now() - t0 < 0.5, "alarms ended the sleeping threads early")
table.sort(errors)
t.eq(table.concat(errors, ","), "ALARM,BAD,CLEANUP", "one error per failed thread")
t.eq(errors.cleanup, true, "the alarm's callback ran")
t.eq(errors.survived, nil, "the alarmed thread did not go on")

-- without a handler, a thread's error comes out of loop(); a thread nothing can wake is a deadlock
local k3 = ratchet.new(function() error("plain") end)
t.has(t.fails(k3.loop, k3), "plain", "loop raises the error")
local k4 = ratchet.new(function() ratchet.thread.pause() end)
local ok, dead = pcall(k4.loop, k4)
t.eq(ok, false, "a deadlock fails")
t.eq(ratchet.error.is(dead, "DEADLOCK"), true, "with code DEADLOCK")

-- timerfd: settime returns the old times; gettime; read counts the expirations
local k5 = ratchet.new(function()
  local now = require("chime").now
  local tfd = ratchet.timerfd.new()
  t.eq(select("#", tfd:gettime()), 2, "gettime gives value and interval")
  t.eq(tfd:gettime(), 0, "disarmed")
  -- the kernel counts an expiration every 20 ms from the settime on, however late this thread runs,
  -- so the reads are held to the times measured around them: a runner that holds the thread back
  -- for tens of ms lets more expirations in, never fewer
  local set_at = now()
  local old_v, old_i = tfd:settime(0.02, 0.02)
  t.eq(old_v + old_i, 0, "settime returns the old (disarmed) times")
  local v, i = tfd:gettime()
  t.ok(v > 0 and v <= 0.02, "time left") t.eq(i, 0.02, "interval")
  local first = tfd:read()
  local read_at = now()
  t.ok(read_at - set_at >= 0.0195, "read waits for the first expiration")
  -- 1, unless the thread was held back past the second expiration before the read
  t.ok(first >= 1 and first <= math.floor((read_at - set_at) / 0.02),
    ("read returns the expirations so far (1): %d after %.3f s"):format(first, read_at - set_at))
  ratchet.thread.timer(0.07)
  local before = now()
  local n = tfd:read()
  local after = now()
  -- the expirations after the first read and up to this one (give or take one)
  local lo = math.max(2, math.floor((before - read_at) / 0.02) - 1)
  local hi = math.floor((after - set_at) / 0.02) - first + 1
  t.ok(n >= lo and n <= hi, ("expirations since the last read (about 3): %d, expected %d..%d"):format(n, lo, hi))
  t.ok(tfd:get_fd() > 2, "a real timerfd")
  v, i = tfd:settime(0)
  t.ok(i == 0.02, "disarming returns the old interval")
  t.has(t.fails(tfd.read, tfd), "not armed", "reading a disarmed timer would wait forever")
  -- one-shot, absolute on the realtime clock
  local rt_tfd = ratchet.timerfd.new("realtime")
  rt_tfd:settime(os.time() + 0.5 - 0.45 + (require("chime").time() - os.time()), 0, "absolute")
  t.eq(rt_tfd:read(), 1, "absolute realtime one-shot")
  t.eq(tfd:close(), true, "close")
  t.has(t.fails(tfd.gettime, tfd), "Bad file descriptor", "closed")
  t.ok(ratchet.timerfd.new("boottime"), "boottime")
  t.has(t.fails(ratchet.timerfd.new, "sundial"), "bad argument #1 to 'new' (invalid option 'sundial')", "clock name")
end)
k5:loop()
t.done("ratchet")
