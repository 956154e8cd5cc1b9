// The abuse limits of the domain core (docs/security.md), without sockets:
// connection counts, failed logins per address, the per-connection request
// rate and the group limits, with a clock the test advances.

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "core/credentials.hpp"
#include "core/hub.hpp"
#include "core/rate_limit.hpp"
#include "hub_doubles.hpp"

namespace p = tessenger::protocol;
using tessenger::errc;
using tessenger::core::SessionId;
using tessenger::core::TokenBucket;
using tessenger::testing::NullLogs;
using tessenger::testing::RecordingOutbox;
using namespace std::chrono_literals;

namespace {

std::unordered_map<std::string, std::string> accounts(int count) {
  std::unordered_map<std::string, std::string> table;
  for (int i = 0; i < count; ++i)
    table.emplace("user" + std::to_string(i), "pw" + std::to_string(i));
  return table;
}

// Remembers the groups whose logs were told they are gone.
struct RemovalLogs : NullLogs {
  std::vector<std::string> removed;
  void group_removed(std::string_view group) override { removed.emplace_back(group); }
};

struct Fixture {
  explicit Fixture(tessenger::Limits limits = {}, std::uint32_t max_attempts = 3)
      : rig(tessenger::core::HubConfig{max_attempts, 10s, limits, "test"},
            std::make_shared<tessenger::core::TableAuthenticator>(accounts(50)), logs, nullptr,
            tessenger::LogSink{
                tessenger::LogLevel::debug,
                [this](tessenger::LogLevel, std::string_view text) { log.emplace_back(text); }}) {}

  RemovalLogs logs;
  std::vector<std::string> log;
  tessenger::core::Instant now{std::chrono::steady_clock::time_point{} + 1h, 1'700'000'000'000'000};
  tessenger::testing::HubRig rig;
  RecordingOutbox& out = rig.out;
  tessenger::core::Hub& hub = rig.hub;
  SessionId next = 1;
  p::RequestId request = 1;
  std::uint8_t version = 1;  // of the sessions connect() opens

  bool accept(SessionId id, const std::string& address) { return rig.connected(id, address, now); }
  SessionId connect(const std::string& address = "192.0.2.1") {
    const SessionId id = next++;
    REQUIRE(accept(id, address));
    rig.handle(id, p::Hello{request++, 1, version, "test"}, now);
    REQUIRE(std::holds_alternative<p::HelloOk>(out.sent[id].back()));
    return id;
  }
  p::Message login(SessionId id, const std::string& user, const std::string& password) {
    rig.handle(id, p::Login{request++, user, password, 5000}, now);
    return out.sent[id].back();
  }
  SessionId online(int user, const std::string& address = "192.0.2.1") {
    const auto id = connect(address);
    const auto name = "user" + std::to_string(user);
    REQUIRE(std::holds_alternative<p::LoginOk>(login(id, name, "pw" + std::to_string(user))));
    return id;
  }
  p::Message request_reply(SessionId id, const p::Message& message) {
    rig.handle(id, message, now);
    return out.sent[id].back();
  }
  // Time passes, on both clocks, and the hub's timer fires.
  void advance(std::chrono::milliseconds d) {
    now.steady += d;
    now.wall += std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    rig.expire(now);
  }
  bool logged(std::string_view part) const {
    for (const auto& line : log) {
      if (line.find(part) != std::string::npos) return true;
    }
    return false;
  }
};

errc error_code(const p::Message& m) {
  REQUIRE(std::holds_alternative<p::Error>(m));
  return static_cast<errc>(std::get<p::Error>(m).code);
}

}  // namespace

TEST_CASE("every abuse limit has a finite default") {
  const tessenger::Limits l;
  CHECK(l.max_connections > 0);
  CHECK(l.max_connections <= 1'000'000);
  CHECK(l.max_connections_per_ip > 0);
  CHECK(l.max_connections_per_ip <= l.max_connections);
  CHECK(l.max_failed_logins_per_ip > 0);
  CHECK(l.failed_login_window_seconds > 0);
  CHECK(l.message_rate > 0);
  CHECK(l.message_burst >= l.message_rate);
  CHECK(l.max_rate_refusals > 0);
  CHECK(l.max_groups_per_user > 0);
  CHECK(l.max_group_members > 0);
}

TEST_CASE("token bucket: a burst, then one event per interval") {
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  const auto interval = TokenBucket::interval_for(10, 1s);
  CHECK(interval == 100ms);
  TokenBucket bucket;
  CHECK(bucket.full(t0));
  for (int i = 0; i < 5; ++i)
    CHECK(bucket.try_take(t0, interval, 5));
  CHECK_FALSE(bucket.try_take(t0, interval, 5));
  CHECK_FALSE(bucket.try_take(t0 + 99ms, interval, 5));
  CHECK(bucket.try_take(t0 + 100ms, interval, 5));
  CHECK_FALSE(bucket.try_take(t0 + 150ms, interval, 5));
  CHECK_FALSE(bucket.full(t0 + 599ms));
  CHECK(bucket.full(t0 + 600ms));
  // Refilled, it allows a whole burst again but never more.
  for (int i = 0; i < 5; ++i)
    CHECK(bucket.try_take(t0 + 10s, interval, 5));
  CHECK_FALSE(bucket.allows(t0 + 10s, interval, 5));
  CHECK_FALSE(TokenBucket{}.allows(t0, interval, 0));
}

TEST_CASE("address keys: IPv4 as is, IPv4-mapped as IPv4, IPv6 by its /64") {
  using tessenger::core::address_key;
  CHECK(address_key("192.0.2.7") == "192.0.2.7");
  CHECK(address_key("::ffff:192.0.2.7") == "192.0.2.7");
  CHECK(address_key("2001:db8:1:2:aaaa::1") == "2001:0db8:0001:0002::/64");
  CHECK(address_key("2001:db8:1:2:bbbb::9") == address_key("2001:db8:1:2:aaaa::1"));
  CHECK(address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1"));
  CHECK(address_key("::1") == "0000:0000:0000:0000::/64");
  CHECK(address_key("not an address") == "not an address");
}

TEST_CASE("connections per address and in total are limited; closing one frees a place") {
  tessenger::Limits limits;
  limits.max_connections = 5;
  limits.max_connections_per_ip = 3;
  Fixture f(limits);
  std::vector<SessionId> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(f.connect("192.0.2.1"));
  CHECK_FALSE(f.accept(100, "192.0.2.1"));
  CHECK(f.logged("192.0.2.1: connection refused: 3 connections from this address"));
  // An IPv6 host counts by its /64, whatever its interface identifier.
  CHECK(f.accept(101, "2001:db8::1"));
  CHECK(f.accept(102, "2001:db8::2"));
  CHECK_FALSE(f.accept(103, "198.51.100.1"));
  CHECK(f.logged("198.51.100.1: connection refused: 5 connections is the limit"));

  f.rig.disconnected(ids[0]);
  CHECK(f.accept(104, "192.0.2.1"));
  CHECK_FALSE(f.accept(105, "192.0.2.1"));
  // A refused connection was never a session: telling the hub it closed is harmless.
  f.rig.disconnected(100);
  CHECK_FALSE(f.accept(106, "192.0.2.1"));
}

TEST_CASE("a flood of one kind of line is cut to a few per 10 s, then summarised") {
  tessenger::Limits limits;
  limits.max_connections_per_ip = 1;
  Fixture f(limits);
  f.connect("192.0.2.1");
  const auto before = f.log.size();
  for (SessionId id = 1000; id < 1150; ++id)
    CHECK_FALSE(f.accept(id, "192.0.2.1"));
  // Five lines of the kind in the window; the other 145 only counted.
  CHECK(f.log.size() - before == 5);
  CHECK(f.logged("(5 refused so far)"));
  CHECK_FALSE(f.logged("(6 refused so far)"));
  // Other kinds are not held back by it.
  const auto other = f.connect("192.0.2.2");
  CHECK(error_code(f.login(other, "nobody", "x")) == tessenger::errc::invalid_username);
  // When the window has passed, one line says how many were left out.
  f.advance(10s);
  CHECK(f.logged("(6 refused so far) (and 144 more like it in the last 10 s)"));
  CHECK(f.log.size() - before == 6);
}

TEST_CASE("one address guessing on many accounts trips the per-address limit") {
  tessenger::Limits limits;
  limits.max_failed_logins_per_ip = 6;
  limits.failed_login_window_seconds = 60;
  Fixture f(limits);
  // Two wrong passwords each on three accounts: no account reaches max_attempts.
  for (int user = 0; user < 3; ++user) {
    const auto id = f.connect("192.0.2.9");
    const auto name = "user" + std::to_string(user);
    CHECK(error_code(f.login(id, name, "guess1")) == errc::invalid_password);
    CHECK(error_code(f.login(id, name, "guess2")) == errc::invalid_password);
    CHECK_FALSE(f.out.closed.contains(id));
  }
  CHECK(f.logged("192.0.2.9: 6 failed logins within 60 s"));

  // Now even the right password is refused from that address, before it is checked.
  const auto id = f.connect("192.0.2.9");
  CHECK(error_code(f.login(id, "user7", "pw7")) == errc::too_many_failed_logins);
  CHECK(f.out.closed.at(id) == errc::too_many_failed_logins);
  // Other addresses are not affected, nor are the accounts themselves.
  f.online(0, "198.51.100.4");

  // One failure's worth refills every window / limit = 10 s.
  f.advance(9s);
  const auto early = f.connect("192.0.2.9");
  CHECK(error_code(f.login(early, "user7", "pw7")) == errc::too_many_failed_logins);
  f.advance(1s);
  const auto later = f.connect("192.0.2.9");
  CHECK(error_code(f.login(later, "nobody", "x")) == errc::invalid_username);
  CHECK(error_code(f.login(later, "user7", "pw7")) == errc::too_many_failed_logins);
  f.advance(60s);
  f.online(7, "192.0.2.9");
}

TEST_CASE("unknown usernames count as failed logins for the address") {
  tessenger::Limits limits;
  limits.max_failed_logins_per_ip = 3;
  Fixture f(limits);
  const auto id = f.connect("192.0.2.5");
  for (const char* name : {"ghost1", "ghost2", "ghost3"})
    CHECK(error_code(f.login(id, name, "x")) == errc::invalid_username);
  CHECK(error_code(f.login(id, "user1", "pw1")) == errc::too_many_failed_logins);
}

TEST_CASE("the failed-login count outlives the connection that made it") {
  tessenger::Limits limits;
  limits.max_failed_logins_per_ip = 2;
  Fixture f(limits);
  for (int round = 0; round < 2; ++round) {
    const auto id = f.connect("192.0.2.6");
    CHECK(error_code(f.login(id, "user" + std::to_string(round), "bad")) == errc::invalid_password);
    f.rig.disconnected(id);
  }
  const auto id = f.connect("192.0.2.6");
  CHECK(error_code(f.login(id, "user3", "pw3")) == errc::too_many_failed_logins);
}

TEST_CASE("a connection over its request rate is refused, then closed if it goes on") {
  tessenger::Limits limits;
  limits.message_rate = 10;
  limits.message_burst = 20;
  limits.max_rate_refusals = 5;
  Fixture f(limits);
  const auto alice = f.online(1, "192.0.2.1");
  const auto bob = f.online(2, "192.0.2.2");
  // Hello and Login used two of alice's burst of 20.
  for (p::RequestId id = 1; id <= 18; ++id) {
    CHECK(std::holds_alternative<p::DirectSent>(
        f.request_reply(alice, p::DirectSend{id, "user2", "hi"})));
  }
  const auto delivered = f.out.sent[bob].size();
  const auto refused = f.request_reply(alice, p::DirectSend{19, "user2", "too fast"});
  CHECK(error_code(refused) == errc::rate_limited);
  CHECK(std::get<p::Error>(refused).request_id == 19);
  CHECK(f.out.sent[bob].size() == delivered);  // not carried out
  CHECK(f.logged("192.0.2.1: user1 is sending faster than 10 requests/s"));

  // One request's worth comes back every 100 ms.
  f.advance(100ms);
  CHECK(std::holds_alternative<p::DirectSent>(
      f.request_reply(alice, p::DirectSend{20, "user2", "paced"})));
  for (p::RequestId id = 21; id < 24; ++id)
    CHECK(error_code(f.request_reply(alice, p::DirectSend{id, "user2", "x"})) ==
          errc::rate_limited);
  CHECK_FALSE(f.out.closed.contains(alice));
  // The fifth refusal since the bucket was last full closes the connection.
  f.rig.handle(alice, p::Ping{24, 1}, f.now);
  const auto& notice = std::get<p::ShutdownEvent>(f.out.sent[alice].back());
  CHECK(static_cast<errc>(notice.code) == errc::rate_limited);
  CHECK(f.out.closed.at(alice) == errc::rate_limited);
  CHECK(f.logged("192.0.2.1: user1 disconnected after 5 requests refused"));
  CHECK_FALSE(f.out.closed.contains(bob));
}

TEST_CASE("a client that slows down recovers: refusals are forgotten once the bucket is full") {
  tessenger::Limits limits;
  limits.message_rate = 10;
  limits.message_burst = 10;
  limits.max_rate_refusals = 3;
  Fixture f(limits);
  const auto alice = f.online(1);
  // Two refusals per burst, five bursts: only a count that was never reset
  // would reach three.
  for (int round = 0; round < 5; ++round) {
    int accepted = 0;
    while (std::holds_alternative<p::Pong>(f.request_reply(alice, p::Ping{1, 0})))
      ++accepted;
    CHECK(accepted >= 8);
    CHECK(error_code(f.request_reply(alice, p::Ping{2, 0})) == errc::rate_limited);
    f.advance(1s);
  }
  CHECK_FALSE(f.out.closed.contains(alice));
}

TEST_CASE("0 switches a limit off") {
  tessenger::Limits limits;
  limits.max_connections = 0;
  limits.max_connections_per_ip = 0;
  limits.max_failed_logins_per_ip = 0;
  limits.message_rate = 0;
  Fixture f(limits);
  for (SessionId id = 1000; id < 1400; ++id)
    CHECK(f.accept(id, "192.0.2.1"));
  const auto id = f.connect();
  for (int i = 0; i < 40; ++i)
    CHECK(error_code(f.login(id, "nobody", "x")) == errc::invalid_username);
  const auto alice = f.online(1);
  for (p::RequestId r = 0; r < 2000; ++r)
    f.rig.handle(alice, p::Ping{r, 0}, f.now);
  CHECK(std::holds_alternative<p::Pong>(f.out.sent[alice].back()));
  CHECK_FALSE(f.out.closed.contains(alice));
}

TEST_CASE("groups per user and members per group are limited and the refusal logged") {
  tessenger::Limits limits;
  limits.max_groups_per_user = 2;
  limits.max_group_members = 3;
  Fixture f(limits);
  const auto alice = f.online(1, "192.0.2.1");
  const auto bob = f.online(2, "192.0.2.2");
  f.online(3, "192.0.2.3");
  f.online(4, "192.0.2.4");

  auto reply = f.request_reply(alice, p::GroupCreate{1, "big", {"user2", "user3", "user4"}});
  CHECK(error_code(reply) == errc::limit_reached);
  CHECK(std::get<p::Error>(reply).detail == "big");
  CHECK(f.logged("192.0.2.1: user1 tried to create group big with 4 members; the limit is 3"));
  CHECK(std::holds_alternative<p::GroupCreated>(
      f.request_reply(alice, p::GroupCreate{2, "g1", {"user2", "user3"}})));
  CHECK(std::holds_alternative<p::GroupCreated>(
      f.request_reply(alice, p::GroupCreate{3, "g2", {"user2"}})));

  // user1 has joined two groups: a third is refused, naming them.
  reply = f.request_reply(alice, p::GroupCreate{4, "g3", {"user2"}});
  CHECK(error_code(reply) == errc::limit_reached);
  CHECK(std::get<p::Error>(reply).detail == "user1");
  CHECK(f.logged("192.0.2.1: user1 tried to create group g3: limit reached for user1"));
  CHECK(error_code(f.request_reply(bob, p::GroupJoin{5, "g3"})) == errc::group_not_found);

  // Joining counts: user2 creates one group, joins one, and is then full.
  CHECK(std::holds_alternative<p::GroupCreated>(
      f.request_reply(bob, p::GroupCreate{6, "b1", {"user4"}})));
  CHECK(std::holds_alternative<p::GroupJoined>(f.request_reply(bob, p::GroupJoin{7, "g1"})));
  reply = f.request_reply(bob, p::GroupJoin{8, "g2"});
  CHECK(error_code(reply) == errc::limit_reached);
  CHECK(std::get<p::Error>(reply).detail == "user2");
}

TEST_CASE("invitations never use up the invited user's quota") {
  // The attack: one user invites another to as many groups as it may create.
  tessenger::Limits limits;
  limits.max_groups_per_user = 5;
  limits.max_invitations_per_minute = 0;
  Fixture f(limits);
  const auto attacker = f.online(1);
  const auto victim = f.online(2);
  for (p::RequestId r = 1; r <= 5; ++r) {
    CHECK(std::holds_alternative<p::GroupCreated>(
        f.request_reply(attacker, p::GroupCreate{r, "spam" + std::to_string(r), {"user2"}})));
  }
  CHECK(error_code(f.request_reply(attacker, p::GroupCreate{6, "spam6", {"user2"}})) ==
        errc::limit_reached);
  // Five invitations pending, and the victim can still make and join all it may.
  for (p::RequestId r = 1; r <= 5; ++r) {
    CAPTURE(r);
    CHECK(std::holds_alternative<p::GroupCreated>(
        f.request_reply(victim, p::GroupCreate{10 + r, "own" + std::to_string(r), {}})));
  }
}

TEST_CASE("a creator's invitations are rate-limited; a big group may overdraw once") {
  tessenger::Limits limits;
  limits.max_invitations_per_minute = 10;  // one every 6 s
  limits.max_groups_per_user = 1000;
  Fixture f(limits);
  const auto alice = f.online(1, "192.0.2.1");
  for (int user = 2; user <= 12; ++user)
    f.online(user, "192.0.2." + std::to_string(user));
  const std::vector<std::string> five{"user2", "user3", "user4", "user5", "user6"};
  CHECK(std::holds_alternative<p::GroupCreated>(
      f.request_reply(alice, p::GroupCreate{1, "a1", five})));
  CHECK(std::holds_alternative<p::GroupCreated>(
      f.request_reply(alice, p::GroupCreate{2, "a2", five})));
  auto reply = f.request_reply(alice, p::GroupCreate{3, "a3", {"user2"}});
  CHECK(error_code(reply) == errc::rate_limited);
  CHECK(std::get<p::Error>(reply).detail == "a3");
  CHECK(
      f.logged("192.0.2.1: user1 is inviting faster than 10 users/min; refusing group creations"));
  // A group with no one invited costs nothing.
  CHECK(std::holds_alternative<p::GroupCreated>(
      f.request_reply(alice, p::GroupCreate{4, "solo", {}})));

  // One token back: a group of eleven is allowed, and then 66 s of debt.
  f.advance(6s);
  std::vector<std::string> eleven;
  for (int user = 2; user <= 12; ++user)
    eleven.push_back("user" + std::to_string(user));
  CHECK(std::holds_alternative<p::GroupCreated>(
      f.request_reply(alice, p::GroupCreate{5, "big", eleven})));
  f.advance(65s);
  CHECK(error_code(f.request_reply(alice, p::GroupCreate{6, "a4", {"user2"}})) ==
        errc::rate_limited);
  f.advance(1s);
  CHECK(std::holds_alternative<p::GroupCreated>(
      f.request_reply(alice, p::GroupCreate{7, "a4", {"user2"}})));

  // Logging in again does not refill the bucket.
  f.rig.handle(alice, p::Logout{8}, f.now);
  f.rig.disconnected(alice);
  const auto again = f.online(1, "192.0.2.1");
  CHECK(error_code(f.request_reply(again, p::GroupCreate{9, "a5", {"user3"}})) ==
        errc::rate_limited);
}

TEST_CASE("leaving, declining and deleting groups, with notices to version 2 members") {
  Fixture f;
  f.version = 2;
  const auto alice = f.online(1);
  const auto bob = f.online(2);
  const auto carol = f.online(3);
  f.version = 1;
  const auto dave = f.online(4);  // an old client: told nothing it cannot read
  REQUIRE(std::holds_alternative<p::GroupCreated>(
      f.request_reply(alice, p::GroupCreate{1, "team", {"user2", "user3", "user4"}})));
  REQUIRE(std::holds_alternative<p::GroupJoined>(f.request_reply(bob, p::GroupJoin{2, "team"})));
  REQUIRE(std::holds_alternative<p::GroupJoined>(f.request_reply(dave, p::GroupJoin{3, "team"})));
  const auto alice_seen = f.out.sent[alice].size();

  // carol declines: a reply, and nobody else is told.
  CHECK(f.request_reply(carol, p::GroupLeave{4, "team"}) ==
        p::Message{p::GroupLeft{4, "team", true}});
  CHECK(f.out.sent[alice].size() == alice_seen);
  CHECK(f.logged("user3 declined the invitation to group team"));
  CHECK(error_code(f.request_reply(carol, p::GroupJoin{5, "team"})) == errc::not_invited);
  CHECK(error_code(f.request_reply(carol, p::GroupLeave{6, "team"})) == errc::not_group_member);
  CHECK(error_code(f.request_reply(carol, p::GroupLeave{7, "nosuch"})) == errc::group_not_found);

  // The old client cannot use what its version does not have.
  CHECK(error_code(f.request_reply(dave, p::GroupLeave{7, "team"})) == errc::unsupported_request);

  CHECK(error_code(f.request_reply(bob, p::GroupDelete{10, "team"})) == errc::not_group_creator);

  // bob leaves: the joined members are told, the old client is not.
  const auto dave_seen = f.out.sent[dave].size();
  CHECK(f.request_reply(bob, p::GroupLeave{8, "team"}) ==
        p::Message{p::GroupLeft{8, "team", false}});
  CHECK(f.out.sent[alice].back() ==
        p::Message{p::GroupNoticeEvent{"team", "user2", p::GroupChange::left}});
  CHECK(f.out.sent[dave].size() == dave_seen);
  CHECK(f.logged("user2 left group team"));
  CHECK(error_code(f.request_reply(bob, p::GroupSend{9, "team", "hi"})) == errc::not_group_member);

  // Only the creator deletes, and only groups that exist.
  CHECK(error_code(f.request_reply(bob, p::GroupDelete{11, "team"})) == errc::not_group_member);
  CHECK(error_code(f.request_reply(alice, p::GroupDelete{12, "nosuch"})) == errc::group_not_found);
  CHECK(f.request_reply(alice, p::GroupDelete{13, "team"}) ==
        p::Message{p::GroupDeleted{13, "team"}});
  CHECK(f.logs.removed == std::vector<std::string>{"team"});
  CHECK(f.logged("user1 deleted group team"));
  CHECK(error_code(f.request_reply(dave, p::GroupSend{14, "team", "hi"})) ==
        errc::group_not_found_for_message);
  // Its name is free again.
  CHECK(std::holds_alternative<p::GroupCreated>(
      f.request_reply(bob, p::GroupCreate{15, "team", {}})));
}

TEST_CASE("a group whose last joined member leaves is removed and its invitations lapse") {
  tessenger::Limits limits;
  limits.max_groups_per_user = 1;
  Fixture f(limits);
  f.version = 2;
  const auto alice = f.online(1);
  const auto bob = f.online(2);
  REQUIRE(std::holds_alternative<p::GroupCreated>(
      f.request_reply(alice, p::GroupCreate{1, "g", {"user2"}})));
  CHECK(f.request_reply(alice, p::GroupLeave{2, "g"}) == p::Message{p::GroupLeft{2, "g", false}});
  CHECK(f.out.sent[bob].back() ==
        p::Message{p::GroupNoticeEvent{"g", "user1", p::GroupChange::closed}});
  CHECK(f.logs.removed == std::vector<std::string>{"g"});
  CHECK(f.logged("group g removed: no member left"));
  CHECK(error_code(f.request_reply(bob, p::GroupJoin{3, "g"})) == errc::group_not_found);
  // The creator's quota came back with it.
  CHECK(
      std::holds_alternative<p::GroupCreated>(f.request_reply(alice, p::GroupCreate{4, "g2", {}})));
}

TEST_CASE("an unanswered login is closed at the timeout and logged with the address") {
  Fixture f;
  const auto id = f.connect("203.0.113.8");
  f.advance(59s);
  CHECK_FALSE(f.out.closed.contains(id));
  f.advance(1s);
  CHECK(f.out.closed.at(id) == errc::login_timeout);
  CHECK(f.logged("203.0.113.8: no login within 60 s"));
}

TEST_CASE("the login timeout is a limit too: it is configurable and counts from the connection") {
  tessenger::Limits limits;
  limits.login_timeout_seconds = 5;
  Fixture f(limits);
  const auto early = f.connect("203.0.113.8");
  f.advance(3s);
  // Failed attempts do not restart the clock.
  const auto late = f.connect("203.0.113.9");
  CHECK(error_code(f.login(early, "user1", "wrong")) == errc::invalid_password);
  f.advance(2s);
  CHECK(f.out.closed.at(early) == errc::login_timeout);
  CHECK_FALSE(f.out.closed.contains(late));
  CHECK(f.logged("203.0.113.8: no login within 5 s"));
  f.advance(3s);
  CHECK(f.out.closed.at(late) == errc::login_timeout);
  CHECK(f.hub.counters().login_timeouts.get() == 2);
}

TEST_CASE("a session the hub closed holds its place in the limits until its socket is closed") {
  tessenger::Limits limits;
  limits.max_connections_per_ip = 1;
  Fixture f(limits);
  const auto alice = f.online(1, "192.0.2.1");
  CHECK(std::holds_alternative<p::LoggedOut>(f.request_reply(alice, p::Logout{f.request++})));
  CHECK(f.out.closed.at(alice) == errc::peer_closed);
  CHECK_FALSE(f.hub.is_online("user1"));
  // Its socket is still being closed: the address has no place yet.
  CHECK_FALSE(f.accept(50, "192.0.2.1"));
  f.rig.disconnected(alice);
  CHECK(f.accept(51, "192.0.2.1"));
}
