package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "check"
local copas = require "copas"
local timer = copas.timer

copas.loop(function()
  -- an initial delay: the first run after initial_delay (5 ms), long before delay (1 s), so a runner
  -- that holds the thread back for tens of ms cannot blur the two
  local first_at
  local start = copas.gettime()
  local init = timer.new({ delay = 1, initial_delay = 0.005, recurring = true, callback = function()
    first_at = first_at or (copas.gettime() - start)
  end })
  t.wait_until(copas.pause, function() return first_at ~= nil end, 2)
  init:cancel()
  t.ok(first_at >= 0.004 and first_at < 0.5, "initial delay honoured: " .. tostring(first_at))

  -- a recurring timer with params; ticks counted over a window: 6 are due (5, 55, ..., 255 ms).
  -- Ticks missed while a loaded runner holds the thread back run once, not each, so 4 allows a hold
  -- of up to ~100 ms; more than 7 would be ticks off the grid.
  local ticks = 0
  local rec = timer.new({
    delay = 0.05, initial_delay = 0.005, recurring = true, params = "p",
    callback = function(self, params)
      t.eq(params, "p", "params passed")
      ticks = ticks + 1
    end,
  })
  t.eq(getmetatable(rec) ~= nil, true, "a timer object")
  copas.pause(0.3)
  t.eq(select(1, rec:cancel()), rec, "cancel returns the timer")
  t.ok(ticks >= 4 and ticks <= 7, "about 6 ticks in 300 ms, got " .. ticks)
  local n = ticks
  copas.pause(0.05)
  t.eq(ticks, n, "no tick after cancel")
  local ok, err = rec:cancel()
  t.eq(ok, nil, "second cancel")
  t.eq(err, "not armed", "second cancel's error")

  -- arm from its own callback: recurring -> "already armed"; one-shot -> re-armed
  local results = {}
  timer.new({ delay = 0.01, recurring = true, callback = function(self)
    local ok2, err2 = self:arm(1)
    results[#results + 1] = tostring(ok2) .. " " .. tostring(err2)
    self:cancel()
  end })
  local runs = 0
  timer.new({ delay = 0.01, callback = function(self)
    runs = runs + 1
    if runs == 1 then t.eq(self:arm(0.01), self, "a fired one-shot re-arms") end
  end })
  t.wait_until(copas.pause, function() return results[1] ~= nil and runs >= 2 end, 2)
  t.eq(results[1], "nil already armed", "recurring timer armed from its callback")
  t.eq(runs, 2, "re-armed one-shot ran twice")

  -- a fired one-shot cannot be cancelled; a cancelled timer can be armed again
  local one = timer.new({ delay = 0.005, callback = function() end })
  copas.pause(0.02)
  local _, e = one:cancel()
  t.eq(e, "not armed", "fired one-shot")
  t.eq(one:arm(0.005), one, "armed again")
  copas.pause(0.02)

  -- errors go to the errorhandler with a traceback naming the timer; the timer keeps running
  local errors = {}
  timer.new({ name = "failing-timer", delay = 0.01, recurring = true,
    errorhandler = function(msg, co, skt) errors[#errors + 1] = copas.gettraceback(msg, co, skt) end,
    callback = function(self)
      if #errors >= 2 then self:cancel() end
      error("bad tick")
    end })
  t.wait_until(copas.pause, function() return #errors >= 3 end, 2)
  copas.pause(0.03) -- a fourth run would come 10 ms after the third, had the cancel not held
  t.eq(#errors, 3, "each failing run reported, the timer kept going until it cancelled itself")
  t.has(errors[1], "failing-timer", "the traceback names the timer")
  t.has(errors[1], "bad tick", "and has the message")

  -- a callback may pause; ticks that come meanwhile are skipped, never run twice at once: a run
  -- lasts 25 ms or more and never overlaps the next, so at most elapsed / 0.025 + 1 of them (a
  -- runner that holds the thread back only makes fewer; the wait for the second run is for that)
  local inside, overlap, calls = 0, false, 0
  local slow_start = copas.gettime()
  local slow = timer.new({ delay = 0.01, recurring = true, callback = function()
    calls = calls + 1
    inside = inside + 1
    if inside > 1 then overlap = true end
    copas.pause(0.025)
    inside = inside - 1
  end })
  copas.pause(0.1)
  t.wait_until(copas.pause, function() return calls >= 2 end, 2)
  slow:cancel()
  local slow_elapsed = copas.gettime() - slow_start
  t.ok(not overlap, "runs of one timer never overlap")
  t.ok(calls >= 2 and calls <= slow_elapsed / 0.025 + 1, ("slow timer calls: %d in %.3f s"):format(calls, slow_elapsed))
end)
t.eq(copas.finished(), true, "nothing left")

-- bad input
t.has(t.fails(timer.new), "bad argument #1 to 'new' (table expected, got no value)", "new()")
t.has(t.fails(timer.new, nil), "bad argument #1 to 'new' (table expected, got nil)", "new(nil)")
t.has(t.fails(timer.new, { callback = print }), "delay must be a number greater than or equal to 0", "no delay")
t.has(t.fails(timer.new, { delay = -1, callback = print }), "delay must be a number", "negative delay")
t.has(t.fails(timer.new, { delay = 1 }), "callback must be a function", "no callback")
t.has(t.fails(timer.new, { delay = 0, recurring = true, callback = print }), "recurring timer's delay must be more than 0", "zero")
t.has(t.fails(timer.new, { delay = 1, initial_delay = "x", callback = print }), "initial_delay must be", "initial_delay")
t.done("copas_timer")
