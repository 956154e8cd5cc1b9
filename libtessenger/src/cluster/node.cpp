#include "cluster/node.hpp"

#include <algorithm>
#include <charconv>
#include <random>

#include <hiredis/hiredis.h>

#include <fmt/format.h>

#include "cluster/redis_store.hpp"
#include "cluster/wire.hpp"

namespace tessenger::cluster {

namespace {

// Every presence change is published, so that replicas need no polling:
//   added:   u8 1, u64 seq, u64 since, u64 session, u16 port, then user, node, address
//   removed: u8 2, u64 seq, then user
// (strings as u32 length + bytes). The scripts' keys:
//   online:<user>      hash node session address port since seq
//   online             zset of users by seq (login order)
//   login_seq          the last seq given
//   node:<node>:users  set of the node's users
//   lease:<node>       this process's token, with a TTL
//   nodes              set of registered nodes
constexpr const char* lua_prelude = R"lua(
local p = ARGV[1]
local function lp(s) return struct.pack('>I4', #s) .. s end
local function drop(user, node)
  local key = p .. 'online:' .. user
  local h = redis.call('HMGET', key, 'node', 'seq')
  if h[1] ~= node then return 0 end
  redis.call('DEL', key)
  redis.call('ZREM', p .. 'online', user)
  redis.call('SREM', p .. 'node:' .. node .. ':users', user)
  redis.call('PUBLISH', p .. 'presence', struct.pack('>BI8', 2, tonumber(h[2])) .. lp(user))
  return 1
end
local function add(user, node, session, address, port, since)
  local seq = redis.call('INCR', p .. 'login_seq')
  redis.call('HSET', p .. 'online:' .. user, 'node', node, 'session', session, 'address', address,
             'port', port, 'since', since, 'seq', seq)
  redis.call('ZADD', p .. 'online', seq, user)
  redis.call('SADD', p .. 'node:' .. node .. ':users', user)
  redis.call('PUBLISH', p .. 'presence',
             struct.pack('>BI8I8I8I2', 1, seq, tonumber(since), tonumber(session), tonumber(port)) ..
             lp(user) .. lp(node) .. lp(address))
  return seq
end
)lua";

// ARGV: prefix, user, node, session, address, port, since.
// {0, seq}: claimed; {1, node, session, address, port, since, seq}: held; {-1}: no lease.
constexpr const char* lua_claim = R"lua(
local user, node = ARGV[2], ARGV[3]
if redis.call('EXISTS', p .. 'lease:' .. node) == 0 then return {-1} end
local h = redis.call('HMGET', p .. 'online:' .. user, 'node', 'session', 'address', 'port', 'since', 'seq')
if h[1] then return {1, h[1], h[2], h[3], h[4], h[5], h[6]} end
return {0, add(user, node, ARGV[4], ARGV[5], ARGV[6], ARGV[7])}
)lua";

// ARGV: prefix, user, node, session.
constexpr const char* lua_release = R"lua(
if redis.call('HGET', p .. 'online:' .. ARGV[2], 'session') ~= ARGV[4] then return 0 end
return drop(ARGV[2], ARGV[3])
)lua";

// ARGV: prefix, node, token, lease ms.
constexpr const char* lua_register = R"lua(
redis.call('SET', p .. 'lease:' .. ARGV[2], ARGV[3], 'PX', ARGV[4])
redis.call('SADD', p .. 'nodes', ARGV[2])
return 1
)lua";

// ARGV: prefix, node, token, lease ms. 1: renewed; 0: it had run out; -1: another process's.
constexpr const char* lua_refresh = R"lua(
local key = p .. 'lease:' .. ARGV[2]
local v = redis.call('GET', key)
if v == ARGV[3] then redis.call('PEXPIRE', key, ARGV[4]) return 1 end
if not v then return 0 end
return -1
)lua";

// Exactly one node does each removal: a script runs alone. ARGV: prefix.
constexpr const char* lua_sweep = R"lua(
local removed = 0
for _, node in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
  if redis.call('EXISTS', p .. 'lease:' .. node) == 0 then
    for _, user in ipairs(redis.call('SMEMBERS', p .. 'node:' .. node .. ':users')) do
      removed = removed + drop(user, node)
    end
    redis.call('DEL', p .. 'node:' .. node .. ':users')
    redis.call('SREM', p .. 'nodes', node)
  end
end
return removed
)lua";

// Makes Redis hold exactly this node's sessions. ARGV: prefix, node, then
// user, session, address, port, since for each. Returns the users another
// node holds now.
constexpr const char* lua_sync = R"lua(
local node = ARGV[2]
local mine = {}
for i = 3, #ARGV, 5 do mine[ARGV[i]] = ARGV[i + 1] end
for _, user in ipairs(redis.call('SMEMBERS', p .. 'node:' .. node .. ':users')) do
  local session = redis.call('HGET', p .. 'online:' .. user, 'session')
  if mine[user] ~= session then drop(user, node) end
  if not session then redis.call('SREM', p .. 'node:' .. node .. ':users', user) end
end
local taken = {}
for i = 3, #ARGV, 5 do
  local h = redis.call('HMGET', p .. 'online:' .. ARGV[i], 'node', 'session')
  if not h[1] then
    add(ARGV[i], node, ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
  elseif h[1] ~= node or h[2] ~= ARGV[i + 1] then
    table.insert(taken, ARGV[i])
  end
end
return taken
)lua";

// Everyone online, in login order: user, node, session, address, port, since, seq each.
constexpr const char* lua_snapshot = R"lua(
local out = {}
for _, user in ipairs(redis.call('ZRANGE', p .. 'online', 0, -1)) do
  local h = redis.call('HMGET', p .. 'online:' .. user, 'node', 'session', 'address', 'port', 'since', 'seq')
  if h[1] then
    table.insert(out, user)
    for j = 1, 6 do table.insert(out, h[j]) end
  end
end
return out
)lua";

// ARGV: prefix, node. Leaving: its users go offline at once.
constexpr const char* lua_leave = R"lua(
for _, user in ipairs(redis.call('SMEMBERS', p .. 'node:' .. ARGV[2] .. ':users')) do
  drop(user, ARGV[2])
end
redis.call('DEL', p .. 'node:' .. ARGV[2] .. ':users', p .. 'lease:' .. ARGV[2])
redis.call('SREM', p .. 'nodes', ARGV[2])
return 1
)lua";

std::uint64_t number(const RedisReply& reply) {
  if (reply.kind == RedisReply::Kind::integer) return static_cast<std::uint64_t>(reply.integer);
  std::uint64_t value = 0;
  std::from_chars(reply.text.data(), reply.text.data() + reply.text.size(), value);
  return value;
}

std::string random_token() {
  std::random_device random;
  return fmt::format("{:08x}{:08x}", random(), random());
}

}  // namespace

Node::Node(asio::any_io_executor executor, NodeOptions options)
    : executor_(executor),
      options_(std::move(options)),
      commands_(executor, options_.endpoint, options_.redis),
      subscriber_(executor, options_.endpoint, options_.redis),
      tick_timer_(executor),
      retry_timer_(executor),
      token_(random_token()) {}

Node::~Node() {
  *alive_ = false;
}

bool Node::reachable(const RedisEndpoint& endpoint, std::chrono::milliseconds timeout,
                     std::string& problem) {
  const timeval tv{static_cast<time_t>(timeout.count() / 1000),
                   static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  redisContext* context = endpoint.unix_path.empty()
                              ? redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, tv)
                              : redisConnectUnixWithTimeout(endpoint.unix_path.c_str(), tv);
  if (context == nullptr) {
    problem = "cannot reach Redis at " + endpoint.describe() + ": out of memory";
    return false;
  }
  bool ok = false;
  if (context->err) {
    problem = "cannot reach Redis at " + endpoint.describe() + ": " + context->errstr;
  } else {
    redisSetTimeout(context, tv);
    auto* reply = static_cast<redisReply*>(redisCommand(context, "PING"));
    if (reply == nullptr) {
      problem = "Redis at " + endpoint.describe() +
                " did not answer: " + (context->err ? context->errstr : "no reply");
    } else if (reply->type == REDIS_REPLY_ERROR) {
      problem = "Redis at " + endpoint.describe() + " refused PING: " + reply->str;
    } else {
      ok = true;
    }
    if (reply != nullptr) freeReplyObject(reply);
  }
  redisFree(context);
  return ok;
}

template <typename... Args>
void Node::log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (options_.log.write && level >= options_.log.min_level)
    options_.log.write(level, fmt::format(format, std::forward<Args>(args)...));
}

void Node::eval(const std::string& script, std::vector<std::string> args,
                RedisConnection::Done done) {
  std::vector<std::string> command{"EVAL", std::string(lua_prelude) + script, "0"};
  command.reserve(command.size() + args.size());
  for (auto& arg : args)
    command.push_back(std::move(arg));
  commands_.command(std::move(command), std::move(done));
}

void Node::start(std::string name) {
  if (options_.name.empty()) options_.name = std::move(name);
  commands_.on_lost([this, alive = alive_](std::error_code e) {
    if (*alive) lost(e);
  });
  subscriber_.on_lost([this, alive = alive_](std::error_code e) {
    if (*alive) lost(e);
  });
  connect();
  tick();
}

void Node::connect() {
  if (connecting_ || stopping_) return;
  connecting_ = true;
  auto remaining = std::make_shared<int>(2);
  auto failed = std::make_shared<std::error_code>();
  const auto both = [this, alive = alive_, remaining, failed](std::error_code e) {
    if (!*alive) return;
    if (e && !*failed) *failed = e;
    if (--*remaining > 0) return;
    connecting_ = false;
    if (*failed) {
      commands_.close();
      subscriber_.close();
      return retry_later();
    }
    connected();
  };
  commands_.connect(both);
  subscriber_.connect(both);
}

void Node::failed(std::string_view what, std::error_code error, const RedisReply& reply) {
  if (!error) {
    log(LogLevel::error, "cluster: {} failed: {}", what, reply.text);
    error = make_error_code(redis_errc::connection_lost);
  }
  lost(error);
}

void Node::retry_later() {
  if (stopping_) return;
  retry_timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(2000));
  retry_timer_.async_wait([this, alive = alive_](std::error_code e) {
    if (!e && *alive) connect();
  });
}

void Node::lost(std::error_code reason) {
  if (stopping_) return;
  log(up_ ? LogLevel::warn : LogLevel::debug, "lost Redis at {}: {}; reconnecting",
      options_.endpoint.describe(), reason.message());
  up_ = false;
  commands_.close();
  subscriber_.close();
  if (!connecting_) retry_later();
}

void Node::connected() {
  const std::vector<std::string> channels{options_.prefix + "presence",
                                          options_.prefix + "node:" + options_.name};
  eval(lua_register,
       {options_.prefix, options_.name, token_, std::to_string(options_.lease.count())},
       [this, alive = alive_, channels](std::error_code e, RedisReply reply) {
         if (!*alive) return;
         if (e || reply.is_error()) return failed("registering", e, reply);
         snapshot_pending_ = true;
         buffered_.clear();
         subscriber_.subscribe(
             channels,
             [this, alive](std::string_view channel, std::string_view payload) {
               if (*alive) on_message(channel, payload);
             },
             [this, alive](std::error_code error) {
               if (!*alive) return;
               if (error) return lost(error);
               synchronise([this] { load_snapshot(); });
             });
       });
}

// Redis is made to hold exactly this node's sessions: those it released or
// claimed while cut off, and those a sweep removed.
void Node::synchronise(std::function<void()> then) {
  std::vector<std::string> args{options_.prefix, options_.name};
  for (const auto& [user, entry] : local_) {
    args.push_back(user);
    args.push_back(std::to_string(entry.where.session));
    args.push_back(entry.record.address);
    args.push_back(std::to_string(entry.record.udp_port));
    args.push_back(std::to_string(entry.record.since));
  }
  eval(lua_sync, std::move(args),
       [this, alive = alive_, then = std::move(then)](std::error_code e, RedisReply reply) {
         if (!*alive) return;
         if (e || reply.is_error()) return failed("synchronising presence", e, reply);
         std::vector<core::SessionId> displaced;
         for (const auto& user : reply.elements) {
           const auto it = local_.find(user.text);
           if (it == local_.end()) continue;
           displaced.push_back(it->second.where.session);
           local_.erase(it);
         }
         if (!displaced.empty()) {
           log(LogLevel::warn, "{} users logged in on another node while this one was cut off",
               displaced.size());
           if (handlers_.displaced) handlers_.displaced(std::move(displaced));
         }
         then();
       });
}

void Node::load_snapshot() {
  eval(lua_snapshot, {options_.prefix},
       [this, alive = alive_](std::error_code e, RedisReply reply) {
         if (!*alive) return;
         if (e || reply.is_error()) return failed("loading who is online", e, reply);
         entries_.clear();
         online_.clear();
         online_seq_.clear();
         const auto& items = reply.elements;
         for (std::size_t i = 0; i + 7 <= items.size(); i += 7) {
           Entry entry;
           entry.entry.record = {
               items[i].text, static_cast<protocol::Timestamp>(number(items[i + 5])),
               items[i + 3].text, static_cast<std::uint16_t>(number(items[i + 4]))};
           const bool here = items[i + 1].text == options_.name;
           entry.entry.where = {here ? std::string() : items[i + 1].text,
                                static_cast<core::SessionId>(number(items[i + 2]))};
           entry.seq = number(items[i + 6]);
           upsert(items[i].text, std::move(entry));
         }
         snapshot_pending_ = false;
         for (const auto& change : std::exchange(buffered_, {}))
           on_presence(change);
         const bool again = ever_up_;
         up_ = ever_up_ = true;
         backoff_ = std::chrono::milliseconds(100);
         log(LogLevel::info, "node {} joined the cluster at {} ({} users online)", options_.name,
             options_.endpoint.describe(), online_.size());
         if (handlers_.joined) handlers_.joined();
         if (again && handlers_.reconnected) handlers_.reconnected();
       });
}

void Node::tick() {
  tick_timer_.expires_after(options_.refresh);
  tick_timer_.async_wait([this, alive = alive_](std::error_code e) {
    if (e || !*alive || stopping_) return;
    if (up_) {
      eval(lua_refresh,
           {options_.prefix, options_.name, token_, std::to_string(options_.lease.count())},
           [this, alive](std::error_code error, RedisReply reply) {
             if (!*alive || error || reply.is_error()) return;
             if (reply.integer == 1) return;
             // Paused past its lease: the sweep may have taken its users.
             log(LogLevel::warn, "node {}'s lease {}; registering again", options_.name,
                 reply.integer == 0 ? "ran out" : "was taken by another process");
             if (reply.integer == -1) token_ = random_token();
             up_ = false;
             connected();
           });
      eval(lua_sweep, {options_.prefix}, [this, alive](std::error_code error, RedisReply reply) {
        if (*alive && !error && reply.integer > 0)
          log(LogLevel::info, "swept {} users of nodes whose lease ran out", reply.integer);
      });
    }
    tick();
  });
}

void Node::stop() {
  if (stopping_) return;
  stopping_ = true;
  tick_timer_.cancel();
  retry_timer_.cancel();
  const auto close = [this] {
    commands_.close();
    subscriber_.close();
  };
  if (!up_) return close();
  up_ = false;
  // After what is queued before it, releases included; then nothing is left
  // to keep the event loop running.
  eval(lua_leave, {options_.prefix, options_.name},
       [alive = alive_, close](std::error_code, RedisReply) {
         if (*alive) close();
       });
}

void Node::claim(core::PresenceEntry entry, std::function<void(core::ClaimOutcome)> done) {
  if (!up_) return done({errc::service_unavailable, {}});
  std::vector<std::string> args{options_.prefix,
                                entry.record.username,
                                options_.name,
                                std::to_string(entry.where.session),
                                entry.record.address,
                                std::to_string(entry.record.udp_port),
                                std::to_string(entry.record.since)};
  eval(lua_claim, std::move(args),
       [this, alive = alive_, entry = std::move(entry), done = std::move(done)](
           std::error_code e, RedisReply reply) mutable {
         if (!*alive) return;
         if (e || reply.is_error() || reply.elements.empty())
           return done({errc::service_unavailable, {}});
         const auto status = reply.elements[0].integer;
         if (status == -1) return done({errc::service_unavailable, {}});
         if (status == 1 && reply.elements.size() >= 7) {
           const auto& h = reply.elements;
           core::PresenceEntry holder;
           holder.record = {entry.record.username, static_cast<protocol::Timestamp>(number(h[5])),
                            h[3].text, static_cast<std::uint16_t>(number(h[4]))};
           const bool here = h[1].text == options_.name;
           holder.where = {here ? std::string() : h[1].text,
                           static_cast<core::SessionId>(number(h[2]))};
           return done({{}, std::move(holder)});
         }
         local_.insert_or_assign(entry.record.username, entry);
         const std::string name = entry.record.username;
         upsert(name, {std::move(entry), number(reply.elements[1])});
         done({});
       });
}

void Node::release(std::string_view username, core::SessionId session) {
  const auto it = local_.find(username);
  if (it == local_.end() || it->second.where.session != session) return;
  local_.erase(it);
  if (const auto entry = entries_.find(username);
      entry != entries_.end() && entry->second.entry.where.local())
    remove(username, entry->second.seq);
  // While Redis is away, the next synchronise removes it there.
  if (up_) {
    eval(lua_release,
         {options_.prefix, std::string(username), options_.name, std::to_string(session)},
         [](std::error_code, RedisReply) {});
  }
}

const core::PresenceEntry* Node::find(std::string_view username) const {
  const auto it = entries_.find(username);
  return it == entries_.end() ? nullptr : &it->second.entry;
}

void Node::upsert(std::string user, Entry entry) {
  const auto it = entries_.find(user);
  if (it != entries_.end()) {
    if (it->second.seq >= entry.seq) return;
    remove(user, it->second.seq);
  }
  const auto at = std::upper_bound(online_seq_.begin(), online_seq_.end(), entry.seq);
  const auto index = at - online_seq_.begin();
  online_seq_.insert(at, entry.seq);
  online_.insert(online_.begin() + index, entry.entry.record);
  entries_.insert_or_assign(std::move(user), std::move(entry));
}

void Node::remove(std::string_view user, std::uint64_t seq) {
  const auto it = entries_.find(user);
  if (it == entries_.end() || it->second.seq != seq) return;
  const auto at = std::lower_bound(online_seq_.begin(), online_seq_.end(), seq);
  if (at != online_seq_.end() && *at == seq) {
    online_.erase(online_.begin() + (at - online_seq_.begin()));
    online_seq_.erase(at);
  }
  entries_.erase(it);
}

void Node::on_message(std::string_view channel, std::string_view payload) {
  if (channel.size() == options_.prefix.size() + 8 && channel.ends_with("presence")) {
    if (snapshot_pending_) {
      buffered_.emplace_back(payload);
      return;
    }
    return on_presence(payload);
  }
  on_node_message(payload);
}

void Node::on_presence(std::string_view payload) {
  WireReader in(payload);
  const auto kind = in.u8();
  const auto seq = in.u64();
  if (kind == 1) {
    const auto since = in.u64();
    const auto session = in.u64();
    const auto port = in.u16();
    auto user = in.string();
    auto node = in.string();
    auto address = in.string();
    if (!in.ok()) return log(LogLevel::warn, "a malformed presence change from Redis, ignored");
    // This node's own claims are in already, from the claim's reply.
    if (node == options_.name) return;
    Entry entry;
    entry.entry.record = {user, static_cast<protocol::Timestamp>(since), std::move(address),
                          static_cast<std::uint16_t>(port)};
    entry.entry.where = {std::move(node), session};
    entry.seq = seq;
    upsert(std::move(user), std::move(entry));
  } else if (kind == 2) {
    const auto user = in.string();
    if (!in.ok()) return log(LogLevel::warn, "a malformed presence change from Redis, ignored");
    const auto it = entries_.find(user);
    // A sweep or a resync removed one of this node's own: it is not online here any more.
    if (it != entries_.end() && it->second.entry.where.local() && it->second.seq == seq)
      local_.erase(user);
    remove(user, seq);
  }
}

void Node::on_node_message(std::string_view payload) {
  if (payload.empty()) return;
  if (static_cast<std::uint8_t>(payload[0]) == wire_event) {
    auto event = decode_event(payload);
    if (!event) return log(LogLevel::warn, "a malformed event from another node, ignored");
    if (handlers_.event) handlers_.event(event->to, event->message);
    return;
  }
  // Until the snapshot is in and the hub has caught up from the store, a
  // live message may jump ahead of ones this node missed while cut off; the
  // catch-up reads it from the store, in order, with those.
  if (snapshot_pending_) return;
  auto stored = decode_cluster_message(payload);
  if (!stored) return log(LogLevel::warn, "a malformed message from Redis, ignored");
  if (handlers_.stored) {
    handlers_.stored({stored->id, stored->time, std::move(stored->group), std::move(stored->from),
                      std::move(stored->text), std::move(stored->to)});
  }
}

void Node::forward(const std::string& node, std::span<const std::string> users,
                   const protocol::Message& message) {
  if (!up_) return;
  commands_.command({"PUBLISH", options_.prefix + "node:" + node, encode_event(users, message)},
                    [](std::error_code, RedisReply) {});
}

}  // namespace tessenger::cluster
