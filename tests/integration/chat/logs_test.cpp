// SPEC §5 log files, read back while the server runs and after a restart.

#include <doctest/doctest.h>

#include <fstream>
#include <optional>

#include "chat_client.hpp"
#include "test_server.hpp"
#include "text_match.hpp"

using namespace tessenger;
using namespace tessenger::testing;

namespace {

// `SEQ; TS; rest` with TS in the SPEC format; returns rest, or "" on mismatch.
std::string after_timestamp(const std::string& line, int seq) {
  return std::string(after_prefix(line, std::to_string(seq) + "; {TS}; ").value_or(""));
}

// The server may put a reply on the wire before it writes the log lines of
// the same request; it handles requests one at a time, so once a later
// round trip completes, those lines are on disk.
void settle(ChatClient& client) {
  REQUIRE(client.ping().ok());
}

}  // namespace

TEST_CASE("userlog.txt lists the users online now, renumbered on logout") {
  TestServer server;
  const auto userlog = server.data_dir() / "userlog.txt";
  std::optional<ChatClient> alice(std::in_place, server.port());
  ChatClient bob(server.port());
  ChatClient carol(server.port());
  alice->must_login("alice", "pa", 5001);
  bob.must_login("bob", "pb", 5002);
  carol.must_login("carol", "pc", 5003);
  settle(carol);

  auto lines = lines_of(userlog);
  REQUIRE(lines.size() == 3);
  CHECK(after_timestamp(lines[0], 1) == "alice; 127.0.0.1; 5001");
  CHECK(after_timestamp(lines[1], 2) == "bob; 127.0.0.1; 5002");
  CHECK(after_timestamp(lines[2], 3) == "carol; 127.0.0.1; 5003");

  REQUIRE(alice->logout().ok());
  settle(bob);
  lines = lines_of(userlog);
  REQUIRE(lines.size() == 2);
  CHECK(after_timestamp(lines[0], 1) == "bob; 127.0.0.1; 5002");
  CHECK(after_timestamp(lines[1], 2) == "carol; 127.0.0.1; 5003");

  alice.emplace(server.port());
  alice->must_login("alice", "pa", 5004);
  settle(*alice);
  lines = lines_of(userlog);
  REQUIRE(lines.size() == 3);
  CHECK(after_timestamp(lines[2], 3) == "alice; 127.0.0.1; 5004");
}

TEST_CASE("messagelog.txt records each delivered message once, numbered") {
  TestServer server;
  ChatClient alice(server.port());
  ChatClient bob(server.port());
  alice.must_login("alice", "pa");
  bob.must_login("bob", "pb");
  REQUIRE(alice.send("bob", "first; with separator").ok());
  // Stored for carol, who is offline: accepted, so logged.
  CHECK(alice.send("carol", "offline")->stored);
  CHECK(alice.send("zed", "unknown").error() == errc::user_not_online);
  CHECK(alice.send("alice", "self").error() == errc::cannot_message_self);
  CHECK(alice.send("bob", " ").error() == errc::invalid_text);
  REQUIRE(bob.send("alice", "  second  ").ok());
  settle(bob);

  const auto lines = lines_of(server.data_dir() / "messagelog.txt");
  REQUIRE(lines.size() == 3);
  CHECK(after_timestamp(lines[0], 1) == "alice; first; with separator");
  CHECK(after_timestamp(lines[1], 2) == "alice; offline");
  CHECK(after_timestamp(lines[2], 3) == "bob; second");
}

TEST_CASE("GROUP_messagelog.txt is created with the group and numbered per group") {
  TestServer server;
  ChatClient alice(server.port());
  ChatClient bob(server.port());
  alice.must_login("alice", "pa");
  bob.must_login("bob", "pb");
  REQUIRE(alice.create_group("one", {"bob"}).ok());
  REQUIRE(alice.create_group("two", {"bob"}).ok());
  settle(alice);
  CHECK(std::filesystem::exists(server.data_dir() / "one_messagelog.txt"));
  CHECK(lines_of(server.data_dir() / "one_messagelog.txt").empty());
  REQUIRE(bob.join_group("one").ok());
  REQUIRE(alice.send_group("one", "a1").ok());
  REQUIRE(bob.send_group("one", "b1").ok());
  REQUIRE(alice.send_group("two", "a2").ok());
  CHECK(bob.send_group("two", "refused").error() == errc::group_not_joined);
  settle(bob);

  const auto one = lines_of(server.data_dir() / "one_messagelog.txt");
  REQUIRE(one.size() == 2);
  CHECK(after_timestamp(one[0], 1) == "alice; a1");
  CHECK(after_timestamp(one[1], 2) == "bob; b1");
  const auto two = lines_of(server.data_dir() / "two_messagelog.txt");
  REQUIRE(two.size() == 1);
  CHECK(after_timestamp(two[0], 1) == "alice; a2");
  // Group messages are not direct messages.
  CHECK(lines_of(server.data_dir() / "messagelog.txt").empty());
}

TEST_CASE("after a restart userlog is emptied and message numbering continues") {
  TestServer server;
  {
    ChatClient alice(server.port());
    ChatClient bob(server.port());
    alice.must_login("alice", "pa");
    bob.must_login("bob", "pb");
    REQUIRE(alice.send("bob", "before 1").ok());
    REQUIRE(alice.send("bob", "before 2").ok());
    CHECK(bob.next<protocol::DirectEvent>().text == "before 1");
    CHECK(bob.next<protocol::DirectEvent>().text == "before 2");
    server.restart();
    CHECK(alice.next<Disconnected>().code == errc::server_shutdown);
    CHECK(bob.next<Disconnected>().code == errc::server_shutdown);
  }
  CHECK(lines_of(server.data_dir() / "userlog.txt").empty());

  ChatClient alice(server.port());
  ChatClient bob(server.port());
  alice.must_login("alice", "pa");
  bob.must_login("bob", "pb");
  REQUIRE(bob.send("alice", "after").ok());
  settle(bob);
  const auto lines = lines_of(server.data_dir() / "messagelog.txt");
  REQUIRE(lines.size() == 3);
  CHECK(after_timestamp(lines[0], 1) == "alice; before 1");
  CHECK(after_timestamp(lines[1], 2) == "alice; before 2");
  CHECK(after_timestamp(lines[2], 3) == "bob; after");
}
