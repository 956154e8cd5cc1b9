// Three real tessenger-server nodes on one real redis-server, driven through
// the real client (SPEC §3-4 across nodes) and at the wire (races).

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "cluster_fixture.hpp"
#include "wire_client.hpp"

using namespace tessenger::testing;
namespace p = tessenger::protocol;
using Lines = std::vector<std::string>;

namespace {

const char* const accounts = "alice pa\nbob pb\ncarol pc\ndave pd\n";

// alice logs in on node 0, bob sees her, and node 0 is killed under her.
void kill_under_alice(Cluster& cluster, CliClient& bob) {
  CliClient alice(cluster.port(0));
  alice.login("alice", "pa");
  REQUIRE(shows(bob, {"alice"}));
  cluster.nodes[0]->kill();
}

}  // namespace

TEST_CASE("cluster: /activeuser lists the users of every node in login order, with IP and port") {
  Cluster cluster(3, accounts);
  CliClient alice(cluster.port(0)), bob(cluster.port(1)), carol(cluster.port(2));
  alice.login("alice", "pa");
  bob.login("bob", "pb");
  carol.login("carol", "pc");
  CHECK(shows(alice, {"bob", "carol"}));
  CHECK(shows(carol, {"alice", "bob"}));
  const auto users = bob.command("/activeuser");
  REQUIRE(users.size() == 2);
  CHECK(matches(users[0], "alice, 127.0.0.1, {N}, active since {TS}."));
  CHECK(matches(users[1], "carol, 127.0.0.1, {N}, active since {TS}."));

  alice.send("/logout");
  CHECK(alice.line() == "Bye, alice!");
  CHECK(shows(bob, {"carol"}));
  CHECK(shows(carol, {"bob"}));
}

TEST_CASE("cluster: a second login to an account online on another node is refused") {
  Cluster cluster(3, accounts);
  CliClient alice(cluster.port(0));
  alice.login("alice", "pa");
  for (std::size_t node : {1, 2}) {
    CliClient second(cluster.port(node));
    CHECK(second.line() == "Please login");
    second.send("alice");
    second.send("pa");
    CHECK(second.line() == "Username: Password: This account is already logged in.");
  }
  // The first session is not disturbed.
  CHECK(alice.command("/activeuser") == Lines{"no other active user"});
}

TEST_CASE("cluster: of simultaneous logins to one account on three nodes exactly one wins") {
  constexpr int rounds = 100;
  std::string credentials;
  for (int i = 0; i < rounds; ++i)
    credentials += "u" + std::to_string(i) + " p\n";
  Cluster cluster(3, credentials);
  int single_winners = 0;
  for (int round = 0; round < rounds; ++round) {
    const std::string user = "u" + std::to_string(round);
    std::vector<std::unique_ptr<WireClient>> clients;
    for (std::size_t node = 0; node < 3; ++node)
      clients.push_back(std::make_unique<WireClient>(cluster.port(node)));
    std::atomic<int> won{0}, refused{0};
    std::vector<std::thread> logins;
    for (auto& client : clients) {
      logins.emplace_back([&, c = client.get()] {
        const auto reply = c->login(user, "p", 9, p::version);
        if (std::holds_alternative<p::LoginOk>(reply)) ++won;
        if (const auto* error = std::get_if<p::Error>(&reply);
            error && error->code == static_cast<std::uint16_t>(tessenger::errc::already_logged_in))
          ++refused;
      });
    }
    for (auto& login : logins)
      login.join();
    CAPTURE(round);
    CHECK(won == 1);
    CHECK(refused == 2);
    if (won == 1 && refused == 2) ++single_winners;
  }
  CHECK(single_winners == rounds);
}

TEST_CASE("cluster: a killed node's users leave /activeuser within 5 s and may log in elsewhere") {
  Cluster cluster(2, accounts);
  CliClient alice(cluster.port(0)), bob(cluster.port(1));
  alice.login("alice", "pa");
  bob.login("bob", "pb");
  REQUIRE(shows(bob, {"alice"}));

  const auto killed = std::chrono::steady_clock::now();
  cluster.nodes[0]->kill();
  const bool left = shows(bob, {}, std::chrono::seconds(8));
  REQUIRE(left);
  const auto gone = std::chrono::steady_clock::now() - killed;
  MESSAGE("alice left /activeuser "
          << std::chrono::duration_cast<std::chrono::milliseconds>(gone).count()
          << " ms after her node was killed");
  CHECK(gone < std::chrono::seconds(5));

  CliClient again(cluster.port(1));
  again.login("alice", "pa");
  CHECK(shows(bob, {"alice"}));
}

TEST_CASE("cluster: a node restarted under its old name brings back none of its old users") {
  Cluster cluster(2, accounts);
  CliClient bob(cluster.port(1));
  bob.login("bob", "pb");
  kill_under_alice(cluster, bob);
  // Back before its lease ran out: it clears what its last life left.
  cluster.restart(0);
  CHECK(shows(bob, {}));
  CliClient alice(cluster.port(0));
  alice.login("alice", "pa");
  CHECK(shows(bob, {"alice"}));
}

TEST_CASE("cluster: a stalled Redis fails logins within a second; pings go on; then it recovers") {
  Cluster cluster(2, accounts);
  CliClient alice(cluster.port(0));
  alice.login("alice", "pa");
  WireClient watcher(cluster.port(1));
  REQUIRE(std::holds_alternative<p::LoginOk>(watcher.login("bob", "pb", 9, p::version)));
  watcher.expect<p::MissedEnd>();

  cluster.redis.pause();
  WireClient late(cluster.port(1));
  const auto asked = std::chrono::steady_clock::now();
  const auto reply = late.login("carol", "pc", 9, p::version);
  const auto waited = std::chrono::steady_clock::now() - asked;
  const auto* error = std::get_if<p::Error>(&reply);
  REQUIRE(error != nullptr);
  CHECK(error->code == static_cast<std::uint16_t>(tessenger::errc::service_unavailable));
  CHECK(waited < std::chrono::milliseconds(1500));
  // The node's loop is not stalled: it answers a ping at once.
  watcher.send(p::Ping{77, 0});
  CHECK(watcher.expect<p::Pong>(std::chrono::seconds(1)).request_id == 77);
  cluster.redis.resume();

  // Logins work again once the node is back on Redis.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool logged_in = false;
  while (!logged_in && std::chrono::steady_clock::now() < deadline) {
    WireClient retry(cluster.port(1));
    logged_in = std::holds_alternative<p::LoginOk>(retry.login("carol", "pc", 9, p::version));
    if (logged_in) CHECK(shows(alice, {"bob", "carol"}));
  }
  CHECK(logged_in);
}

TEST_CASE("cluster: Redis unreachable at start is one clear line and a non-zero exit") {
  TempDir dir("tessenger-cluster-none");
  dir.write("credentials.txt", accounts);
  Process server({TESSENGER_SERVER_PATH, "127.0.0.1", "0", "3", "--cluster",
                  "unix://" + (dir / "nothing.sock").string()},
                 dir.path());
  const auto status = server.wait(std::chrono::seconds(10));
  REQUIRE(status.has_value());
  CHECK(*status != 0);
  const auto errors = server.error_output(std::chrono::seconds(1));
  CHECK(errors.find("cannot reach Redis at unix://") != std::string::npos);
}

TEST_CASE("cluster: /msgto and groups across nodes, with the texts and order of one node") {
  Cluster cluster(3, accounts);
  CliClient alice(cluster.port(0)), bob(cluster.port(1)), carol(cluster.port(2));
  alice.login("alice", "pa");
  bob.login("bob", "pb");
  carol.login("carol", "pc");
  REQUIRE(shows(alice, {"bob", "carol"}));

  for (int i = 0; i < 5; ++i) {
    const auto sent = alice.command("/msgto bob hello " + std::to_string(i));
    REQUIRE(sent.size() == 1);
    CHECK(matches(sent[0], "message sent at {TS}."));
  }
  for (int i = 0; i < 5; ++i) {
    CHECK(matches(bob.line(), "{TS}, alice: hello " + std::to_string(i)));
    CHECK(bob.line() == prompt);
  }

  CHECK(alice.command("/creategroup chat bob carol") ==
        Lines{"Group chat room has been created, room name: chat, users in this room: alice, "
              "bob, carol"});
  for (auto* invited : {&bob, &carol}) {
    CHECK(invited->line() == "alice invited you to group chat; use /joingroup chat to join.");
    CHECK(invited->line() == prompt);
  }
  CHECK(bob.command("/joingroup chat") == Lines{"Joined the group chat: chat successfully."});
  CHECK(carol.command("/creategroup chat bob") ==
        Lines{"a group chat (Name: chat) already exists"});
  CHECK(carol.command("/groupmsg chat hi") ==
        Lines{"Please join the group before sending messages."});
  const auto sent = bob.command("/groupmsg chat hello group");
  REQUIRE(sent.size() == 1);
  CHECK(matches(sent[0], "Group chat message sent at {TS}."));
  CHECK(matches(alice.line(), "{TS}, chat, bob: hello group"));
  CHECK(alice.line() == prompt);
  // carol, invited but not joined, got nothing.
  CHECK(carol.command("/activeuser").size() == 2);
}

TEST_CASE("cluster: failed logins are counted per account across nodes") {
  Cluster cluster(3, accounts);
  for (std::size_t node : {0, 1}) {
    CliClient client(cluster.port(node));
    CHECK(client.line() == "Please login");
    client.send("alice");
    client.send("wrong");
    CHECK(client.line() == "Username: Password: Invalid password. Please try again.");
  }
  {
    CliClient client(cluster.port(2));
    CHECK(client.line() == "Please login");
    client.send("alice");
    client.send("wrong");
    CHECK(client.line() ==
          "Username: Password: Invalid password. Your account has been blocked. Please try again "
          "later.");
    CHECK(client.wait() == 1);
  }
  CliClient client(cluster.port(0));
  CHECK(client.line() == "Please login");
  client.send("alice");
  client.send("pa");
  CHECK(client.line() ==
        "Username: Password: Your account is blocked due to multiple login failures. Please "
        "try again later.");
}

TEST_CASE(
    "cluster: a message to a user on a killed node reaches them after they log in elsewhere") {
  Cluster cluster(2, accounts);
  CliClient bob(cluster.port(1));
  bob.login("bob", "pb");
  kill_under_alice(cluster, bob);
  REQUIRE(shows(bob, {}, std::chrono::seconds(8)));
  const auto sent = bob.command("/msgto alice while you were away");
  REQUIRE(sent.size() == 1);
  CHECK(sent[0] == "alice is offline; the message will be delivered when they log in.");
  CliClient alice(cluster.port(1));
  alice.login("alice", "pa");
  CHECK(matches(alice.line(), "[missed] {TS}, bob: while you were away"));
  CHECK(alice.line() == prompt);
  CHECK(alice.line() == "1 message arrived while you were away.");
}

TEST_CASE("cluster: /p2pvideo sends a file to a user on another node") {
  Cluster cluster(2, accounts);
  std::filesystem::create_directory(cluster.dir / "downloads");
  std::string content;
  for (std::uint32_t i = 0; i < 200'000; ++i)
    content.push_back(static_cast<char>(i * 7919u % 251u));
  cluster.dir.write("clip.mp4", content);
  const auto file = (cluster.dir / "clip.mp4").string();
  CliClient alice(cluster.port(0));
  CliClient bob(cluster.port(1), {"--download-dir", (cluster.dir / "downloads").string()});
  alice.login("alice", "pa");
  bob.login("bob", "pb");
  REQUIRE(shows(alice, {"bob"}));

  CHECK(alice.command("/p2pvideo bob " + file).empty());
  CHECK(alice.line() == file + " has been uploaded.");
  CHECK(alice.line() == prompt);
  CHECK(bob.line() == "Received clip.mp4 from alice");
  CHECK(bob.line() == prompt);
  std::ifstream saved(cluster.dir / "downloads" / "alice_clip.mp4", std::ios::binary);
  CHECK(std::string((std::istreambuf_iterator<char>(saved)), {}) == content);
  CHECK(alice.command("/p2pvideo carol " + file) == Lines{"carol is not online."});
}
