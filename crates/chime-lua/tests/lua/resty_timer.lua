-- resty.timer and the ngx subset, run with `chime-lua --shdict locks --shdict cache=1k` (plain
-- mode: ngx.sleep from the main chunk runs the loop meanwhile).
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "check"
local timer = require "resty.timer"
t.eq(type(ngx), "table", "require 'resty.timer' installs the global ngx")

-- the option checks, in lua-resty-timer's order, with its messages (no position: assert's style)
local function opts(extra)
  local o = { interval = 1, recurring = true, expire = function() end }
  for k, v in pairs(extra) do o[k] = v end
  return o
end
local function err_of(o) local ok, e = pcall(timer.new, o) t.eq(ok, false, "refused") return e end
t.eq(err_of(opts { interval = "x" }), "expected 'interval' to be a number", "interval type")
t.eq(err_of(opts { interval = -1, expire = "not checked yet" }),
  "expected 'interval' to be greater than or equal to 0", "interval sign, checked before expire")
t.eq(err_of(opts { expire = "s" }), "expected 'expire' to be a function", "expire")
t.eq(err_of(opts { recurring = false, immediate = true, cancel = "later" }),
  "the 'immediate' option requires 'recurring'", "immediate, before cancel")
t.eq(err_of(opts { cancel = "s" }), "expected 'cancel' to be a function", "cancel")
t.eq(err_of(opts { sub_interval = "x" }), "expected 'sub_interval' to be a number", "sub type")
t.eq(err_of(opts { sub_interval = 0.1 }), "'key_name' is required when specifying 'sub_interval'", "sub key")
t.eq(err_of(opts { sub_interval = 0.1, key_name = "k" }),
  "'immediate' is required when specifying 'sub_interval'", "sub immediate")
t.eq(err_of(opts { sub_interval = -1, key_name = "k", immediate = true }),
  "expected 'sub_interval' to be greater than or equal to 0", "sub sign")
t.eq(err_of(opts { sub_interval = 2, key_name = "k", immediate = true }),
  "expected 'sub_interval' to be less than or equal to 'interval'", "sub <= interval")
t.eq(err_of(opts { jitter = "x" }), "expected 'jitter' to be a number", "jitter type")
t.eq(err_of(opts { jitter = -1 }), "expected 'jitter' to be greater than or equal to 0", "jitter sign")
t.eq(err_of(opts { key_name = 1 }), "expected 'key_name' to be a string", "key type")
t.eq(err_of(opts { key_name = "k" }), "'shm_name' is required when specifying 'key_name'", "shm needed")
t.eq(err_of(opts { key_name = "k", shm_name = "nope" }), "shm by name 'nope' not found", "shm exists")
t.has(select(2, pcall(timer.new, nil)), "bad argument #1 to 'new' (table expected, got nil)", "opts type")
-- what chime refuses comes back as resty's own nil, err (and an [error] log line)
local none, why = timer(opts { interval = 0 })
t.eq(none, nil, "a recurring timer with interval 0")
t.has(why, "interval", "names the option")

-- arguments keep their embedded nils; cancel returns the cancel callback's results, once
local seen
local x = timer({ interval = 0.01, expire = function(...) seen = select("#", ...) end,
  cancel = function(reason, a, b, c) return reason, a, b, c end }, "a", nil, "c")
ngx.sleep(0.05)
t.eq(seen, 3, "three arguments, the middle one nil")
local r1, r2, r3, r4 = x:cancel()
t.eq(r1, timer.CANCEL_USER, "the reason")
t.eq(tostring(r2) .. tostring(r3) .. tostring(r4), "anilc", "the arguments")
local again, err = x:cancel()
t.eq(again, nil, "second cancel")
t.eq(err, "already cancelled", "second cancel's error")
local plain = timer({ interval = 1, expire = function() end })
t.eq(plain:cancel(), true, "cancel without callback")

-- fixed rate: a callback that takes 30 ms of a 50 ms period does not push the schedule. Runs start
-- on the 50 ms grid, so consecutive starts 50 ms apart; a schedule pushed by the callback would put
-- every start 80 ms or more after the one before. A loaded runner that holds the thread back for
-- tens of ms stretches some gaps (and skips the ticks it missed), not all of them.
local starts, chime_now = {}, require("chime").now
local slow = timer({ interval = 0.05, recurring = true, expire = function()
  starts[#starts + 1] = chime_now()
  ngx.sleep(0.03)
end })
ngx.sleep(0.53)
slow:cancel()
local runs, shortest = #starts, math.huge
for k = 2, runs do shortest = math.min(shortest, starts[k] - starts[k - 1]) end
t.ok(runs >= 5 and runs <= 11, "about 10 runs in 530 ms (fewer if ticks were skipped), got " .. runs)
t.ok(shortest < 0.075, ("runs 50 ms apart (fixed rate), the closest two were %.3f s apart"):format(shortest))

-- immediate: the first run at once
local imm = 0
local i = timer({ interval = 0.2, recurring = true, immediate = true, expire = function() imm = imm + 1 end })
ngx.sleep(0.05)
t.eq(imm, 1, "immediate first run")
i:cancel()

-- an error in a recurring callback is logged and the timer keeps running
local fails = 0
local bad = timer({ interval = 0.02, recurring = true, expire = function()
  fails = fails + 1
  error("boom " .. fails)
end })
-- waited for, not slept for: ticks missed while a loaded runner holds the thread back are skipped
t.ok(t.wait_until(ngx.sleep, function() return fails >= 3 end, 2), "kept running after errors: " .. fails)
bad:cancel()

-- an unreferenced timer that is not detached is collected; its cancel callback says "GC"
local reason
do
  timer({ interval = 0.01, recurring = true, expire = function() end,
    cancel = function(r) reason = r end })
end
collectgarbage() collectgarbage()
t.eq(reason, timer.CANCEL_GC, "collected with reason GC")
-- a detached one is not
local detached_runs = 0
do timer({ interval = 0.02, recurring = true, detached = true, expire = function() detached_runs = detached_runs + 1 end }) end
collectgarbage() collectgarbage()
t.ok(t.wait_until(ngx.sleep, function() collectgarbage() return detached_runs >= 2 end, 2),
  "a detached timer keeps running unreferenced: " .. detached_runs)

-- jitter delays a one-shot by up to `jitter`
local start, late = ngx.now(), nil
timer({ interval = 0.01, jitter = 0.05, detached = true, expire = function() late = ngx.now() - start end })
ngx.sleep(0.1)
t.ok(late and late >= 0.009, "jittered one-shot ran, after its interval: " .. tostring(late))

-- a node-wide timer: ten timers of one key, one run per tick
local count = 0
for _ = 1, 10 do
  timer({ interval = 0.1, sub_interval = 0.01, recurring = true, immediate = true, detached = true,
    shm_name = "locks", key_name = "k", expire = function() count = count + 1 end })
end
ngx.sleep(0.35)
t.ok(count >= 3 and count <= 5, "one run per tick across the ten (about 4), got " .. count)

-- ngx basics
t.eq(ngx.worker.id(), 0, "worker id without --workers")
t.eq(ngx.worker.count(), 1, "worker count without --workers")
t.eq(type(ngx.worker.pid()), "number", "pid")
t.eq(ngx.worker.exiting(), false, "not exiting")
t.ok(math.abs(ngx.now() - os.time()) < 2, "ngx.now is wall-clock seconds")
local now, time = ngx.now(), ngx.time()
t.ok(time == math.floor(now) or time == math.floor(now) + 1, "ngx.time is ngx.now's whole seconds")
t.has(select(2, pcall(ngx.sleep, -1)), "invalid sleep duration", "negative sleep")
t.has(select(2, pcall(ngx.log, 99, "x")), "bad log level", "bad level")
t.has(select(2, pcall(ngx.log, ngx.ERR, {})), "expected table to have __tostring", "log a table")

-- ngx.timer.at / every
local at_args
t.eq(ngx.timer.at(0.01, function(premature, a, b, c) at_args = { premature, a, b, c } end, 1, nil, 3), true, "at")
local every_n = 0
t.eq(ngx.timer.every(0.02, function() every_n = every_n + 1 end), true, "every")
t.has(select(2, pcall(ngx.timer.at, -1, print)), "invalid delay", "negative delay")
t.has(select(2, pcall(ngx.timer.at, 1)), "bad argument #2 to 'at' (function expected, got no value)", "no handler")
t.wait_until(ngx.sleep, function() return at_args ~= nil and every_n >= 2 end, 2)
t.eq(at_args[1], false, "not premature")
t.eq(tostring(at_args[2]) .. tostring(at_args[3]) .. tostring(at_args[4]), "1nil3", "at's arguments")
t.ok(every_n >= 2, "every ran: " .. every_n)
t.eq(ngx.timer.pending_count(), 1, "the every timer is pending")

-- ngx.shared: declared with --shdict; undeclared names are nil
t.eq(ngx.shared.nope, nil, "undeclared")
local d = ngx.shared.cache
t.eq(d:set("a", 1), true, "set")
t.eq(d:get("a"), 1, "get")
local added, exists = d:add("a", 2)
t.eq(added, false, "add of an existing key")
t.eq(exists, "exists", "add's error")
t.eq(d:add("b", "x"), true, "add of a new key")
t.eq(d:incr("a", 5), 6, "incr")
t.eq(select(2, d:incr("nope", 1)), "not found", "incr of a missing key")
t.eq(d:incr("nope", 1, 10), 11, "incr with init")
t.eq(select(2, d:incr("b", 1)), "not a number", "incr of a string")
t.eq(select(2, d:replace("zz", 1)), "not found", "replace of a missing key")
d:set("f", true, 0, 7)
local fv, flags = d:get("f")
t.eq(fv, true, "booleans")
t.eq(flags, 7, "flags")
d:delete("a")
t.eq(d:get("a"), nil, "delete")
-- a 250 ms TTL: a runner that holds the thread back for tens of ms cannot expire it before the checks
d:set("e", "soon", 0.25)
t.ok(d:ttl("e") > 0 and d:ttl("e") <= 0.25, "ttl")
t.eq(d:get("e"), "soon", "before expiry")
ngx.sleep(0.3)
t.eq(d:get("e"), nil, "expired")
t.eq(select(2, d:set("big", string.rep("x", 2048))), "no memory", "over the dictionary's size")
t.eq(select(2, d:set("t", {})), "bad value type", "tables are refused")
t.eq(select(2, d:get(nil)), "nil key", "nil key")
t.eq(d:capacity(), 1024, "capacity from --shdict cache=1k")
t.ok(#d:get_keys() >= 3, "get_keys")
d:flush_all()
t.eq(#d:get_keys(), 0, "flush_all")

t.done("resty_timer")
-- the exit hooks run after this: the every timer runs once with premature = true
ngx.timer.at(60, function(premature) io.stderr:write("premature at exit: ", tostring(premature), "\n") end)
timer({ interval = 60, detached = true, expire = function() end,
  cancel = function(r) io.stderr:write("cancelled at exit: ", r, "\n") end })
