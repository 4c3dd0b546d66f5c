-- Assertion helpers for chime-lua's own test scripts.
local M = { count = 0 }

function M.ok(cond, msg)
  M.count = M.count + 1
  if not cond then error("check failed: " .. tostring(msg), 2) end
end

function M.eq(got, want, msg)
  M.count = M.count + 1
  if got ~= want then
    error(("check failed: %s: got %s, want %s"):format(msg or "", tostring(got), tostring(want)), 2)
  end
end

-- the error message of f(...), which must fail
function M.fails(f, ...)
  local ok, err = pcall(f, ...)
  M.count = M.count + 1
  if ok then error("check failed: expected an error", 2) end
  return tostring(err)
end

function M.has(text, part, msg)
  M.count = M.count + 1
  if not tostring(text):find(part, 1, true) then
    error(("check failed: %s: %q does not contain %q"):format(msg or "", tostring(text), part), 2)
  end
end

-- Waits until cond() is true: sleeps `step` seconds (0.01 by default) at a time with `sleep`, the
-- runtime's own (copas.pause, ngx.sleep, worker.sleep...), for `timeout` seconds at most; returns
-- whether cond() was met. For what must happen after some time: a runner that holds a thread back
-- for tens of ms only makes the wait longer, and a behaviour that broke still fails at the timeout.
function M.wait_until(sleep, cond, timeout, step)
  step = step or 0.01
  for _ = 1, math.ceil(timeout / step) do
    if cond() then return true end
    sleep(step)
  end
  return not not cond()
end

function M.done(name)
  print(("%s: %d checks passed"):format(name, M.count))
end

return M
