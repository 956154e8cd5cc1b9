// The Server over real sockets on loopback: framing over TCP, misbehaving
// connections dropped alone, slow readers bounded, timeouts and shutdown.

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include <tessenger/clock.hpp>

#include "test_server.hpp"
#include "wire_client.hpp"

namespace p = tessenger::protocol;
using tessenger::errc;
using tessenger::testing::code_of;
using tessenger::testing::TestServer;
using tessenger::testing::WireClient;
using namespace std::chrono_literals;

namespace {

// alice sends bob a message and both sides see it: the server is healthy.
void check_chat_works(WireClient& alice, WireClient& bob, const std::string& text) {
  alice.send(p::DirectSend{900, "bob", text});
  CHECK(alice.expect<p::DirectSent>().request_id == 900);
  const auto event = bob.expect<p::DirectEvent>();
  CHECK(event.from == "alice");
  CHECK(event.text == text);
}

}  // namespace

TEST_CASE("a client that sends garbage is dropped alone") {
  TestServer server;
  WireClient alice(server.port());
  WireClient bob(server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(alice.login("alice", "pa")));
  REQUIRE(std::holds_alternative<p::LoginOk>(bob.login("bob", "pb")));

  // Printable text is the original client's login (docs/legacy.md); binary
  // garbage is a native frame of a version nobody speaks.
  WireClient vandal(server.port());
  const std::string garbage = "\x7fGET / HTTP/1.1\r\nHost: x\r\n\r\n";
  vandal.send_bytes(std::as_bytes(std::span(garbage)));
  CHECK(code_of(*vandal.next()) == errc::unsupported_version);
  CHECK(vandal.closed_within(5s));

  check_chat_works(alice, bob, "still here");
}

TEST_CASE("a frame declaring 4 GiB is refused on its header") {
  TestServer server;
  WireClient alice(server.port());
  WireClient bob(server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(alice.login("alice", "pa")));
  REQUIRE(std::holds_alternative<p::LoginOk>(bob.login("bob", "pb")));

  WireClient greedy(server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(greedy.login("carol", "pc")));
  const std::byte header[] = {std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{0xff},
                              std::byte{1},    std::byte{0x03}, std::byte{0},    std::byte{0}};
  greedy.send_bytes(header);
  CHECK(code_of(*greedy.next()) == errc::frame_too_large);
  CHECK(greedy.closed_within(5s));

  // carol's session ended with the connection.
  alice.send(p::ActiveUsersQuery{5});
  const auto users = alice.expect<p::ActiveUsers>();
  REQUIRE(users.users.size() == 1);
  CHECK(users.users[0].username == "bob");
  check_chat_works(alice, bob, "unaffected");
}

TEST_CASE("a client that disconnects mid-frame is logged out; others go on") {
  TestServer server;
  WireClient alice(server.port());
  WireClient bob(server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(alice.login("alice", "pa")));
  REQUIRE(std::holds_alternative<p::LoginOk>(bob.login("bob", "pb")));
  {
    WireClient quitter(server.port());
    REQUIRE(std::holds_alternative<p::LoginOk>(quitter.login("carol", "pc")));
    const auto frame = p::encode(p::DirectSend{3, "alice", "never finished"});
    quitter.send_bytes(std::span(frame).first(frame.size() / 2));
  }
  // The logout is visible once the server has seen the close; poll the
  // user list with a deadline instead of sleeping.
  bool gone = false;
  for (int attempt = 0; attempt < 100 && !gone; ++attempt) {
    alice.send(p::ActiveUsersQuery{static_cast<p::RequestId>(attempt)});
    gone = alice.expect<p::ActiveUsers>().users.size() == 1;
  }
  CHECK(gone);
  check_chat_works(alice, bob, "after the quitter");
}

TEST_CASE("frames split at every byte and coalesced in one write are both understood") {
  TestServer server;
  WireClient alice(server.port());
  WireClient bob(server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(alice.login("alice", "pa")));
  REQUIRE(std::holds_alternative<p::LoginOk>(bob.login("bob", "pb")));

  std::vector<std::byte> burst;
  for (p::RequestId id = 10; id < 20; ++id) {
    p::encode(p::DirectSend{id, "bob", "coalesced " + std::to_string(id)}, burst);
  }
  alice.send_bytes(burst);
  for (p::RequestId id = 10; id < 20; ++id) {
    CHECK(alice.expect<p::DirectSent>().request_id == id);
    CHECK(bob.expect<p::DirectEvent>().text == "coalesced " + std::to_string(id));
  }

  const auto frame = p::encode(p::DirectSend{30, "bob", "one byte at a time"});
  for (const auto byte : frame)
    alice.send_bytes(std::span(&byte, 1));
  CHECK(alice.expect<p::DirectSent>().request_id == 30);
  CHECK(bob.expect<p::DirectEvent>().text == "one byte at a time");
}

TEST_CASE("a client that never reads is disconnected; memory stays bounded") {
  tessenger::ServerConfig config;
  config.limits.max_pending_write_bytes = 256 * 1024;
  config.limits.message_rate = 0;  // the sender here floods on purpose
  TestServer server(config);
  WireClient alice(server.port());
  WireClient bob(server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(alice.login("alice", "pa")));
  REQUIRE(std::holds_alternative<p::LoginOk>(bob.login("bob", "pb")));
  WireClient sleeper(server.port(), "127.0.0.1", 4096);
  REQUIRE(std::holds_alternative<p::LoginOk>(sleeper.login("carol", "pc")));

  // Far more than the kernel buffers plus the queue bound can hold.
  const std::string text(4000, 'x');
  bool dropped = false;
  for (p::RequestId id = 1; id <= 20000 && !dropped; ++id) {
    alice.send(p::DirectSend{id, "carol", text});
    auto reply = alice.next();
    REQUIRE(reply.has_value());
    if (std::holds_alternative<p::Error>(*reply)) {
      CHECK(code_of(*reply) == errc::user_not_online);
      dropped = true;
    }
  }
  CHECK(dropped);
  check_chat_works(alice, bob, "the sender was not hurt");
  CHECK(sleeper.closed_within(5s));
}

TEST_CASE("a connection that does not log in within the limit is closed") {
  auto clock = std::make_shared<tessenger::ManualClock>();
  tessenger::ServerConfig config;
  config.clock = clock;
  TestServer server(config);
  WireClient idle(server.port());
  WireClient hello_only(server.port());
  hello_only.send(p::Hello{1, 1, 1, "slow"});
  hello_only.expect<p::HelloOk>();
  // Accepted after the other two: once alice is in, both are counted.
  WireClient alice(server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(alice.login("alice", "pa")));
  clock->advance(std::chrono::seconds(config.limits.login_timeout_seconds));

  const auto notice = hello_only.expect<p::ShutdownEvent>(5s);
  CHECK(static_cast<errc>(notice.code) == errc::login_timeout);
  CHECK(hello_only.closed_within(5s));
  // A connection that said nothing is told in the original client's text
  // (docs/legacy.md): a native client sends its Hello at once.
  char text[128] = {};
  const auto n = ::recv(idle.fd(), text, sizeof text - 1, 0);
  CHECK(std::string(text, n > 0 ? static_cast<std::size_t>(n) : 0) ==
        "No login within the time limit. Closing connection.");
  CHECK(idle.closed_within(5s));
  alice.send(p::Ping{7, 99});
  CHECK(alice.expect<p::Pong>().payload == 99);
  // No timer armed before the jump of the clock outlives it: the server's
  // thread ends once its connections have closed (within the 2 s linger).
  auto stopped = std::async(std::launch::async, [&] { server.stop(); });
  CHECK(stopped.wait_for(10s) == std::future_status::ready);
}

TEST_CASE("stopping the server tells every client and flushes the logs") {
  TestServer server;
  WireClient alice(server.port());
  WireClient bob(server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(alice.login("alice", "pa")));
  REQUIRE(std::holds_alternative<p::LoginOk>(bob.login("bob", "pb")));
  check_chat_works(alice, bob, "last words");
  server.stop();
  for (auto* client : {&alice, &bob}) {
    const auto notice = client->expect<p::ShutdownEvent>();
    CHECK(static_cast<errc>(notice.code) == errc::server_shutdown);
    CHECK(client->closed_within(5s));
  }
  const auto messages = tessenger::testing::lines_of(server.data_dir() / "messagelog.txt");
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].starts_with("1; "));
  CHECK(messages[0].ends_with("; alice; last words"));
  CHECK(tessenger::testing::lines_of(server.data_dir() / "userlog.txt").empty());
}

TEST_CASE("the server listens on IPv6 too") {
  tessenger::ServerConfig config;
  config.bind_address = "::1";
  TestServer server(config);
  WireClient alice(server.port(), "::1");
  REQUIRE(std::holds_alternative<p::LoginOk>(alice.login("alice", "pa")));
  WireClient bob(server.port(), "::1");
  REQUIRE(std::holds_alternative<p::LoginOk>(bob.login("bob", "pb")));
  alice.send(p::ActiveUsersQuery{3});
  const auto users = alice.expect<p::ActiveUsers>();
  REQUIRE(users.users.size() == 1);
  CHECK(users.users[0].address == "::1");
}

TEST_CASE("start reports a port in use, a bad address and missing credentials") {
  TestServer first;
  tessenger::testing::TempDir dir;
  dir.write("credentials.txt", "alice pa\n");
  tessenger::ServerConfig config;
  config.credentials_file = dir / "credentials.txt";
  config.data_dir = dir.path();
  config.port = first.port();
  std::error_code ec;
  std::string what;
  {
    tessenger::Server server(config);
    server.start(ec, &what);
    CHECK(ec == std::errc::address_in_use);
    CHECK(what.find("cannot listen on 127.0.0.1:") != std::string::npos);
  }
  config.port = 0;
  config.bind_address = "not-an-address";
  {
    tessenger::Server server(config);
    server.start(ec, &what);
    CHECK(ec);
    CHECK(what.find("invalid address 'not-an-address'") != std::string::npos);
  }
  config.bind_address = "127.0.0.1";
  config.credentials_file = dir / "missing.txt";
  {
    tessenger::Server server(config);
    server.start(ec, &what);
    CHECK(ec);
    CHECK(what.find("missing.txt") != std::string::npos);
  }
}
