// kill -9 of cluster nodes and of redis-server while users stream messages
// through them: every message a sender saw acknowledged arrives exactly once,
// in id order, and is in history; presence converges.

#include <algorithm>
#include <chrono>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "cluster_fixture.hpp"
#include "streaming.hpp"
#include "wire_client.hpp"

using namespace tessenger::testing;
namespace p = tessenger::protocol;
using namespace std::chrono_literals;

namespace {

const char* const accounts =
    "alice pw-alice\nbob pw-bob\ncarol pw-carol\ndave pw-dave\nerin pw-erin\n";

std::unique_ptr<WireClient> logged_in(std::uint16_t port, const std::string& user,
                                      p::MessageId resume_after = 0) {
  auto client = std::make_unique<WireClient>(port);
  const auto reply = client->login(user, "pw-" + user, 9, p::version, resume_after);
  REQUIRE(std::holds_alternative<p::LoginOk>(reply));
  return client;
}

// Logged in with nothing missed yet: the replay's MissedEnd is taken.
std::unique_ptr<WireClient> online(std::uint16_t port, const std::string& user) {
  auto client = logged_in(port, user);
  client->expect<p::MissedEnd>();
  return client;
}

// carol creates the group "crash" with bob and erin as its joined members.
void make_group(std::uint16_t port, WireClient& bob, WireClient& erin) {
  auto carol = online(port, "carol");
  carol->send(p::GroupCreate{5, "crash", {"bob", "erin"}});
  carol->expect<p::GroupCreated>();
  for (auto* member : {&bob, &erin}) {
    member->expect<p::InviteEvent>();
    member->send(p::GroupJoin{6, "crash"});
    member->expect<p::GroupJoined>();
  }
  carol->send(p::Logout{7});
  carol->expect<p::LoggedOut>();
}

// The other users `watcher`'s node lists. A node back on Redis after an
// outage ends its catch-up with a MissedEnd, which may come first.
std::vector<std::string> listed(WireClient& watcher) {
  watcher.send(p::ActiveUsersQuery{11});
  std::vector<std::string> names;
  for (auto reply = watcher.next(); reply; reply = watcher.next()) {
    if (const auto* list = std::get_if<p::ActiveUsers>(&*reply)) {
      for (const auto& user : list->users)
        names.push_back(user.username);
      break;
    }
  }
  return names;
}

// Waits until the other users `watcher` sees are `expected`; false at the deadline.
bool lists(WireClient& watcher, const std::vector<std::string>& expected,
           std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (listed(watcher) != expected) {
    if (std::chrono::steady_clock::now() > deadline) return false;
  }
  return true;
}

// Waits until `inbox` holds every acknowledged text `only` picks.
bool all_arrived(Acked& acked, Inbox& inbox, const std::string& only = "") {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (acked.missing_from(inbox.texts(), only) != 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

void check_exactly_once(Inbox& inbox) {
  const auto [out_of_order, duplicates] = inbox.disorder_and_duplicates();
  CHECK(out_of_order == 0);
  CHECK(duplicates == 0);
}

}  // namespace

TEST_CASE(
    "cluster: kill -9 of the senders' node mid-stream loses and repeats nothing; presence "
    "converges within 5 s") {
  Cluster cluster(3, accounts);
  const auto seed = std::random_device{}();
  CAPTURE(seed);
  std::mt19937 random(seed);
  // bob on node 1 stays; erin is on node 0 with the senders and dies with it.
  auto bob = online(cluster.port(1), "bob");
  auto erin = online(cluster.port(0), "erin");
  make_group(cluster.port(2), *bob, *erin);
  auto dave = online(cluster.port(2), "dave");

  Inbox bob_inbox, erin_inbox;
  Acked acked;
  std::thread bob_reader([&] { receive(*bob, bob_inbox, false, 60s); });
  constexpr int rounds = 5;
  for (int round = 0; round < rounds; ++round) {
    CAPTURE(round);
    if (round > 0) erin = logged_in(cluster.port(0), "erin", erin_inbox.newest());
    std::thread erin_reader([&] { receive(*erin, erin_inbox, false); });
    const long acked_before = acked.count;
    std::vector<std::thread> senders;
    senders.emplace_back(stream, cluster.port(0), "alice", "bob", false, std::to_string(round),
                         std::ref(acked));
    senders.emplace_back(stream, cluster.port(0), "carol", "crash", true, std::to_string(round),
                         std::ref(acked));
    CHECK(acked.reached(acked_before + std::uniform_int_distribution<long>(1, 300)(random), 30s));
    const auto killed = std::chrono::steady_clock::now();
    cluster.nodes[0]->kill();
    for (auto& sender : senders)
      sender.join();
    erin_reader.join();
    if (round + 1 < rounds) {
      // Back under its old name at once: it clears its last life's users itself.
      cluster.restart(0);
      continue;
    }
    // Left dead: the sweep takes its users out of presence.
    REQUIRE(lists(*dave, {"bob"}, 8s));
    const auto converged = std::chrono::steady_clock::now() - killed;
    MESSAGE("presence converged "
            << std::chrono::duration_cast<std::chrono::milliseconds>(converged).count()
            << " ms after the kill");
    CHECK(converged < 5s);
  }

  // bob never left: every acknowledged message reaches him live.
  CHECK(all_arrived(acked, bob_inbox));
  // erin, back on another node, gets what she missed after the newest id she had.
  erin = logged_in(cluster.port(2), "erin", erin_inbox.newest());
  CHECK(receive(*erin, erin_inbox, true));
  CHECK(acked.missing_from(erin_inbox.texts(), "-carol-") == 0);
  check_exactly_once(bob_inbox);
  check_exactly_once(erin_inbox);
  bob->send(p::Logout{12});
  bob_reader.join();
  // Everything reached bob already, and all of it is in history.
  bob = logged_in(cluster.port(1), "bob", bob_inbox.newest());
  CHECK(bob->expect<p::MissedEnd>().count == 0);
  CHECK(acked.missing_from(history_of(*bob, p::ConversationKind::direct, "alice"), "-alice-") == 0);
  CHECK(acked.missing_from(history_of(*erin, p::ConversationKind::group, "crash"), "-carol-") == 0);
  MESSAGE(rounds << " node kills: " << acked.texts.size() << " acknowledged, "
                 << bob_inbox.received.size() << " to bob, " << erin_inbox.received.size()
                 << " to erin (" << erin_inbox.missed << " as missed)");
}

TEST_CASE(
    "cluster: kill -9 of redis-server mid-stream: requests fail clearly, the nodes recover "
    "and lose nothing acknowledged") {
  Cluster cluster(2, accounts);
  const auto seed = std::random_device{}();
  CAPTURE(seed);
  std::mt19937 random(seed);
  auto bob = online(cluster.port(1), "bob");
  auto dave = online(cluster.port(0), "dave");
  Inbox inbox;
  Acked acked;
  std::thread reader([&] { receive(*bob, inbox, false, 60s); });
  std::thread sender(stream, cluster.port(0), "alice", "bob", false, "r", std::ref(acked));
  CHECK(acked.reached(std::uniform_int_distribution<long>(1, 300)(random), 30s));

  cluster.redis.kill();
  // What needs Redis is refused at once and clearly; the session stays.
  const auto asked = std::chrono::steady_clock::now();
  dave->send(p::DirectSend{20, "bob", "during the outage"});
  for (auto reply = dave->next(); reply; reply = dave->next()) {
    if (const auto* error = std::get_if<p::Error>(&*reply); error && error->request_id == 20) {
      CHECK(error->code == static_cast<std::uint16_t>(tessenger::errc::service_unavailable));
      break;
    }
  }
  CHECK(std::chrono::steady_clock::now() - asked < 1s);
  dave->send(p::Ping{21, 0});
  CHECK(dave->expect<p::Pong>(1s).request_id == 21);

  // Back with what it had (appendfsync always): the nodes reconnect, and the
  // stream that kept going through the outage is acknowledged again.
  cluster.redis.start();
  CHECK(acked.reached(acked.count + 101, 15s));
  acked.stop = true;
  sender.join();
  // alice's session ended with her stream; bob's presence outlived the outage.
  CHECK(lists(*dave, {"bob"}, 10s));

  CHECK(all_arrived(acked, inbox));
  check_exactly_once(inbox);
  bob->send(p::Logout{22});
  reader.join();
  bob = logged_in(cluster.port(1), "bob", inbox.newest());
  CHECK(bob->expect<p::MissedEnd>().count == 0);
  CHECK(acked.missing_from(history_of(*bob, p::ConversationKind::direct, "alice")) == 0);
  MESSAGE("through a Redis kill: " << acked.texts.size() << " acknowledged, "
                                   << inbox.received.size() << " delivered");
}
