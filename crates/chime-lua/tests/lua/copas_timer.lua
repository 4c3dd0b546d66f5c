package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "check"
local copas = require "copas"
local timer = copas.timer

copas.loop(function()
  -- a recurring timer with params and an initial delay; ticks counted over a window
  local ticks, first_at = 0, nil
  local start = copas.gettime()
  local rec = timer.new({
    delay = 0.02, initial_delay = 0.005, recurring = true, params = "p",
    callback = function(self, params)
      t.eq(params, "p", "params passed")
      ticks = ticks + 1
      first_at = first_at or (copas.gettime() - start)
    end,
  })
  t.eq(getmetatable(rec) ~= nil, true, "a timer object")
  copas.pause(0.1)
  t.eq(select(1, rec:cancel()), rec, "cancel returns the timer")
  t.ok(first_at >= 0.004 and first_at < 0.02, "initial delay honoured: " .. tostring(first_at))
  t.ok(ticks >= 4 and ticks <= 6, "about 5 ticks in 100 ms, got " .. ticks)
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
  copas.pause(0.06)
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
  copas.pause(0.06)
  t.eq(#errors, 3, "each failing run reported, the timer kept going until it cancelled itself")
  t.has(errors[1], "failing-timer", "the traceback names the timer")
  t.has(errors[1], "bad tick", "and has the message")

  -- a callback may pause; ticks that come meanwhile are skipped, never run twice at once
  local inside, overlap, calls = 0, false, 0
  local slow = timer.new({ delay = 0.01, recurring = true, callback = function()
    calls = calls + 1
    inside = inside + 1
    if inside > 1 then overlap = true end
    copas.pause(0.025)
    inside = inside - 1
  end })
  copas.pause(0.1)
  slow:cancel()
  t.ok(not overlap, "runs of one timer never overlap")
  t.ok(calls >= 2 and calls <= 5, "slow timer calls: " .. calls)
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
