// One body, two stores: the memory store and the SQLite store (on a real
// file in a temporary directory) answer every operation alike.

#include <doctest/doctest.h>

#include <tessenger/sqlite_store.hpp>

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
    auto opened = tessenger::open_sqlite_store({dir / "tessenger.db", {}, {}}, ec, problem);
    REQUIRE_MESSAGE(opened, problem);
    return opened;
  }
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
                   SqliteStore) {
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
                   MemoryStore, SqliteStore) {
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
                   Kind, MemoryStore, SqliteStore) {
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
                   MemoryStore, SqliteStore) {
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
                   MemoryStore, SqliteStore) {
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
