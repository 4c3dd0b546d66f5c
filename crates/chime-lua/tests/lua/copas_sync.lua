package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "check"
local copas = require "copas"

copas.loop(function()
  -- queue: fifo, nil-safe, pop timeout, workers, stop and finish
  local q = copas.queue.new({ name = "q" })
  t.eq(q.name, "q", "queue name")
  q:push(1); q:push(nil); q:push(3)
  t.eq(q:get_size(), 3, "size")
  t.eq(q:pop(), 1, "fifo 1")
  local v, err = q:pop()
  t.eq(v, nil, "nil item"); t.eq(err, nil, "nil item is no error")
  t.eq(q:pop(), 3, "fifo 3")
  local start = copas.gettime()
  local _, e = q:pop(0.02)
  t.eq(e, "timeout", "pop timeout")
  t.ok(copas.gettime() - start >= 0.02, "pop waited")
  local seen = {}
  q:add_worker(function(item) seen[#seen + 1] = item; if item == "bad" then error("worker error") end end)
  t.eq(#q:get_workers(), 1, "one worker")
  q:push("a"); q:push("bad"); q:push("b")
  t.eq(q:finish(1), true, "finish")
  t.eq(table.concat(seen, ","), "a,bad,b", "a worker error does not stop the worker")
  local ok2, e2 = q:push(1)
  t.eq(ok2, nil, "push after finish"); t.eq(e2, "destroyed", "destroyed")

  -- lock: re-entrant by default, timeouts, release errors, destroy
  local lock = copas.lock.new(0.5)
  t.eq(lock:get(), 0, "got it")
  t.eq(lock:get(), 0, "re-entrant")
  local results = {}
  copas.addthread(function() local r, er = lock:get(0.02); results[#results + 1] = tostring(r) .. " " .. tostring(er) end)
  -- wait for its answer (this thread holds the lock meanwhile) rather than a fixed 50 ms, which a
  -- runner holding the thread back for tens of ms before the other one arms its timeout would beat
  t.wait_until(copas.pause, function() return results[1] ~= nil end, 2)
  t.eq(results[1], "nil timeout", "another thread timed out")
  local _, rel = copas.future.addthread(function() return lock:release() end):get()
  t.eq(rel, nil, "release from another thread")
  t.eq(lock:release(), true, "release 1")
  t.eq(lock:release(), true, "release 2")
  local _, er3 = lock:release()
  t.eq(er3, "cannot release a lock not owned", "not owned")
  t.eq(lock:destroy(), true, "destroy")
  local _, er4 = lock:get()
  t.eq(er4, "destroyed", "destroyed lock")

  -- semaphore
  local s = copas.semaphore.new(3, 1, 0.5)
  t.eq(s:take(), true, "take 1")
  local _, er5 = s:take(1, 0)
  t.eq(er5, "timeout", "immediate timeout")
  local _, er6 = s:take(4)
  t.eq(er6, "too many", "more than max")
  local got = false
  copas.addthread(function() got = s:take(2) end)
  -- waited for, not slept on: a thread held back past the pause resumes this one first
  t.wait_until(copas.pause, function() return s:get_wait() == 2 end, 2)
  t.eq(s:get_wait(), 2, "one waiter for 2")
  s:give(2)
  t.wait_until(copas.pause, function() return got end, 2)
  t.eq(got, true, "waiter served")
  local _, er7 = s:give(10)
  t.eq(er7, "too many", "give over max")
  t.eq(s:get_count(), 3, "capped at max")

  -- future
  local f = copas.future.addnamedthread("calc", function(a, b) copas.pause(0.01); return a + b end, 2, 3)
  t.eq(f:try(), copas.future.PENDING, "pending")
  local okf, sum = f()
  t.eq(okf, true, "future ok"); t.eq(sum, 5, "future result")
  local bad = copas.future.addthread(function() error("nope") end)
  local status, msg = (function() bad:get(); return bad:try() end)()
  t.eq(status, copas.future.ERROR, "future error"); t.has(msg, "nope", "future error message")
  local slow = copas.future.addthread(function() copas.pause(10) end)
  t.eq(slow:cancel(), true, "cancel pending")
  t.eq(slow:cancel(), false, "cancel again")
  t.has(t.fails(function() return copas.future.SUCESS end), "unknown field 'future.SUCESS'", "typo guard")
end)
t.eq(copas.finished(), true, "the cancelled future's sleep was cancelled too")
t.has(t.fails(copas.queue.new, 5), "bad argument #1 to 'new' (table or nil expected, got number)", "queue new")
t.has(t.fails(copas.lock.new, -1), "expected timeout (1st argument)", "lock new")
t.has(t.fails(copas.semaphore.new, 0), "expected max resources (1st argument)", "semaphore new")
t.done("copas_sync")
