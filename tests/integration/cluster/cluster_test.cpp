// Three real tessenger-server nodes on one real redis-server, driven through
// the real client (SPEC §3-4 across nodes) and at the wire (races).

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "../../cli/cli_harness.hpp"
#include "redis_server.hpp"
#include "wire_client.hpp"

using namespace tessenger::testing;
namespace p = tessenger::protocol;
using Lines = std::vector<std::string>;

namespace {

const char* const accounts = "alice pa\nbob pb\ncarol pc\ndave pd\n";

// Nodes n0, n1, ... on one Redis, each with its own data directory.
struct Cluster {
  RedisServer redis;
  TempDir dir{"tessenger-cluster"};
  std::vector<std::unique_ptr<CliServer>> nodes;

  explicit Cluster(int count = 3, std::string credentials = accounts) {
    dir.write("credentials.txt", credentials);
    for (int i = 0; i < count; ++i)
      add();
  }
  void add() {
    const std::string name = "n" + std::to_string(nodes.size());
    std::filesystem::create_directories(dir / name);
    // Polling /activeuser is many requests: no rate limit.
    nodes.push_back(std::make_unique<CliServer>(
        dir, 3,
        std::vector<std::string>{"--cluster", redis.url(), "--node-name", name, "--data-dir", name,
                                 "--message-rate", "0"}));
    joined(nodes.size() - 1);
  }
  // Waits for the node to say it joined: before that it refuses logins.
  void joined(std::size_t node) {
    while (auto line = nodes.at(node)->process().read_line(cli_deadline)) {
      if (line->find("joined the cluster") != std::string::npos) return;
    }
    FAIL("node " << node << " did not join the cluster");
  }
  std::uint16_t port(std::size_t node) const { return nodes.at(node)->port(); }
};

// The users /activeuser lists, in the order it lists them.
std::vector<std::string> active(CliClient& client) {
  std::vector<std::string> names;
  for (const auto& line : client.command("/activeuser")) {
    if (line == "no other active user") break;
    names.push_back(line.substr(0, line.find(',')));
  }
  return names;
}

// Waits until `client`'s /activeuser shows `expected`; false at the deadline.
bool shows(CliClient& client, const std::vector<std::string>& expected,
           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto names = active(client); names != expected; names = active(client)) {
    if (std::chrono::steady_clock::now() > deadline) {
      MESSAGE("/activeuser still lists " << names.size()
                                         << " users: " << (names.empty() ? "" : names.front()));
      return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("cluster: /activeuser lists the users of every node in login order, with IP and port") {
  Cluster cluster;
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
  Cluster cluster;
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
  Cluster cluster(2);
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
  Cluster cluster(2);
  CliClient bob(cluster.port(1));
  bob.login("bob", "pb");
  {
    CliClient alice(cluster.port(0));
    alice.login("alice", "pa");
    REQUIRE(shows(bob, {"alice"}));
    cluster.nodes[0]->kill();
  }
  // Back before its lease ran out: it clears what its last life left.
  cluster.nodes[0]->start();
  cluster.joined(0);
  CHECK(shows(bob, {}));
  CliClient alice(cluster.port(0));
  alice.login("alice", "pa");
  CHECK(shows(bob, {"alice"}));
}

TEST_CASE("cluster: a stalled Redis fails logins within a second; pings go on; then it recovers") {
  Cluster cluster(2);
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
  Cluster cluster;
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
  Cluster cluster;
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
  Cluster cluster(2);
  CliClient bob(cluster.port(1));
  bob.login("bob", "pb");
  {
    CliClient alice(cluster.port(0));
    alice.login("alice", "pa");
    REQUIRE(shows(bob, {"alice"}));
    cluster.nodes[0]->kill();
  }
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
