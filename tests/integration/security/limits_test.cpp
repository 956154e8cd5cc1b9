// The abuse limits over real sockets: connections per address and in total,
// failed logins per address across accounts, and a flooding client. Other
// hosts are played by other loopback addresses (127.0.0.0/8). What the server
// did is read from Server::stats(); its log is read once, to see that the
// operator is told the address.

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include <tessenger/clock.hpp>

#include "eventually.hpp"
#include "log_capture.hpp"
#include "test_server.hpp"
#include "wire_client.hpp"

namespace p = tessenger::protocol;
using tessenger::errc;
using tessenger::testing::Account;
using tessenger::testing::code_of;
using tessenger::testing::eventually;
using tessenger::testing::LogCapture;
using tessenger::testing::TestServer;
using tessenger::testing::WireClient;
using namespace std::chrono_literals;

namespace {

// True if the server admits a new connection from `source`: it answers the
// Hello instead of refusing the connection.
bool admitted(std::uint16_t port, const std::string& source) {
  WireClient client(port, "127.0.0.1", 0, source);
  try {
    client.send(p::Hello{1, 1, 1, "probe"});
  } catch (const std::runtime_error&) {
    return false;
  }
  const auto reply = client.next();
  return reply && std::holds_alternative<p::HelloOk>(*reply);
}

void expect_refused(WireClient& client) {
  const auto notice = client.expect<p::ShutdownEvent>();
  CHECK(static_cast<errc>(notice.code) == errc::limit_reached);
  CHECK(client.closed_within(5s));
}

void hello(WireClient& client) {
  client.send(p::Hello{1, 1, 1, "test"});
  client.expect<p::HelloOk>();
}

std::vector<Account> numbered_accounts(int count) {
  std::vector<Account> accounts;
  for (int i = 0; i < count; ++i)
    accounts.push_back({"user" + std::to_string(i), "pw" + std::to_string(i)});
  return accounts;
}

}  // namespace

TEST_CASE("connections over the per-address limit are refused; other addresses get in") {
  LogCapture log;
  tessenger::ServerConfig config;
  config.limits.max_connections_per_ip = 3;
  config.log = log.sink();
  TestServer server(config);

  auto first = std::make_unique<WireClient>(server.port());
  WireClient second(server.port());
  WireClient third(server.port());
  for (auto* client : {first.get(), &second, &third})
    hello(*client);

  WireClient fourth(server.port());
  expect_refused(fourth);
  CHECK(server.server().stats().connections_refused == 1);
  // The operator is told, with the address as the socket gave it (logged
  // before the notice is sent).
  CHECK(log.count("127.0.0.1: connection refused: 3 connections from this address") == 1);

  WireClient elsewhere(server.port(), "127.0.0.1", 0, "127.0.0.2");
  CHECK(std::holds_alternative<p::LoginOk>(elsewhere.login("alice", "pa")));
  CHECK(server.server().stats().connections == 4);

  // A place comes free once the server has seen a connection close.
  first.reset();
  CHECK(eventually([&] { return server.server().stats().connections == 3; }));
  CHECK(admitted(server.port(), "127.0.0.1"));
  CHECK(server.server().stats().connections_refused == 1);
}

TEST_CASE("connections over the total limit are refused, whatever their address") {
  tessenger::ServerConfig config;
  config.limits.max_connections = 3;
  TestServer server(config);

  WireClient a(server.port(), "127.0.0.1", 0, "127.0.0.11");
  WireClient b(server.port(), "127.0.0.1", 0, "127.0.0.12");
  WireClient c(server.port(), "127.0.0.1", 0, "127.0.0.13");
  REQUIRE(std::holds_alternative<p::LoginOk>(a.login("alice", "pa")));
  REQUIRE(std::holds_alternative<p::LoginOk>(b.login("bob", "pb")));
  hello(c);
  WireClient d(server.port(), "127.0.0.1", 0, "127.0.0.14");
  expect_refused(d);
  const auto stats = server.server().stats();
  CHECK(stats.connections_refused == 1);
  CHECK(stats.connections == 3);

  // The admitted ones are unaffected.
  a.send(p::DirectSend{5, "bob", "still fine"});
  CHECK(a.expect<p::DirectSent>().request_id == 5);
  CHECK(b.expect<p::DirectEvent>().text == "still fine");
}

TEST_CASE("many accounts attacked from one address trip the per-address limit") {
  tessenger::ServerConfig config;
  config.max_attempts = 3;
  config.limits.max_failed_logins_per_ip = 8;
  config.limits.failed_login_window_seconds = 60;
  TestServer server(config, numbered_accounts(10));

  // Two guesses on each of four accounts: below every account's own block.
  WireClient attacker(server.port(), "127.0.0.1", 0, "127.0.0.9");
  attacker.send(p::Hello{1, 1, 1, "guesser"});
  attacker.expect<p::HelloOk>();
  p::RequestId id = 2;
  for (int user = 0; user < 4; ++user) {
    for (const char* guess : {"123456", "password"}) {
      attacker.send(p::Login{id++, "user" + std::to_string(user), guess, 9});
      CHECK(code_of(*attacker.next()) == errc::invalid_password);
    }
  }
  CHECK(server.server().stats().failed_logins == 8);

  // Now the address may not log in at all, even with a right password.
  attacker.send(p::Login{id++, "user5", "pw5", 9});
  CHECK(code_of(*attacker.next()) == errc::too_many_failed_logins);
  CHECK(attacker.closed_within(5s));
  WireClient again(server.port(), "127.0.0.1", 0, "127.0.0.9");
  CHECK(code_of(again.login("user5", "pw5")) == errc::too_many_failed_logins);
  CHECK(again.closed_within(5s));

  // The accounts were not blocked, and other addresses are not affected.
  WireClient owner(server.port(), "127.0.0.1", 0, "127.0.0.10");
  CHECK(std::holds_alternative<p::LoginOk>(owner.login("user0", "pw0")));
  CHECK(server.server().stats().blocks == 0);
}

TEST_CASE("a flooding client is refused, then disconnected; the others are served") {
  // Default limits: 100 requests/s, bursts of 200. The clock stands still, so
  // the bucket never refills and the counts are exact.
  tessenger::ServerConfig config;
  config.clock = std::make_shared<tessenger::ManualClock>();
  TestServer server(config);
  WireClient alice(server.port(), "127.0.0.1", 0, "127.0.0.21");
  WireClient bob(server.port(), "127.0.0.1", 0, "127.0.0.22");
  WireClient carol(server.port(), "127.0.0.1", 0, "127.0.0.23");
  REQUIRE(std::holds_alternative<p::LoginOk>(alice.login("alice", "pa")));
  REQUIRE(std::holds_alternative<p::LoginOk>(bob.login("bob", "pb")));
  REQUIRE(std::holds_alternative<p::LoginOk>(carol.login("carol", "pc")));

  std::vector<std::byte> flood;
  for (p::RequestId id = 1; id <= 1000; ++id)
    p::encode(p::DirectSend{id, "bob", "spam " + std::to_string(id)}, flood);
  alice.send_bytes(flood);

  std::vector<p::RequestId> sent;
  int refused = 0;
  std::optional<p::ShutdownEvent> notice;
  while (auto message = alice.next()) {
    if (const auto* ok = std::get_if<p::DirectSent>(&*message)) {
      sent.push_back(ok->request_id);
    } else if (const auto* error = std::get_if<p::Error>(&*message)) {
      CHECK(static_cast<errc>(error->code) == errc::rate_limited);
      ++refused;
    } else {
      notice = std::get<p::ShutdownEvent>(*message);
    }
  }
  CHECK(alice.closed_within(1s));
  REQUIRE(notice.has_value());
  CHECK(static_cast<errc>(notice->code) == errc::rate_limited);
  CHECK(sent.size() == 198);  // the burst, less the Hello and the Login
  CHECK(refused == 99);       // the 100th refusal is the disconnect
  CHECK(server.server().stats().rate_limited == 100);

  // bob got exactly what was accepted, and nothing after.
  for (const auto id : sent)
    CHECK(bob.expect<p::DirectEvent>().text == "spam " + std::to_string(id));
  bob.send(p::Ping{7, 7});
  CHECK(bob.expect<p::Pong>().payload == 7);

  carol.send(p::DirectSend{8, "bob", "hello bob"});
  CHECK(carol.expect<p::DirectSent>().request_id == 8);
  CHECK(bob.expect<p::DirectEvent>().text == "hello bob");
  carol.send(p::ActiveUsersQuery{9});
  const auto users = carol.expect<p::ActiveUsers>();
  REQUIRE(users.users.size() == 1);
  CHECK(users.users[0].username == "bob");
}
