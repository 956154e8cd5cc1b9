// kill -9 of a real tessenger-server (SQLite store) at random moments while
// two senders stream messages to an online receiver, 20 times: after each
// restart the receiver logs in again with the newest id it has, and in the
// end every message whose sender saw it acknowledged is in history and was
// delivered to the receiver exactly once, in id order.

#include <doctest/doctest.h>

#include <csignal>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"
#include "server_process.hpp"
#include "streaming.hpp"
#include "temp_dir.hpp"
#include "wire_client.hpp"

namespace p = tessenger::protocol;
using namespace tessenger::testing;
using namespace std::chrono_literals;

TEST_CASE("kill -9 at random moments: acknowledged messages are kept and delivered exactly once") {
  TempDir dir;
  dir.write("credentials.txt", "alice pw-alice\nbob pw-bob\ncarol pw-carol\n");
  const auto seed = std::random_device{}();
  CAPTURE(seed);
  std::mt19937 random(seed);
  Inbox inbox;
  Acked acked;
  constexpr int rounds = 20;

  for (int round = 0; round < rounds; ++round) {
    CAPTURE(round);
    ServerProcess server(dir);
    if (round == 0) {
      WireClient carol(server.port);
      WireClient bob(server.port);
      REQUIRE(std::holds_alternative<p::LoginOk>(carol.login("carol", "pw-carol", 9, p::version)));
      REQUIRE(std::holds_alternative<p::LoginOk>(bob.login("bob", "pw-bob", 9, p::version)));
      carol.expect<p::MissedEnd>();
      carol.send(p::GroupCreate{5, "crash", {"bob"}});
      carol.expect<p::GroupCreated>();
      bob.expect<p::MissedEnd>();
      bob.expect<p::InviteEvent>();
      bob.send(p::GroupJoin{6, "crash"});
      bob.expect<p::GroupJoined>();
      bob.send(p::Logout{7});
      bob.expect<p::LoggedOut>();
      REQUIRE(bob.closed_within(5s));
    }
    WireClient bob(server.port);
    REQUIRE(std::holds_alternative<p::LoginOk>(
        bob.login("bob", "pw-bob", 9, p::version, inbox.newest())));
    std::thread reader([&] { receive(bob, inbox, false); });
    const long acked_before = acked.count;
    std::vector<std::thread> senders;
    senders.emplace_back(stream, server.port, "alice", "bob", false, std::to_string(round),
                         std::ref(acked));
    senders.emplace_back(stream, server.port, "carol", "crash", true, std::to_string(round),
                         std::ref(acked));
    // A random moment in the stream, never at a chosen point of a write.
    CHECK(acked.reached(acked_before + std::uniform_int_distribution<long>(1, 400)(random), 30s));
    server.process.signal(SIGKILL);
    CHECK(server.process.wait(10s) == 128 + SIGKILL);
    for (auto& sender : senders)
      sender.join();
    reader.join();
  }

  // The last start: what bob has not had yet arrives, then the MissedEnd.
  ServerProcess server(dir);
  WireClient bob(server.port);
  REQUIRE(std::holds_alternative<p::LoginOk>(
      bob.login("bob", "pw-bob", 9, p::version, inbox.newest())));
  CHECK(receive(bob, inbox, true));

  // Exactly once and in order: ids strictly increase, texts never repeat.
  const auto [out_of_order, duplicates] = inbox.disorder_and_duplicates();
  CHECK(out_of_order == 0);
  CHECK(duplicates == 0);
  const std::size_t undelivered = acked.missing_from(inbox.texts());
  CHECK(undelivered == 0);
  // And in history: alice's direct messages.
  CHECK(acked.missing_from(history_of(bob, p::ConversationKind::direct, "alice"), "-alice-") == 0);
  MESSAGE(rounds << " kill -9 rounds: " << acked.texts.size() << " acknowledged, "
                 << inbox.received.size() << " delivered (" << inbox.missed
                 << " as missed after a restart), " << undelivered << " lost, " << duplicates
                 << " duplicates");
}
