-- Knot Resolver's globals, run with `chime-lua --knot`: event, worker, map (one worker), the units,
-- and the cqueues subset. The checks run in a worker coroutine; Knot's loop runs after the file.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "check"
local cqueues = require "cqueues"
local condition = require "cqueues.condition"

t.eq(sec, 1000, "sec") t.eq(minute, 60000, "minute") t.eq(hour, 3600000, "hour")
t.eq(worker.id, 0, "worker.id without --workers") t.eq(worker.count, 1, "worker.count")
t.ok(worker.bg_worker ~= nil, "bg_worker")

-- argument checks with Knot's messages
local function knot_err(f, ...) return t.fails(f, ...) end
t.has(knot_err(event.after, "x", print), "ERROR: expected 'after(number timeout, function)'", "after")
t.has(knot_err(event.recurrent, 0, print), "ERROR: expected 'recurrent(number interval, function)'", "recurrent(0)")
t.has(knot_err(event.recurrent, 0.5, print), "ERROR: expected 'recurrent(number interval, function)'", "recurrent(0.5) is 0")
t.has(knot_err(event.cancel, "x"), "ERROR: expected 'cancel(number event)'", "cancel")
t.has(knot_err(event.reschedule, 1), "ERROR: expected 'reschedule(number event, number timeout)'", "reschedule")
t.has(knot_err(event.socket, 0, 1), "ERROR: expected 'socket(number fd, function)'", "socket")
t.has(knot_err(event.after, -1, print), "error occurred here", "Knot's traceback header")
t.eq(event.cancel(123456), false, "cancel of an unknown id")
t.eq(event.reschedule(123456, 10), false, "reschedule of an unknown id")

worker.coroutine(function()
  -- after: the callback gets its event id; ids are never reused
  local got
  local e = event.after(10, function(ev) got = ev end)
  worker.sleep(0.05)
  t.eq(got, e, "after's callback gets the event id")
  t.eq(event.cancel(e), false, "a fired one-shot is gone")
  local e2 = event.after(10, function() end)
  t.ok(e2 ~= e, "a new event never gets an old id")
  t.eq(event.cancel(e2), true, "cancel of a pending event")
  t.eq(event.cancel(e2), false, "second cancel")

  -- recurrent: at once, then every interval; cancel from its own callback. "At once" is checked
  -- against a one-shot due at half the interval: chime runs timers in deadline order, so a runner
  -- that holds the thread back delays both but cannot swap them (unless it holds it for a whole
  -- interval, 100 ms: ticks missed meanwhile run once, as the latest of them).
  local n, times, marker_ran, first_before_marker = 0, {}, false, nil
  local start = cqueues.monotime()
  event.recurrent(100, function(ev)
    n = n + 1
    times[n] = cqueues.monotime() - start
    if n == 1 then first_before_marker = not marker_ran end
    if n == 3 then t.eq(event.cancel(ev), true, "cancel from its own callback") end
  end)
  event.after(50, function() marker_ran = true end)
  t.wait_until(worker.sleep, function() return n >= 3 end, 2)
  worker.sleep(0.15) -- one and a half intervals: a fourth run would come meanwhile
  t.eq(n, 3, "ran three times then stopped")
  t.ok(first_before_marker, "the first run is at once: " .. times[1])
  t.ok(times[2] >= 0.099, "then every interval: " .. times[2])

  -- reschedule: a recurrent event becomes a one-shot at the new time
  local r = 0
  local rec = event.recurrent(1000, function() r = r + 1 end)
  worker.sleep(0.02)
  t.eq(r, 1, "the immediate run")
  t.eq(event.reschedule(rec, 20), true, "reschedule a recurrent event")
  worker.sleep(0.1)
  t.eq(r, 2, "one more run, at the new time, and no more")
  t.eq(event.cancel(rec), false, "it was a one-shot after the reschedule")

  -- reschedule from a one-shot's own callback: the seed's halving example, shortened
  local interval, runs = 40, 0
  event.after(interval, function(ev)
    runs = runs + 1
    interval = interval / 2
    if runs < 4 then t.eq(event.reschedule(ev, interval), true, "re-armed from its callback") end
  end)
  -- waited for, not slept for: a runner that holds the thread back delays every run after it
  t.wait_until(worker.sleep, function() return runs >= 4 end, 2)
  worker.sleep(0.03) -- a one-shot that ran again without a reschedule would show here
  t.eq(runs, 4, "ran at 40, +20, +10, +5 ms")

  -- a callback error is logged and closes its event, recurrent or not
  local failing = 0
  local bad = event.recurrent(10, function() failing = failing + 1 error("callback failed") end)
  t.wait_until(worker.sleep, function() return failing >= 1 end, 2)
  worker.sleep(0.05) -- five intervals: more runs would come meanwhile
  t.eq(failing, 1, "a failing recurrent event runs once")
  t.eq(event.cancel(bad), false, "and is closed")

  -- worker.sleep yields inside pcall
  local before = cqueues.monotime()
  t.eq(pcall(worker.sleep, 0.02), true, "sleep inside pcall")
  t.ok(cqueues.monotime() - before >= 0.019, "slept")

  -- condition variables: signal wakes the waiters, a timeout answers false
  local cv = condition.new()
  local waiting, woken = 0, 0
  for _ = 1, 3 do
    worker.coroutine(function()
      waiting = waiting + 1
      if cv:wait(1) then woken = woken + 1 end
    end)
  end
  -- waited for, not slept on: a thread held back past the sleep resumes this one first
  t.wait_until(worker.sleep, function() return waiting == 3 end, 2)
  t.eq(cv:signal(), 3, "signal wakes every waiter")
  t.wait_until(worker.sleep, function() return woken == 3 end, 0.5)
  t.eq(woken, 3, "all three woke with true")
  local t0 = cqueues.monotime()
  t.eq(cv:wait(0.03), false, "wait times out with false")
  t.ok(cqueues.monotime() - t0 >= 0.029, "after the timeout")

  -- map on a single worker: this worker's value, in a table with n
  local m = map("worker.id + 1")
  t.eq(m.n, 1, "one worker")
  t.eq(m[1], 1, "its value")
  local mt = map("{ a = { 1, 'two' } }")
  t.eq(mt[1].a[2], "two", "tables travel")
  t.has(t.fails(map, "error('nope')"), "error when executing map() command", "a failing expression")
  t.has(t.fails(map, "function() end"), "cannot be serialized", "a function cannot travel")
  t.has(t.fails(map, "a\nb"), "cannot contain literal", "no newlines")

  -- event.socket on standard input (the test writes a line to it, then closes it)
  local lines, eof = 0, false
  local s
  s = event.socket(0, function(ev, status, nevents)
    t.eq(ev, s, "the socket callback gets its event id")
    t.eq(status, 0, "status") t.eq(nevents, 1, "events")
    local line = io.read("*l")
    if line then lines = lines + 1 else eof = true; event.cancel(ev) end
  end)
  -- until the end of file (3 s at most), however long a loaded runner takes to get the line here
  t.wait_until(worker.sleep, function() return eof end, 3)
  t.eq(lines, 1, "the line written to stdin was seen")
  t.eq(event.cancel(s), false, "the watch ended at end of file")
  t.done("knot")
end)
