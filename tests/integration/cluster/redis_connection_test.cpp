// The Redis adapter against a real redis-server: replies of every kind,
// binary-safe arguments, pipelining in order, subscriptions, and what a
// stalled, killed or missing Redis does to the commands waiting on it.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include "cluster/redis_connection.hpp"
#include "redis_server.hpp"

using tessenger::cluster::parse_redis_url;
using tessenger::cluster::redis_errc;
using tessenger::cluster::RedisConnection;
using tessenger::cluster::RedisEndpoint;
using tessenger::cluster::RedisOptions;
using tessenger::cluster::RedisReply;
using tessenger::testing::RedisServer;
using namespace std::chrono_literals;

namespace {

template <class Condition>
bool run_until(asio::io_context& io, Condition condition, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    io.restart();
    io.run_one_for(10ms);
  }
  return true;
}

RedisEndpoint endpoint_of(const std::string& url) {
  std::string problem;
  const auto endpoint = parse_redis_url(url, problem);
  REQUIRE_MESSAGE(endpoint, problem);
  return *endpoint;
}

struct Result {
  std::optional<std::error_code> error;
  RedisReply reply;
};

// Connects, failing the test if it does not.
void connect(asio::io_context& io, RedisConnection& connection) {
  std::optional<std::error_code> outcome;
  connection.connect([&](std::error_code error) { outcome = error; });
  REQUIRE(run_until(io, [&] { return outcome.has_value(); }));
  REQUIRE_MESSAGE(!*outcome, outcome->message());
}

Result call(asio::io_context& io, RedisConnection& connection, std::vector<std::string> args) {
  Result result;
  connection.command(std::move(args), [&](std::error_code error, RedisReply reply) {
    result.error = error;
    result.reply = std::move(reply);
  });
  REQUIRE(run_until(io, [&] { return result.error.has_value(); }));
  return result;
}

}  // namespace

TEST_CASE("redis url: tcp, database, unix socket and what is refused") {
  std::string problem;
  auto endpoint = parse_redis_url("redis://10.0.0.1:6380/2", problem);
  REQUIRE(endpoint);
  CHECK(endpoint->host == "10.0.0.1");
  CHECK(endpoint->port == 6380);
  CHECK(endpoint->db == 2);
  endpoint = parse_redis_url("redis://localhost", problem);
  REQUIRE(endpoint);
  CHECK(endpoint->port == 6379);
  CHECK(endpoint->db == 0);
  endpoint = parse_redis_url("redis://[::1]:7000", problem);
  REQUIRE(endpoint);
  CHECK(endpoint->host == "::1");
  CHECK(endpoint->port == 7000);
  endpoint = parse_redis_url("unix:///run/redis.sock?db=3", problem);
  REQUIRE(endpoint);
  CHECK(endpoint->unix_path == "/run/redis.sock");
  CHECK(endpoint->db == 3);
  for (const char* bad : {"http://x:1", "redis://:6379", "redis://h:0", "redis://h:70000",
                          "redis://h:1/x", "unix://relative", "redis://[::1"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_redis_url(bad, problem));
    CHECK(problem.find("invalid Redis address") != std::string::npos);
  }
}

TEST_CASE("redis connection: replies of every kind, binary-safe, pipelined in order") {
  RedisServer redis;
  asio::io_context io;
  RedisConnection connection(io.get_executor(), endpoint_of(redis.url()));
  CHECK(call(io, connection, {"PING"}).error == redis_errc::not_connected);
  connect(io, connection);
  CHECK(connection.connected());

  const std::string binary("a\0b\r\nc", 6);
  auto status = call(io, connection, {"SET", "key", binary});
  CHECK(!*status.error);
  CHECK(status.reply.kind == RedisReply::Kind::status);
  auto value = call(io, connection, {"GET", "key"});
  CHECK(value.reply.kind == RedisReply::Kind::string);
  CHECK(value.reply.text == binary);
  CHECK(call(io, connection, {"GET", "missing"}).reply.is_nil());
  auto error = call(io, connection, {"INCR", "key"});
  CHECK(!*error.error);
  CHECK(error.reply.is_error());
  auto array = call(io, connection, {"MGET", "key", "missing"});
  REQUIRE(array.reply.kind == RedisReply::Kind::array);
  REQUIRE(array.reply.elements.size() == 2);
  CHECK(array.reply.elements[0].text == binary);
  CHECK(array.reply.elements[1].is_nil());

  // A thousand commands in one turn of the loop: replies in the order sent.
  std::vector<long long> seen;
  for (int i = 0; i < 1000; ++i) {
    connection.command({"INCR", "counter"}, [&](std::error_code e, RedisReply reply) {
      CHECK(!e);
      seen.push_back(reply.integer);
    });
  }
  CHECK(connection.pending() == 1000);
  REQUIRE(run_until(io, [&] { return seen.size() == 1000; }));
  for (std::size_t i = 0; i < seen.size(); ++i)
    CHECK(seen[i] == static_cast<long long>(i + 1));
  CHECK(connection.pending() == 0);
}

TEST_CASE("redis connection: tcp with a database selected, and a full queue refused at once") {
  RedisServer redis({.tcp = true});
  asio::io_context io;
  RedisOptions options;
  options.max_pending = 4;
  RedisConnection connection(io.get_executor(), endpoint_of(redis.tcp_url() + "/3"), options);
  connect(io, connection);
  CHECK(!*call(io, connection, {"SET", "in3", "yes"}).error);
  RedisConnection other(io.get_executor(), endpoint_of(redis.tcp_url() + "/0"));
  connect(io, other);
  CHECK(call(io, other, {"GET", "in3"}).reply.is_nil());

  std::vector<std::error_code> outcomes;
  for (int i = 0; i < 5; ++i)
    connection.command({"PING"}, [&](std::error_code e, RedisReply) { outcomes.push_back(e); });
  REQUIRE(run_until(io, [&] { return outcomes.size() == 5; }));
  CHECK(std::count(outcomes.begin(), outcomes.end(), std::error_code{}) == 4);
  CHECK(std::count(outcomes.begin(), outcomes.end(), make_error_code(redis_errc::queue_full)) == 1);
}

TEST_CASE("redis connection: subscriptions get what is published, in order") {
  RedisServer redis;
  asio::io_context io;
  RedisConnection subscriber(io.get_executor(), endpoint_of(redis.url()));
  RedisConnection publisher(io.get_executor(), endpoint_of(redis.url()));
  connect(io, subscriber);
  connect(io, publisher);
  std::vector<std::pair<std::string, std::string>> received;
  std::optional<std::error_code> subscribed;
  subscriber.subscribe(
      {"one", "two"},
      [&](std::string_view channel, std::string_view payload) {
        received.emplace_back(channel, payload);
      },
      [&](std::error_code e) { subscribed = e; });
  REQUIRE(run_until(io, [&] { return subscribed.has_value(); }));
  CHECK(!*subscribed);
  const std::string binary("x\0y", 3);
  CHECK(call(io, publisher, {"PUBLISH", "one", "first"}).reply.integer == 1);
  CHECK(call(io, publisher, {"PUBLISH", "two", binary}).reply.integer == 1);
  CHECK(call(io, publisher, {"PUBLISH", "three", "nobody"}).reply.integer == 0);
  REQUIRE(run_until(io, [&] { return received.size() == 2; }));
  CHECK(received[0] == std::pair<std::string, std::string>{"one", "first"});
  CHECK(received[1] == std::pair<std::string, std::string>{"two", binary});
}

TEST_CASE("redis connection: nobody listening fails the connect with an error") {
  tessenger::testing::TempDir dir("tessenger-redis-none");
  asio::io_context io;
  RedisConnection connection(io.get_executor(),
                             endpoint_of("unix://" + (dir / "no.sock").string()));
  std::optional<std::error_code> outcome;
  connection.connect([&](std::error_code error) { outcome = error; });
  REQUIRE(run_until(io, [&] { return outcome.has_value(); }));
  CHECK(*outcome);
  CHECK_FALSE(connection.connected());
}

TEST_CASE("redis connection: a stalled Redis fails waiting commands in time, then it reconnects") {
  RedisServer redis;
  asio::io_context io;
  RedisOptions options;
  options.command_timeout = 300ms;
  // Longer than the check below: the first command must not wait out the handshake's deadline.
  options.connect_timeout = 3s;
  RedisConnection connection(io.get_executor(), endpoint_of(redis.url()), options);
  connect(io, connection);
  std::optional<std::error_code> lost;
  connection.on_lost([&](std::error_code e) { lost = e; });

  redis.pause();
  const auto sent = std::chrono::steady_clock::now();
  std::vector<std::error_code> outcomes;
  for (int i = 0; i < 3; ++i)
    connection.command({"PING"}, [&](std::error_code e, RedisReply) { outcomes.push_back(e); });
  REQUIRE(run_until(io, [&] { return outcomes.size() == 3 && lost.has_value(); }));
  CHECK(std::chrono::steady_clock::now() - sent < 1s);
  for (const auto& e : outcomes)
    CHECK(e == redis_errc::timed_out);
  CHECK(*lost == redis_errc::timed_out);
  CHECK_FALSE(connection.connected());
  CHECK(call(io, connection, {"PING"}).error == redis_errc::not_connected);

  redis.resume();
  connect(io, connection);
  CHECK(call(io, connection, {"PING"}).reply.text == "PONG");
}

TEST_CASE("redis connection: a killed Redis is reported lost, and a restarted one reconnects") {
  RedisServer redis;
  asio::io_context io;
  RedisConnection connection(io.get_executor(), endpoint_of(redis.url()));
  connect(io, connection);
  CHECK(!*call(io, connection, {"SET", "kept", "1"}).error);
  std::optional<std::error_code> lost;
  connection.on_lost([&](std::error_code e) { lost = e; });
  redis.kill();
  REQUIRE(run_until(io, [&] { return lost.has_value(); }));
  CHECK(*lost == redis_errc::connection_lost);
  redis.start();
  connect(io, connection);
  // appendfsync always: what Redis acknowledged survived its kill -9.
  CHECK(call(io, connection, {"GET", "kept"}).reply.text == "1");
}

TEST_CASE("redis connection: closing cancels what is pending, and nothing runs later") {
  RedisServer redis;
  asio::io_context io;
  std::optional<std::error_code> outcome;
  {
    RedisConnection connection(io.get_executor(), endpoint_of(redis.url()));
    connect(io, connection);
    redis.pause();
    connection.command({"PING"}, [&](std::error_code e, RedisReply) { outcome = e; });
  }
  CHECK(outcome == std::make_error_code(std::errc::operation_canceled));
  redis.resume();
  io.restart();
  io.poll();
}
