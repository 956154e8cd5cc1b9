#include "cluster/redis_scripts.hpp"

namespace tessenger::cluster {

namespace {

// Shared by every script. Numbers: Lua 5.1 has only doubles, exact up to
// 2^53 (ids and microsecond times stay far below); tostring() would print
// them as 1.8e+15, so everything written back goes through fmt().
// Replies are arrays whose first element is "ok" or the name of an errc
// (then the error's subject).
constexpr std::string_view helpers = R"lua(
local P = ARGV[1]
local function num(s) return tonumber(s) or 0 end
local function fmt(n) return string.format('%d', n) end
local function last_id() return num(redis.call('GET', P .. 'seq')) end

-- A member of a group: "position joined invited_after joined_after".
local function parse_member(name, text)
  local pos, joined, inv, ja = string.match(text, '^(%d+) (%d) (%d+) (%d+)$')
  return {name = name, pos = tonumber(pos), joined = joined == '1',
          invited_after = tonumber(inv), joined_after = tonumber(ja)}
end
local function member_text(m)
  return fmt(m.pos) .. ' ' .. (m.joined and '1' or '0') .. ' ' .. fmt(m.invited_after) .. ' ' ..
         fmt(m.joined_after)
end
local function group_exists(group) return redis.call('EXISTS', P .. 'creator:' .. group) == 1 end
-- The members in their order: the creator first, then the invited as listed.
local function members(group)
  local flat = redis.call('HGETALL', P .. 'group:' .. group)
  local out = {}
  for i = 1, #flat, 2 do out[#out + 1] = parse_member(flat[i], flat[i + 1]) end
  table.sort(out, function(a, b) return a.pos < b.pos end)
  return out
end
-- Limits::max_groups_per_user counts joined groups only.
local function may_join(user, max)
  local n = redis.call('HLEN', P .. 'joined:' .. user)
  return n == 0 or n < max
end
local function remove_group(group)
  redis.call('DEL', P .. 'group:' .. group, P .. 'creator:' .. group)
  redis.call('UNLINK', P .. 'gm:' .. group)
  redis.call('SREM', P .. 'groups', group)
  redis.call('SREM', P .. 'streams', P .. 'gm:' .. group)
end

-- A user's login failures from one address: "failures blocked_until known".
local max_addresses = 4096
local function parse_address(text)
  local failures, blocked, known = string.match(text, '^(%d+) (%d+) (%d)$')
  return {failures = tonumber(failures), blocked_until = tonumber(blocked), known = known == '1'}
end
local function address_text(a)
  return fmt(a.failures) .. ' ' .. fmt(a.blocked_until) .. ' ' .. (a.known and '1' or '0')
end
-- The record of `address`; when the table is full, addresses that failed
-- and went away are forgotten first (known and blocked ones stay).
local function address_record(user, address, now)
  local key = P .. 'addr:' .. user
  local text = redis.call('HGET', key, address)
  if text then return parse_address(text) end
  if redis.call('HLEN', key) >= max_addresses then
    local flat = redis.call('HGETALL', key)
    for i = 1, #flat, 2 do
      local a = parse_address(flat[i + 1])
      if not a.known and a.blocked_until <= now then redis.call('HDEL', key, flat[i]) end
    end
  end
  return {failures = 0, blocked_until = 0, known = false}
end

-- Appends message `id` to a conversation's stream (entry id "<id>-1"),
-- trimmed to its newest `maxlen` entries when that is not 0.
local function append(key, id, from, time, text, maxlen)
  if maxlen > 0 then
    redis.call('XADD', key, 'MAXLEN', '=', fmt(maxlen), fmt(id) .. '-1', 'f', from, 't', time,
               'x', text)
  else
    redis.call('XADD', key, fmt(id) .. '-1', 'f', from, 't', time, 'x', text)
  end
end

-- Tells every other node with a recipient online there, once per node, on
-- channel <prefix>node:<node>: kind, id, time, then the group, sender, text
-- and recipients as length-prefixed strings (decode_cluster_message).
local function lp(s) return struct.pack('>I4', #s) .. s end
local function notify(kind, id, time, group, from, text, node, users)
  local by_node, order = {}, {}
  for _, user in ipairs(users) do
    local at = redis.call('HGET', P .. 'online:' .. user, 'node')
    if at and at ~= node then
      local list = by_node[at]
      if not list then
        list = {}
        by_node[at] = list
        order[#order + 1] = at
      end
      list[#list + 1] = user
    end
  end
  if #order == 0 then return end
  local head = struct.pack('>BI8I8', kind, id, time) .. lp(group) .. lp(from) .. lp(text)
  for _, at in ipairs(order) do
    local list = by_node[at]
    local parts = {head, struct.pack('>I4', #list)}
    for _, user in ipairs(list) do parts[#parts + 1] = lp(user) end
    redis.call('PUBLISH', P .. 'node:' .. at, table.concat(parts))
  end
end
)lua";

// ARGV: prefix, group, creator, max_groups, max_groups_per_user, invited...
constexpr std::string_view create_group = R"lua(
local group, creator = ARGV[2], ARGV[3]
local max_groups, max_per_user = tonumber(ARGV[4]), tonumber(ARGV[5])
if group_exists(group) then return {'group_exists', group} end
if max_groups ~= 0 and redis.call('SCARD', P .. 'groups') >= max_groups then
  return {'limit_reached', group}
end
if not may_join(creator, max_per_user) then return {'limit_reached', creator} end
local last = last_id()
local key = P .. 'group:' .. group
redis.call('HSET', key, creator, member_text({pos = 0, joined = true, invited_after = last,
                                              joined_after = last}))
for i = 6, #ARGV do
  redis.call('HSETNX', key, ARGV[i], member_text({pos = i - 5, joined = false,
                                                  invited_after = last, joined_after = 0}))
end
redis.call('SET', P .. 'creator:' .. group, creator)
redis.call('SADD', P .. 'groups', group)
redis.call('SADD', P .. 'streams', P .. 'gm:' .. group)
redis.call('HSET', P .. 'joined:' .. creator, group, fmt(last))
return {'ok'}
)lua";

// ARGV: prefix, group, user, max_groups_per_user
constexpr std::string_view join_group = R"lua(
local group, user = ARGV[2], ARGV[3]
if not group_exists(group) then return {'group_not_found', group} end
local key = P .. 'group:' .. group
local text = redis.call('HGET', key, user)
if not text then return {'not_invited', group} end
local m = parse_member(user, text)
if m.joined then return {'already_joined', group} end
if not may_join(user, tonumber(ARGV[4])) then return {'limit_reached', user} end
local last = last_id()
m.joined = true
m.joined_after = last
redis.call('HSET', key, user, member_text(m))
redis.call('HSET', P .. 'joined:' .. user, group, fmt(last))
return {'ok'}
)lua";

// ARGV: prefix, group, user. Reply: ok, declined, removed, then per
// remaining member: name, joined, invited_after, joined_after.
constexpr std::string_view leave_group = R"lua(
local group, user = ARGV[2], ARGV[3]
if not group_exists(group) then return {'group_not_found', group} end
local key = P .. 'group:' .. group
local text = redis.call('HGET', key, user)
if not text then return {'not_group_member', group} end
local m = parse_member(user, text)
if m.joined then redis.call('HDEL', P .. 'joined:' .. user, group) end
redis.call('HDEL', key, user)
local rest = members(group)
local removed = true
for _, r in ipairs(rest) do
  if r.joined then removed = false end
end
if removed then remove_group(group) end
local out = {'ok', m.joined and 0 or 1, removed and 1 or 0}
for _, r in ipairs(rest) do
  out[#out + 1] = r.name
  out[#out + 1] = r.joined and 1 or 0
  out[#out + 1] = r.invited_after
  out[#out + 1] = r.joined_after
end
return out
)lua";

// ARGV: prefix, group, user. Reply: ok, then the other members in order.
constexpr std::string_view delete_group = R"lua(
local group, user = ARGV[2], ARGV[3]
if not group_exists(group) then return {'group_not_found', group} end
if redis.call('HEXISTS', P .. 'group:' .. group, user) == 0 then
  return {'not_group_member', group}
end
if redis.call('GET', P .. 'creator:' .. group) ~= user then return {'not_group_creator', group} end
local out = {'ok'}
for _, m in ipairs(members(group)) do
  if m.joined then redis.call('HDEL', P .. 'joined:' .. m.name, group) end
  if m.name ~= user then out[#out + 1] = m.name end
end
remove_group(group)
return out
)lua";

// ARGV: prefix, group, from, text, time, node, history_max. Reply: ok, id,
// then the joined members but the sender.
constexpr std::string_view append_group = R"lua(
local group, from, text, time, node = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if not group_exists(group) then return {'group_not_found_for_message', group} end
local sender = redis.call('HGET', P .. 'group:' .. group, from)
if not sender then return {'not_group_member', group} end
if not parse_member(from, sender).joined then return {'group_not_joined', group} end
local id = redis.call('INCR', P .. 'seq')
append(P .. 'gm:' .. group, id, from, time, text, tonumber(ARGV[7]))
local to = {}
for _, m in ipairs(members(group)) do
  if m.joined and m.name ~= from then to[#to + 1] = m.name end
end
notify(2, id, tonumber(time), group, from, text, node, to)
local out = {'ok', id}
for _, name in ipairs(to) do out[#out + 1] = name end
return out
)lua";

// ARGV: prefix, from, to, text, time, node, history_max, the pair's stream
// key (made by the caller, so that both sides name it alike). Reply: ok, id.
constexpr std::string_view append_direct = R"lua(
local from, to, text, time, node, key = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[8]
local id = redis.call('INCR', P .. 'seq')
append(key, id, from, time, text, tonumber(ARGV[7]))
if redis.call('HSETNX', P .. 'peers:' .. from, to, key) == 1 then
  redis.call('HSETNX', P .. 'peers:' .. to, from, key)
  redis.call('SADD', P .. 'streams', key)
end
notify(1, id, tonumber(time), '', from, text, node, {to})
return {'ok', id}
)lua";

// ARGV: prefix, user, after, from_cursor (1/0), limit. Reply: ok, the id it
// read after, then per message {entry id, group, from, time, text}: of each
// conversation at most limit + 1 (the caller merges them in id order).
constexpr std::string_view missed = R"lua(
local user, limit = ARGV[2], tonumber(ARGV[5])
local after = tonumber(ARGV[3])
if ARGV[4] == '1' then after = num(redis.call('GET', P .. 'cursor:' .. user)) end
local out = {'ok', after}
local function collect(key, group, floor)
  local start, taken = floor + 1, 0
  while true do
    local batch = redis.call('XRANGE', key, fmt(start), '+', 'COUNT', fmt(limit + 1))
    for _, entry in ipairs(batch) do
      local f = entry[2]
      if f[2] ~= user then
        out[#out + 1] = {entry[1], group, f[2], f[4], f[6]}
        taken = taken + 1
        if taken > limit then return end
      end
    end
    if #batch < limit + 1 then return end
    start = tonumber(string.match(batch[#batch][1], '^(%d+)')) + 1
  end
end
local peers = redis.call('HGETALL', P .. 'peers:' .. user)
for i = 1, #peers, 2 do collect(peers[i + 1], '', after) end
local joined = redis.call('HGETALL', P .. 'joined:' .. user)
for i = 1, #joined, 2 do
  collect(P .. 'gm:' .. joined[i], joined[i], math.max(after, tonumber(joined[i + 1])))
end
return out
)lua";

// ARGV: prefix, then user, id pairs: keeps the newest of each cursor.
constexpr std::string_view delivered = R"lua(
for i = 2, #ARGV - 1, 2 do
  local key = P .. 'cursor:' .. ARGV[i]
  if tonumber(ARGV[i + 1]) > num(redis.call('GET', key)) then redis.call('SET', key, ARGV[i + 1]) end
end
return {'ok'}
)lua";

// ARGV: prefix, user, kind (a any, d direct, g group), name, direction
// (l latest, b before, a after), anchor, limit, the direct stream key.
// Reply: ok, kind (d/g), more (1/0), then per entry {entry id, from, time,
// text}, oldest first.
constexpr std::string_view history = R"lua(
local user, kind, name, direction = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local anchor, limit, key = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local scope, visible = 'd', 0
if kind ~= 'd' then
  local text = redis.call('HGET', P .. 'group:' .. name, user)
  if text then
    scope, visible, key = 'g', parse_member(user, text).invited_after, P .. 'gm:' .. name
  elseif kind == 'g' then
    return {'not_group_member', name}
  end
end
local got
if direction == 'a' then
  got = redis.call('XRANGE', key, fmt(math.max(anchor, visible) + 1), '+', 'COUNT', fmt(limit + 1))
else
  local high = '+'
  if direction == 'b' then
    if anchor - 1 < visible + 1 then return {'ok', scope, 0} end
    high = fmt(anchor - 1)
  end
  got = redis.call('XREVRANGE', key, high, fmt(visible + 1), 'COUNT', fmt(limit + 1))
end
local more = #got > limit
if more then got[#got] = nil end
local out = {'ok', scope, more and 1 or 0}
local first, last, step = 1, #got, 1
if direction ~= 'a' then first, last, step = #got, 1, -1 end
for i = first, last, step do
  local f = got[i][2]
  out[#out + 1] = {got[i][1], f[2], f[4], f[6]}
end
return out
)lua";

// ARGV: prefix, user, address, now. Reply: ok, blocked (1/0).
constexpr std::string_view is_blocked = R"lua(
local user, address, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local text = redis.call('HGET', P .. 'addr:' .. user, address)
local known = false
if text then
  local a = parse_address(text)
  if a.blocked_until > now then return {'ok', 1} end
  known = a.known
end
local until_ = num(redis.call('HGET', P .. 'account:' .. user, 'blocked_until'))
if until_ > now and not known then return {'ok', 1} end
return {'ok', 0}
)lua";

// ARGV: prefix, user, address, now, block period (µs), max_account_failures,
// max_attempts. Reply: ok, blocked_now (1/0), account_blocked (1/0).
constexpr std::string_view login_failed = R"lua(
local user, address = ARGV[2], ARGV[3]
local now, period, cap, attempts = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]),
                                   tonumber(ARGV[7])
local account_blocked = 0
if cap ~= 0 then
  local key = P .. 'account:' .. user
  local a = redis.call('HMGET', key, 'failures', 'window_start', 'blocked_until')
  local failures, start, until_ = num(a[1]), num(a[2]), num(a[3])
  if now - start >= period then
    start = now
    failures = 0
  end
  failures = failures + 1
  if failures > cap then
    until_ = now + period
    failures = 0
    start = now
    account_blocked = 1
  end
  redis.call('HSET', key, 'failures', fmt(failures), 'window_start', fmt(start), 'blocked_until',
             fmt(until_))
end
local a = address_record(user, address, now)
local blocked_now = 0
a.failures = a.failures + 1
if a.failures >= attempts then
  a.failures = 0
  a.blocked_until = now + period
  blocked_now = 1
end
redis.call('HSET', P .. 'addr:' .. user, address, address_text(a))
return {'ok', blocked_now, account_blocked}
)lua";

// ARGV: prefix, user, address.
constexpr std::string_view login_succeeded = R"lua(
local user, address = ARGV[2], ARGV[3]
local a = address_record(user, address, 0)
a.failures = 0
a.known = true
redis.call('HSET', P .. 'addr:' .. user, address, address_text(a))
return {'ok'}
)lua";

// ARGV: prefix, scan cursor, cutoff (µs), node, lock (ms). Removes the
// messages older than the cutoff from a batch of conversations, at most a
// thousand from each per call; at cursor 0 only the node that takes the
// lock for the period runs. Reply: ok, the next cursor (0: done).
constexpr std::string_view retention = R"lua(
local cursor, cutoff = ARGV[2], tonumber(ARGV[3])
if cursor == '0' and not redis.call('SET', P .. 'retention', ARGV[4], 'NX', 'PX', ARGV[5]) then
  return {'ok', '0'}
end
local scan = redis.call('SSCAN', P .. 'streams', cursor, 'COUNT', 100)
for _, key in ipairs(scan[2]) do
  for _ = 1, 10 do
    local batch = redis.call('XRANGE', key, '-', '+', 'COUNT', 100)
    local keep = nil
    for _, entry in ipairs(batch) do
      if tonumber(entry[2][4]) >= cutoff then
        keep = entry[1]
        break
      end
    end
    if keep then
      redis.call('XTRIM', key, 'MINID', '=', keep)
      break
    end
    if #batch == 0 then break end
    local newest = tonumber(string.match(batch[#batch][1], '^(%d+)'))
    redis.call('XTRIM', key, 'MINID', '=', fmt(newest + 1))
    if #batch < 100 then break end
  end
end
return {'ok', scan[1]}
)lua";

struct Entry {
  std::string_view name;
  std::string_view body;
};

constexpr std::array<Entry, script_count> entries{{
    {"create_group", create_group},
    {"join_group", join_group},
    {"leave_group", leave_group},
    {"delete_group", delete_group},
    {"append_group", append_group},
    {"append_direct", append_direct},
    {"missed", missed},
    {"delivered", delivered},
    {"history", history},
    {"is_blocked", is_blocked},
    {"login_failed", login_failed},
    {"login_succeeded", login_succeeded},
    {"retention", retention},
}};

}  // namespace

const std::string& script_source(Script script) {
  static const auto sources = [] {
    std::array<std::string, script_count> out;
    for (std::size_t i = 0; i < script_count; ++i)
      out[i] = std::string(helpers).append(entries[i].body);
    return out;
  }();
  return sources[static_cast<std::size_t>(script)];
}

std::string_view script_name(Script script) {
  return entries[static_cast<std::size_t>(script)].name;
}

}  // namespace tessenger::cluster
