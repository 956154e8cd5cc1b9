// One body, three stores: the memory store, the SQLite store (on a real
// file in a temporary directory) and the Redis store (on a redis-server of
// its own) answer every operation alike.

#include <doctest/doctest.h>

#include <thread>

#include <tessenger/sqlite_store.hpp>

#include "redis_store_rig.hpp"
#include "store_calls.hpp"
#include "temp_dir.hpp"

using tessenger::errc;
using tessenger::GroupMember;
using namespace tessenger::testing;

namespace {

struct MemoryStore {
  std::shared_ptr<tessenger::Store> store = tessenger::make_memory_store();
};

struct SqliteStore {
  TempDir dir{"tessenger-store"};
  std::shared_ptr<tessenger::Store> store = open();

  std::shared_ptr<tessenger::Store> open() {
    std::error_code ec;
    std::string problem;
    tessenger::SqliteStoreOptions options{dir / "tessenger.db", {}, {}};
    // Retention runs often here, so its tests need not wait long.
    options.retention_interval = std::chrono::milliseconds(20);
    auto opened = tessenger::open_sqlite_store(options, ec, problem);
    REQUIRE_MESSAGE(opened, problem);
    return opened;
  }
};

struct RedisStore {
  RedisServer redis;
  // Retention runs often here too.
  RedisStoreRig rig{redis, "n1", std::chrono::milliseconds(20)};
  std::shared_ptr<tessenger::Store> store = rig.store();
};

template <class Kind>
struct Fixture {
  Kind kind;
  Calls calls{*kind.store};
  Fixture() { kind.store->configure(test_policy()); }
};

using Listed = std::vector<std::pair<std::string, bool>>;

Listed listed(const std::vector<GroupMember>& members) {
  Listed result;
  for (const auto& member : members)
    result.emplace_back(member.name, member.joined);
  return result;
}

}  // namespace

TEST_CASE_TEMPLATE("groups: creating, joining and the quotas of joined groups", Kind, MemoryStore,
                   SqliteStore, RedisStore) {
  Fixture<Kind> f;
  auto& c = f.calls;
  CHECK(c.create("g1", "alice", {"bob", "carol"}).ok());
  const auto again = c.create("g1", "bob");
  CHECK(again.code == errc::group_exists);
  CHECK(again.detail == "g1");

  CHECK(c.join("nope", "bob").code == errc::group_not_found);
  const auto stranger = c.join("g1", "dave");
  CHECK(stranger.code == errc::not_invited);
  CHECK(stranger.detail == "g1");
  CHECK(c.join("g1", "alice").code == errc::already_joined);
  CHECK(c.join("g1", "bob").ok());
  CHECK(c.join("g1", "bob").code == errc::already_joined);

  // alice has joined 2 (her quota); invitations to her do not count.
  CHECK(c.create("g2", "alice").ok());
  const auto over = c.create("g3", "alice");
  CHECK(over.code == errc::limit_reached);
  CHECK(over.detail == "alice");
  CHECK(c.create("g3", "carol", {"alice"}).ok());
  const auto join_over = c.join("g3", "alice");
  CHECK(join_over.code == errc::limit_reached);
  CHECK(join_over.detail == "alice");

  // 4 groups on the server at most.
  CHECK(c.create("g4", "dave").ok());
  const auto full = c.create("g5", "erin");
  CHECK(full.code == errc::limit_reached);
  CHECK(full.detail == "g5");
}

TEST_CASE_TEMPLATE("groups: leaving, declining, deleting and removal of an empty group", Kind,
                   MemoryStore, SqliteStore, RedisStore) {
  Fixture<Kind> f;
  auto& c = f.calls;
  REQUIRE(c.create("g", "alice", {"bob", "carol", "dave"}).ok());
  REQUIRE(c.join("g", "bob").ok());

  CHECK(c.leave("x", "bob").outcome.code == errc::group_not_found);
  CHECK(c.leave("g", "erin").outcome.code == errc::not_group_member);

  const auto declined = c.leave("g", "dave");
  CHECK(declined.outcome.ok());
  CHECK(declined.declined);
  CHECK_FALSE(declined.removed);
  CHECK(listed(declined.remaining) == Listed{{"alice", true}, {"bob", true}, {"carol", false}});

  const auto left = c.leave("g", "alice");
  CHECK_FALSE(left.declined);
  CHECK_FALSE(left.removed);
  // The creator left, so nobody may delete it; bob is its last joined member.
  CHECK(c.remove("g", "bob").outcome.code == errc::not_group_creator);
  const auto last = c.leave("g", "bob");
  CHECK(last.removed);
  CHECK(listed(last.remaining) == Listed{{"carol", false}});
  CHECK(c.join("g", "carol").code == errc::group_not_found);

  // Deleting: only its creator, while in it; every member's quota comes back.
  REQUIRE(c.create("h", "alice", {"bob"}).ok());
  REQUIRE(c.join("h", "bob").ok());
  REQUIRE(c.create("h2", "bob").ok());
  CHECK(c.remove("x", "alice").outcome.code == errc::group_not_found);
  CHECK(c.remove("h", "erin").outcome.code == errc::not_group_member);
  CHECK(c.remove("h", "bob").outcome.code == errc::not_group_creator);
  const auto removal = c.remove("h", "alice");
  CHECK(removal.outcome.ok());
  CHECK(removal.members == std::vector<std::string>{"bob"});
  CHECK(c.say("h", "alice").outcome.code == errc::group_not_found_for_message);
  CHECK(c.create("h3", "bob").ok());
}

TEST_CASE_TEMPLATE("messages: ids increase within each conversation, recipients are joined members",
                   Kind, MemoryStore, SqliteStore, RedisStore) {
  Fixture<Kind> f;
  auto& c = f.calls;
  REQUIRE(c.create("g", "alice", {"bob", "carol"}).ok());
  REQUIRE(c.join("g", "bob").ok());
  REQUIRE(c.create("h", "bob").ok());

  CHECK(c.say("x", "alice").outcome.code == errc::group_not_found_for_message);
  CHECK(c.say("g", "dave").outcome.code == errc::not_group_member);
  CHECK(c.say("g", "carol").outcome.code == errc::group_not_joined);

  const auto first = c.say("g", "alice");
  CHECK(first.outcome.ok());
  CHECK(first.recipients == std::vector<std::string>{"bob"});
  const auto second_one = c.say("g", "bob");
  CHECK(second_one.recipients == std::vector<std::string>{"alice"});
  CHECK(second_one.id > first.id);
  const auto other = c.say("h", "bob");
  CHECK(other.outcome.ok());
  CHECK(other.recipients.empty());
  CHECK(c.say("g", "alice").id > second_one.id);

  const auto d1 = c.tell("alice", "bob");
  const auto d2 = c.tell("bob", "alice");
  c.tell("carol", "dave");
  const auto d3 = c.tell("alice", "bob");
  CHECK(d1.outcome.ok());
  CHECK(d1.id > 0);
  CHECK(d2.id > d1.id);
  CHECK(d3.id > d2.id);
}

TEST_CASE_TEMPLATE("blocks: per address after max_attempts, lifted after the block period", Kind,
                   MemoryStore, SqliteStore, RedisStore) {
  Fixture<Kind> f;
  auto& c = f.calls;
  const std::string a = "10.0.0.1";
  const std::string b = "10.0.0.2";
  CHECK_FALSE(c.blocked("alice", a, t0));
  CHECK_FALSE(c.fail("alice", a, t0).blocked_now);
  CHECK_FALSE(c.fail("alice", a, t0 + 1).blocked_now);
  const auto third = c.fail("alice", a, t0 + 2);
  CHECK(third.blocked_now);
  CHECK_FALSE(third.account_blocked);
  CHECK(c.blocked("alice", a, t0 + 3));
  CHECK_FALSE(c.blocked("alice", b, t0 + 3));
  CHECK_FALSE(c.blocked("bob", a, t0 + 3));
  CHECK(c.blocked("alice", a, t0 + 2 + 10 * second - 1));
  CHECK_FALSE(c.blocked("alice", a, t0 + 2 + 10 * second));

  // A success resets the count of its address.
  c.fail("alice", b, t0);
  c.fail("alice", b, t0);
  f.kind.store->login_succeeded("alice", b);
  CHECK_FALSE(c.fail("alice", b, t0).blocked_now);
  CHECK_FALSE(c.blocked("alice", b, t0));
}

TEST_CASE_TEMPLATE("blocks: the account-wide cap spares addresses the account logged in from", Kind,
                   MemoryStore, SqliteStore, RedisStore) {
  Fixture<Kind> f;
  auto& c = f.calls;
  f.kind.store->login_succeeded("alice", "192.0.2.1");
  for (int i = 0; i < 5; ++i)
    CHECK_FALSE(c.fail("alice", "10.0.1." + std::to_string(i), t0 + i).account_blocked);
  const auto sixth = c.fail("alice", "10.0.1.99", t0 + 5);
  CHECK(sixth.account_blocked);
  CHECK_FALSE(sixth.blocked_now);
  CHECK(c.blocked("alice", "10.0.2.1", t0 + 6));
  CHECK_FALSE(c.blocked("alice", "192.0.2.1", t0 + 6));
  CHECK_FALSE(c.blocked("bob", "10.0.2.1", t0 + 6));
  CHECK_FALSE(c.blocked("alice", "10.0.2.1", t0 + 5 + 10 * second));
  // Failures spread over more than a block period never add up to the cap.
  for (int i = 0; i < 12; ++i) {
    CHECK_FALSE(c.fail("bob", "10.0.3." + std::to_string(i), t0 + i * 3 * second).account_blocked);
  }
}

namespace {

std::vector<tessenger::MessageId> ids_of(const tessenger::HistoryResult& page) {
  std::vector<tessenger::MessageId> ids;
  for (const auto& entry : page.entries)
    ids.push_back(entry.id);
  return ids;
}

std::vector<tessenger::MessageId> ids_of(const tessenger::MissedPage& page) {
  std::vector<tessenger::MessageId> ids;
  for (const auto& message : page.messages)
    ids.push_back(message.id);
  return ids;
}

using Ids = std::vector<tessenger::MessageId>;

// Retention runs off the hot path: wait, with a deadline, until alice and
// bob's conversation is down to `size`.
void shrinks_to(Calls& c, std::size_t size) {
  for (const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       c.history("alice", "bob").entries.size() > size &&
       std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::yield();
  }
}
using tessenger::protocol::ConversationKind;
using tessenger::protocol::HistoryDirection;

}  // namespace

TEST_CASE_TEMPLATE("messages: one id sequence across every conversation", Kind, MemoryStore,
                   SqliteStore, RedisStore) {
  Fixture<Kind> f;
  auto& c = f.calls;
  REQUIRE(c.create("g", "alice", {"bob"}).ok());
  const auto a = c.tell("alice", "bob").id;
  const auto b = c.say("g", "alice").id;
  const auto d = c.tell("carol", "dave").id;
  CHECK(a < b);
  CHECK(b < d);
}

TEST_CASE_TEMPLATE("history: latest, before and after pages, limits, the same bytes", Kind,
                   MemoryStore, SqliteStore, RedisStore) {
  Fixture<Kind> f;
  auto& c = f.calls;
  Ids sent;
  for (int i = 0; i < 7; ++i) {
    const auto from = i % 2 == 0 ? "alice" : "bob";
    const auto to = i % 2 == 0 ? "bob" : "alice";
    sent.push_back(c.tell(from, to, "m" + std::to_string(i) + " \xe2\x82\xac", t0 + i).id);
    c.tell("carol", "alice", "noise");
  }
  const auto latest = c.history("alice", "bob", HistoryDirection::latest, 0, 3);
  REQUIRE(latest.outcome.ok());
  CHECK(latest.kind == ConversationKind::direct);
  CHECK(ids_of(latest) == Ids{sent[4], sent[5], sent[6]});
  CHECK(latest.more);
  CHECK(latest.entries[2].text == "m6 \xe2\x82\xac");
  CHECK(latest.entries[2].from == "alice");
  CHECK(latest.entries[2].timestamp == t0 + 6);
  // The other side reads the same conversation.
  CHECK(ids_of(c.history("bob", "alice", HistoryDirection::latest, 0, 3)) == ids_of(latest));

  const auto before = c.history("alice", "bob", HistoryDirection::before, sent[4], 3);
  CHECK(ids_of(before) == Ids{sent[1], sent[2], sent[3]});
  CHECK(before.more);
  const auto first = c.history("alice", "bob", HistoryDirection::before, sent[1], 3);
  CHECK(ids_of(first) == Ids{sent[0]});
  CHECK_FALSE(first.more);

  const auto after = c.history("alice", "bob", HistoryDirection::after, sent[2], 2);
  CHECK(ids_of(after) == Ids{sent[3], sent[4]});
  CHECK(after.more);
  const auto tail = c.history("alice", "bob", HistoryDirection::after, sent[4], 10);
  CHECK(ids_of(tail) == Ids{sent[5], sent[6]});
  CHECK_FALSE(tail.more);
  // Anchors are exclusive; a limit above a page is a page.
  CHECK(c.history("alice", "bob", HistoryDirection::after, sent[6]).entries.empty());
  CHECK(c.history("alice", "bob", HistoryDirection::latest, 0, 1000).entries.size() == 7);
}

TEST_CASE_TEMPLATE("history: empty and unknown conversations, and who may read a group", Kind,
                   MemoryStore, SqliteStore, RedisStore) {
  Fixture<Kind> f;
  auto& c = f.calls;
  // Nothing is revealed about users: no conversation reads as empty.
  const auto none = c.history("alice", "nobody");
  CHECK(none.outcome.ok());
  CHECK(none.entries.empty());
  CHECK_FALSE(none.more);
  const auto not_group =
      c.history("alice", "team", HistoryDirection::latest, 0, 10, ConversationKind::group);
  CHECK(not_group.outcome.code == errc::not_group_member);
  CHECK(not_group.outcome.detail == "team");

  REQUIRE(c.create("team", "alice", {"bob"}).ok());
  CHECK(c.history("alice", "team").kind == ConversationKind::group);
  CHECK(c.history("alice", "team").entries.empty());
  const auto early = c.say("team", "alice", "before carol").id;
  REQUIRE(c.join("team", "bob").ok());
  const auto later = c.say("team", "bob", "after bob joined").id;
  // carol is invited after both: she sees neither (nor the group before).
  CHECK(c.history("carol", "team", HistoryDirection::latest, 0, 10, ConversationKind::group)
            .outcome.code == errc::not_group_member);
  REQUIRE(c.create("team2", "carol", {"alice"}).ok());
  const auto mine = c.say("team2", "carol", "x").id;
  REQUIRE(c.join("team2", "alice").ok());
  CHECK(ids_of(c.history("alice", "team2")) == Ids{mine});
  // bob was invited before `early`: he may read it, joined or not.
  CHECK(ids_of(c.history("bob", "team")) == Ids{early, later});
  // A group wins over a user of the same name; kind direct asks for the user.
  CHECK(c.history("alice", "team", HistoryDirection::latest, 0, 10, ConversationKind::direct)
            .entries.empty());
  // After leaving, the group's history is closed.
  REQUIRE(c.leave("team", "bob").outcome.ok());
  CHECK(c.history("bob", "team", HistoryDirection::latest, 0, 10, ConversationKind::group)
            .outcome.code == errc::not_group_member);
}

TEST_CASE_TEMPLATE("missed: what others sent to the user after an id, in order, paged", Kind,
                   MemoryStore, SqliteStore, RedisStore) {
  Fixture<Kind> f;
  auto& c = f.calls;
  REQUIRE(c.create("team", "alice", {"bob", "carol"}).ok());
  REQUIRE(c.join("team", "bob").ok());
  const auto d1 = c.tell("alice", "bob", "one").id;
  const auto own = c.tell("bob", "alice", "mine").id;
  const auto g1 = c.say("team", "alice", "group one").id;
  const auto own_group = c.say("team", "bob", "my group").id;
  const auto d2 = c.tell("carol", "bob", "two").id;
  c.tell("alice", "carol", "not for bob");

  const auto all = c.missed("bob", 0);
  REQUIRE(all.outcome.ok());
  CHECK(ids_of(all) == Ids{d1, g1, d2});
  CHECK_FALSE(all.more);
  CHECK(all.messages[1].group == "team");
  CHECK(all.messages[1].text == "group one");
  CHECK(all.messages[0].group.empty());
  CHECK(ids_of(c.missed("bob", d1)) == Ids{g1, d2});
  const auto paged = c.missed("bob", 0, 2);
  CHECK(ids_of(paged) == Ids{d1, g1});
  CHECK(paged.more);
  CHECK(ids_of(c.missed("alice", 0)) == Ids{own, own_group});
  // carol is invited, not joined: group messages are not pushed to her.
  CHECK(ids_of(c.missed("carol", 0)) == Ids{own_group + 2});

  // From the cursor of what was delivered.
  CHECK(ids_of(c.missed_since_delivered("bob")) == Ids{d1, g1, d2});
  f.kind.store->delivered({{"bob", g1}});
  CHECK(c.missed_since_delivered("bob").after == g1);
  CHECK(ids_of(c.missed_since_delivered("bob")) == Ids{d2});
  f.kind.store->delivered({{"bob", d1}});  // an older one changes nothing
  CHECK(ids_of(c.missed_since_delivered("bob")) == Ids{d2});
}

TEST_CASE_TEMPLATE("retention: history_max keeps each conversation's newest", Kind, MemoryStore,
                   SqliteStore, RedisStore) {
  Fixture<Kind> f;
  auto policy = test_policy();
  policy.history_max = 3;
  f.kind.store->configure(policy);
  auto& c = f.calls;
  Ids sent;
  for (int i = 0; i < 6; ++i)
    sent.push_back(c.tell("alice", "bob", "m", t0 + i).id);
  c.tell("carol", "bob");
  shrinks_to(c, 3);
  CHECK(ids_of(c.history("alice", "bob")) == Ids{sent[3], sent[4], sent[5]});
  CHECK(c.history("carol", "bob").entries.size() == 1);
}

TEST_CASE_TEMPLATE("retention: history_days removes what is older", Kind, MemoryStore, SqliteStore,
                   RedisStore) {
  Fixture<Kind> f;
  auto policy = test_policy();
  policy.history_days = 1;
  f.kind.store->configure(policy);
  auto& c = f.calls;
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const auto day = std::int64_t{86'400} * second;
  c.tell("alice", "bob", "old", now - 2 * day);
  const auto recent = c.tell("alice", "bob", "recent", now - day / 2).id;
  shrinks_to(c, 1);
  CHECK(ids_of(c.history("alice", "bob")) == Ids{recent});
}
