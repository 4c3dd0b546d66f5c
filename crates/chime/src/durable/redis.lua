-- chime durable timers on Redis: one script, the operation its first argument (see redis.rs).
if redis.replicate_commands then pcall(redis.replicate_commands) end
local P = KEYS[1]
local FIELDS = {'handler', 'payload', 'due', 'grace', 'state', 'attempt', 'fence', 'owner', 'ready', 'error'}
local function int(n) return string.format('%.0f', n) end
local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function tkey(k) return P .. ':t:' .. k end
local function load(k)
    local v = redis.call('HMGET', tkey(k), unpack(FIELDS))
    if not v[1] then return nil end
    return {key = k, handler = v[1], payload = v[2], due = tonumber(v[3]), grace = v[4] and tonumber(v[4]) or nil,
        state = v[5], attempt = tonumber(v[6]), fence = tonumber(v[7]), owner = v[8] or nil,
        ready = tonumber(v[9]), error = v[10] or nil}
end
local function live(s) return s == 'pending' or s == 'running' end
local function save(r, old)
    local h = tkey(r.key)
    redis.call('HSET', h, 'handler', r.handler, 'payload', r.payload, 'due', int(r.due), 'state', r.state,
        'attempt', int(r.attempt), 'fence', int(r.fence), 'ready', int(r.ready))
    if r.grace then redis.call('HSET', h, 'grace', int(r.grace)) end
    if r.owner then redis.call('HSET', h, 'owner', r.owner) else redis.call('HDEL', h, 'owner') end
    if r.error then redis.call('HSET', h, 'error', r.error) else redis.call('HDEL', h, 'error') end
    if old then redis.call('ZREM', P .. ':s:' .. old, r.key) end
    redis.call('ZADD', P .. ':s:' .. r.state, r.ready, r.key)
    if live(r.state) then redis.call('ZADD', P .. ':live:' .. r.handler, r.ready, r.key)
    else redis.call('ZREM', P .. ':live:' .. r.handler, r.key) end
end
local function emit(out, r)
    local n = #out
    out[n + 1] = r.key; out[n + 2] = r.handler; out[n + 3] = r.payload; out[n + 4] = int(r.due)
    out[n + 5] = r.grace and int(r.grace) or false; out[n + 6] = r.state; out[n + 7] = int(r.attempt)
    out[n + 8] = int(r.fence); out[n + 9] = r.owner or false; out[n + 10] = int(r.ready)
    out[n + 11] = r.error or false
end
local function finished(r, state, now, err)
    r.state = state; r.owner = nil; r.ready = now; r.error = err
end
local op = ARGV[1]
if op == 'create' then
    local out = {}
    local n = tonumber(ARGV[2])
    for i = 0, n - 1 do
        local a = 3 + i * 5
        local k = ARGV[a]
        local r = load(k)
        if r then out[#out + 1] = 'exists'; emit(out, r)
        else
            local g = ARGV[a + 4]
            r = {key = k, handler = ARGV[a + 1], payload = ARGV[a + 2], due = tonumber(ARGV[a + 3]),
                grace = g ~= '' and tonumber(g) or nil, state = 'pending', attempt = 0, fence = 0,
                ready = tonumber(ARGV[a + 3])}
            save(r, nil)
            redis.call('SADD', P .. ':handlers', r.handler)
            out[#out + 1] = 'new'
        end
    end
    return out
elseif op == 'get' then
    local out = {}
    local r = load(ARGV[2])
    if r then emit(out, r) end
    return out
elseif op == 'list' then
    local z, limit, out = P .. ':s:' .. ARGV[2], tonumber(ARGV[5]), {}
    local after, akey = ARGV[3] ~= '' and tonumber(ARGV[3]) or nil, ARGV[4]
    local offset, taken = 0, 0
    while taken < limit do
        local page = redis.call('ZRANGEBYSCORE', z, after or '-inf', '+inf', 'WITHSCORES', 'LIMIT', offset, limit)
        if #page == 0 then break end
        for i = 1, #page, 2 do
            local k, s = page[i], tonumber(page[i + 1])
            if taken < limit and (not after or s > after or k > akey) then
                emit(out, load(k)); taken = taken + 1
            end
        end
        offset = offset + #page / 2
    end
    return out
elseif op == 'cancel' then
    local r = load(ARGV[2])
    if not r or not (live(r.state) or r.state == 'failed') then return 0 end
    local old = r.state
    finished(r, 'cancelled', now_ms(), r.error)
    save(r, old)
    return 1
elseif op == 'claim' then
    local member, lease, max_attempts = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
    local grace, limit, nh = ARGV[5] ~= '' and tonumber(ARGV[5]) or nil, tonumber(ARGV[6]), tonumber(ARGV[7])
    local now = now_ms()
    local due = {}
    for i = 1, nh do
        local page = redis.call('ZRANGEBYSCORE', P .. ':live:' .. ARGV[7 + i], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
        for j = 1, #page, 2 do due[#due + 1] = {page[j], tonumber(page[j + 1])} end
    end
    table.sort(due, function(a, b) if a[2] ~= b[2] then return a[2] < b[2] end return a[1] < b[1] end)
    local claimed = {}
    for i = 1, math.min(limit, #due) do
        local r = load(due[i][1])
        local old, decision = r.state, 'run'
        local late, g = now - r.due, r.grace or grace
        if r.attempt == 0 and g and late > g then
            decision = 'skipped'
            finished(r, 'skipped', now, 'skipped: its first run would have started ' .. int(late) .. ' ms late (grace ' .. int(g) .. ' ms)')
        elseif r.attempt >= max_attempts then
            decision = 'exhausted'
            finished(r, 'failed', now, 'attempt ' .. int(r.attempt) .. ' never finished (its scheduler died or lost the store) and no attempts are left')
        else
            r.state = 'running'; r.attempt = r.attempt + 1; r.fence = redis.call('INCR', P .. ':fence')
            r.owner = member; r.ready = now + lease
        end
        save(r, old)
        claimed[#claimed + 1] = decision
        emit(claimed, r)
    end
    local next = false
    for i = 1, nh do
        local first = redis.call('ZRANGE', P .. ':live:' .. ARGV[7 + i], 0, 0, 'WITHSCORES')
        if #first > 0 and (not next or tonumber(first[2]) < next) then next = tonumber(first[2]) end
    end
    local out = {int(now), next and int(next) or false}
    for i = 1, #claimed do out[#out + 1] = claimed[i] end
    return out
elseif op == 'renew' then
    local member, lease, n, out, now = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), {}, now_ms()
    for i = 0, n - 1 do
        local r = load(ARGV[5 + 2 * i])
        if r and r.state == 'running' and r.owner == member and r.fence == tonumber(ARGV[6 + 2 * i]) then
            r.ready = now + lease; save(r, r.state); out[#out + 1] = 1
        else out[#out + 1] = 0 end
    end
    return out
elseif op == 'finish' then
    local member, n, out, now = ARGV[2], tonumber(ARGV[3]), {}, now_ms()
    for i = 0, n - 1 do
        local a = 4 + i * 5
        local r, fence, kind = load(ARGV[a]), tonumber(ARGV[a + 1]), ARGV[a + 2]
        if r and r.state == 'running' and r.owner == member and r.fence == fence then
            local old = r.state
            if kind == 'fired' then finished(r, 'fired', now, nil)
            elseif kind == 'failed' then finished(r, 'failed', now, ARGV[a + 4])
            elseif kind == 'retry' then
                r.state = 'pending'; r.owner = nil; r.ready = now + tonumber(ARGV[a + 3]); r.error = ARGV[a + 4]
            else
                r.state = 'pending'; r.owner = nil; r.ready = now
                if r.attempt > 0 then r.attempt = r.attempt - 1 end
            end
            save(r, old)
            out[#out + 1] = 1
        elseif r and r.fence == fence and r.state ~= 'running' then out[#out + 1] = 1
        else out[#out + 1] = 0 end
    end
    return out
elseif op == 'purge' then
    local before, limit, gone = tonumber(ARGV[2]), tonumber(ARGV[3]), 0
    for _, state in ipairs({'fired', 'cancelled', 'skipped'}) do
        if gone >= limit then break end
        local keys = redis.call('ZRANGEBYSCORE', P .. ':s:' .. state, '-inf', '(' .. int(before), 'LIMIT', 0, limit - gone)
        for _, k in ipairs(keys) do
            redis.call('DEL', tkey(k)); redis.call('ZREM', P .. ':s:' .. state, k); gone = gone + 1
        end
    end
    return gone
elseif op == 'unknown' then
    local known, out, now = {}, {}, now_ms()
    for i = 3, 2 + tonumber(ARGV[2]) do known[ARGV[i]] = true end
    for _, h in ipairs(redis.call('SMEMBERS', P .. ':handlers')) do
        if not known[h] then
            local n = redis.call('ZCOUNT', P .. ':live:' .. h, '-inf', now)
            if n > 0 then out[#out + 1] = h; out[#out + 1] = int(n) end
        end
    end
    return out
end
return redis.error_reply('unknown operation ' .. tostring(op))
