-- require "cqueues": the subset Knot Resolver's worker API relies on, on chime-lua's runtime.
-- monotime() is the runtime's monotonic clock in seconds; sleep(s) parks the running task (outside
-- a task it runs the loop meanwhile); new() gives a controller whose wrap(f, ...) starts a task.
local rt = require "chime.runtime"

local cqueues = { VERSION = "chime-lua" }

function cqueues.monotime() return rt.now() end

function cqueues.sleep(s)
  if s == nil then s = 0 end
  if type(s) ~= "number" then rt.argerror(1, "sleep", "number", s) end
  if not (s >= 0) then error("bad argument #1 to 'sleep' (seconds must be at least 0)", 2) end
  rt.wait(s, "sleep")
end

function cqueues.running()
  local co = coroutine.running()
  return rt.istask(co) and co or nil
end

local Controller = {}
Controller.__index = Controller

function Controller:wrap(f, ...)
  if type(f) ~= "function" then rt.argerror(1, "wrap", "function", f, f == nil) end
  local handler = self.errorhandler
  rt.spawn_with(handler, self.name, f, ...)
  return self
end

-- the runtime's loop runs every controller's tasks: these are for code that calls them
function Controller:loop() return true end
function Controller:step() return true end
function Controller:empty() return rt.pending() == 0 and not rt.busy() end

function cqueues.new()
  return setmetatable({}, Controller)
end

return cqueues
