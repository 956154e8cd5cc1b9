#pragma once

// RedisStore: the tessenger::Store of cluster mode, kept entirely in Redis
// so that every node sees the same groups, blocks and messages. Each
// operation that checks and changes state is one Lua script (atomic, one
// round trip); the append scripts also tell the other nodes with a
// recipient online (ClusterMessage on channel <prefix>node:<node>).
// The key layout is described at the top of redis_store.cpp and in
// docs/cluster.md.

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

#include <tessenger/store.hpp>

#include "cluster/redis_connection.hpp"
#include "cluster/wire.hpp"

namespace tessenger::cluster {

struct RedisStoreOptions {
  /// Every key starts with it, so one Redis can hold several services.
  std::string prefix = "tess:";
  /// This node's name: recipients online here are not published to.
  std::string node;
  /// How often messages older than StorePolicy::history_days are removed.
  std::chrono::milliseconds retention_interval{std::chrono::minutes(1)};
};

class RedisStore final : public Store {
 public:
  /// `connection` runs on `executor` and must outlive the store's pending
  /// operations (closing it fails them). Members may be called from any
  /// thread: each is carried onto `executor` (at once when already there).
  RedisStore(RedisConnection& connection, asio::any_io_executor executor,
             RedisStoreOptions options);
  ~RedisStore() override;
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  /// Loads the scripts into Redis (SCRIPT LOAD); `done` runs on the
  /// executor. Operations before it, or after Redis forgot them (a
  /// restart), send a script's source once (EVAL) instead.
  void start(std::function<void(std::error_code)> done);

  void configure(const StorePolicy& policy) override;
  void create_group(std::string group, std::string creator, std::vector<std::string> invited,
                    Done<StoreOutcome> done) override;
  void join_group(std::string group, std::string user, Done<StoreOutcome> done) override;
  void leave_group(std::string group, std::string user, Done<GroupDeparture> done) override;
  void delete_group(std::string group, std::string user, Done<GroupRemoval> done) override;
  void append_group_message(std::string_view group, std::string_view from, std::string_view text,
                            protocol::Timestamp time, Done<StoredGroupMessage> done) override;
  void append_direct_message(std::string_view from, std::string_view to, std::string_view text,
                             protocol::Timestamp time, Done<StoredMessage> done) override;
  void missed(std::string user, MessageId after, bool from_cursor, std::size_t limit,
              Done<MissedPage> done) override;
  void delivered(std::vector<std::pair<std::string, MessageId>> cursors) override;
  void history(HistoryRequest request, Done<HistoryResult> done) override;
  void is_blocked(std::string user, std::string address, protocol::Timestamp now,
                  Done<bool> done) override;
  void login_failed(std::string user, std::string address, protocol::Timestamp now,
                    Done<FailedLogin> done) override;
  void login_succeeded(std::string user, std::string address) override;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace tessenger::cluster
