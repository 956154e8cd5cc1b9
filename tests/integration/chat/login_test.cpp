// SPEC §3 through the library Client against a real Server: login outcomes,
// failure counting, blocks and their expiry, duplicate logins, timeouts.
// Time is a ManualClock where it matters: no test here waits for it to pass.

#include <doctest/doctest.h>

#include <memory>

#include <tessenger/clock.hpp>

#include "chat_client.hpp"
#include "test_server.hpp"

using namespace tessenger;
using namespace tessenger::testing;
using namespace std::chrono_literals;

namespace {

ServerConfig config_with(std::uint32_t max_attempts, std::chrono::seconds block) {
  ServerConfig config;
  config.max_attempts = max_attempts;
  config.block_duration = block;
  return config;
}

}  // namespace

TEST_CASE("connect exchanges Hello and requests before login are refused") {
  TestServer server;
  ChatClient alice(server.port());
  REQUIRE(alice.hello().ok());
  CHECK(alice.hello()->version == protocol::version);
  CHECK(alice.hello()->max_frame_size > 0);
  CHECK(alice.send("bob", "hi").error() == errc::not_logged_in);
  CHECK(alice.active_users().error() == errc::not_logged_in);
  CHECK(alice.create_group("g", {"bob"}).error() == errc::not_logged_in);
  CHECK(alice.ping(7)->payload == 7);
  alice.must_login("alice", "pa");
}

TEST_CASE("unknown user and wrong password keep the connection open") {
  TestServer server;
  ChatClient alice(server.port());
  const auto unknown = alice.login("zed", "pa");
  CHECK(unknown.error() == errc::invalid_username);
  const auto wrong = alice.login("alice", "nope");
  CHECK(wrong.error() == errc::invalid_password);
  const auto ok = alice.login("alice", "pa");
  REQUIRE(ok.ok());
  CHECK(ok->username == "alice");
  CHECK(alice.quiet());
}

TEST_CASE("usernames and passwords are case-sensitive") {
  TestServer server;
  ChatClient client(server.port());
  CHECK(client.login("Alice", "pa").error() == errc::invalid_username);
  CHECK(client.login("alice", "PA").error() == errc::invalid_password);
  CHECK(client.login("alice", "pa").ok());
}

TEST_CASE("the failure that reaches max_attempts blocks the account and closes") {
  TestServer server(config_with(3, std::chrono::seconds(60)));
  {
    // Failures count per username across connections.
    ChatClient first(server.port());
    CHECK(first.login("alice", "x1").error() == errc::invalid_password);
  }
  ChatClient second(server.port());
  CHECK(second.login("alice", "x2").error() == errc::invalid_password);
  CHECK(second.login("alice", "x3").error() == errc::account_blocked_now);
  const auto closed = second.next<Disconnected>();
  CHECK(closed.code == errc::peer_closed);

  // Blocked even with the right password, and that closes the connection too.
  ChatClient third(server.port());
  CHECK(third.login("alice", "pa").error() == errc::account_blocked);
  CHECK(third.next<Disconnected>().code == errc::peer_closed);

  // Other accounts are not affected.
  ChatClient bob(server.port());
  CHECK(bob.login("bob", "pb").ok());
}

TEST_CASE("a successful login resets the failure count") {
  TestServer server(config_with(3, std::chrono::seconds(60)));
  {
    ChatClient client(server.port());
    CHECK(client.login("alice", "x").error() == errc::invalid_password);
    CHECK(client.login("alice", "x").error() == errc::invalid_password);
    client.must_login("alice", "pa");
    REQUIRE(client.logout().ok());
  }
  ChatClient client(server.port());
  CHECK(client.login("alice", "x").error() == errc::invalid_password);
  CHECK(client.login("alice", "x").error() == errc::invalid_password);
  CHECK(client.login("alice", "pa").ok());
}

TEST_CASE("max_attempts of one blocks at the first failure") {
  TestServer server(config_with(1, std::chrono::seconds(60)));
  ChatClient client(server.port());
  CHECK(client.login("alice", "x").error() == errc::account_blocked_now);
}

TEST_CASE("a block lasts exactly block_duration on the server's clock") {
  auto clock = std::make_shared<ManualClock>();
  auto config = config_with(2, 10s);
  config.clock = clock;
  TestServer server(config);
  ChatClient first(server.port());
  CHECK(first.login("alice", "x").error() == errc::invalid_password);
  CHECK(first.login("alice", "x").error() == errc::account_blocked_now);
  clock->advance(10s - 1ms);
  {
    ChatClient during(server.port());
    CHECK(during.login("alice", "pa").error() == errc::account_blocked);
  }
  clock->advance(1ms);
  ChatClient after(server.port());
  CHECK(after.login("alice", "pa").ok());
}

TEST_CASE("a second login to an online account is refused; the first is undisturbed") {
  TestServer server;
  ChatClient first(server.port());
  first.must_login("alice", "pa");
  ChatClient second(server.port());
  CHECK(second.login("alice", "pa").error() == errc::already_logged_in);
  // The session answered the server's probe, so it stays; it is told of the attempt.
  CHECK(first.next<protocol::LoginAttemptEvent>().address == "127.0.0.1");
  // The refused connection may log in to another account.
  second.must_login("bob", "pb");
  const auto sent = first.send("bob", "still here");
  REQUIRE(sent.ok());
  const auto message = second.next<protocol::DirectEvent>();
  CHECK(message.from == "alice");
  CHECK(message.text == "still here");
  CHECK(first.quiet());
}

TEST_CASE("a connection that does not log in within login_timeout_seconds is closed") {
  auto clock = std::make_shared<ManualClock>();
  ServerConfig config;
  config.limits.login_timeout_seconds = 60;
  config.clock = clock;
  TestServer server(config);
  ChatClient idle(server.port());
  clock->advance(60s - 1ms);
  CHECK(idle.ping(1)->payload == 1);
  clock->advance(1ms);
  const auto closed = idle.next<Disconnected>();
  CHECK(closed.code == errc::login_timeout);
  CHECK(server.server().stats().login_timeouts == 1);
  CHECK(idle.ping().error() == std::errc::not_connected);
}

TEST_CASE("logout ends the session and frees the account") {
  TestServer server;
  ChatClient alice(server.port());
  alice.must_login("alice", "pa");
  const auto bye = alice.logout();
  REQUIRE(bye.ok());
  CHECK(bye->username == "alice");
  CHECK(alice.ping().error() == std::errc::not_connected);
  CHECK(alice.queued() == 0);  // a logout is not reported as a disconnection
  ChatClient again(server.port());
  CHECK(again.login("alice", "pa").ok());
}
