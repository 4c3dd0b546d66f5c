-- require "copas.eventer": the Copas Timer seed's eventer, installed as copas.eventer.
--
-- Handlers run as copas workers (one per handler function, as in Copas Timer), so a dispatch is a
-- push to each subscribed handler's chime Worker; the dispatch object holds the pushed items, whose
-- chime Tickets say when every handler has finished with the event (`waitfor`, `finish`) and let it
-- be withdrawn from handlers that have not taken it (`cancel`). Copas' own lifecycle events
-- (loopstarting, loopstarted, loopstopping, loopstopped) are dispatched by copas.loop and exitloop.
local copas = require "copas"
local rt = require "chime.runtime"

if copas.eventer then return copas.eventer end

local type, error, tostring, select, pairs, xpcall = type, error, tostring, select, pairs, xpcall
local co_running = coroutine.running

local servers = setmetatable({}, { __mode = "k" }) -- server -> { [event] = { [client] = handler } }
local clients = setmetatable({}, { __mode = "k" }) -- client -> { [server] = server }
local workers = setmetatable({}, { __mode = "k" }) -- handler -> worker
local errorhandler

local function default_errorhandler(err)
  return rt.traceback("copas.eventer: an event handler failed: " .. tostring(err), 2)
end

local not_objects = { ["nil"] = true, number = true, string = true, boolean = true, ["function"] = true, thread = true }

local eventer = {}

local function worker_for(handler, client)
  local w = workers[handler]
  if w and not w.dead then return w end
  local function run(...)
    local ok, err = xpcall(handler, errorhandler or default_errorhandler, ...)
    workers[handler] = nil
    if not ok then print(err) end
  end
  if not_objects[type(client)] then
    w = copas.addworker(function(queue) run(queue) end, function() end)
  else
    w = copas.addworker(client, function(obj, queue) run(obj, queue) end, function() end)
  end
  workers[handler] = w
  return w
end

-- the dispatch object: the queue items, one per handler
local Dispatch = {}
Dispatch.__index = Dispatch

function Dispatch:cancel()
  for _, item in pairs(self.queueitems) do item:cancel() end
end

local function tickets(self)
  local list = {}
  for _, item in pairs(self.queueitems) do list[#list + 1] = item.ticket end
  return list
end

-- waitfor([timeout]): true once every handler has finished with the event, or nil, "timeout"
function Dispatch:waitfor(timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0) then timeout = nil end
  local list = tickets(self)
  if #list == 0 then return true end
  local done = rt.await(true, function(target) rt.await_tickets(target, timeout, (table.unpack or unpack)(list)) end)
  if done == 1 then return true end
  return nil, "timeout"
end

-- finish([timeout]): as waitfor; outside a task (in the main chunk) it runs the loop until then
function Dispatch:finish(timeout)
  if rt.istask(co_running()) then return self:waitfor(timeout) end
  local ok, err
  rt.spawn(function()
    ok, err = self:waitfor(timeout)
    rt.stop()
  end)
  rt.run()
  return ok, err
end

function eventer.seterrorhandler(handler)
  if type(handler) ~= "function" then rt.argerror(1, "seterrorhandler", "function", handler, handler == nil) end
  errorhandler = handler
end

function eventer.serverregister(server, eventlist)
  if server == nil then rt.argerror(1, "serverregister", "server", server, true) end
  if servers[server] then error("bad argument #1 to 'serverregister' (server is already registered)", 2) end
  if type(eventlist) ~= "table" then rt.argerror(2, "serverregister", "table", eventlist, eventlist == nil) end
  local events = {}
  for _, name in pairs(eventlist) do events[name] = setmetatable({}, { __mode = "k" }) end
  servers[server] = events
  if eventer.events and server ~= eventer then
    eventer:dispatch(eventer.events.register, server, eventlist)
  end
  return true
end

function eventer.serverunregister(server)
  if servers[server] then
    servers[server] = nil
    for _, list in pairs(clients) do list[server] = nil end
    eventer:dispatch(eventer.events.unregister, server)
  end
  return true
end

function eventer.clientsubscribe(client, server, handler, event)
  if client == nil then rt.argerror(1, "clientsubscribe", "client", client, true) end
  if type(handler) ~= "function" then rt.argerror(3, "clientsubscribe", "function", handler, handler == nil) end
  local events = servers[server]
  if not events then error("bad argument #2 to 'clientsubscribe' (server not found)", 2) end
  if event ~= nil then
    if not events[event] then error("bad argument #4 to 'clientsubscribe' (event not found for this server: " .. tostring(event) .. ")", 2) end
    events[event][client] = handler
  else
    for _, subs in pairs(events) do subs[client] = handler end
  end
  clients[client] = clients[client] or setmetatable({}, { __mode = "k" })
  clients[client][server] = server
  if server ~= eventer then eventer:dispatch(eventer.events.subscribe, client, server, event) end
  return true
end

function eventer.clientunsubscribe(client, server, event)
  local list = clients[client]
  if not list then return true end
  local function drop(svr)
    local events = servers[svr]
    if not events then return end
    if event then
      if events[event] then events[event][client] = nil end
    else
      for _, subs in pairs(events) do subs[client] = nil end
    end
    for _, subs in pairs(events) do
      if subs[client] then return end
    end
    list[svr] = nil
  end
  if server then drop(server) else for svr in pairs(list) do drop(svr) end end
  if next(list) == nil then clients[client] = nil end
  eventer:dispatch(eventer.events.unsubscribe, client, server, event)
  return true
end

function eventer.serverdispatch(server, event, ...)
  local events = servers[server]
  if not events then error("bad argument #1 to 'serverdispatch' (server not found)", 2) end
  local subs = events[event]
  if not subs then error("bad argument #2 to 'serverdispatch' (event not found: " .. tostring(event) .. ")", 2) end
  local items = {}
  for client, handler in pairs(subs) do
    local item = worker_for(handler, client):push({
      client = client, server = server, name = event, n = select("#", ...), ...
    })
    if item then items[#items + 1] = item end
  end
  return setmetatable({ queueitems = items, event = event }, Dispatch)
end

function eventer.getsubscriptions(client)
  local list = clients[client]
  if not list then return nil end
  local result = {}
  for server in pairs(list) do
    local names = {}
    for name, subs in pairs(servers[server] or {}) do
      if subs[client] then names[#names + 1] = name end
    end
    result[server] = names
  end
  return result
end

function eventer.getclients(server)
  local events = servers[server]
  if not events then return nil end
  local result = {}
  for name, subs in pairs(events) do
    local list = {}
    for client in pairs(subs) do list[#list + 1] = client end
    result[name] = list
  end
  return result
end

-- decorate(server, events): server gets `events` (a set that errors on unknown names),
-- `subscribe`, `unsubscribe` and `dispatch`
function eventer.decorate(server, events)
  if type(server) ~= "table" then rt.argerror(1, "decorate", "table", server, server == nil) end
  if type(events) ~= "table" then rt.argerror(2, "decorate", "table", events, events == nil) end
  local set = {}
  for _, name in pairs(events) do set[name] = name end
  setmetatable(set, {
    __index = function(_, key)
      error("'" .. tostring(key) .. "' is not a valid event in this set", 2)
    end,
  })
  -- methods bound to the server, so that a table that falls back to it (copas.timer) works too
  server.events = set
  server.subscribe = function(_, client, handler, event)
    if event ~= nil then local _ = set[event] end
    return eventer.clientsubscribe(client, server, handler, event)
  end
  server.unsubscribe = function(_, client, event)
    if event ~= nil then local _ = set[event] end
    return eventer.clientunsubscribe(client, server, event)
  end
  server.dispatch = function(_, event, ...)
    if event == nil or rawget(set, event) == nil then
      error("bad argument #1 to 'dispatch' (not a valid event: " .. tostring(event) .. ")", 2)
    end
    return eventer.serverdispatch(server, event, ...)
  end
  eventer.serverregister(server, set)
end

eventer.decorate(eventer, { "register", "unregister", "subscribe", "unsubscribe" })
copas.eventer = eventer
eventer.decorate(copas, { "loopstarting", "loopstarted", "loopstopping", "loopstopped" })

-- copas.loop's lifecycle events
local hooks = copas._loop_hooks
hooks.starting = function()
  copas:dispatch(copas.events.loopstarting):finish()
  copas:dispatch(copas.events.loopstarted)
end
hooks.stopped = function()
  if not copas._exit_silent then
    copas:dispatch(copas.events.loopstopped):finish()
  end
  copas._exit_silent = nil
end

return eventer
