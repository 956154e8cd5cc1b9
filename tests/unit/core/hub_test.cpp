// The chat domain (SPEC §3-§5) without sockets: requests in, replies, events
// and log records out, with a clock the test advances.

#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <set>

#include "core/credentials.hpp"
#include "core/hub.hpp"
#include "hub_doubles.hpp"

namespace p = tessenger::protocol;
using tessenger::errc;
using tessenger::core::SessionId;
using tessenger::testing::RecordingOutbox;

namespace {

struct MemoryLogs : tessenger::core::LogStore {
  std::vector<std::string> messages;
  std::map<std::string, std::vector<std::string>> groups;
  std::vector<std::string> userlog;  // as of the last flush
  std::vector<std::string> removed;  // groups, in order
  int rewrites = 0;

  void user_online(std::size_t seq, const tessenger::core::OnlineRecord& r) override {
    userlog.push_back(std::to_string(seq) + "; " + r.username);
  }
  void user_offline() override { ++rewrites; }
  void direct_message(p::Timestamp, std::string_view from, std::string_view text) override {
    messages.push_back(std::to_string(messages.size() + 1) + "; " + std::string(from) + "; " +
                       std::string(text));
  }
  void group_created(std::string_view group) override { groups[std::string(group)]; }
  void group_message(std::string_view group, p::Timestamp, std::string_view from,
                     std::string_view text) override {
    auto& lines = groups.at(std::string(group));
    lines.push_back(std::to_string(lines.size() + 1) + "; " + std::string(from) + "; " +
                    std::string(text));
  }
  void group_removed(std::string_view group) override { removed.emplace_back(group); }
  void flush(std::span<const tessenger::core::OnlineRecord> online, Done done) override {
    userlog.clear();
    std::size_t seq = 0;
    for (const auto& r : online)
      userlog.push_back(std::to_string(++seq) + "; " + r.username);
    if (done) done();
  }
};

struct Fixture {
  MemoryLogs logs;
  tessenger::core::Instant now{std::chrono::steady_clock::time_point{} + std::chrono::hours(1),
                               1'700'000'000'000'000};
  tessenger::testing::HubRig rig{
      tessenger::core::HubConfig{3, std::chrono::seconds(10), {}, "test"},
      std::make_shared<tessenger::core::TableAuthenticator>(
          std::unordered_map<std::string, std::string>{
              {"alice", "pa"}, {"bob", "pb"}, {"carol", "pc"}, {"dave", "pd"}}),
      logs};
  RecordingOutbox& out = rig.out;
  tessenger::core::Hub& hub = rig.hub;
  SessionId next = 1;
  p::RequestId request = 100;

  SessionId connect(const std::string& address = "127.0.0.1", std::uint8_t version = 2) {
    const SessionId id = next++;
    rig.connected(id, address, now);
    rig.handle(id, p::Hello{request++, version, version, "test"}, now);
    REQUIRE(std::holds_alternative<p::HelloOk>(out.sent[id].back()));
    return id;
  }
  p::Message login(SessionId id, const std::string& user, const std::string& password,
                   std::uint16_t udp = 5000) {
    rig.handle(id, p::Login{request++, user, password, udp}, now);
    // A version 3 login ends with the MissedEnd after its reply.
    const auto& sent = out.sent[id];
    if (sent.size() > 1 && std::holds_alternative<p::MissedEnd>(sent.back())) {
      return sent[sent.size() - 2];
    }
    return sent.back();
  }
  SessionId online(const std::string& user, std::uint8_t version = 2,
                   p::MessageId resume_after = 0) {
    const auto id = connect("127.0.0.1", version);
    rig.handle(id, p::Login{request++, user, "p" + user.substr(0, 1), 5000, resume_after}, now);
    const auto reply = last_of<p::LoginOk>(id);
    REQUIRE(reply.has_value());
    return id;
  }
  template <class T>
  std::optional<T> last_of(SessionId id) {
    for (auto it = out.sent[id].rbegin(); it != out.sent[id].rend(); ++it) {
      if (const auto* m = std::get_if<T>(&*it)) return *m;
    }
    return std::nullopt;
  }
  template <class T>
  std::vector<T> all_of(SessionId id) {
    std::vector<T> found;
    for (const auto& m : out.sent[id]) {
      if (const auto* typed = std::get_if<T>(&m)) found.push_back(*typed);
    }
    return found;
  }
  p::Message request_reply(SessionId id, p::Message message) {
    rig.handle(id, message, now);
    return out.sent[id].back();
  }
  void advance(std::chrono::milliseconds d) {
    now.steady += d;
    now.wall += std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    rig.expire(now);
  }
};

errc error_code(const p::Message& m) {
  REQUIRE(std::holds_alternative<p::Error>(m));
  return static_cast<errc>(std::get<p::Error>(m).code);
}
std::string error_detail(const p::Message& m) {
  return std::get<p::Error>(m).detail;
}

}  // namespace

TEST_CASE_FIXTURE(Fixture, "the first frame must be a Hello with a version we speak") {
  rig.connected(1, "127.0.0.1", now);
  rig.handle(1, p::Login{7, "alice", "pa", 1}, now);
  CHECK(error_code(out.sent[1].back()) == errc::unexpected_message);
  CHECK(out.closed.at(1) == errc::unexpected_message);

  rig.connected(2, "127.0.0.1", now);
  rig.handle(2,
             p::Hello{8, static_cast<std::uint8_t>(p::version + 1),
                      static_cast<std::uint8_t>(p::version + 2), "future"},
             now);
  CHECK(error_code(out.sent[2].back()) == errc::unsupported_version);
  CHECK(std::get<p::Error>(out.sent[2].back()).request_id == 8);
  CHECK(out.closed.contains(2));

  rig.connected(3, "127.0.0.1", now);
  rig.handle(3, p::Hello{9, 1, p::version + 2, "newer but compatible"}, now);
  const auto ok = std::get<p::HelloOk>(out.sent[3].back());
  CHECK(ok.request_id == 9);
  CHECK(ok.version == p::version);
  CHECK(ok.max_frame_size == 64 * 1024);
  CHECK(out.versions.at(3) == p::version);

  rig.connected(4, "127.0.0.1", now);
  rig.handle(4, p::Hello{10, 1, 1, "older"}, now);
  CHECK(std::get<p::HelloOk>(out.sent[4].back()).version == 1);
  CHECK(out.versions.at(4) == 1);
}

TEST_CASE_FIXTURE(Fixture, "login: unknown user, wrong password, success") {
  const auto id = connect();
  CHECK(error_code(login(id, "zed", "x")) == errc::invalid_username);
  CHECK(error_code(login(id, "alice", "wrong")) == errc::invalid_password);
  CHECK_FALSE(out.closed.contains(id));
  const auto ok = login(id, "alice", "pa");
  REQUIRE(std::holds_alternative<p::LoginOk>(ok));
  CHECK(std::get<p::LoginOk>(ok).username == "alice");
  CHECK(hub.is_online("alice"));
}

TEST_CASE_FIXTURE(Fixture, "requests before login are refused; a second login is unexpected") {
  const auto id = connect();
  CHECK(error_code(request_reply(id, p::DirectSend{1, "bob", "hi"})) == errc::not_logged_in);
  CHECK(std::holds_alternative<p::Pong>(request_reply(id, p::Ping{2, 42})));
  REQUIRE(std::holds_alternative<p::LoginOk>(login(id, "alice", "pa")));
  CHECK(error_code(login(id, "bob", "pb")) == errc::unexpected_message);
}

TEST_CASE_FIXTURE(Fixture, "failures reaching max_attempts block the account for block_duration") {
  auto first = connect();
  CHECK(error_code(login(first, "alice", "x")) == errc::invalid_password);
  // Failures count per username, across connections.
  auto second = connect();
  CHECK(error_code(login(second, "alice", "y")) == errc::invalid_password);
  CHECK(error_code(login(second, "alice", "z")) == errc::account_blocked_now);
  CHECK(out.closed.at(second) == errc::account_blocked_now);

  // Even the right password is refused while blocked.
  auto third = connect();
  CHECK(error_code(login(third, "alice", "pa")) == errc::account_blocked);
  CHECK(out.closed.contains(third));

  advance(std::chrono::seconds(9));
  auto fourth = connect();
  CHECK(error_code(login(fourth, "alice", "pa")) == errc::account_blocked);

  // Other accounts are not affected.
  CHECK(std::holds_alternative<p::LoginOk>(login(first, "bob", "pb")));

  advance(std::chrono::seconds(1));
  auto fifth = connect();
  CHECK(std::holds_alternative<p::LoginOk>(login(fifth, "alice", "pa")));
}

TEST_CASE_FIXTURE(Fixture, "a successful login resets the failure count") {
  auto id = connect();
  CHECK(error_code(login(id, "alice", "x")) == errc::invalid_password);
  CHECK(error_code(login(id, "alice", "x")) == errc::invalid_password);
  REQUIRE(std::holds_alternative<p::LoginOk>(login(id, "alice", "pa")));
  rig.handle(id, p::Logout{1}, now);
  rig.disconnected(id);
  auto again = connect();
  CHECK(error_code(login(again, "alice", "x")) == errc::invalid_password);
  CHECK(error_code(login(again, "alice", "x")) == errc::invalid_password);
  CHECK_FALSE(out.closed.contains(again));
}

TEST_CASE_FIXTURE(Fixture, "a second login to an online account is refused; the first is kept") {
  const auto alice = online("alice");
  const auto intruder = connect();
  rig.handle(intruder, p::Login{request++, "alice", "pa", 1}, now);
  // alice is alive: she answers the probe the second login caused.
  const auto probe = std::get<p::Ping>(out.sent[alice].back());
  rig.handle(alice, p::Pong{probe.request_id, probe.payload}, now);
  CHECK(error_code(out.sent[intruder].back()) == errc::already_logged_in);
  CHECK_FALSE(out.closed.contains(alice));
  CHECK_FALSE(out.closed.contains(intruder));
  const auto bob = online("bob");
  CHECK(std::holds_alternative<p::DirectSent>(request_reply(bob, p::DirectSend{1, "alice", "hi"})));
}

TEST_CASE_FIXTURE(Fixture, "login timeout closes only sessions that have not logged in") {
  const auto waiting = connect();
  const auto alice = online("alice");
  advance(std::chrono::seconds(59));
  CHECK_FALSE(out.closed.contains(waiting));
  advance(std::chrono::seconds(1));
  const auto& notice = std::get<p::ShutdownEvent>(out.sent[waiting].back());
  CHECK(static_cast<errc>(notice.code) == errc::login_timeout);
  CHECK(out.closed.at(waiting) == errc::login_timeout);
  CHECK_FALSE(out.closed.contains(alice));
  CHECK(hub.counters().login_timeouts.get() == 1);
}

TEST_CASE_FIXTURE(Fixture, "msgto: delivery, offline, unknown, self, bad text") {
  const auto alice = online("alice");
  const auto bob = online("bob");
  const auto sent = request_reply(alice, p::DirectSend{11, "bob", "  hello bob  "});
  REQUIRE(std::holds_alternative<p::DirectSent>(sent));
  CHECK(std::get<p::DirectSent>(sent).request_id == 11);
  CHECK(std::get<p::DirectSent>(sent).timestamp == now.wall);
  const auto event = std::get<p::DirectEvent>(out.sent[bob].back());
  CHECK(event == p::DirectEvent{"alice", now.wall, "hello bob", event.id});
  CHECK(event.id != 0);
  CHECK(logs.messages == std::vector<std::string>{"1; alice; hello bob"});

  auto reply = request_reply(alice, p::DirectSend{12, "carol", "hi"});
  CHECK(error_code(reply) == errc::user_not_online);
  CHECK(error_detail(reply) == "carol");
  reply = request_reply(alice, p::DirectSend{13, "nobody", "hi"});
  CHECK(error_code(reply) == errc::user_not_online);
  CHECK(error_detail(reply) == "nobody");
  CHECK(error_code(request_reply(alice, p::DirectSend{14, "alice", "me"})) ==
        errc::cannot_message_self);
  CHECK(error_code(request_reply(alice, p::DirectSend{15, "bob", "   "})) == errc::invalid_text);
  CHECK(error_code(request_reply(alice, p::DirectSend{16, "bob", "a\nb"})) == errc::invalid_text);
  CHECK(logs.messages.size() == 1);
}

TEST_CASE_FIXTURE(Fixture, "activeuser lists the other online users in login order") {
  const auto alice = online("alice");
  auto reply = std::get<p::ActiveUsers>(request_reply(alice, p::ActiveUsersQuery{1}));
  CHECK(reply.users.empty());
  const auto carol = connect("10.0.0.3");
  REQUIRE(std::holds_alternative<p::LoginOk>(login(carol, "carol", "pc", 6003)));
  now.wall += 1'000'000;
  const auto bob = connect("10.0.0.2");
  REQUIRE(std::holds_alternative<p::LoginOk>(login(bob, "bob", "pb", 6002)));
  reply = std::get<p::ActiveUsers>(request_reply(alice, p::ActiveUsersQuery{2}));
  REQUIRE(reply.users.size() == 2);
  CHECK(reply.users[0] == p::ActiveUser{"carol", "10.0.0.3", 6003, now.wall - 1'000'000});
  CHECK(reply.users[1] == p::ActiveUser{"bob", "10.0.0.2", 6002, now.wall});
}

TEST_CASE_FIXTURE(Fixture, "userlog lists who is online, renumbered after a logout") {
  const auto alice = online("alice");
  online("bob");
  const auto carol = online("carol");
  hub.flush_logs();
  CHECK(logs.userlog == std::vector<std::string>{"1; alice", "2; bob", "3; carol"});
  const auto bye = request_reply(alice, p::Logout{5});
  CHECK(std::get<p::LoggedOut>(bye) == p::LoggedOut{5, "alice"});
  CHECK(out.closed.contains(alice));
  rig.disconnected(alice);
  hub.flush_logs();
  CHECK(logs.userlog == std::vector<std::string>{"1; bob", "2; carol"});
  // A dropped connection is a logout too.
  rig.disconnected(carol);
  hub.flush_logs();
  CHECK(logs.userlog == std::vector<std::string>{"1; bob"});
  CHECK_FALSE(hub.is_online("carol"));
}

TEST_CASE_FIXTURE(Fixture, "group life cycle and every error") {
  const auto alice = online("alice");
  const auto bob = online("bob");
  const auto carol = online("carol");

  // Every listed user must be online; nothing is created otherwise.
  auto reply = request_reply(alice, p::GroupCreate{1, "chat", {"bob", "dave", "carol"}});
  CHECK(error_code(reply) == errc::user_not_online);
  CHECK(error_detail(reply) == "dave");
  reply = request_reply(alice, p::GroupCreate{2, "chat", {"bob", "nobody"}});
  CHECK(error_detail(reply) == "nobody");
  CHECK(error_code(request_reply(alice, p::GroupCreate{3, "bad_name", {"bob"}})) ==
        errc::invalid_group_name);
  CHECK(error_code(request_reply(bob, p::GroupJoin{4, "chat"})) == errc::group_not_found);

  // The creator may list themself and repeat names: both ignored.
  const auto created = std::get<p::GroupCreated>(
      request_reply(alice, p::GroupCreate{5, "chat", {"alice", "bob", "bob", "carol"}}));
  CHECK(created.members == std::vector<std::string>{"alice", "bob", "carol"});
  CHECK(std::get<p::InviteEvent>(out.sent[bob].back()) == p::InviteEvent{"chat", "alice"});
  CHECK(std::get<p::InviteEvent>(out.sent[carol].back()) == p::InviteEvent{"chat", "alice"});
  CHECK(logs.groups.contains("chat"));
  reply = request_reply(bob, p::GroupCreate{6, "chat", {"carol"}});
  CHECK(error_code(reply) == errc::group_exists);
  CHECK(error_detail(reply) == "chat");

  const auto dave = online("dave");
  CHECK(error_code(request_reply(dave, p::GroupJoin{7, "chat"})) == errc::not_invited);
  CHECK(error_code(request_reply(dave, p::GroupSend{8, "chat", "hi"})) == errc::not_group_member);
  CHECK(error_code(request_reply(bob, p::GroupSend{9, "chat", "hi"})) == errc::group_not_joined);
  CHECK(error_code(request_reply(bob, p::GroupSend{10, "nochat", "hi"})) ==
        errc::group_not_found_for_message);
  CHECK(error_code(request_reply(alice, p::GroupJoin{11, "chat"})) == errc::already_joined);

  CHECK(std::get<p::GroupJoined>(request_reply(bob, p::GroupJoin{12, "chat"})) ==
        p::GroupJoined{12, "chat"});
  CHECK(error_code(request_reply(bob, p::GroupJoin{13, "chat"})) == errc::already_joined);

  // Only other joined members receive it: carol is invited, not joined.
  const auto carol_before = out.sent[carol].size();
  const auto sent = request_reply(alice, p::GroupSend{14, "chat", "hello group"});
  CHECK(std::get<p::GroupSent>(sent).timestamp == now.wall);
  const auto group_event = std::get<p::GroupEvent>(out.sent[bob].back());
  CHECK(group_event == p::GroupEvent{"chat", "alice", now.wall, "hello group", group_event.id});
  CHECK(out.sent[carol].size() == carol_before);
  CHECK(logs.groups.at("chat") == std::vector<std::string>{"1; alice; hello group"});

  // A logged-out member stays a member; messages to them are simply not delivered.
  rig.handle(bob, p::Logout{15}, now);
  rig.disconnected(bob);
  CHECK(std::holds_alternative<p::GroupSent>(
      request_reply(alice, p::GroupSend{16, "chat", "while bob is away"})));
  const auto bob_again = online("bob");
  CHECK(std::holds_alternative<p::GroupSent>(
      request_reply(bob_again, p::GroupSend{17, "chat", "back"})));
  CHECK(std::get<p::GroupEvent>(out.sent[alice].back()).text == "back");
  CHECK(logs.groups.at("chat").size() == 3);
}

TEST_CASE_FIXTURE(Fixture, "a group of only the creator is allowed") {
  const auto alice = online("alice");
  const auto created =
      std::get<p::GroupCreated>(request_reply(alice, p::GroupCreate{1, "solo", {"alice"}}));
  CHECK(created.members == std::vector<std::string>{"alice"});
}

TEST_CASE_FIXTURE(Fixture, "file offer introduces the peers with a shared id and key") {
  const auto alice = connect("10.0.0.1");
  REQUIRE(std::holds_alternative<p::LoginOk>(login(alice, "alice", "pa", 7001)));
  const auto bob = connect("10.0.0.2");
  REQUIRE(std::holds_alternative<p::LoginOk>(login(bob, "bob", "pb", 7002)));
  p::Sha256 digest{};
  digest.fill(0xab);
  const auto ok =
      std::get<p::FileOfferOk>(request_reply(alice, p::FileOffer{3, "bob", "a.mp4", 1234, digest}));
  CHECK(ok.peer_address == "10.0.0.2");
  CHECK(ok.peer_udp_port == 7002);
  CHECK(ok.transfer_id != 0);
  const auto incoming = std::get<p::FileIncomingEvent>(out.sent[bob].back());
  CHECK(incoming.transfer_id == ok.transfer_id);
  CHECK(incoming.key == ok.key);
  CHECK(incoming.from == "alice");
  CHECK(incoming.file_name == "a.mp4");
  CHECK(incoming.size == 1234);
  CHECK(incoming.sha256 == digest);
  CHECK(incoming.sender_address == "10.0.0.1");
  CHECK(incoming.sender_udp_port == 7001);

  CHECK(error_code(request_reply(alice, p::FileOffer{4, "carol", "a", 1, digest})) ==
        errc::user_not_online);
  CHECK(error_code(request_reply(alice, p::FileOffer{5, "alice", "a", 1, digest})) ==
        errc::cannot_message_self);
}

TEST_CASE_FIXTURE(Fixture,
                  "version 3: check before an offer; a transfer's peer told when one side goes") {
  const auto alice = connect("10.0.0.1", 3);
  REQUIRE(std::holds_alternative<p::LoginOk>(login(alice, "alice", "pa", 7001)));
  const auto bob = connect("10.0.0.2", 3);
  REQUIRE(std::holds_alternative<p::LoginOk>(login(bob, "bob", "pb", 7002)));
  const auto carol = connect("10.0.0.3", 3);
  REQUIRE(std::holds_alternative<p::LoginOk>(login(carol, "carol", "pc", 0)));

  CHECK(request_reply(alice, p::FileOfferCheck{3, "bob"}) ==
        p::Message{p::FileOfferChecked{3, "bob"}});
  CHECK(error_code(request_reply(alice, p::FileOfferCheck{4, "dave"})) == errc::user_not_online);
  CHECK(error_code(request_reply(alice, p::FileOfferCheck{5, "alice"})) ==
        errc::cannot_message_self);
  CHECK(error_code(request_reply(alice, p::FileOfferCheck{6, "carol"})) == errc::invalid_argument);
  // A check changes nothing: bob heard of no file.
  CHECK_FALSE(std::holds_alternative<p::FileIncomingEvent>(out.sent[bob].back()));

  const auto to_bob =
      std::get<p::FileOfferOk>(request_reply(alice, p::FileOffer{7, "bob", "a", 1, {}}));
  const auto from_bob =
      std::get<p::FileOfferOk>(request_reply(bob, p::FileOffer{8, "alice", "b", 1, {}}));
  // bob's connection ends: alice is told of both transfers, the one she
  // sends and the one she receives.
  const auto before = out.sent[alice].size();
  rig.disconnected(bob);
  REQUIRE(out.sent[alice].size() == before + 2);
  CHECK(out.sent[alice][before] ==
        p::Message{p::TransferCancelledEvent{to_bob.transfer_id, "bob"}});
  CHECK(out.sent[alice][before + 1] ==
        p::Message{p::TransferCancelledEvent{from_bob.transfer_id, "bob"}});
  // A version 2 session is not told: it has no such event.
  const auto old = connect("10.0.0.4", 2);
  REQUIRE(std::holds_alternative<p::LoginOk>(login(old, "dave", "pd", 7004)));
  CHECK(error_code(request_reply(old, p::FileOfferCheck{9, "alice"})) == errc::unsupported_request);
  REQUIRE(std::holds_alternative<p::FileOfferOk>(
      request_reply(old, p::FileOffer{10, "alice", "c", 1, {}})));
  const auto count = out.sent[old].size();
  rig.handle(alice, p::Logout{11}, now);
  CHECK(out.sent[old].size() == count);
}

TEST_CASE_FIXTURE(Fixture, "replies and events sent by a client are protocol violations") {
  const auto alice = online("alice");
  rig.handle(alice, p::DirectEvent{"x", 1, "spoof"}, now);
  CHECK(error_code(out.sent[alice].back()) == errc::unexpected_message);
  CHECK(out.closed.contains(alice));
}

TEST_CASE_FIXTURE(Fixture, "shutdown tells every session and closes it") {
  const auto alice = online("alice");
  const auto waiting = connect();
  hub.shutdown();
  for (auto id : {alice, waiting}) {
    CHECK(static_cast<errc>(std::get<p::ShutdownEvent>(out.sent[id].back()).code) ==
          errc::server_shutdown);
    CHECK(out.closed.at(id) == errc::server_shutdown);
  }
}

TEST_CASE_FIXTURE(Fixture, "a protocol error is reported and closes only that session") {
  const auto alice = online("alice");
  const auto bob = online("bob");
  hub.protocol_error(alice, make_error_code(errc::frame_too_large));
  CHECK(error_code(out.sent[alice].back()) == errc::frame_too_large);
  CHECK(out.closed.contains(alice));
  CHECK_FALSE(out.closed.contains(bob));
}

// ---- Liveness: the hub owns every deadline ----

TEST_CASE_FIXTURE(Fixture, "a silent session is pinged, and closed when the ping goes unanswered") {
  const auto alice = online("alice");
  const auto bob = online("bob");
  REQUIRE(hub.next_expiry().has_value());
  advance(std::chrono::seconds(29));
  CHECK(hub.counters().pings_sent.get() == 0);
  advance(std::chrono::seconds(1));
  CHECK(std::holds_alternative<p::Ping>(out.sent[alice].back()));
  CHECK(std::holds_alternative<p::Ping>(out.sent[bob].back()));
  // bob answers, alice does not.
  const auto ping = std::get<p::Ping>(out.sent[bob].back());
  rig.handle(bob, p::Pong{ping.request_id, ping.payload}, now);
  advance(std::chrono::seconds(14));
  CHECK_FALSE(out.closed.contains(alice));
  advance(std::chrono::seconds(1));
  CHECK(out.closed.at(alice) == errc::timed_out);
  CHECK_FALSE(hub.is_online("alice"));
  CHECK_FALSE(out.closed.contains(bob));
  CHECK(hub.is_online("bob"));
  CHECK(hub.counters().ping_timeouts.get() == 1);
}

TEST_CASE_FIXTURE(Fixture, "any input counts as alive; a busy session is never pinged") {
  const auto alice = online("alice");
  for (int i = 0; i < 10; ++i) {
    advance(std::chrono::seconds(20));
    rig.handle(alice, p::ActiveUsersQuery{request++}, now);
  }
  CHECK(hub.counters().pings_sent.get() == 0);
  CHECK_FALSE(out.closed.contains(alice));
}

TEST_CASE_FIXTURE(Fixture, "version 1 sessions are never pinged") {
  const auto old = connect("127.0.0.1", 1);
  REQUIRE(std::holds_alternative<p::LoginOk>(login(old, "alice", "pa")));
  advance(std::chrono::minutes(10));
  CHECK(hub.counters().pings_sent.get() == 0);
  CHECK(hub.is_online("alice"));
}

TEST_CASE_FIXTURE(Fixture, "a second login probes the live session; an answer keeps it") {
  const auto alice = online("alice");
  const auto intruder = connect("10.9.9.9");
  const auto before = out.sent[intruder].size();
  rig.handle(intruder, p::Login{request++, "alice", "pa", 1}, now);
  // Undecided until the probe is answered or runs out; its input waits.
  CHECK(out.sent[intruder].size() == before);
  CHECK_FALSE(hub.wants_input(intruder));
  const auto probe = std::get<p::Ping>(out.sent[alice].back());
  advance(std::chrono::milliseconds(500));
  rig.handle(alice, p::Pong{probe.request_id, probe.payload}, now);
  CHECK(error_code(out.sent[intruder].back()) == errc::already_logged_in);
  CHECK(hub.wants_input(intruder));
  const auto told = std::get<p::LoginAttemptEvent>(out.sent[alice].back());
  CHECK(told.address == "10.9.9.9");
  CHECK(told.timestamp == now.wall);
  CHECK_FALSE(out.closed.contains(alice));
  CHECK(hub.counters().login_probes.get() == 1);
}

TEST_CASE_FIXTURE(Fixture, "a session that does not answer the probe within 2 s gives way") {
  const auto alice = online("alice");
  const auto again = connect();
  rig.handle(again, p::Login{request++, "alice", "pa", 4242}, now);
  advance(std::chrono::milliseconds(1999));
  CHECK_FALSE(out.closed.contains(alice));
  advance(std::chrono::milliseconds(1));
  CHECK(out.closed.at(alice) == errc::timed_out);
  REQUIRE(std::holds_alternative<p::LoginOk>(out.sent[again].back()));
  REQUIRE(hub.online().size() == 1);
  CHECK(hub.online()[0].udp_port == 4242);
  // The old session is closing: a late answer changes nothing.
  rig.handle(alice, p::Pong{1, 0}, now);
  CHECK(hub.online().size() == 1);
}

TEST_CASE_FIXTURE(Fixture,
                  "a version 1 session is not probed: the second login is refused at once") {
  const auto old = connect("127.0.0.1", 1);
  REQUIRE(std::holds_alternative<p::LoginOk>(login(old, "alice", "pa")));
  const auto again = connect();
  CHECK(error_code(login(again, "alice", "pa")) == errc::already_logged_in);
  CHECK(hub.counters().login_probes.get() == 0);
}

TEST_CASE_FIXTURE(Fixture, "an unknown request is answered unsupported and the session goes on") {
  const auto alice = online("alice");
  hub.unsupported(alice, 77);
  CHECK(error_code(out.sent[alice].back()) == errc::unsupported_request);
  CHECK(std::get<p::Error>(out.sent[alice].back()).request_id == 77);
  CHECK_FALSE(out.closed.contains(alice));
  CHECK(std::holds_alternative<p::Pong>(request_reply(alice, p::Ping{78, 1})));
}

TEST_CASE_FIXTURE(Fixture, "a user whose login is still being decided gets no one's events") {
  const auto alice = online("alice");
  const auto bob = connect();
  // bob's name is claimed, but the claim's result has not been acted on.
  hub.handle(bob, p::Login{request++, "bob", "pb", 5000}, now);
  while (!hub.is_online("bob")) {
    REQUIRE_FALSE(rig.tasks.tasks.empty());
    for (auto& task : std::exchange(rig.tasks.tasks, {}))
      task();
  }
  REQUIRE_FALSE(std::holds_alternative<p::LoginOk>(out.sent[bob].back()));
  hub.handle(alice, p::DirectSend{1, "bob", "too early"}, now);
  CHECK(error_code(out.sent[alice].back()) == errc::user_not_online);
  rig.tasks.run();
  REQUIRE(std::holds_alternative<p::LoginOk>(out.sent[bob].back()));
  CHECK(std::none_of(out.sent[bob].begin(), out.sent[bob].end(), [](const p::Message& m) {
    return std::holds_alternative<p::DirectEvent>(m);
  }));
  // Once logged in, bob is online like anyone else.
  rig.handle(alice, p::DirectSend{2, "bob", "now"}, now);
  CHECK(std::get<p::DirectEvent>(out.sent[bob].back()).text == "now");
}

TEST_CASE_FIXTURE(
    Fixture, "file names with control, separator or bidi override characters are not forwarded") {
  const auto alice = online("alice");
  const auto bob = online("bob");
  const auto before = out.sent[bob].size();
  p::Sha256 digest{};
  for (const std::string name :
       {"evil\x1b]0;TITLE\x07.mp4", "a\nFAKE: Received evil.exe\r", "evil\xe2\x80\xaegpj.exe",
        "csi\xc2\x9b"
        "31m.mp4",
        "two\xe2\x80\xa8lines.mp4"}) {
    CAPTURE(name);
    const auto reply = request_reply(alice, p::FileOffer{1, "bob", name, 10, digest});
    CHECK(error_code(reply) == errc::invalid_argument);
  }
  CHECK(out.sent[bob].size() == before);
  // A zero-width joiner, as in emoji sequences, is not refused.
  CHECK(std::holds_alternative<p::FileOfferOk>(request_reply(alice, p::FileOffer{2, "bob",
                                                                                 "a\xe2\x80\x8d"
                                                                                 "b.mp4",
                                                                                 10, digest})));
}

TEST_CASE_FIXTURE(Fixture, "a closed session counts against the limits until its socket is gone") {
  const auto alice = online("alice");
  CHECK(hub.sessions() == 1);
  rig.handle(alice, p::Logout{request++}, now);
  CHECK(out.closed.contains(alice));
  CHECK_FALSE(hub.is_online("alice"));
  CHECK(hub.sessions() == 1);
  rig.disconnected(alice);
  CHECK(hub.sessions() == 0);
}

// ---- The store seam: results that come back late and out of order ----

namespace {

// A store whose results are held until release(), then delivered newest
// first: the hub must still act on them in the order it asked.
class HeldStore final : public tessenger::Store {
 public:
  explicit HeldStore(std::shared_ptr<tessenger::Store> inner) : inner_(std::move(inner)) {}
  void configure(const tessenger::StorePolicy& policy) override { inner_->configure(policy); }
  void create_group(std::string g, std::string c, std::vector<std::string> i,
                    Done<tessenger::StoreOutcome> done) override {
    inner_->create_group(std::move(g), std::move(c), std::move(i), hold(std::move(done)));
  }
  void join_group(std::string g, std::string u, Done<tessenger::StoreOutcome> done) override {
    inner_->join_group(std::move(g), std::move(u), hold(std::move(done)));
  }
  void leave_group(std::string g, std::string u, Done<tessenger::GroupDeparture> done) override {
    inner_->leave_group(std::move(g), std::move(u), hold(std::move(done)));
  }
  void delete_group(std::string g, std::string u, Done<tessenger::GroupRemoval> done) override {
    inner_->delete_group(std::move(g), std::move(u), hold(std::move(done)));
  }
  void append_group_message(std::string_view g, std::string_view f, std::string_view t,
                            p::Timestamp ts, Done<tessenger::StoredGroupMessage> done) override {
    if (fail) return done({{errc::service_unavailable, {}}, 0, {}});
    inner_->append_group_message(g, f, t, ts, hold(std::move(done)));
  }
  void append_direct_message(std::string_view f, std::string_view to, std::string_view t,
                             p::Timestamp ts, Done<tessenger::StoredMessage> done) override {
    if (fail) return done({{errc::service_unavailable, {}}, 0});
    inner_->append_direct_message(f, to, t, ts, hold(std::move(done)));
  }
  void missed(std::string u, tessenger::MessageId after, bool from_cursor, std::size_t limit,
              Done<tessenger::MissedPage> done) override {
    inner_->missed(std::move(u), after, from_cursor, limit, hold(std::move(done)));
  }
  void delivered(std::vector<std::pair<std::string, tessenger::MessageId>> cursors) override {
    inner_->delivered(std::move(cursors));
  }
  void history(tessenger::HistoryRequest request, Done<tessenger::HistoryResult> done) override {
    inner_->history(std::move(request), hold(std::move(done)));
  }
  void is_blocked(std::string u, std::string a, p::Timestamp now, Done<bool> done) override {
    inner_->is_blocked(std::move(u), std::move(a), now, std::move(done));
  }
  void login_failed(std::string u, std::string a, p::Timestamp now,
                    Done<tessenger::FailedLogin> done) override {
    inner_->login_failed(std::move(u), std::move(a), now, std::move(done));
  }
  void login_succeeded(std::string u, std::string a) override {
    inner_->login_succeeded(std::move(u), std::move(a));
  }

  void release() {
    auto held = std::exchange(held_, {});
    for (auto it = held.rbegin(); it != held.rend(); ++it)
      (*it)();
  }
  bool holding = true;
  bool fail = false;

 private:
  template <class T>
  Done<T> hold(Done<T> done) {
    if (!holding) return done;
    return [this, done = std::move(done)](T result) mutable {
      held_.push_back([done = std::move(done), result = std::move(result)]() mutable {
        done(std::move(result));
      });
    };
  }
  std::shared_ptr<tessenger::Store> inner_;
  std::vector<std::function<void()>> held_;
};

// alice (session 1) and bob (session 2) online, over a store whose results
// the test holds back.
struct HeldFixture {
  MemoryLogs logs;
  tessenger::core::Instant now{std::chrono::steady_clock::time_point{} + std::chrono::hours(1),
                               1'700'000'000'000'000};
  std::shared_ptr<HeldStore> store = std::make_shared<HeldStore>(tessenger::make_memory_store());
  tessenger::testing::HubRig rig{
      tessenger::core::HubConfig{3, std::chrono::seconds(10), {}, "test"},
      std::make_shared<tessenger::core::TableAuthenticator>(
          std::unordered_map<std::string, std::string>{{"alice", "pa"}, {"bob", "pb"}}),
      logs,
      nullptr,
      {},
      store};

  HeldFixture() {
    store->holding = false;
    for (SessionId id : {SessionId{1}, SessionId{2}}) {
      rig.connected(id, "127.0.0.1", now);
      rig.handle(id, p::Hello{1, 2, 2, "t"}, now);
      rig.handle(id, p::Login{2, id == 1 ? "alice" : "bob", id == 1 ? "pa" : "pb", 1}, now);
      REQUIRE(std::holds_alternative<p::LoginOk>(rig.out.sent[id].back()));
    }
    store->holding = true;
  }
};

}  // namespace

TEST_CASE_FIXTURE(HeldFixture,
                  "results of the store are acted on in the order they were asked for") {
  for (p::RequestId r = 10; r < 20; ++r)
    rig.handle(1, p::DirectSend{r, "bob", "message " + std::to_string(r)}, now);
  // Nothing is acknowledged or delivered before the store has answered.
  CHECK_FALSE(std::holds_alternative<p::DirectSent>(rig.out.sent[1].back()));
  CHECK(logs.messages.empty());
  store->release();
  rig.tasks.run();
  std::vector<std::string> delivered;
  for (const auto& m : rig.out.sent[2]) {
    if (const auto* e = std::get_if<p::DirectEvent>(&m)) delivered.push_back(e->text);
  }
  REQUIRE(delivered.size() == 10);
  for (int i = 0; i < 10; ++i)
    CHECK(delivered[static_cast<std::size_t>(i)] == "message " + std::to_string(10 + i));
  std::vector<p::RequestId> acknowledged;
  for (const auto& m : rig.out.sent[1]) {
    if (const auto* a = std::get_if<p::DirectSent>(&m)) acknowledged.push_back(a->request_id);
  }
  CHECK(acknowledged == std::vector<p::RequestId>{10, 11, 12, 13, 14, 15, 16, 17, 18, 19});
  CHECK(logs.messages.size() == 10);

  // A close waits for the results of the requests accepted before it.
  rig.handle(1, p::DirectSend{20, "bob", "last words"}, now);
  rig.handle(1, p::Logout{21}, now);
  CHECK_FALSE(rig.out.closed.contains(1));
  CHECK_FALSE(rig.hub.is_online("alice"));
  store->release();
  rig.tasks.run();
  CHECK(rig.out.closed.at(1) == errc::peer_closed);
  CHECK(std::get<p::DirectEvent>(rig.out.sent[2].back()).text == "last words");
  const auto& replies = rig.out.sent[1];
  CHECK(std::get<p::DirectSent>(replies[replies.size() - 2]).request_id == 20);
  CHECK(std::get<p::LoggedOut>(replies.back()).request_id == 21);
  rig.disconnected(1);
  rig.connected(1, "127.0.0.1", now);
  rig.handle(1, p::Hello{1, 2, 2, "t"}, now);
  rig.handle(1, p::Login{2, "alice", "pa", 1}, now);
  REQUIRE(std::holds_alternative<p::LoginOk>(rig.out.sent[1].back()));
  // What alice missed is read at login.
  store->release();
  rig.tasks.run();

  // A store that cannot take the message: the sender is told, nothing is delivered or logged.
  store->fail = true;
  const auto bob_before = rig.out.sent[2].size();
  rig.handle(1, p::DirectSend{30, "bob", "lost?"}, now);
  CHECK(error_code(rig.out.sent[1].back()) == errc::service_unavailable);
  CHECK(rig.out.sent[2].size() == bob_before);
  CHECK(logs.messages.size() == 11);
}

TEST_CASE("completions run in issue order whatever order the results arrive in") {
  tessenger::testing::TaskQueue tasks;
  tessenger::core::Completions completions(tasks.poster());
  std::vector<int> order;
  auto first = completions.wrap<int>([&](int v) { order.push_back(v); });
  auto second = completions.wrap<int>([&](int v) { order.push_back(v); });
  auto third = completions.wrap<int>([&](int v) { order.push_back(v); });
  CHECK(completions.pending() == 3);
  third(3);
  tasks.run();
  CHECK(order.empty());
  second(2);
  first(1);
  tasks.run();
  CHECK(order == std::vector<int>{1, 2, 3});
  CHECK(completions.pending() == 0);
}

TEST_CASE_FIXTURE(Fixture, "a name claimed for a session that left meanwhile is given back") {
  const auto id = connect();
  rig.hub.input(id, now);
  hub.handle(id, p::Login{request++, "alice", "pa", 1}, now);
  // The claim is decided, its result not yet acted on, when the socket goes.
  while (!rig.tasks.tasks.empty() && rig.presence.find("alice") == nullptr) {
    auto batch = std::exchange(rig.tasks.tasks, {});
    for (auto& task : batch)
      task();
  }
  REQUIRE(rig.presence.find("alice") != nullptr);
  rig.disconnected(id);
  CHECK_FALSE(hub.is_online("alice"));
  const auto again = connect();
  CHECK(std::holds_alternative<p::LoginOk>(login(again, "alice", "pa")));
}

TEST_CASE_FIXTURE(HeldFixture, "a close waits for a store that does not answer for 2 s at most") {
  rig.handle(1, p::DirectSend{10, "bob", "never stored"}, now);
  rig.handle(1, p::Logout{11}, now);
  CHECK(rig.hub.closing(1));
  now.steady += std::chrono::milliseconds(1999);
  rig.expire(now);
  CHECK_FALSE(rig.out.closed.contains(1));
  now.steady += std::chrono::milliseconds(1);
  rig.expire(now);
  CHECK(rig.out.closed.at(1) == errc::peer_closed);
  CHECK_FALSE(rig.hub.closing(1));
  // The late result changes nothing for the closed session.
  store->release();
  rig.tasks.run();
  CHECK(rig.out.closed.size() == 1);
}

// ---- Blocks per account and address (SPEC §3) ----

TEST_CASE_FIXTURE(Fixture, "a block holds for the address that earned it, not for the others") {
  const auto attacker = connect("10.0.0.5");
  CHECK(error_code(login(attacker, "alice", "x")) == errc::invalid_password);
  CHECK(error_code(login(attacker, "alice", "y")) == errc::invalid_password);
  CHECK(error_code(login(attacker, "alice", "z")) == errc::account_blocked_now);
  // The same address, even with the right password, is refused...
  const auto again = connect("10.0.0.5");
  CHECK(error_code(login(again, "alice", "pa")) == errc::account_blocked);
  // ...another one gets in.
  const auto owner = connect("10.0.0.1");
  CHECK(std::holds_alternative<p::LoginOk>(login(owner, "alice", "pa")));
}

TEST_CASE("failures from many addresses block the account, except where it logged in before") {
  MemoryLogs logs;
  tessenger::core::Instant now{std::chrono::steady_clock::time_point{} + std::chrono::hours(1),
                               1'700'000'000'000'000};
  tessenger::Limits limits;
  limits.max_account_failures = 5;
  tessenger::testing::HubRig rig{
      tessenger::core::HubConfig{3, std::chrono::seconds(10), limits, "test"},
      std::make_shared<tessenger::core::TableAuthenticator>(
          std::unordered_map<std::string, std::string>{{"alice", "pa"}}),
      logs};
  SessionId next = 1;
  auto attempt = [&](const std::string& address, const std::string& password) {
    const auto id = next++;
    rig.connected(id, address, now);
    rig.handle(id, p::Hello{1, 1, 1, "t"}, now);
    rig.handle(id, p::Login{2, "alice", password, 1}, now);
    auto reply = rig.out.sent[id].back();
    if (std::holds_alternative<p::LoginOk>(reply)) rig.handle(id, p::Logout{3}, now);
    rig.disconnected(id);
    return reply;
  };
  REQUIRE(std::holds_alternative<p::LoginOk>(attempt("10.0.0.1", "pa")));
  // One guess from each of five addresses: none is blocked on its own.
  for (int i = 0; i < 5; ++i)
    CHECK(error_code(attempt("10.1.0." + std::to_string(i), "guess")) == errc::invalid_password);
  // The sixth passes the account's cap.
  CHECK(error_code(attempt("10.1.0.9", "guess")) == errc::account_blocked_now);
  CHECK(error_code(attempt("10.2.0.1", "pa")) == errc::account_blocked);
  // The address the owner used before still gets in.
  CHECK(std::holds_alternative<p::LoginOk>(attempt("10.0.0.1", "pa")));
  now.wall += 10'000'000;
  CHECK(std::holds_alternative<p::LoginOk>(attempt("10.2.0.1", "pa")));
}

TEST_CASE_FIXTURE(Fixture, "a user logged in with UDP port 0 takes no files") {
  const auto bot = connect();
  REQUIRE(std::holds_alternative<p::LoginOk>(login(bot, "bob", "pb", 0)));
  const auto alice = online("alice");
  const auto before = out.sent[bot].size();
  const auto reply = request_reply(alice, p::FileOffer{request++, "bob", "a.mp4", 10, {}});
  CHECK(error_code(reply) == errc::invalid_argument);
  CHECK(error_detail(reply) == "receiver takes no files");
  CHECK(out.sent[bot].size() == before);
}

TEST_CASE_FIXTURE(Fixture,
                  "msgto a known offline user (version 3): stored, told, delivered at login") {
  const auto alice = online("alice", 3);
  const auto sent = request_reply(alice, p::DirectSend{11, "bob", "while you were out"});
  REQUIRE(std::holds_alternative<p::DirectSent>(sent));
  const auto first = std::get<p::DirectSent>(sent);
  CHECK(first.stored);
  CHECK(first.id != 0);
  // Unknown users are refused as before: nothing more is revealed.
  const auto unknown = request_reply(alice, p::DirectSend{12, "nobody", "hi"});
  CHECK(error_code(unknown) == errc::user_not_online);
  CHECK(error_detail(unknown) == "nobody");
  advance(std::chrono::seconds(1));
  const auto second = std::get<p::DirectSent>(request_reply(alice, p::DirectSend{13, "bob", "2"}));
  CHECK(second.id > first.id);
  CHECK(logs.messages.size() == 2);

  const auto bob = online("bob", 3);
  const auto missed = all_of<p::DirectEvent>(bob);
  REQUIRE(missed.size() == 2);
  CHECK(missed[0] ==
        p::DirectEvent{"alice", first.timestamp, "while you were out", first.id, true});
  CHECK(missed[1] == p::DirectEvent{"alice", second.timestamp, "2", second.id, true});
  CHECK(out.sent[bob].back() == p::Message{p::MissedEnd{2}});
  // The LoginOk comes first.
  CHECK(std::holds_alternative<p::LoginOk>(out.sent[bob][1]));

  // Online now: live, not missed, and not stored.
  const auto live = std::get<p::DirectSent>(request_reply(alice, p::DirectSend{14, "bob", "3"}));
  CHECK_FALSE(live.stored);
  CHECK(out.sent[bob].back() == p::Message{p::DirectEvent{"alice", now.wall, "3", live.id, false}});

  // Exactly once: what was delivered is not delivered again at the next login.
  rig.handle(bob, p::Logout{15}, now);
  rig.disconnected(bob);
  hub.flush_logs();
  rig.tasks.run();
  const auto again = online("bob", 3);
  CHECK(all_of<p::DirectEvent>(again).empty());
  CHECK(out.sent[again].back() == p::Message{p::MissedEnd{0}});
}

TEST_CASE_FIXTURE(
    Fixture, "a version 2 sender is refused for an offline user; a v2 receiver gets missed ones") {
  const auto old = online("alice", 2);
  const auto refused = request_reply(old, p::DirectSend{11, "bob", "hi"});
  CHECK(error_code(refused) == errc::user_not_online);
  const auto carol = online("carol", 3);
  REQUIRE(
      std::get<p::DirectSent>(request_reply(carol, p::DirectSend{12, "dave", "for v2"})).stored);
  const auto dave = online("dave", 2);
  const auto missed = all_of<p::DirectEvent>(dave);
  REQUIRE(missed.size() == 1);
  CHECK(missed[0].text == "for v2");
  // Version 2 has no MissedEnd.
  CHECK(all_of<p::MissedEnd>(dave).empty());
}

TEST_CASE_FIXTURE(Fixture,
                  "group messages reach joined members who were offline at their next login") {
  const auto alice = online("alice", 3);
  const auto bob = online("bob", 3);
  const auto carol = online("carol", 3);
  rig.handle(alice, p::GroupCreate{20, "team", {"bob", "carol"}}, now);
  rig.handle(bob, p::GroupJoin{21, "team"}, now);
  rig.handle(bob, p::Logout{22}, now);
  rig.disconnected(bob);
  rig.handle(carol, p::Logout{23}, now);
  rig.disconnected(carol);
  const auto sent = std::get<p::GroupSent>(request_reply(alice, p::GroupSend{24, "team", "news"}));
  const auto bob_again = online("bob", 3);
  const auto missed = all_of<p::GroupEvent>(bob_again);
  REQUIRE(missed.size() == 1);
  CHECK(missed[0] == p::GroupEvent{"team", "alice", sent.timestamp, "news", sent.id, true});
  // carol was only invited: group messages are not pushed to her.
  const auto carol_again = online("carol", 3);
  CHECK(all_of<p::GroupEvent>(carol_again).empty());
}

TEST_CASE_FIXTURE(Fixture, "login with resume_after replays after that id, whatever was sent") {
  const auto alice = online("alice", 3);
  const auto bob = online("bob", 3);
  std::vector<p::MessageId> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(std::get<p::DirectSent>(
                      request_reply(alice, p::DirectSend{30u + i, "bob", std::to_string(i)}))
                      .id);
  }
  CHECK(all_of<p::DirectEvent>(bob).size() == 3);
  // bob's connection died after the first: he says so, and gets the other two.
  rig.disconnected(bob);
  const auto back = online("bob", 3, ids[0]);
  const auto replayed = all_of<p::DirectEvent>(back);
  REQUIRE(replayed.size() == 2);
  CHECK(replayed[0].id == ids[1]);
  CHECK(replayed[1].id == ids[2]);
  CHECK(replayed[1].missed);
}

TEST_CASE_FIXTURE(Fixture, "history: pages of a conversation, and the page size is checked") {
  const auto alice = online("alice", 3);
  const auto bob = online("bob", 3);
  for (int i = 0; i < 5; ++i)
    request_reply(alice, p::DirectSend{40u + i, "bob", "m" + std::to_string(i)});
  const auto reply = request_reply(bob, p::HistoryQuery{50, p::ConversationKind::any, "alice",
                                                        p::HistoryDirection::latest, 0, 2});
  REQUIRE(std::holds_alternative<p::HistoryPage>(reply));
  const auto page = std::get<p::HistoryPage>(reply);
  CHECK(page.request_id == 50);
  CHECK(page.kind == p::ConversationKind::direct);
  CHECK(page.name == "alice");
  REQUIRE(page.entries.size() == 2);
  CHECK(page.entries[0].text == "m3");
  CHECK(page.entries[1].text == "m4");
  CHECK(page.more);
  CHECK(error_code(request_reply(bob, p::HistoryQuery{51, p::ConversationKind::any, "alice",
                                                      p::HistoryDirection::latest, 0, 101})) ==
        errc::invalid_argument);
  // A version 2 session does not have it.
  const auto old = online("carol", 2);
  CHECK(error_code(request_reply(old, p::HistoryQuery{52, p::ConversationKind::any, "alice",
                                                      p::HistoryDirection::latest, 0, 2})) ==
        errc::unsupported_request);
}

TEST_CASE_FIXTURE(Fixture,
                  "a history page of long messages fits one frame and says there is more") {
  const auto alice = online("alice", 3);
  online("bob", 3);
  const std::string long_text(4000, 'x');
  for (int i = 0; i < 40; ++i)
    request_reply(alice, p::DirectSend{60u + i, "bob", long_text});
  const auto page = std::get<p::HistoryPage>(
      request_reply(alice, p::HistoryQuery{99, p::ConversationKind::direct, "bob",
                                           p::HistoryDirection::latest, 0, 100}));
  CHECK(page.entries.size() < 40);
  CHECK(page.entries.size() > 10);
  CHECK(page.more);
  CHECK(p::encode(p::Message{page}).size() <= p::header_size + 64 * 1024);
}
