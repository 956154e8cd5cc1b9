// The chat domain (SPEC §3-§5) without sockets: requests in, replies, events
// and log records out, with a clock the test advances.

#include <doctest/doctest.h>

#include <map>
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
  RecordingOutbox out;
  MemoryLogs logs;
  tessenger::core::Instant now{std::chrono::steady_clock::time_point{} + std::chrono::hours(1),
                               1'700'000'000'000'000};
  std::uint8_t random_counter = 0;
  tessenger::core::Hub hub{
      tessenger::core::HubConfig{3, std::chrono::seconds(10), {}, "test"},
      std::make_shared<tessenger::core::TableAuthenticator>(
          std::unordered_map<std::string, std::string>{
              {"alice", "pa"}, {"bob", "pb"}, {"carol", "pc"}, {"dave", "pd"}}),
      logs,
      out,
      {},
      {},
      [this](std::span<std::uint8_t> bytes) {
        for (auto& b : bytes)
          b = ++random_counter;
      }};
  SessionId next = 1;
  p::RequestId request = 100;

  SessionId connect(const std::string& address = "127.0.0.1") {
    const SessionId id = next++;
    hub.connected(id, address);
    hub.handle(id, p::Hello{request++, 1, 1, "test"}, now);
    REQUIRE(std::holds_alternative<p::HelloOk>(out.sent[id].back()));
    return id;
  }
  p::Message login(SessionId id, const std::string& user, const std::string& password,
                   std::uint16_t udp = 5000) {
    hub.handle(id, p::Login{request++, user, password, udp}, now);
    return out.sent[id].back();
  }
  SessionId online(const std::string& user) {
    const auto id = connect();
    const auto reply = login(id, user, "p" + user.substr(0, 1));
    REQUIRE(std::holds_alternative<p::LoginOk>(reply));
    return id;
  }
  p::Message request_reply(SessionId id, p::Message message) {
    hub.handle(id, message, now);
    return out.sent[id].back();
  }
  void advance(std::chrono::seconds s) { now.steady += s; }
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
  hub.connected(1, "127.0.0.1");
  hub.handle(1, p::Login{7, "alice", "pa", 1}, now);
  CHECK(error_code(out.sent[1].back()) == errc::unexpected_message);
  CHECK(out.closed.at(1) == errc::unexpected_message);

  hub.connected(2, "127.0.0.1");
  hub.handle(2, p::Hello{8, 2, 3, "future"}, now);
  CHECK(error_code(out.sent[2].back()) == errc::unsupported_version);
  CHECK(std::get<p::Error>(out.sent[2].back()).request_id == 8);
  CHECK(out.closed.contains(2));

  hub.connected(3, "127.0.0.1");
  hub.handle(3, p::Hello{9, 1, 5, "newer but compatible"}, now);
  const auto ok = std::get<p::HelloOk>(out.sent[3].back());
  CHECK(ok.request_id == 9);
  CHECK(ok.version == 1);
  CHECK(ok.max_frame_size == 64 * 1024);
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
  hub.handle(id, p::Logout{1}, now);
  hub.disconnected(id);
  auto again = connect();
  CHECK(error_code(login(again, "alice", "x")) == errc::invalid_password);
  CHECK(error_code(login(again, "alice", "x")) == errc::invalid_password);
  CHECK_FALSE(out.closed.contains(again));
}

TEST_CASE_FIXTURE(Fixture, "a second login to an online account is refused; the first is kept") {
  const auto alice = online("alice");
  const auto intruder = connect();
  CHECK(error_code(login(intruder, "alice", "pa")) == errc::already_logged_in);
  CHECK_FALSE(out.closed.contains(alice));
  CHECK_FALSE(out.closed.contains(intruder));
  const auto bob = online("bob");
  CHECK(std::holds_alternative<p::DirectSent>(request_reply(bob, p::DirectSend{1, "alice", "hi"})));
}

TEST_CASE_FIXTURE(Fixture, "login timeout closes only sessions that have not logged in") {
  const auto waiting = connect();
  const auto alice = online("alice");
  hub.login_timeout(waiting);
  hub.login_timeout(alice);
  const auto& notice = std::get<p::ShutdownEvent>(out.sent[waiting].back());
  CHECK(static_cast<errc>(notice.code) == errc::login_timeout);
  CHECK(out.closed.at(waiting) == errc::login_timeout);
  CHECK_FALSE(out.closed.contains(alice));
}

TEST_CASE_FIXTURE(Fixture, "msgto: delivery, offline, unknown, self, bad text") {
  const auto alice = online("alice");
  const auto bob = online("bob");
  const auto sent = request_reply(alice, p::DirectSend{11, "bob", "  hello bob  "});
  REQUIRE(std::holds_alternative<p::DirectSent>(sent));
  CHECK(std::get<p::DirectSent>(sent).request_id == 11);
  CHECK(std::get<p::DirectSent>(sent).timestamp == now.wall);
  const auto event = std::get<p::DirectEvent>(out.sent[bob].back());
  CHECK(event == p::DirectEvent{"alice", now.wall, "hello bob"});
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
  hub.disconnected(alice);
  hub.flush_logs();
  CHECK(logs.userlog == std::vector<std::string>{"1; bob", "2; carol"});
  // A dropped connection is a logout too.
  hub.disconnected(carol);
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
  CHECK(std::get<p::GroupEvent>(out.sent[bob].back()) ==
        p::GroupEvent{"chat", "alice", now.wall, "hello group"});
  CHECK(out.sent[carol].size() == carol_before);
  CHECK(logs.groups.at("chat") == std::vector<std::string>{"1; alice; hello group"});

  // A logged-out member stays a member; messages to them are simply not delivered.
  hub.handle(bob, p::Logout{15}, now);
  hub.disconnected(bob);
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

TEST_CASE_FIXTURE(Fixture, "replies and events sent by a client are protocol violations") {
  const auto alice = online("alice");
  hub.handle(alice, p::DirectEvent{"x", 1, "spoof"}, now);
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
