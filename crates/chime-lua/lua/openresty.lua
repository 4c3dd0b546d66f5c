-- chime-lua --openresty FILE: the file runs as a request handler does (content_by_lua): in a task,
-- with ngx.say on stdout and `print` on the error log; when it returns (or calls ngx.exit) the
-- worker exits as nginx's does: pending timers run with premature = true, resty.timer's are
-- cancelled with "SYSTEM". An error in the handler is logged as nginx logs it, and the request
-- fails with status 500 (the process exits 1).
local rt = require "chime.runtime"
local ngx = require "ngx"
local core = rt.core

local M = {}

function M.handle(f, ...)
  local status
  local function body(...)
    ngx._request_ctx[coroutine.running()] = true
    f(...)
    status = status or ngx.status
    core.stop()
  end
  local function failed(err, co)
    if err == ngx._EXIT then
      status = ngx.status
    else
      local stack = rt.stack(co)
      ngx._logline(ngx.ERR, "", "lua entry thread aborted: runtime error: " .. tostring(err) ..
        (stack and ("\n" .. stack) or ""))
      status = 500
    end
    core.stop()
  end
  rt.spawn_with(failed, "request", body, ...)
  rt.run()
  io.stdout:flush()
  rt.finish()
  if (status or 200) >= 500 then
    error("the request handler failed (status " .. tostring(status) .. ")", 0)
  end
end

return M
