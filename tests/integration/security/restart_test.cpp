// The real tessenger-server with its default SQLite store, killed with
// SIGKILL and started again on the same data directory: groups, memberships
// and login blocks are still there, and a second server on the same
// directory refuses to start.

#include <doctest/doctest.h>

#include <charconv>
#include <csignal>
#include <string>

#include "process.hpp"
#include "temp_dir.hpp"
#include "wire_client.hpp"

namespace p = tessenger::protocol;
using tessenger::errc;
using tessenger::testing::code_of;
using tessenger::testing::Process;
using tessenger::testing::TempDir;
using tessenger::testing::WireClient;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> server_args(const TempDir& dir) {
  return {TESSENGER_SERVER_PATH, "127.0.0.1", "0", "3", "--credentials",
          (dir / "credentials.txt").string(), "--data-dir", (dir / "data").string(),
          // Long enough that a block cannot run out during the test.
          "--block-seconds", "3600", "--quiet"};
}

std::uint16_t listening_port(Process& process) {
  for (;;) {
    const auto line = process.read_line(30s);
    REQUIRE(line.has_value());
    const auto colon = line->rfind(':');
    std::uint16_t port = 0;
    if (line->starts_with("TESSENGER server listening on") && colon != std::string::npos) {
      std::from_chars(line->data() + colon + 1, line->data() + line->size(), port);
      return port;
    }
  }
}

void log_in(WireClient& client, const std::string& user) {
  REQUIRE(std::holds_alternative<p::LoginOk>(client.login(user, "pw-" + user)));
}

}  // namespace

TEST_CASE("kill -9 and a restart keep groups, memberships and login blocks") {
  TempDir dir;
  dir.write("credentials.txt", "alice pw-alice\nbob pw-bob\ncarol pw-carol\n");
  {
    Process server(server_args(dir));
    const auto port = listening_port(server);
    WireClient alice(port);
    WireClient bob(port);
    log_in(alice, "alice");
    log_in(bob, "bob");
    alice.send(p::GroupCreate{5, "durable", {"bob"}});
    alice.expect<p::GroupCreated>();
    bob.expect<p::InviteEvent>();
    bob.send(p::GroupJoin{6, "durable"});
    bob.expect<p::GroupJoined>();
    for (int attempt = 1; attempt <= 3; ++attempt) {
      WireClient carol(port);
      CHECK(code_of(carol.login("carol", "wrong")) ==
            (attempt < 3 ? errc::invalid_password : errc::account_blocked_now));
    }

    // A second server on the same data directory stops at its start.
    Process second(server_args(dir));
    CHECK(second.wait(30s) == 1);
    CHECK(second.error_output(10s) == "tessenger-server: the database " +
                                          (dir / "data" / "tessenger.db").string() +
                                          " is in use by another server (it is locked)\n");

    server.signal(SIGKILL);
    CHECK(server.wait(10s) == 128 + SIGKILL);
  }

  Process server(server_args(dir));
  const auto port = listening_port(server);
  WireClient alice(port);
  WireClient bob(port);
  log_in(alice, "alice");
  log_in(bob, "bob");
  // The group and bob's membership are there: no create, no join.
  alice.send(p::GroupSend{7, "durable", "still here"});
  alice.expect<p::GroupSent>();
  const auto event = bob.expect<p::GroupEvent>();
  CHECK(event.group == "durable");
  CHECK(event.from == "alice");
  CHECK(event.text == "still here");
  alice.send(p::GroupCreate{8, "durable", {}});
  CHECK(code_of(*alice.next(5s)) == errc::group_exists);
  // The block outlived the restart, even for the right password.
  WireClient carol(port);
  CHECK(code_of(carol.login("carol", "pw-carol")) == errc::account_blocked);

  server.signal(SIGTERM);
  CHECK(server.wait(10s) == 0);
}
