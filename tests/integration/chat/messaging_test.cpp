// SPEC §4 /msgto and /activeuser through the library Client.

#include <doctest/doctest.h>

#include <chrono>

#include "chat_client.hpp"
#include "test_server.hpp"

using namespace tessenger;
using namespace tessenger::testing;

namespace {

protocol::Timestamp now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE("a direct message reaches an online user with the sender's timestamp") {
  TestServer server;
  ChatClient alice(server.port());
  ChatClient bob(server.port());
  alice.must_login("alice", "pa");
  bob.must_login("bob", "pb");
  const auto before = now_us();
  const auto sent = alice.send("bob", "hello  there, bob");
  const auto after = now_us();
  REQUIRE(sent.ok());
  CHECK(sent->timestamp >= before - 1'000'000);
  CHECK(sent->timestamp <= after + 1'000'000);
  const auto message = bob.next<protocol::DirectEvent>();
  CHECK(message.from == "alice");
  CHECK(message.text == "hello  there, bob");
  CHECK(message.timestamp == sent->timestamp);
  CHECK(alice.quiet());
  CHECK(bob.quiet());
}

TEST_CASE("message text is trimmed, UTF-8 is kept, bad text is refused") {
  TestServer server;
  ChatClient alice(server.port());
  ChatClient bob(server.port());
  alice.must_login("alice", "pa");
  bob.must_login("bob", "pb");
  REQUIRE(alice.send("bob", "  grüße 👋 \t").ok());
  CHECK(bob.next<protocol::DirectEvent>().text == "grüße 👋");

  CHECK(alice.send("bob", "   ").error() == errc::invalid_text);
  CHECK(alice.send("bob", "two\nlines").error() == errc::invalid_text);
  CHECK(alice.send("bob", "bell\a").error() == errc::invalid_text);
  // Caught by the client before sending: the connection survives.
  CHECK(alice.send("bob", std::string(4097, 'x')).error() == errc::invalid_text);
  CHECK(alice.send("bob", "bad \xff utf8").error() == errc::invalid_text);
  REQUIRE(alice.send("bob", std::string(4096, 'y')).ok());
  CHECK(bob.next<protocol::DirectEvent>().text == std::string(4096, 'y'));
  CHECK(bob.quiet());
}

TEST_CASE("messages to unknown or own accounts are refused; to offline ones, stored") {
  TestServer server;
  ChatClient alice(server.port());
  alice.must_login("alice", "pa");
  const auto offline = alice.send("bob", "hi");
  REQUIRE(offline.ok());
  CHECK(offline->stored);
  CHECK(offline->id != 0);
  const auto unknown = alice.send("zed", "hi");
  CHECK(unknown.error() == errc::user_not_online);
  CHECK(unknown.detail() == "zed");
  CHECK(alice.send("alice", "hi").error() == errc::cannot_message_self);
  const auto long_name = alice.send(std::string(40, 'z'), "hi");
  CHECK(long_name.error() == errc::user_not_online);
  CHECK(alice.ping(1).ok());
}

TEST_CASE("messages from one sender arrive in order") {
  TestServer server;
  ChatClient alice(server.port());
  ChatClient bob(server.port());
  alice.must_login("alice", "pa");
  bob.must_login("bob", "pb");
  // Pipelined: all requests are in flight before the first reply.
  auto results = std::make_shared<std::vector<std::promise<bool>>>(100);
  for (int i = 0; i < 100; ++i) {
    alice.client().send_direct("bob", "m" + std::to_string(i),
                               [results, i](Result<DirectMessageSent> r) {
                                 (*results)[static_cast<std::size_t>(i)].set_value(r.ok());
                               });
  }
  for (auto& result : *results) {
    auto future = result.get_future();
    REQUIRE(future.wait_for(deadline) == std::future_status::ready);
    CHECK(future.get());
  }
  for (int i = 0; i < 100; ++i) {
    CHECK(bob.next<protocol::DirectEvent>().text == "m" + std::to_string(i));
  }
}

TEST_CASE("activeuser lists the other online users in login order") {
  TestServer server;
  ChatClient alice(server.port());
  alice.must_login("alice", "pa", 41001);
  const auto none = alice.active_users();
  REQUIRE(none.ok());
  CHECK(none->users.empty());

  ChatClient carol(server.port());
  ChatClient bob(server.port());
  const auto before = now_us();
  carol.must_login("carol", "pc", 41003);
  bob.must_login("bob", "pb", 41002);
  const auto after = now_us();

  const auto listed = alice.active_users();
  REQUIRE(listed.ok());
  REQUIRE(listed->users.size() == 2);
  CHECK(listed->users[0].username == "carol");
  CHECK(listed->users[0].address == "127.0.0.1");
  CHECK(listed->users[0].udp_port == 41003);
  CHECK(listed->users[1].username == "bob");
  CHECK(listed->users[1].udp_port == 41002);
  for (const auto& user : listed->users) {
    CHECK(user.since >= before - 1'000'000);
    CHECK(user.since <= after + 1'000'000);
  }
  CHECK(listed->users[0].since <= listed->users[1].since);

  const auto from_bob = bob.active_users();
  REQUIRE(from_bob.ok());
  REQUIRE(from_bob->users.size() == 2);
  CHECK(from_bob->users[0].username == "alice");
  CHECK(from_bob->users[0].udp_port == 41001);
  CHECK(from_bob->users[1].username == "carol");

  REQUIRE(carol.logout().ok());
  const auto after_logout = alice.active_users();
  REQUIRE(after_logout.ok());
  REQUIRE(after_logout->users.size() == 1);
  CHECK(after_logout->users[0].username == "bob");
}

TEST_CASE("a closed connection is a logout") {
  TestServer server;
  ChatClient alice(server.port());
  alice.must_login("alice", "pa");
  {
    ChatClient bob(server.port());
    bob.must_login("bob", "pb");
    REQUIRE(alice.active_users()->users.size() == 1);
  }
  // The server notices the close on its own schedule: ask until it has.
  const auto give_up = std::chrono::steady_clock::now() + deadline;
  bool gone = false;
  while (!gone && std::chrono::steady_clock::now() < give_up) {
    const auto users = alice.active_users();
    REQUIRE(users.ok());
    gone = users->users.empty();
  }
  CHECK(gone);
  CHECK(alice.send("bob", "hi")->stored);
  ChatClient again(server.port());
  CHECK(again.login("bob", "pb").ok());
}

TEST_CASE("reconnect recovery: after a lost connection, what was missed comes once, in order") {
  TestServer server;
  ChatClient alice(server.port());
  alice.must_login("alice", "pa");
  protocol::MessageId last = 0;
  {
    ChatClient bob(server.port());
    bob.must_login("bob", "pb");
    REQUIRE(alice.send("bob", "seen 1").ok());
    REQUIRE(alice.send("bob", "seen 2").ok());
    CHECK(bob.next<protocol::DirectEvent>().text == "seen 1");
    CHECK(bob.next<protocol::DirectEvent>().text == "seen 2");
    last = bob.client().last_message_id();
    REQUIRE(last != 0);
    bob.client().close();  // the connection is lost, no logout
  }
  // The server notices on its own schedule; messages meanwhile are either
  // delivered to the dead connection or stored.
  std::vector<protocol::MessageId> sent;
  for (int i = 0; i < 5; ++i) {
    const auto reply = alice.send("bob", "while away " + std::to_string(i));
    REQUIRE(reply.ok());
    sent.push_back(reply->id);
  }
  ChatClient bob(server.port());
  const auto give_up = std::chrono::steady_clock::now() + deadline;
  auto login = bob.resume("bob", "pb", last);
  while (!login && login.error() == errc::already_logged_in &&
         std::chrono::steady_clock::now() < give_up) {
    login = bob.resume("bob", "pb", last);
  }
  REQUIRE(login.ok());
  for (int i = 0; i < 5; ++i) {
    const auto event = bob.next<protocol::DirectEvent>();
    CHECK(event.text == "while away " + std::to_string(i));
    CHECK(event.id == sent[static_cast<std::size_t>(i)]);
    CHECK(event.missed);
  }
  CHECK(bob.quiet());
  CHECK(bob.client().last_message_id() == sent.back());

  // History returns the same bytes, oldest first, in pages.
  auto page = bob.history(
      {0, protocol::ConversationKind::direct, "alice", protocol::HistoryDirection::latest, 0, 4});
  REQUIRE(page.ok());
  REQUIRE(page->entries.size() == 4);
  CHECK(page->more);
  CHECK(page->entries.back().text == "while away 4");
  page = bob.history({0, protocol::ConversationKind::direct, "alice",
                      protocol::HistoryDirection::before, page->entries.front().id, 4});
  REQUIRE(page.ok());
  REQUIRE(page->entries.size() == 3);
  CHECK(page->entries.front().text == "seen 1");
  CHECK_FALSE(page->more);
  const auto bad = bob.history(
      {0, protocol::ConversationKind::direct, "alice", protocol::HistoryDirection::latest, 0, 0});
  CHECK(bad.error() == errc::invalid_argument);
}
