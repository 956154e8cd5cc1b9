#pragma once

// A RedisStore on its own event-loop thread, connected to a RedisServer of
// the test, with a fresh key prefix: the store is then called from the
// test's thread like any store. Needs tests/cli/process.cpp in the test.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "cluster/redis_connection.hpp"
#include "cluster/redis_store.hpp"
#include "redis_server.hpp"

namespace tessenger::testing {

/// A prefix no other test of the run uses.
inline std::string fresh_prefix() {
  static std::atomic<unsigned> count{0};
  return "t" + std::to_string(std::random_device{}()) + "-" + std::to_string(++count) + ":";
}

/// Runs `call` on the rig's loop and waits (with a deadline) for its value.
template <class T, class Call>
T on_loop(asio::io_context& io, Call call) {
  auto promise = std::make_shared<std::promise<T>>();
  auto result = promise->get_future();
  asio::post(io, [call = std::move(call), promise]() mutable {
    call([promise](T value) { promise->set_value(std::move(value)); });
  });
  REQUIRE(result.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  return result.get();
}

class RedisStoreRig {
 public:
  /// `prefix`: another rig's, for a second node of the same service.
  explicit RedisStoreRig(const RedisServer& redis, std::string node = "n1",
                         std::chrono::milliseconds retention_interval = std::chrono::minutes(1),
                         std::string prefix = fresh_prefix())
      : connection_(io_.get_executor(), endpoint(redis.url())), prefix_(std::move(prefix)) {
    connect();
    cluster::RedisStoreOptions options;
    options.prefix = prefix_;
    options.node = std::move(node);
    options.retention_interval = retention_interval;
    store_ = std::make_shared<cluster::RedisStore>(connection_, io_.get_executor(), options);
    const auto loaded = on_loop<std::error_code>(
        io_, [store = store_](auto done) { store->start(std::move(done)); });
    REQUIRE_MESSAGE(!loaded, loaded.message());
  }
  ~RedisStoreRig() {
    store_.reset();
    on_loop<bool>(io_, [this](auto done) {
      connection_.close();
      done(true);
    });
    work_.reset();
    thread_.join();
  }
  RedisStoreRig(const RedisStoreRig&) = delete;
  RedisStoreRig& operator=(const RedisStoreRig&) = delete;

  std::shared_ptr<cluster::RedisStore> store() const { return store_; }
  const std::string& prefix() const { return prefix_; }
  asio::io_context& io() { return io_; }
  cluster::RedisConnection& connection() { return connection_; }

  /// Connects (again, after Redis was lost): the error, if any.
  std::error_code connect() {
    return on_loop<std::error_code>(io_, [this](auto done) { connection_.connect(done); });
  }

  /// One command on the store's connection, from the test's thread.
  cluster::RedisReply command(std::vector<std::string> args) {
    return on_loop<cluster::RedisReply>(io_, [this, args = std::move(args)](auto done) mutable {
      connection_.command(std::move(args),
                          [done](std::error_code, cluster::RedisReply reply) { done(reply); });
    });
  }

  static cluster::RedisEndpoint endpoint(const std::string& url) {
    std::string problem;
    const auto endpoint = cluster::parse_redis_url(url, problem);
    REQUIRE_MESSAGE(endpoint, problem);
    return *endpoint;
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread thread_{[this] { io_.run(); }};
  cluster::RedisConnection connection_;
  std::string prefix_;
  std::shared_ptr<cluster::RedisStore> store_;
};

}  // namespace tessenger::testing
