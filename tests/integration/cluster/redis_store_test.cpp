// What only the Redis store does (the store contract suite covers the rest):
// the append scripts publish once per other node with recipients online
// there, a lost Redis refuses every operation without a hang, and a
// restarted Redis (appendonly) still holds everything.

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "eventually.hpp"
#include "redis_store_rig.hpp"
#include "store_calls.hpp"

using tessenger::errc;
using tessenger::MessageId;
using tessenger::cluster::ClusterMessage;
using tessenger::cluster::ClusterMessageKind;
using tessenger::cluster::decode_cluster_message;
using tessenger::cluster::RedisConnection;
using namespace tessenger::testing;
using namespace std::chrono_literals;

namespace {

// A second connection, subscribed to the channels of some nodes: what each
// node was sent, decoded, in order.
class NodeListener {
 public:
  NodeListener(RedisStoreRig& rig, const RedisServer& redis, const std::vector<std::string>& nodes)
      : rig_(rig), connection_(rig.io().get_executor(), RedisStoreRig::endpoint(redis.url())) {
    REQUIRE(!on_loop<std::error_code>(rig.io(),
                                      [this](auto done) { connection_.connect(std::move(done)); }));
    std::vector<std::string> channels;
    for (const auto& node : nodes)
      channels.push_back(rig.prefix() + "node:" + node);
    const auto prefix_size = rig.prefix().size() + 5;
    const auto subscribed = on_loop<std::error_code>(rig.io(), [&](auto done) {
      connection_.subscribe(
          channels,
          [this, prefix_size](std::string_view channel, std::string_view payload) {
            const std::lock_guard lock(mutex_);
            auto decoded = decode_cluster_message(payload);
            if (decoded) {
              got_[std::string(channel.substr(prefix_size))].push_back(std::move(*decoded));
            } else {
              ++undecodable_;
            }
          },
          std::move(done));
    });
    REQUIRE(!subscribed);
  }
  ~NodeListener() {
    on_loop<bool>(rig_.io(), [this](auto done) {
      connection_.close();
      done(true);
    });
  }

  std::vector<ClusterMessage> of(const std::string& node) {
    const std::lock_guard lock(mutex_);
    return got_[node];
  }
  int undecodable() {
    const std::lock_guard lock(mutex_);
    return undecodable_;
  }
  /// Waits until `node` has been sent `count` messages.
  bool received(const std::string& node, std::size_t count) {
    return eventually([&] { return of(node).size() >= count; });
  }

 private:
  RedisStoreRig& rig_;
  RedisConnection connection_;
  std::mutex mutex_;
  std::map<std::string, std::vector<ClusterMessage>> got_;
  int undecodable_ = 0;
};

void online(RedisStoreRig& rig, const std::string& user, const std::string& node) {
  const auto reply = rig.command({"HSET", rig.prefix() + "online:" + user, "node", node});
  REQUIRE_FALSE(reply.is_error());
}

}  // namespace

TEST_CASE("redis store: a message is published once per other node with recipients online") {
  RedisServer redis;
  RedisStoreRig rig(redis, "n1");
  // Another node of the same service, to send from n2.
  RedisStoreRig other(redis, "n2", 1min, rig.prefix());
  auto policy = test_policy();
  policy.limits.max_groups_per_user = 10;
  rig.store()->configure(policy);
  other.store()->configure(policy);
  NodeListener nodes(rig, redis, {"n1", "n2", "n3"});
  Calls c{*rig.store()};
  Calls c2{*other.store()};

  REQUIRE(c.create("team", "alice", {"bob", "carol", "dave", "erin", "frank"}).ok());
  for (const auto* user : {"bob", "carol", "dave", "erin", "frank"})
    REQUIRE(c.join("team", user).ok());
  online(rig, "alice", "n1");
  online(rig, "erin", "n1");
  online(rig, "bob", "n2");
  online(rig, "carol", "n2");
  online(rig, "dave", "n3");
  // frank is offline: he gets it as a missed message, from no channel.

  const auto sent = c.say("team", "alice", "to everyone");
  REQUIRE(sent.outcome.ok());
  CHECK(sent.recipients == std::vector<std::string>{"bob", "carol", "dave", "erin", "frank"});
  // Markers after it: what a channel carries arrives in publish order, so
  // once a marker is in, everything published before it is too.
  const auto to_dave = c.tell("alice", "dave", "marker", t0 + 1).id;
  const auto to_bob = c.tell("alice", "bob", "marker", t0 + 2).id;
  const auto to_erin = c2.tell("bob", "erin", "marker", t0 + 3).id;
  REQUIRE(nodes.received("n3", 2));
  REQUIRE(nodes.received("n2", 2));
  REQUIRE(nodes.received("n1", 1));

  const auto n2 = nodes.of("n2");
  REQUIRE(n2.size() == 2);
  CHECK(n2[0] == ClusterMessage{ClusterMessageKind::group,
                                sent.id,
                                t0,
                                "team",
                                "alice",
                                "to everyone",
                                {"bob", "carol"}});
  CHECK(n2[1] ==
        ClusterMessage{ClusterMessageKind::direct, to_bob, t0 + 2, "", "alice", "marker", {"bob"}});
  const auto n3 = nodes.of("n3");
  REQUIRE(n3.size() == 2);
  CHECK(n3[0].to == std::vector<std::string>{"dave"});
  CHECK(n3[0].id == sent.id);
  CHECK(n3[1].id == to_dave);
  // Nothing for the sender's own node: erin is served there directly.
  const auto n1 = nodes.of("n1");
  REQUIRE(n1.size() == 1);
  CHECK(n1[0].id == to_erin);
  CHECK(n1[0].from == "bob");
  CHECK(nodes.undecodable() == 0);
}

TEST_CASE("redis store: a killed Redis refuses every operation at once, and none hangs") {
  RedisServer redis;
  RedisStoreRig rig(redis);
  rig.store()->configure(test_policy());
  auto& store = *rig.store();
  Calls c{store};
  REQUIRE(c.create("team", "alice", {"bob"}).ok());
  REQUIRE(c.join("team", "bob").ok());

  // A stream of messages in flight when Redis dies: each is answered once,
  // stored (with increasing ids) or refused.
  constexpr int in_flight = 300;
  std::mutex mutex;
  std::vector<tessenger::StoredMessage> answers;
  for (int i = 0; i < in_flight; ++i) {
    store.append_direct_message("alice", "bob", "m" + std::to_string(i), t0 + i,
                                [&](tessenger::StoredMessage stored) {
                                  const std::lock_guard lock(mutex);
                                  answers.push_back(std::move(stored));
                                });
    if (i == in_flight / 3) redis.kill();
  }
  REQUIRE(eventually(
      [&] {
        const std::lock_guard lock(mutex);
        return answers.size() == in_flight;
      },
      5s));
  MessageId last = 0;
  int refused = 0;
  for (const auto& answer : answers) {
    if (answer.outcome.code == errc::service_unavailable) {
      ++refused;
      continue;
    }
    REQUIRE(answer.outcome.ok());
    CHECK(answer.id > last);
    last = answer.id;
  }
  CHECK(refused >= in_flight - in_flight / 3 - 1);

  // Every kind of operation is refused quickly while it stays down.
  const auto start = std::chrono::steady_clock::now();
  CHECK(c.create("other", "carol").code == errc::service_unavailable);
  CHECK(c.join("team", "bob").code == errc::service_unavailable);
  CHECK(c.leave("team", "bob").outcome.code == errc::service_unavailable);
  CHECK(c.remove("team", "alice").outcome.code == errc::service_unavailable);
  CHECK(c.say("team", "alice").outcome.code == errc::service_unavailable);
  CHECK(c.tell("alice", "bob").outcome.code == errc::service_unavailable);
  CHECK(c.missed("bob", 0).outcome.code == errc::service_unavailable);
  CHECK(c.history("alice", "bob").outcome.code == errc::service_unavailable);
  const auto failed = c.fail("alice", "10.0.0.1", t0);
  CHECK_FALSE(failed.blocked_now);
  CHECK_FALSE(failed.account_blocked);
  CHECK_FALSE(c.blocked("alice", "10.0.0.1", t0));
  CHECK(std::chrono::steady_clock::now() - start < 1s);
}

TEST_CASE("redis store: a restarted Redis still holds groups, messages, cursors and blocks") {
  RedisServer redis;
  RedisStoreRig rig(redis);
  rig.store()->configure(test_policy());
  Calls c{*rig.store()};
  REQUIRE(c.create("team", "alice", {"bob", "carol"}).ok());
  REQUIRE(c.join("team", "bob").ok());
  const auto g1 = c.say("team", "alice", "group one").id;
  const auto d1 = c.tell("alice", "bob", "direct one").id;
  rig.store()->delivered({{"bob", g1}});
  for (int i = 0; i < 3; ++i)
    c.fail("alice", "10.0.0.9", t0 + i);
  REQUIRE(c.blocked("alice", "10.0.0.9", t0 + 3));
  // Ask for something: all of the above is answered, so Redis has it.
  REQUIRE(c.missed_since_delivered("bob").after == g1);

  redis.kill();
  REQUIRE(eventually([&] {
    return !on_loop<bool>(rig.io(), [&](auto done) { done(rig.connection().connected()); });
  }));
  redis.start();
  REQUIRE(!rig.connect());

  // Redis forgot the loaded scripts: the store sends them again unasked.
  const auto missed = c.missed_since_delivered("bob");
  REQUIRE(missed.outcome.ok());
  CHECK(missed.after == g1);
  REQUIRE(missed.messages.size() == 1);
  CHECK(missed.messages[0].id == d1);
  CHECK(missed.messages[0].text == "direct one");
  const auto history = c.history("carol", "team");
  REQUIRE(history.entries.size() == 1);
  CHECK(history.entries[0].text == "group one");
  CHECK(c.blocked("alice", "10.0.0.9", t0 + 3));
  CHECK(c.join("team", "bob").code == errc::already_joined);
  CHECK(c.join("team", "carol").ok());
  CHECK(c.create("team", "dave").code == errc::group_exists);
  // The id sequence goes on after the restart.
  CHECK(c.tell("carol", "alice").id > d1);
}
