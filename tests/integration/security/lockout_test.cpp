// Finding 4 of the second security review: one address with no password
// must not keep an account locked. An attacker guesses every 0.25 s and
// reconnects after each block; the owner tries once a second. Time is the
// server's ManualClock, so a minute of attack takes well under a second.

#include <doctest/doctest.h>

#include <tessenger/clock.hpp>

#include "test_server.hpp"
#include "wire_client.hpp"

namespace p = tessenger::protocol;
using tessenger::errc;
using tessenger::ManualClock;
using tessenger::ServerConfig;
using tessenger::testing::code_of;
using tessenger::testing::TestServer;
using tessenger::testing::WireClient;
using namespace std::chrono_literals;

namespace {

p::Message try_login(std::uint16_t port, const std::string& source, const std::string& password) {
  WireClient client(port, "127.0.0.1", 0, source);
  auto reply = client.login("alice", password);
  if (std::holds_alternative<p::LoginOk>(reply)) {
    client.send(p::Logout{3});
    client.expect<p::LoggedOut>();
  }
  return reply;
}

struct Attack {
  int honest_tries = 0;
  int honest_logins = 0;
  int guesses_answered = 0;  // reached a password verdict: invalid or blocked now
};

// `attackers` addresses take turns guessing every 250 ms for a minute.
Attack run(int attackers) {
  auto clock = std::make_shared<ManualClock>();
  ServerConfig config;
  config.clock = clock;
  config.max_attempts = 3;
  config.block_duration = 10s;
  TestServer server(config);
  // The owner has logged in from this address before.
  REQUIRE(std::holds_alternative<p::LoginOk>(try_login(server.port(), "127.0.0.1", "pa")));

  Attack result;
  for (int step = 0; step < 240; ++step) {
    const auto source = "127.0.1." + std::to_string(1 + step % attackers);
    const auto reply = try_login(server.port(), source, "guess");
    const auto code = code_of(reply);
    REQUIRE(code.has_value());
    if (*code == errc::invalid_password || *code == errc::account_blocked_now) {
      ++result.guesses_answered;
    }
    if (step % 4 == 0) {
      ++result.honest_tries;
      if (std::holds_alternative<p::LoginOk>(try_login(server.port(), "127.0.0.1", "pa"))) {
        ++result.honest_logins;
      }
    }
    clock->advance(250ms);
  }
  return result;
}

}  // namespace

TEST_CASE("one guessing address blocks only itself: the owner gets in every time") {
  const auto attack = run(1);
  MESSAGE("1 attacker: owner in " << attack.honest_logins << " of " << attack.honest_tries
                                  << " tries; " << attack.guesses_answered
                                  << " guesses answered in 60 s");
  CHECK(attack.honest_logins * 100 >= attack.honest_tries * 95);
  // Three guesses per 10 s block: at most 18 answered guesses a minute, from
  // one address.
  CHECK(attack.guesses_answered <= 3 * 6 + 3);
}

TEST_CASE("many guessing addresses hit the account's cap; the owner's address still gets in") {
  const auto attack = run(40);
  MESSAGE("40 attackers: owner in " << attack.honest_logins << " of " << attack.honest_tries
                                    << " tries; " << attack.guesses_answered
                                    << " guesses answered in 60 s");
  CHECK(attack.honest_logins * 100 >= attack.honest_tries * 95);
  // At most max_account_failures (30) + 1 answered guesses per 10 s block.
  CHECK(attack.guesses_answered <= 31 * 6 + 31);
}
