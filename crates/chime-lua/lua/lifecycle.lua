-- chime-lua's runtime, continued: waiting outside a task, and the program's end. Run once after
-- runtime.lua, with its module table.
local M = ...
local core = M.core
local co_running, type, error = coroutine.running, type, error

-- Waits `s` seconds: a task sleeps; the main chunk (no loop running) runs the loop meanwhile, so
-- timers and tasks go on (OpenResty's ngx.sleep, Knot's worker.sleep outside a coroutine).
function M.wait(s, fname)
  local co, main = co_running()
  if co and not main and M.istask(co) then return M.sleep(s) end
  if type(s) ~= "number" then M.argerror(1, fname or "sleep", "number", s, s == nil) end
  if core.running() then
    error((fname or "sleep") .. " must be called from a task (a coroutine the runtime runs)", 2)
  end
  local id, err = core.arm(function() core.stop() end, s > 0 and s or 0)
  if not id then error("bad argument #1 to '" .. (fname or "sleep") .. "' (" .. err .. ")", 2) end
  M.run()
  core.cancel(id)
end

-- Exit hooks: what a module does when the program ends normally (OpenResty's worker exit, Knot's
-- event loop after its configuration). `finish()` runs them once, in registration order.
local hooks, finished = {}, false
function M.atexit(f) hooks[#hooks + 1] = f end
function M.finish()
  if finished then return end
  finished = true
  for i = 1, #hooks do hooks[i]() end
end

return M
