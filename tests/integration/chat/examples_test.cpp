// Runs the example programs as child processes against an in-process Server
// and checks what they do through a library Client.

#include <doctest/doctest.h>

#include <signal.h>

#include "chat_client.hpp"
#include "process.hpp"
#include "temp_dir.hpp"
#include "test_server.hpp"

using namespace tessenger;
using namespace tessenger::testing;

TEST_CASE("echo_bot answers every direct message") {
  TestServer server;
  Process bot({TESSENGER_ECHO_BOT_PATH, "127.0.0.1", std::to_string(server.port()), "bob", "pb"});
  REQUIRE(bot.read_line(deadline) == "echo_bot: logged in as bob");

  ChatClient alice(server.port());
  ChatClient carol(server.port());
  alice.must_login("alice", "pa");
  carol.must_login("carol", "pc");
  for (int i = 0; i < 5; ++i) {
    REQUIRE(alice.send("bob", "ping " + std::to_string(i)).ok());
    REQUIRE(carol.send("bob", "grüße " + std::to_string(i)).ok());
  }
  for (int i = 0; i < 5; ++i) {
    const auto echo = alice.next<protocol::DirectEvent>();
    CHECK(echo.from == "bob");
    CHECK(echo.text == "ping " + std::to_string(i));
    CHECK(carol.next<protocol::DirectEvent>().text == "grüße " + std::to_string(i));
  }

  bot.signal(SIGTERM);
  CHECK(bot.wait(deadline) == 0);
  // bob is known: stored for his next login.
  const auto stored = alice.send("bob", "gone?");
  REQUIRE(stored.ok());
  CHECK(stored->stored);
}

TEST_CASE("echo_bot with a wrong password exits non-zero") {
  TestServer server;
  Process bot({TESSENGER_ECHO_BOT_PATH, "127.0.0.1", std::to_string(server.port()), "bob", "no"});
  CHECK(bot.wait(deadline) == 1);
  CHECK(bot.error_output(deadline).find("login refused") != std::string::npos);
}

TEST_CASE("group_broadcast posts once every member has joined") {
  TestServer server;
  ChatClient bob(server.port());
  ChatClient carol(server.port());
  ChatClient dave(server.port());
  bob.must_login("bob", "pb");
  carol.must_login("carol", "pc");
  dave.must_login("dave", "pd");

  Process broadcaster({TESSENGER_GROUP_BROADCAST_PATH, "127.0.0.1", std::to_string(server.port()),
                       "alice", "pa", "news", "hello members", "bob", "carol"});
  REQUIRE(broadcaster.read_line(deadline) == "group_broadcast: created news");
  for (auto* member : {&bob, &carol}) {
    const auto invite = member->next<protocol::InviteEvent>();
    CHECK(invite.group == "news");
    CHECK(invite.from == "alice");
  }
  REQUIRE(bob.join_group("news").ok());
  REQUIRE(bob.send("alice", "joined").ok());
  // Not everyone has joined yet: nothing is posted.
  CHECK(bob.quiet());
  REQUIRE(carol.join_group("news").ok());
  REQUIRE(carol.send("alice", "joined").ok());

  for (auto* member : {&bob, &carol}) {
    const auto post = member->next<protocol::GroupEvent>();
    CHECK(post.group == "news");
    CHECK(post.from == "alice");
    CHECK(post.text == "hello members");
  }
  CHECK(broadcaster.wait(deadline) == 0);
  CHECK(dave.quiet());
}

TEST_CASE("embedded_server checks its own accounts and reports activity to its observer") {
  TempDir data;
  Process embedded({TESSENGER_EMBEDDED_SERVER_PATH, "0", data.path().string()});
  const auto listening = embedded.read_line(deadline);
  REQUIRE(listening);
  const std::string prefix = "embedded_server: listening on 127.0.0.1:";
  REQUIRE(listening->starts_with(prefix));
  const auto port = static_cast<std::uint16_t>(std::stoi(listening->substr(prefix.size())));

  ChatClient alice(port);
  ChatClient bob(port);
  ChatClient stranger(port);
  // The accounts are the example's in-code table, not a credentials file.
  CHECK(stranger.login("carol", "pc").error() == errc::invalid_username);
  CHECK(stranger.login("alice", "wrong").error() == errc::invalid_password);
  alice.must_login("alice", "pa");
  CHECK(embedded.read_line(deadline)->starts_with("login: alice from 127.0.0.1"));
  bob.must_login("bob", "pb");
  CHECK(embedded.read_line(deadline)->starts_with("login: bob from 127.0.0.1"));

  REQUIRE(alice.send("bob", "hello from the example").ok());
  CHECK(bob.next<protocol::DirectEvent>().text == "hello from the example");
  CHECK(embedded.read_line(deadline) == "message: alice -> bob: hello from the example");
  REQUIRE(bob.create_group("team", {"alice"}).ok());
  CHECK(embedded.read_line(deadline) == "group: bob created team inviting 1");
  REQUIRE(alice.logout().ok());
  CHECK(embedded.read_line(deadline) == "logout: alice");

  // Stopping ends the sessions still open, and the observer hears of each.
  embedded.signal(SIGTERM);
  CHECK(embedded.read_line(deadline) == "logout: bob");
  CHECK(bob.next<Disconnected>().code == errc::server_shutdown);
  CHECK(embedded.read_line(deadline) == "embedded_server: stopped");
  CHECK(embedded.wait(deadline) == 0);
  // The server wrote SPEC §5's logs into the data directory it was given.
  CHECK(std::filesystem::exists(data / "messagelog.txt"));
}

TEST_CASE("protocol_codec negotiates and exchanges a message without I/O") {
  Process codec({TESSENGER_PROTOCOL_CODEC_PATH});
  const std::vector<std::string> expected = {
      "server: hello from example-client, versions " + std::to_string(protocol::min_version) +
          ".." + std::to_string(protocol::version),
      "client: hello_ok",
      "client: speaking version " + std::to_string(protocol::version),
      "server: to bob: hello",
      "client: direct_sent",
  };
  for (const auto& line : expected)
    CHECK(codec.read_line(deadline) == line);
  CHECK(codec.wait(deadline) == 0);
}
