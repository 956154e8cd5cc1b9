#pragma once

// This server's membership of a cluster on Redis (docs/cluster.md): who is
// online on every node (claims decided atomically in Redis, a replica here
// kept current by subscription so that routing never waits), events for
// users on other nodes, this node's lease, and the sweep that removes the
// users of nodes whose lease ran out. One connection carries commands,
// another the subscriptions; both run on the server's strand.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include <tessenger/protocol.hpp>
#include <tessenger/server_types.hpp>

#include "cluster/redis_connection.hpp"
#include "core/hub.hpp"
#include "core/presence.hpp"

namespace tessenger::cluster {

struct NodeOptions {
  RedisEndpoint endpoint;
  std::string name;              ///< unique in the cluster
  std::string prefix = "tess:";  ///< of every key and channel
  std::chrono::milliseconds lease{3000};
  std::chrono::milliseconds refresh{1000};  ///< also how often the sweep runs
  RedisOptions redis;
  LogSink log;
};

/// What the node hands to the server, on the strand.
struct NodeHandlers {
  std::function<void(const core::StoredDelivery&)> stored;
  std::function<void(std::span<const std::string> users, const protocol::Message&)> event;
  /// Local sessions that lost their name to another node while this node
  /// was cut off from Redis: they must be closed.
  std::function<void(std::vector<core::SessionId>)> displaced;
  /// Connected again after losing Redis: what was published meanwhile must
  /// be read from the store.
  std::function<void()> reconnected;
  /// Each time the node has joined (at start and after every reconnect).
  std::function<void()> joined;
};

class Node final : public core::Presence, public core::Router {
 public:
  Node(asio::any_io_executor executor, NodeOptions options);
  ~Node() override;

  /// Before the event loop runs: does Redis answer at all? Blocking.
  static bool reachable(const RedisEndpoint& endpoint, std::chrono::milliseconds timeout,
                        std::string& problem);

  void set_handlers(NodeHandlers handlers) { handlers_ = std::move(handlers); }
  /// Connects, registers this node (as `name` unless the options name it)
  /// and loads who is online; keeps reconnecting (with backoff) whenever
  /// Redis is lost.
  void start(std::string name);
  /// Leaves the cluster: this node's users go offline everywhere.
  void stop();
  bool up() const noexcept { return up_; }
  /// The connection the cluster's store sends its commands on.
  RedisConnection& commands() noexcept { return commands_; }
  const std::string& prefix() const noexcept { return options_.prefix; }
  const std::string& name() const noexcept { return options_.name; }

  // Presence
  void claim(core::PresenceEntry entry, std::function<void(core::ClaimOutcome)> done) override;
  void release(std::string_view username, core::SessionId session) override;
  const core::PresenceEntry* find(std::string_view username) const override;
  std::span<const core::OnlineRecord> online() const override { return online_; }

  // Router
  void forward(const std::string& node, std::span<const std::string> users,
               const protocol::Message& message) override;

 private:
  struct Entry {
    core::PresenceEntry entry;
    std::uint64_t seq = 0;  // login order across the cluster
  };

  void connect();
  void lost(std::error_code reason);
  void retry_later();
  // A step of joining failed: Redis is treated as lost, and joining starts over.
  void failed(std::string_view what, std::error_code error, const RedisReply& reply);
  void connected();
  void synchronise(std::function<void()> then);
  void load_snapshot();
  void tick();
  void on_message(std::string_view channel, std::string_view payload);
  void on_presence(std::string_view payload);
  void on_node_message(std::string_view payload);
  void upsert(std::string user, Entry entry);
  void remove(std::string_view user, std::uint64_t seq);
  void eval(const std::string& script, std::vector<std::string> args, RedisConnection::Done done);
  template <typename... Args>
  void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args);

  asio::any_io_executor executor_;
  NodeOptions options_;
  NodeHandlers handlers_;
  RedisConnection commands_;
  RedisConnection subscriber_;
  asio::steady_timer tick_timer_;
  asio::steady_timer retry_timer_;
  std::chrono::milliseconds backoff_{100};
  std::string token_;  // this process's lease value
  bool stopping_ = false;
  bool up_ = false;
  bool connecting_ = false;
  bool ever_up_ = false;
  bool snapshot_pending_ = false;
  std::vector<std::string> buffered_;  // presence changes that came during a snapshot
  core::StringMap<Entry> entries_;
  std::vector<core::OnlineRecord> online_;  // in login order
  std::vector<std::uint64_t> online_seq_;
  core::StringMap<core::PresenceEntry> local_;  // this node's claims
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tessenger::cluster
