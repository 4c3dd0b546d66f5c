package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "check"
-- the seed's entry point: require("copas.timer") gives the copas table's functions
local copas = require("copas.timer")
require("copas.eventer")
t.eq(copas.loop, require("copas").loop, "copas.timer falls back to copas")
t.eq(type(copas.new), "function", "and is Copas 4's timer module too")

-- newtimer: arm / expire / cancel callbacks, cancel callback once, re-arm. Expiries every 200 ms, the
-- one-shot at 300 ms, the cancel at 500 ms: ticks missed while a loaded runner holds the thread back
-- run once, as the latest of them, so only a hold of ~200 ms could swap an expiry with its neighbours.
local log = {}
local function push(s) return function() log[#log + 1] = s end end
local rec = copas.newtimer(push("arm"), push("expire"), push("cancel"), true)
t.eq(rec:arm(0.2), rec, "arm returns the timer")
local one = copas.newtimer(nil, push("once"), push("never"), false):arm(0.3)
copas.delayedexecutioner(0.5, function(a, b) log[#log + 1] = "delayed " .. a .. b; rec:cancel() end, "x", "y")
copas.loop()
local text = table.concat(log, ",")
t.has(text, "arm,expire,once,expire", "arm first, then expiries in deadline order")
t.has(text, "delayed xy,cancel", "the delayed executioner cancelled the recurring timer")
t.eq(select(2, text:gsub("cancel", "")), 1, "cancel callback ran once")
t.eq(select(2, one:cancel()), "not armed", "a fired one-shot has nothing to cancel")
t.eq(select(2, rec:cancel()), "not armed", "second cancel")
t.has(t.fails(copas.newtimer(nil, print).arm, copas.newtimer(nil, print)), "bad argument #1 to 'arm' (number expected, got no value)", "arm() without interval")
t.has(t.fails(copas.newtimer, 1), "bad argument #1 to 'newtimer' (function or nil expected, got number)", "newtimer")

-- f_err gets a failing callback's error; the recurring timer keeps running
local errs, runs = 0, 0
local failing = copas.newtimer(nil, function() runs = runs + 1; error("x") end, nil, true, function(msg) errs = errs + 1 end)
failing:arm(0.01)
-- cancelled once it has failed three times (2 s at most), not at a fixed 55 ms: ticks missed while a
-- loaded runner holds the thread back for tens of ms are skipped, so 55 ms could see fewer runs
copas.addthread(function()
  t.wait_until(copas.pause, function() return runs >= 3 end, 2)
  failing:cancel()
end)
copas.loop()
t.ok(runs >= 3 and errs == runs, "errors handled, timer kept running: " .. runs .. "/" .. errs)

-- waitforcondition: met, and timed out
local n, met, param = 0, nil, nil
copas.waitforcondition(0.01, 1, function(p) n = n + 1; return n == 3 end, function(ok, p) met, param = ok, p end, "P")
local timedout
copas.waitforcondition(0.01, 0.03, function() return false end, function(ok) timedout = ok end)
copas.loop()
t.eq(met, true, "condition met"); t.eq(param, "P", "params passed"); t.eq(n, 3, "checked 3 times")
t.eq(timedout, false, "condition timed out")

-- workers: push / pop / pause, item states, dead worker
local got = {}
local w = copas.addworker(function(queue)
  while true do
    local data = queue:pop()
    got[#got + 1] = tostring(data)
    if data == "stop" then return end
    queue:pause()
  end
end)
local first = w:push("a")
local nilitem = w:push(nil)
local cancelled = w:push("c")
t.eq(cancelled:cancel(), true, "cancel a queued item")
t.eq(cancelled.cancelled, true, "cancelled item")
w:push("stop")
copas.loop()
t.eq(table.concat(got, ","), "a,nil,stop", "items in order, the cancelled one skipped")
t.eq(first.completed, true, "popped item completed")
t.eq(first.cancelled, false, "not cancelled")
local _, err = w:push("late")
t.eq(err, "cannot push data to dead worker", "push to a dead worker")

-- a failing worker goes to its error handler; its queued items are cancelled
local werr
local bad = copas.addworker(function(queue) queue:pop(); error("worker failed") end, function(co, msg) werr = msg end)
bad:push(1)
local left = bad:push(2)
copas.loop()
t.has(werr, "worker failed", "worker error handler")
t.eq(left.cancelled, true, "queued item cancelled when the worker died")

-- eventer: decorate, subscribe, dispatch, waitfor; copas' own events; exitloop
local obj = {}
copas.eventer.decorate(obj, { "ping", "pong" })
t.has(t.fails(function() return obj.events.nope end), "'nope' is not a valid event in this set", "unknown event")
local events, copas_events = {}, {}
local client = { handler = function(self, queue)
  while true do
    local e = queue:pop()
    events[#events + 1] = e.name .. ":" .. tostring(e[1]) .. ":" .. tostring(self == client_obj)
  end
end }
client_obj = client
obj:subscribe(client, client.handler, obj.events.ping)
copas:subscribe({}, function(_, queue)
  while true do
    local e = queue:pop()
    copas_events[#copas_events + 1] = e.name
    if e.name == "loopstopping" then copas.pause(0.01) end
  end
end)
local kept = copas.newtimer(nil, function() end, push("kept-cancelled"), true):arm(0.01)
copas.addthread(function()
  local d = obj:dispatch(obj.events.ping, 42)
  t.eq(#d.queueitems, 1, "one subscriber for ping")
  t.eq(d:waitfor(1), true, "handled")
  t.eq(#obj:dispatch(obj.events.pong).queueitems, 0, "nobody for pong")
  copas.exitloop(1, false)
end)
log = {}
copas.loop()
t.eq(events[1], "ping:42:true", "the client's handler got the event as a method")
t.eq(table.concat(copas_events, ","), "loopstarting,loopstarted,loopstopping,loopstopped", "copas' lifecycle")
t.eq(log[1], "kept-cancelled", "exitloop without keeptimers cancelled the timer")
t.eq(kept:isarmed(), false, "not armed any more")
t.done("copas_seed")
