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

function M.done(name)
  print(("%s: %d checks passed"):format(name, M.count))
end

return M
