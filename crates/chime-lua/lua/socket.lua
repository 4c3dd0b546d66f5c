-- A stand-in for LuaSocket's clock, found only when no real `socket` module is on package.path:
-- chime-lua has no sockets, but scripts written for Copas Timer use socket.gettime().
local rt = require "chime.runtime"
return {
  _VERSION = "chime-lua socket stand-in (time only)",
  gettime = rt.time,
  sleep = function(s)
    local deadline = rt.now() + (tonumber(s) or 0)
    while rt.now() < deadline do end -- blocking, as LuaSocket's is
  end,
}
