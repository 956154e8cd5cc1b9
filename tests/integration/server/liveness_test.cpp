// Liveness over real sockets, on a clock the test moves: silent sessions are
// pinged and closed, a second login probes the live session, and a dead
// peer never keeps its user out. No test here waits for real time to pass.

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include <tessenger/clock.hpp>

#include "test_server.hpp"
#include "wire_client.hpp"

namespace p = tessenger::protocol;
using tessenger::errc;
using tessenger::ManualClock;
using tessenger::ServerConfig;
using tessenger::testing::code_of;
using tessenger::testing::TestServer;
using tessenger::testing::WireClient;
using namespace std::chrono_literals;

namespace {

struct Clocked {
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
  TestServer server{[this] {
    ServerConfig config;
    config.clock = clock;
    return config;
  }()};
};

// Logs in with a Hello of `version`.
p::Message login(WireClient& client, const std::string& user, const std::string& password,
                 std::uint8_t version = 2) {
  client.send(p::Hello{1, 1, version, "liveness-test"});
  CHECK(client.expect<p::HelloOk>().version == version);
  client.send(p::Login{2, user, password, 9});
  return *client.next();
}

}  // namespace

TEST_CASE("a silent session is pinged, closed when it does not answer, and its user gets back in") {
  Clocked t;
  WireClient alice(t.server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(login(alice, "alice", "pa")));

  t.clock->advance(30s);
  alice.expect<p::Ping>();
  CHECK(t.server.server().stats().pings_sent == 1);
  // Nothing comes back: 15 s later the session is closed.
  t.clock->advance(15s);
  CHECK(alice.closed_within(5s));
  CHECK(t.server.server().stats().ping_timeouts == 1);

  WireClient again(t.server.port());
  CHECK(std::holds_alternative<p::LoginOk>(login(again, "alice", "pa")));
}

TEST_CASE("a session that answers its pings stays online") {
  Clocked t;
  WireClient alice(t.server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(login(alice, "alice", "pa")));
  for (int round = 0; round < 5; ++round) {
    t.clock->advance(30s);
    const auto ping = alice.expect<p::Ping>();
    alice.send(p::Pong{ping.request_id, ping.payload});
    // A Ping of our own is a barrier: the server has read the Pong.
    alice.send(p::Ping{100 + static_cast<p::RequestId>(round), 0});
    alice.expect<p::Pong>();
    t.clock->advance(15s);
  }
  alice.send(p::ActiveUsersQuery{7});
  CHECK(alice.expect<p::ActiveUsers>().request_id == 7);
  CHECK(t.server.server().stats().ping_timeouts == 0);
}

TEST_CASE("a second login probes the session; a dead one gives way within 2 s") {
  Clocked t;
  WireClient dead(t.server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(login(dead, "alice", "pa")));

  WireClient again(t.server.port());
  again.send(p::Hello{1, 1, 2, "liveness-test"});
  again.expect<p::HelloOk>();
  again.send(p::Login{2, "alice", "pa", 4321});
  // The probe reached the old session, which never answers.
  dead.expect<p::Ping>();
  CHECK_FALSE(again.next(100ms).has_value());
  t.clock->advance(2s);
  CHECK(again.expect<p::LoginOk>().username == "alice");
  CHECK(dead.closed_within(5s));
  CHECK(t.server.server().stats().login_probes == 1);

  again.send(p::ActiveUsersQuery{3});
  CHECK(again.expect<p::ActiveUsers>().users.empty());
}

TEST_CASE("a live session that answers the probe keeps its account and is told of the attempt") {
  Clocked t;
  WireClient alice(t.server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(login(alice, "alice", "pa")));
  WireClient intruder(t.server.port(), "127.0.0.1", 0, "127.0.0.7");
  intruder.send(p::Hello{1, 1, 2, "liveness-test"});
  intruder.expect<p::HelloOk>();
  intruder.send(p::Login{2, "alice", "pa", 1});
  const auto probe = alice.expect<p::Ping>();
  alice.send(p::Pong{probe.request_id, probe.payload});
  CHECK(code_of(*intruder.next()) == errc::already_logged_in);
  const auto told = alice.expect<p::LoginAttemptEvent>();
  CHECK(told.address == "127.0.0.7");
  // The refused connection may still log in to another account.
  intruder.send(p::Login{3, "bob", "pb", 1});
  CHECK(std::holds_alternative<p::LoginOk>(*intruder.next()));
}

TEST_CASE("version 1 sessions are never pinged and a second login is refused at once") {
  Clocked t;
  WireClient old(t.server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(login(old, "alice", "pa", 1)));
  t.clock->advance(10min);
  WireClient again(t.server.port());
  CHECK(code_of(login(again, "alice", "pa")) == errc::already_logged_in);
  CHECK(t.server.server().stats().pings_sent == 0);
  old.send(p::Ping{9, 9});
  CHECK(old.expect<p::Pong>().payload == 9);
}

TEST_CASE("the login timeout and blocks follow the server's clock") {
  auto clock = std::make_shared<ManualClock>();
  ServerConfig config;
  config.clock = clock;
  config.max_attempts = 2;
  config.block_duration = 10s;
  TestServer server(config);

  WireClient idle(server.port());
  idle.send(p::Hello{1, 1, 2, "liveness-test"});
  idle.expect<p::HelloOk>();

  WireClient guesser(server.port());
  guesser.send(p::Hello{1, 1, 2, "liveness-test"});
  guesser.expect<p::HelloOk>();
  guesser.send(p::Login{2, "alice", "x", 1});
  CHECK(code_of(*guesser.next()) == errc::invalid_password);
  guesser.send(p::Login{3, "alice", "y", 1});
  CHECK(code_of(*guesser.next()) == errc::account_blocked_now);

  clock->advance(9s);
  WireClient during(server.port());
  CHECK(code_of(login(during, "alice", "pa")) == errc::account_blocked);
  clock->advance(1s);
  WireClient after(server.port());
  CHECK(std::holds_alternative<p::LoginOk>(login(after, "alice", "pa")));

  // 60 s after its connect, the one that never logged in is closed.
  clock->advance(50s);
  const auto notice = idle.expect<p::ShutdownEvent>();
  CHECK(static_cast<errc>(notice.code) == errc::login_timeout);
  CHECK(idle.closed_within(5s));
  CHECK(server.server().stats().login_timeouts >= 1);
}

TEST_CASE("an unknown request is answered unsupported_request and the session goes on") {
  TestServer server;
  WireClient alice(server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(login(alice, "alice", "pa")));
  // Type 0x3e is in the request range and not defined by any version.
  const std::byte frame[] = {std::byte{0}, std::byte{0},    std::byte{0},    std::byte{4},
                             std::byte{2}, std::byte{0x3e}, std::byte{0},    std::byte{0},
                             std::byte{0}, std::byte{0},    std::byte{0x12}, std::byte{0x34}};
  alice.send_bytes(frame);
  const auto error = alice.expect<p::Error>();
  CHECK(static_cast<errc>(error.code) == errc::unsupported_request);
  CHECK(error.request_id == 0x1234);
  alice.send(p::Ping{5, 6});
  CHECK(alice.expect<p::Pong>().payload == 6);
  CHECK(server.server().stats().unsupported_requests == 1);
}

TEST_CASE("stats count what happened") {
  TestServer server;
  WireClient alice(server.port());
  WireClient bob(server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(login(alice, "alice", "pa")));
  REQUIRE(std::holds_alternative<p::LoginOk>(login(bob, "bob", "pb")));
  for (p::RequestId r = 10; r < 15; ++r) {
    alice.send(p::DirectSend{r, "bob", "hi"});
    alice.expect<p::DirectSent>();
    bob.expect<p::DirectEvent>();
  }
  WireClient wrong(server.port());
  CHECK(code_of(login(wrong, "carol", "nope")) == errc::invalid_password);
  const auto stats = server.server().stats();
  CHECK(stats.connections == 3);
  CHECK(stats.connections_accepted == 3);
  CHECK(stats.sessions_online == 2);
  CHECK(stats.logins == 2);
  CHECK(stats.failed_logins == 1);
  CHECK(stats.direct_messages == 5);
  CHECK(stats.bytes_received > 0);
  CHECK(stats.bytes_sent > 0);
  CHECK(stats.pending_write_bytes == 0);
}
