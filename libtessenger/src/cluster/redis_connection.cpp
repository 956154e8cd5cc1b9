#include "cluster/redis_connection.hpp"

#include <charconv>
#include <deque>
#include <unordered_map>
#include <utility>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

namespace tessenger::cluster {

namespace {

class RedisCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "redis"; }
  std::string message(int value) const override {
    switch (static_cast<redis_errc>(value)) {
      case redis_errc::not_connected:
        return "not connected to Redis";
      case redis_errc::timed_out:
        return "Redis did not answer in time";
      case redis_errc::connection_lost:
        return "the connection to Redis was lost";
      case redis_errc::queue_full:
        return "too many Redis commands outstanding";
    }
    return "unknown Redis error";
  }
};

RedisReply copy_reply(const redisReply& reply) {
  RedisReply out;
  switch (reply.type) {
    case REDIS_REPLY_STRING:
      out.kind = RedisReply::Kind::string;
      out.text.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_STATUS:
      out.kind = RedisReply::Kind::status;
      out.text.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ERROR:
      out.kind = RedisReply::Kind::error;
      out.text.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.kind = RedisReply::Kind::integer;
      out.integer = reply.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.kind = RedisReply::Kind::array;
      out.elements.reserve(reply.elements);
      for (std::size_t i = 0; i < reply.elements; ++i)
        out.elements.push_back(copy_reply(*reply.element[i]));
      break;
    default:
      break;
  }
  return out;
}

bool parse_number(std::string_view text, int& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

}  // namespace

const std::error_category& redis_category() noexcept {
  static const RedisCategory category;
  return category;
}

std::error_code make_error_code(redis_errc e) noexcept {
  return {static_cast<int>(e), redis_category()};
}

std::string RedisEndpoint::describe() const {
  if (!unix_path.empty()) return "unix://" + unix_path;
  return "redis://" + host + ":" + std::to_string(port) + "/" + std::to_string(db);
}

std::optional<RedisEndpoint> parse_redis_url(std::string_view url, std::string& problem) {
  RedisEndpoint endpoint;
  const auto bad = [&](std::string why) -> std::optional<RedisEndpoint> {
    problem = "invalid Redis address '" + std::string(url) + "': " + std::move(why);
    return std::nullopt;
  };
  if (url.starts_with("unix://")) {
    std::string_view rest = url.substr(7);
    if (const auto query = rest.find("?db="); query != std::string_view::npos) {
      if (!parse_number(rest.substr(query + 4), endpoint.db) || endpoint.db < 0)
        return bad("the database must be a number");
      rest = rest.substr(0, query);
    }
    if (!rest.starts_with('/')) return bad("expected unix:///PATH");
    endpoint.unix_path = std::string(rest);
    return endpoint;
  }
  if (!url.starts_with("redis://")) return bad("expected redis://HOST:PORT[/DB] or unix:///PATH");
  std::string_view rest = url.substr(8);
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    const auto db = rest.substr(slash + 1);
    if (!db.empty() && (!parse_number(db, endpoint.db) || endpoint.db < 0))
      return bad("the database must be a number");
    rest = rest.substr(0, slash);
  }
  std::string_view host = rest;
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return bad("unclosed '[' in the host");
    host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return bad("expected ':' after the host");
    rest = rest.empty() ? rest : rest.substr(1);
  } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    rest = rest.substr(colon + 1);
  } else {
    rest = {};
  }
  if (host.empty()) return bad("no host");
  endpoint.host = std::string(host);
  if (!rest.empty()) {
    int port = 0;
    if (!parse_number(rest, port) || port < 1 || port > 65535)
      return bad("the port must be 1-65535");
    endpoint.port = static_cast<std::uint16_t>(port);
  }
  return endpoint;
}

struct RedisConnection::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor executor_, RedisEndpoint endpoint_, RedisOptions options_)
      : executor(executor_),
        endpoint(std::move(endpoint_)),
        options(options_),
        socket(executor_),
        timer(executor_) {}

  // What a command waits for; replies come in the order commands were sent,
  // so only the oldest deadline can be the first to pass.
  struct Waiting {
    std::uint64_t token = 0;  // 0: a subscription's confirmation
    std::chrono::steady_clock::time_point deadline;
  };

  asio::any_io_executor executor;
  RedisEndpoint endpoint;
  RedisOptions options;
  redisAsyncContext* context = nullptr;
  asio::posix::stream_descriptor socket;
  asio::steady_timer timer;
  bool timer_armed = false;
  std::chrono::steady_clock::time_point timer_expiry;
  std::uint64_t timer_round = 0;  // a re-armed timer's cancelled wait is stale
  bool want_read = false;
  bool want_write = false;
  bool reading = false;
  bool writing = false;
  std::uint64_t generation = 0;  // of the socket, so late waits on an old one do nothing
  bool is_connected = false;
  bool user_closing = false;
  std::error_code drop_reason;

  std::uint64_t next_token = 1;
  std::unordered_map<std::uint64_t, Done> callbacks;
  std::deque<Waiting> waiting;
  // Callbacks are run after hiredis returns, never from inside it, so that
  // they may issue commands or close the connection freely.
  std::vector<std::pair<Done, std::pair<std::error_code, RedisReply>>> ready;
  std::function<void(std::error_code)> on_connected;
  OnMessage on_message;
  std::size_t unconfirmed_subscriptions = 0;
  std::function<void(std::error_code)> on_subscribed;
  OnLost lost;
  bool lost_pending = false;

  static Impl& of(const redisAsyncContext* ac) { return *static_cast<Impl*>(ac->data); }

  void start(std::function<void(std::error_code)> done) {
    if (context != nullptr) {
      asio::post(executor,
                 [done = std::move(done)] { done(make_error_code(redis_errc::connection_lost)); });
      return;
    }
    user_closing = false;
    drop_reason = {};
    context = endpoint.unix_path.empty() ? redisAsyncConnect(endpoint.host.c_str(), endpoint.port)
                                         : redisAsyncConnectUnix(endpoint.unix_path.c_str());
    if (context == nullptr || context->err) {
      const std::error_code error = make_error_code(std::errc::connection_refused);
      if (context != nullptr) redisAsyncFree(context);
      context = nullptr;
      asio::post(executor, [done = std::move(done), error] { done(error); });
      return;
    }
    // Before the hooks: setting the connect callback already asks to write.
    ++generation;
    socket.assign(context->c.fd);
    context->data = this;
    context->ev.data = this;
    context->ev.addRead = [](void* self) { static_cast<Impl*>(self)->watch_read(true); };
    context->ev.delRead = [](void* self) { static_cast<Impl*>(self)->want_read = false; };
    context->ev.addWrite = [](void* self) { static_cast<Impl*>(self)->watch_write(true); };
    context->ev.delWrite = [](void* self) { static_cast<Impl*>(self)->want_write = false; };
    context->ev.cleanup = [](void* self) { static_cast<Impl*>(self)->forget_socket(); };
    redisAsyncSetConnectCallback(context, [](const redisAsyncContext* ac, int status) {
      if (status != REDIS_OK) of(ac).drop_reason = make_error_code(std::errc::connection_refused);
    });
    redisAsyncSetDisconnectCallback(context, [](const redisAsyncContext* ac, int) {
      Impl& self = of(ac);
      self.context = nullptr;
      const bool was_connected = std::exchange(self.is_connected, false);
      if (was_connected && !self.user_closing) self.lost_pending = true;
    });
    on_connected = std::move(done);
    // The handshake: its reply proves the connection works and selects the database.
    send({"SELECT", std::to_string(endpoint.db)}, options.connect_timeout,
         [this](std::error_code error, RedisReply reply) {
           auto connected_done = std::move(on_connected);
           if (!error && reply.is_error()) error = make_error_code(std::errc::invalid_argument);
           if (!error) is_connected = true;
           if (error && context != nullptr) drop(error);
           if (connected_done) connected_done(error);
         });
    settle();
  }

  void watch_read(bool want) {
    want_read = want;
    if (!want || reading || context == nullptr) return;
    reading = true;
    socket.async_wait(asio::posix::stream_descriptor::wait_read,
                      [self = shared_from_this(), generation = generation](std::error_code error) {
                        if (generation != self->generation) return;
                        self->reading = false;
                        if (error || self->context == nullptr) return;
                        if (self->want_read) redisAsyncHandleRead(self->context);
                        if (self->context != nullptr && self->want_read) self->watch_read(true);
                        self->settle();
                      });
  }

  void watch_write(bool want) {
    want_write = want;
    if (!want || writing || context == nullptr) return;
    writing = true;
    socket.async_wait(asio::posix::stream_descriptor::wait_write,
                      [self = shared_from_this(), generation = generation](std::error_code error) {
                        if (generation != self->generation) return;
                        self->writing = false;
                        if (error || self->context == nullptr) return;
                        if (self->want_write) redisAsyncHandleWrite(self->context);
                        if (self->context != nullptr && self->want_write) self->watch_write(true);
                        self->settle();
                      });
  }

  // hiredis closes the descriptor itself.
  void forget_socket() {
    context = nullptr;
    want_read = want_write = reading = writing = false;
    ++generation;
    if (socket.is_open()) {
      std::error_code ignored;
      socket.cancel(ignored);
      socket.release();
    }
  }

  static void on_reply(redisAsyncContext* ac, void* raw, void* privdata) {
    Impl& self = of(ac);
    const auto token = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(privdata));
    if (token == 0) return self.on_subscription(static_cast<redisReply*>(raw));
    if (!self.waiting.empty() && self.waiting.front().token == token) self.waiting.pop_front();
    const auto it = self.callbacks.find(token);
    if (it == self.callbacks.end()) return;
    Done done = std::move(it->second);
    self.callbacks.erase(it);
    if (raw == nullptr) {
      self.ready.push_back({std::move(done), {self.failure(), RedisReply{}}});
    } else {
      self.ready.push_back({std::move(done), {{}, copy_reply(*static_cast<redisReply*>(raw))}});
    }
  }

  void on_subscription(const redisReply* reply) {
    if (reply == nullptr) {
      if (on_subscribed) {
        auto done = std::move(on_subscribed);
        const auto error = failure();
        ready.push_back({[done](std::error_code e, RedisReply) { done(e); }, {error, {}}});
      }
      return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
    const std::string_view kind(reply->element[0]->str, reply->element[0]->len);
    if (kind == "message") {
      const auto* channel = reply->element[1];
      const auto* payload = reply->element[2];
      if (on_message && payload->type == REDIS_REPLY_STRING)
        on_message({channel->str, channel->len}, {payload->str, payload->len});
    } else if (kind == "pmessage" && reply->elements >= 4) {
      const auto* channel = reply->element[2];
      const auto* payload = reply->element[3];
      if (on_message && payload->type == REDIS_REPLY_STRING)
        on_message({channel->str, channel->len}, {payload->str, payload->len});
    } else if (kind == "subscribe" || kind == "psubscribe") {
      if (!waiting.empty() && waiting.front().token == 0) waiting.pop_front();
      if (unconfirmed_subscriptions > 0 && --unconfirmed_subscriptions == 0 && on_subscribed) {
        auto done = std::move(on_subscribed);
        ready.push_back({[done](std::error_code e, RedisReply) { done(e); }, {{}, {}}});
      }
    }
  }

  std::error_code failure() const {
    if (drop_reason) return drop_reason;
    if (user_closing) return make_error_code(std::errc::operation_canceled);
    return make_error_code(redis_errc::connection_lost);
  }

  void send(std::vector<std::string> args, std::chrono::milliseconds timeout, Done done) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (const auto& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    const std::uint64_t token = next_token++;
    if (redisAsyncCommandArgv(
            context, on_reply, reinterpret_cast<void*>(static_cast<std::uintptr_t>(token)),
            static_cast<int>(argv.size()), argv.data(), lengths.data()) != REDIS_OK) {
      asio::post(executor, [done = std::move(done)] {
        done(make_error_code(redis_errc::connection_lost), {});
      });
      return;
    }
    callbacks.emplace(token, std::move(done));
    waiting.push_back({token, std::chrono::steady_clock::now() + timeout});
    arm_timer();
  }

  void subscribe(std::vector<std::string> channels, std::function<void(std::error_code)> done) {
    std::vector<const char*> argv{"SUBSCRIBE"};
    std::vector<std::size_t> lengths{9};
    for (const auto& channel : channels) {
      argv.push_back(channel.data());
      lengths.push_back(channel.size());
    }
    if (redisAsyncCommandArgv(context, on_reply, nullptr, static_cast<int>(argv.size()),
                              argv.data(), lengths.data()) != REDIS_OK) {
      asio::post(executor,
                 [done = std::move(done)] { done(make_error_code(redis_errc::connection_lost)); });
      return;
    }
    unconfirmed_subscriptions += channels.size();
    on_subscribed = std::move(done);
    const auto deadline = std::chrono::steady_clock::now() + options.command_timeout;
    for (std::size_t i = 0; i < channels.size(); ++i)
      waiting.push_back({0, deadline});
    arm_timer();
  }

  // The handshake's longer deadline may still be armed when the first
  // command comes: an earlier deadline moves the timer forward.
  void arm_timer() {
    if (waiting.empty()) return;
    const auto deadline = waiting.front().deadline;
    if (timer_armed && timer_expiry <= deadline) return;
    timer_armed = true;
    timer_expiry = deadline;
    timer.expires_at(deadline);
    timer.async_wait([self = shared_from_this(), round = ++timer_round](std::error_code error) {
      if (round != self->timer_round) return;
      self->timer_armed = false;
      if (error) return;
      if (!self->waiting.empty() &&
          self->waiting.front().deadline <= std::chrono::steady_clock::now()) {
        if (self->context != nullptr) self->drop(make_error_code(redis_errc::timed_out));
        self->settle();
        return;
      }
      self->arm_timer();
    });
  }

  void drop(std::error_code reason) {
    drop_reason = reason;
    redisAsyncContext* ac = std::exchange(context, nullptr);
    // Frees at once (or when hiredis leaves its callback): pending commands
    // get a null reply, then the disconnect callback runs.
    if (ac != nullptr) {
      if (is_connected && !user_closing) lost_pending = true;
      is_connected = false;
      redisAsyncFree(ac);
    }
    waiting.clear();
  }

  // Runs what hiredis completed, then tells of a lost connection.
  void settle() {
    auto keep = shared_from_this();
    while (!ready.empty()) {
      auto batch = std::move(ready);
      ready.clear();
      for (auto& [done, result] : batch)
        done(result.first, std::move(result.second));
    }
    if (context == nullptr) {
      waiting.clear();
      if (lost_pending) {
        lost_pending = false;
        const auto reason =
            drop_reason ? drop_reason : make_error_code(redis_errc::connection_lost);
        if (lost) lost(reason);
      }
    }
  }
};

RedisConnection::RedisConnection(asio::any_io_executor executor, RedisEndpoint endpoint,
                                 RedisOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(endpoint), options)) {}

RedisConnection::~RedisConnection() {
  impl_->lost = nullptr;
  close();
}

void RedisConnection::connect(std::function<void(std::error_code)> done) {
  impl_->start(std::move(done));
}

void RedisConnection::command(std::vector<std::string> args, Done done) {
  Impl& impl = *impl_;
  if (impl.context == nullptr || !impl.is_connected) {
    asio::post(impl.executor,
               [done = std::move(done)] { done(make_error_code(redis_errc::not_connected), {}); });
    return;
  }
  if (impl.callbacks.size() >= impl.options.max_pending) {
    asio::post(impl.executor,
               [done = std::move(done)] { done(make_error_code(redis_errc::queue_full), {}); });
    return;
  }
  impl.send(std::move(args), impl.options.command_timeout, std::move(done));
}

void RedisConnection::subscribe(std::vector<std::string> channels, OnMessage on_message,
                                std::function<void(std::error_code)> done) {
  Impl& impl = *impl_;
  if (impl.context == nullptr || !impl.is_connected) {
    asio::post(impl.executor,
               [done = std::move(done)] { done(make_error_code(redis_errc::not_connected)); });
    return;
  }
  impl.on_message = std::move(on_message);
  impl.subscribe(std::move(channels), std::move(done));
}

void RedisConnection::unsubscribe(std::vector<std::string> channels) {
  Impl& impl = *impl_;
  if (impl.context == nullptr || !impl.is_connected || channels.empty()) return;
  std::vector<const char*> argv{"UNSUBSCRIBE"};
  std::vector<std::size_t> lengths{11};
  for (const auto& channel : channels) {
    argv.push_back(channel.data());
    lengths.push_back(channel.size());
  }
  redisAsyncCommandArgv(impl.context, nullptr, nullptr, static_cast<int>(argv.size()), argv.data(),
                        lengths.data());
}

void RedisConnection::on_lost(OnLost handler) {
  impl_->lost = std::move(handler);
}

bool RedisConnection::connected() const noexcept {
  return impl_->is_connected;
}

std::size_t RedisConnection::pending() const noexcept {
  return impl_->callbacks.size();
}

void RedisConnection::close() {
  Impl& impl = *impl_;
  impl.user_closing = true;
  if (impl.context != nullptr) impl.drop(make_error_code(std::errc::operation_canceled));
  impl.settle();
  impl.on_connected = nullptr;
  impl.timer.cancel();
}

}  // namespace tessenger::cluster
