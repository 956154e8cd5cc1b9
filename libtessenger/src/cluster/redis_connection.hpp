#pragma once

// One connection to Redis, driven by the caller's Asio executor: hiredis
// parses RESP and queues the commands; this adapter watches hiredis's socket
// (without owning it) and keeps the deadlines hiredis 0.14 does not have.
// Commands are pipelined: each call appends to hiredis's output buffer, and
// everything queued within one turn of the event loop goes out in one write.
//
// Threading: every member is called on the executor given to the
// constructor (the server's strand), and every callback runs there too.
// Lifetime: callbacks of commands still pending when the connection is
// closed or destroyed get std::errc::operation_canceled, never a dangling
// call.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <asio/any_io_executor.hpp>

namespace tessenger::cluster {

/// Where Redis is: redis://HOST[:PORT][/DB] or unix:///PATH[?db=DB].
struct RedisEndpoint {
  std::string host;  ///< empty for a unix socket
  std::uint16_t port = 6379;
  std::string unix_path;  ///< set for a unix socket
  int db = 0;
  std::string describe() const;
};

/// The endpoint `url` names; nullopt with `problem` set when it is not one.
std::optional<RedisEndpoint> parse_redis_url(std::string_view url, std::string& problem);

/// A reply, copied out of hiredis's so that it outlives the callback.
struct RedisReply {
  enum class Kind { nil, status, error, integer, string, array };
  Kind kind = Kind::nil;
  long long integer = 0;
  std::string text;  ///< status, error and string replies
  std::vector<RedisReply> elements;

  bool is_error() const noexcept { return kind == Kind::error; }
  bool is_nil() const noexcept { return kind == Kind::nil; }
};

/// The errors a command can end with besides a Redis error reply (which
/// arrives as a RedisReply of Kind::error with no error code).
enum class redis_errc {
  not_connected = 1,  ///< the connection is down: the command was not sent
  timed_out,          ///< no reply within the command timeout; the connection is dropped
  connection_lost,    ///< the connection broke with the command sent, outcome unknown
  queue_full,         ///< more than max_pending commands outstanding
};
const std::error_category& redis_category() noexcept;
std::error_code make_error_code(redis_errc e) noexcept;

struct RedisOptions {
  std::chrono::milliseconds connect_timeout{1000};
  /// A reply later than this drops the connection: every pending command
  /// fails with timed_out, so a stalled Redis never leaves a request hanging.
  std::chrono::milliseconds command_timeout{800};
  std::size_t max_pending = 65536;
};

class RedisConnection {
 public:
  using Done = std::function<void(std::error_code, RedisReply)>;
  /// A message on a subscribed channel (or pattern: `channel` is the channel).
  using OnMessage = std::function<void(std::string_view channel, std::string_view payload)>;
  /// The connection broke (not called for close()).
  using OnLost = std::function<void(std::error_code)>;

  RedisConnection(asio::any_io_executor executor, RedisEndpoint endpoint,
                  RedisOptions options = {});
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  /// Connects and selects the endpoint's database; `done` gets the outcome.
  /// Also used to reconnect after on_lost.
  void connect(std::function<void(std::error_code)> done);
  /// Sends one command (each argument binary-safe). Fails at once with
  /// not_connected or queue_full; otherwise `done` gets the reply.
  void command(std::vector<std::string> args, Done done);
  /// Puts the connection in subscriber mode (use a connection of its own):
  /// `channels` are subscribed, every message goes to `on_message`, and
  /// `done` runs once all are confirmed. Further calls add channels.
  void subscribe(std::vector<std::string> channels, OnMessage on_message,
                 std::function<void(std::error_code)> done);
  void unsubscribe(std::vector<std::string> channels);
  void on_lost(OnLost handler);

  bool connected() const noexcept;
  std::size_t pending() const noexcept;
  /// Drops the connection; pending callbacks get operation_canceled.
  void close();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace tessenger::cluster

namespace std {
template <>
struct is_error_code_enum<tessenger::cluster::redis_errc> : true_type {};
}  // namespace std
