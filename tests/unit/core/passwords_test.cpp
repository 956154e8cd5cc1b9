// Password storage and checking (docs/security.md): Argon2id hashes next to
// plain entries in the credentials table, and the hub's login when a slow
// check runs elsewhere (a recording checker stands in for the thread pool).

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/credentials.hpp"
#include "core/hub.hpp"
#include "hub_doubles.hpp"

namespace p = tessenger::protocol;
using tessenger::errc;
using tessenger::core::SessionId;
using tessenger::testing::NullLogs;
using tessenger::testing::RecordingOutbox;
using namespace std::chrono_literals;

TEST_CASE("hash_password makes an Argon2id string that only the right password verifies") {
  const auto hash = tessenger::hash_password("correct horse");
  CHECK(hash.starts_with("$argon2id$"));
  CHECK(tessenger::core::is_password_hash(hash));
  CHECK(hash.find(' ') == std::string::npos);
  // Salted: the same password never gives the same string twice.
  const auto again = tessenger::hash_password("correct horse");
  CHECK(again != hash);

  tessenger::core::TableAuthenticator auth({{"alice", hash}, {"bob", "plain-pw"}});
  CHECK(auth.verify("alice", "correct horse"));
  CHECK_FALSE(auth.verify("alice", "correct horse "));
  CHECK_FALSE(auth.verify("alice", ""));
  CHECK_FALSE(auth.verify("alice", hash));  // the hash is not a password
  CHECK(auth.slow("alice"));
  CHECK_FALSE(auth.slow("bob"));
  CHECK_FALSE(auth.slow("nobody"));
  CHECK(auth.plain_count() == 1);
  CHECK(auth.size() == 2);
}

TEST_CASE("plain entries still work, whatever the lengths compared") {
  tessenger::core::TableAuthenticator auth({{"bob", "pw"}, {"carol", std::string(200, 'x')}});
  CHECK(auth.verify("bob", "pw"));
  CHECK_FALSE(auth.verify("bob", "p"));
  CHECK_FALSE(auth.verify("bob", "pwx"));
  CHECK_FALSE(auth.verify("bob", std::string(200, 'x')));
  CHECK(auth.verify("carol", std::string(200, 'x')));
  CHECK_FALSE(auth.verify("carol", std::string(199, 'x')));
  CHECK(auth.plain_count() == 2);
}

TEST_CASE("credentials lines may hold hashes; a hash libsodium cannot read is reported") {
  const std::string hash =
      "$argon2id$v=19$m=65536,t=2,p=1$G9SQygVbOKScu5ymY9xm/Q$"
      "TBMbe5eTVz4koQhc8ftPdcol0KI2Ma32k7R7868xDpk";
  const auto parsed = tessenger::core::parse_credentials("alice " + hash +
                                                         "\n"
                                                         "bob pb\n"
                                                         "carol $argon2id$v=19$nonsense\n"
                                                         "dave $argon2id$\n");
  CHECK(parsed.passwords.size() == 2);
  CHECK(parsed.passwords.at("alice") == hash);
  CHECK(parsed.passwords.at("bob") == "pb");
  REQUIRE(parsed.problems.size() == 2);
  CHECK(parsed.problems[0].line == 3);
  CHECK(parsed.problems[0].reason == "malformed Argon2 password hash");
  CHECK(parsed.problems[1].line == 4);
  const auto control = tessenger::core::parse_credentials("erin p\x01w\nfrank pw\r\r\n");
  CHECK(control.passwords.empty());
  REQUIRE(control.problems.size() == 2);
  CHECK(control.problems[0].reason == "the password holds a control character");
  CHECK_FALSE(tessenger::core::is_password_hash("argon2id"));
  CHECK_FALSE(tessenger::core::is_password_hash("$2y$10$bcrypt"));
  CHECK(tessenger::core::is_password_hash("$argon2i$v=19$m=4096,t=3,p=1$c2FsdA$aGFzaA"));
}

namespace {

// Accounts whose name starts with "h" count as hashed (slow); the check
// itself is instant here: only the hub's handling is under test.
struct FakeAuthenticator : tessenger::Authenticator {
  bool exists(std::string_view user) const override { return user.size() == 2; }
  bool verify(std::string_view user, std::string_view password) const override {
    return password == "pw-" + std::string(user);
  }
  bool slow(std::string_view user) const override { return user.starts_with('h'); }
};

struct Check {
  SessionId session;
  std::string username;
  std::string password;
};

struct RecordingChecker : tessenger::core::PasswordChecker {
  std::vector<Check> checks;
  void check(SessionId session, std::string username, std::string password) override {
    checks.push_back({session, std::move(username), std::move(password)});
  }
};

struct Fixture {
  explicit Fixture(tessenger::Limits limits = {})
      : rig(tessenger::core::HubConfig{3, 10s, limits, "test"},
            std::make_shared<FakeAuthenticator>(), logs, &checker) {}

  NullLogs logs;
  RecordingChecker checker;
  tessenger::core::Instant now{std::chrono::steady_clock::time_point{} + 1h, 1'700'000'000'000'000};
  tessenger::testing::HubRig rig;
  RecordingOutbox& out = rig.out;
  tessenger::core::Hub& hub = rig.hub;
  SessionId next = 1;
  p::RequestId request = 1;

  SessionId connect(const std::string& address = "192.0.2.1") {
    const SessionId id = next++;
    REQUIRE(rig.connected(id, address, now));
    rig.handle(id, p::Hello{request++, 1, 1, "test"}, now);
    return id;
  }
  std::size_t replies(SessionId id) { return out.sent[id].size(); }
  // Completes the oldest outstanding check, as the adapter would.
  void complete_next() {
    REQUIRE_FALSE(checker.checks.empty());
    const auto check = checker.checks.front();
    checker.checks.erase(checker.checks.begin());
    rig.password_checked(check.session, check.password == "pw-" + check.username, now);
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

}  // namespace

TEST_CASE_FIXTURE(Fixture, "a slow check is handed off; the login finishes when it returns") {
  const auto id = connect();
  const auto before = replies(id);
  rig.handle(id, p::Login{50, "h1", "pw-h1", 4000}, now);
  REQUIRE(checker.checks.size() == 1);
  CHECK(checker.checks[0].username == "h1");
  CHECK(replies(id) == before);  // nothing yet
  CHECK_FALSE(hub.is_online("h1"));

  complete_next();
  const auto ok = std::get<p::LoginOk>(out.sent[id].back());
  CHECK(ok.request_id == 50);
  CHECK(hub.is_online("h1"));
  REQUIRE(hub.online().size() == 1);
  CHECK(hub.online()[0].udp_port == 4000);

  // Plain accounts are still checked at once.
  const auto other = connect();
  rig.handle(other, p::Login{51, "p1", "pw-p1", 4001}, now);
  CHECK(std::holds_alternative<p::LoginOk>(out.sent[other].back()));
  CHECK(checker.checks.empty());
}

TEST_CASE_FIXTURE(Fixture, "a session's input is held while its check runs, then resumed") {
  const auto id = connect();
  CHECK(hub.wants_input(id));
  rig.handle(id, p::Login{1, "h1", "guess", 1}, now);
  CHECK_FALSE(hub.wants_input(id));
  CHECK(out.resumed.count(id) == 0);
  complete_next();
  CHECK(error_code(out.sent[id].back()) == errc::invalid_password);
  CHECK(hub.wants_input(id));
  CHECK(out.resumed.count(id) == 1);

  rig.handle(id, p::Login{2, "h1", "pw-h1", 1}, now);
  CHECK_FALSE(hub.wants_input(id));
  complete_next();
  CHECK(std::holds_alternative<p::LoginOk>(out.sent[id].back()));
  CHECK(hub.wants_input(id));
  CHECK(out.resumed.count(id) == 2);
}

TEST_CASE_FIXTURE(Fixture, "a wrong password found by a slow check counts towards the block") {
  const auto id = connect();
  rig.handle(id, p::Login{1, "h1", "guess", 1}, now);
  complete_next();
  CHECK(error_code(out.sent[id].back()) == errc::invalid_password);
  rig.handle(id, p::Login{2, "h1", "guess", 1}, now);
  complete_next();
  CHECK(error_code(out.sent[id].back()) == errc::invalid_password);
  rig.handle(id, p::Login{3, "h1", "guess", 1}, now);
  complete_next();
  CHECK(error_code(out.sent[id].back()) == errc::account_blocked_now);
  CHECK(out.closed.at(id) == errc::account_blocked_now);

  const auto later = connect();
  rig.handle(later, p::Login{4, "h1", "pw-h1", 1}, now);
  CHECK(error_code(out.sent[later].back()) == errc::account_blocked);
  CHECK(checker.checks.empty());  // refused before any hashing
}

TEST_CASE("guesses checked side by side cannot get past the block") {
  tessenger::Limits limits;
  limits.max_password_checks_per_account = 8;
  limits.max_password_checks_per_address = 8;
  Fixture f(limits);
  // Five connections from one address guess at once; the right password is
  // the last guess. (Failures count per account and address.)
  std::vector<SessionId> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(f.connect("192.0.2.10"));
    const std::string password = i == 4 ? "pw-h2" : "guess" + std::to_string(i);
    f.rig.handle(ids.back(), p::Login{static_cast<p::RequestId>(i + 1), "h2", password, 1}, f.now);
  }
  REQUIRE(f.checker.checks.size() == 5);
  for (int i = 0; i < 5; ++i)
    f.complete_next();
  CHECK(error_code(f.out.sent[ids[0]].back()) == errc::invalid_password);
  CHECK(error_code(f.out.sent[ids[1]].back()) == errc::invalid_password);
  CHECK(error_code(f.out.sent[ids[2]].back()) == errc::account_blocked_now);
  // A guess whose check ends inside the block is refused as blocked, not counted.
  CHECK(error_code(f.out.sent[ids[3]].back()) == errc::account_blocked);
  CHECK(error_code(f.out.sent[ids[4]].back()) == errc::account_blocked);
  CHECK_FALSE(f.hub.is_online("h2"));
}

TEST_CASE("checks in flight count against the address's failed-login limit until they succeed") {
  tessenger::Limits limits;
  limits.max_failed_logins_per_ip = 3;
  Fixture f(limits);
  std::vector<SessionId> ids;
  for (const char* user : {"h1", "h2", "h3"}) {
    ids.push_back(f.connect("192.0.2.7"));
    f.rig.handle(ids.back(), p::Login{1, user, std::string("pw-") + user, 1}, f.now);
  }
  // A fourth login from the same address would be one guess too many if the
  // three turn out wrong.
  const auto fourth = f.connect("192.0.2.7");
  f.rig.handle(fourth, p::Login{2, "h4", "pw-h4", 1}, f.now);
  CHECK(error_code(f.out.sent[fourth].back()) == errc::too_many_failed_logins);

  // They were right: the address has its whole allowance back.
  for (int i = 0; i < 3; ++i)
    f.complete_next();
  for (const auto id : ids)
    CHECK(std::holds_alternative<p::LoginOk>(f.out.sent[id].back()));
  const auto fifth = f.connect("192.0.2.7");
  f.rig.handle(fifth, p::Login{3, "h5", "pw-h5", 1}, f.now);
  CHECK(f.checker.checks.size() == 1);
}

TEST_CASE("checks run a few at a time; the others wait their turn") {
  tessenger::Limits limits;
  limits.max_pending_password_checks = 2;
  Fixture f(limits);
  const auto a = f.connect("192.0.2.1");
  const auto b = f.connect("192.0.2.2");
  const auto c = f.connect("192.0.2.3");
  f.rig.handle(a, p::Login{1, "h1", "pw-h1", 1}, f.now);
  f.rig.handle(b, p::Login{1, "h2", "pw-h2", 1}, f.now);
  f.rig.handle(c, p::Login{7, "h3", "pw-h3", 1}, f.now);
  CHECK(f.checker.checks.size() == 2);
  CHECK_FALSE(f.hub.wants_input(c));
  f.complete_next();
  REQUIRE(f.checker.checks.size() == 2);
  CHECK(f.checker.checks.back().username == "h3");
  f.complete_next();
  f.complete_next();
  CHECK(std::holds_alternative<p::LoginOk>(f.out.sent[c].back()));
}

TEST_CASE("guesses at one account from many addresses never starve another account's check") {
  tessenger::Limits limits;
  limits.max_pending_password_checks = 4;
  limits.max_failed_logins_per_ip = 0;
  Fixture f(limits);
  int refused = 0;
  for (int i = 0; i < 10; ++i) {
    const auto id = f.connect("192.0.2." + std::to_string(20 + i));
    f.rig.handle(id, p::Login{1, "h1", "guess", 1}, f.now);
    if (!f.out.sent[id].empty() && std::holds_alternative<p::Error>(f.out.sent[id].back())) {
      CHECK(error_code(f.out.sent[id].back()) == errc::rate_limited);
      ++refused;
    }
  }
  // Four places for h1 (running or waiting), the other six refused at once.
  CHECK(refused == 6);
  CHECK(f.checker.checks.size() == 4);
  const auto other = f.connect("192.0.2.99");
  f.rig.handle(other, p::Login{2, "h2", "pw-h2", 1}, f.now);
  // h2 waits behind running checks but is not refused; its turn comes next.
  CHECK(f.hub.wants_input(other) == false);
  f.complete_next();
  REQUIRE_FALSE(f.checker.checks.empty());
  CHECK(f.checker.checks.back().username == "h2");
  while (!f.checker.checks.empty())
    f.complete_next();
  CHECK(std::holds_alternative<p::LoginOk>(f.out.sent[other].back()));
}

TEST_CASE("0 leaves the number of checks waiting unbounded") {
  tessenger::Limits limits;
  limits.max_pending_password_checks = 0;
  Fixture f(limits);
  for (int i = 0; i < 40; ++i) {
    const auto id = f.connect("192.0.2." + std::to_string(i));
    f.rig.handle(id, p::Login{1, "h" + std::to_string(i % 10), "x", 1}, f.now);
  }
  CHECK(f.checker.checks.size() == 40);
}

TEST_CASE_FIXTURE(Fixture, "a session gone or timed out before its check returns is left alone") {
  const auto gone = connect();
  const auto slow = connect();
  rig.handle(gone, p::Login{1, "h1", "pw-h1", 1}, now);
  rig.handle(slow, p::Login{1, "h2", "pw-h2", 1}, now);
  rig.disconnected(gone);
  advance(60s);
  CHECK(out.closed.at(slow) == errc::login_timeout);
  rig.disconnected(slow);
  const auto gone_replies = replies(gone);
  const auto slow_replies = replies(slow);
  complete_next();
  complete_next();
  CHECK(replies(gone) == gone_replies);
  CHECK(replies(slow) == slow_replies);
  CHECK_FALSE(hub.is_online("h1"));
  CHECK_FALSE(hub.is_online("h2"));
  // Their checks no longer count as waiting.
  for (int i = 0; i < 32; ++i) {
    const auto id = connect("192.0.2." + std::to_string(100 + i));
    rig.handle(id, p::Login{1, "h" + std::to_string(i % 10), "x", 1}, now);
  }
  CHECK(checker.checks.size() == 32);
}

TEST_CASE_FIXTURE(Fixture, "an account that logged in meanwhile is already logged in") {
  const auto first = connect();
  const auto second = connect();
  rig.handle(first, p::Login{1, "h1", "pw-h1", 1}, now);
  rig.handle(second, p::Login{1, "h1", "pw-h1", 1}, now);
  complete_next();
  complete_next();
  CHECK(std::holds_alternative<p::LoginOk>(out.sent[first].back()));
  CHECK(error_code(out.sent[second].back()) == errc::already_logged_in);
}
