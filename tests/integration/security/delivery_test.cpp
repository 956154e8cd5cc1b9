// kill -9 of a real tessenger-server (SQLite store) at random moments while
// two senders stream messages to an online receiver, 20 times: after each
// restart the receiver logs in again with the newest id it has, and in the
// end every message whose sender saw it acknowledged is in history and was
// delivered to the receiver exactly once, in id order.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <csignal>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"
#include "wire_client.hpp"

namespace p = tessenger::protocol;
using tessenger::testing::Process;
using tessenger::testing::ServerProcess;
using tessenger::testing::TempDir;
using tessenger::testing::WireClient;
using namespace std::chrono_literals;

namespace {

// What the receiver got, across all its connections.
struct Inbox {
  std::mutex mutex;
  std::vector<std::pair<p::MessageId, std::string>> received;
  p::MessageId last = 0;
  std::size_t missed = 0;

  void take(p::MessageId id, const std::string& text, bool was_missed) {
    const std::lock_guard lock(mutex);
    received.emplace_back(id, text);
    last = std::max(last, id);
    missed += was_missed ? 1 : 0;
  }
  p::MessageId newest() {
    const std::lock_guard lock(mutex);
    return last;
  }
};

// Reads until the connection ends; true if a MissedEnd came.
bool receive(WireClient& bob, Inbox& inbox, bool stop_at_missed_end) {
  for (;;) {
    auto message = bob.next(10s);
    if (!message) return false;
    if (const auto* e = std::get_if<p::DirectEvent>(&*message)) {
      inbox.take(e->id, e->text, e->missed);
    } else if (const auto* g = std::get_if<p::GroupEvent>(&*message)) {
      inbox.take(g->id, g->text, g->missed);
    } else if (std::holds_alternative<p::MissedEnd>(*message) && stop_at_missed_end) {
      return true;
    }
  }
}

// Pipelines batches until the connection dies; `acked` gets each text whose
// reply (they come in request order) said it was accepted.
void stream(std::uint16_t port, const std::string& user, int round, std::mutex& mutex,
            std::set<std::string>& acked, std::atomic<long>& acks) {
  try {
    WireClient client(port);
    if (!std::holds_alternative<p::LoginOk>(client.login(user, "pw-" + user, 9, p::version))) {
      return;
    }
    for (long k = 0;; k += 20) {
      std::vector<std::byte> batch;
      std::vector<std::string> texts;
      for (long i = 0; i < 20; ++i) {
        texts.push_back(std::to_string(round) + "-" + user + "-" + std::to_string(k + i));
        if (user == "alice") {
          p::encode(p::DirectSend{1, "bob", texts.back()}, batch);
        } else {
          p::encode(p::GroupSend{1, "crash", texts.back()}, batch);
        }
      }
      client.send_bytes(batch);
      for (std::size_t replies = 0; replies < texts.size();) {
        const auto message = client.next(10s);
        if (!message) return;
        if (std::holds_alternative<p::DirectSent>(*message) ||
            std::holds_alternative<p::GroupSent>(*message)) {
          {
            const std::lock_guard lock(mutex);
            acked.insert(texts[replies]);
          }
          ++replies;
          ++acks;
        } else if (std::holds_alternative<p::Error>(*message)) {
          ++replies;
        }
      }
    }
  } catch (const std::runtime_error&) {
    // The server died under the client: what this test does on purpose.
  }
}

}  // namespace

TEST_CASE("kill -9 at random moments: acknowledged messages are kept and delivered exactly once") {
  TempDir dir;
  dir.write("credentials.txt", "alice pw-alice\nbob pw-bob\ncarol pw-carol\n");
  const auto seed = std::random_device{}();
  CAPTURE(seed);
  std::mt19937 random(seed);
  Inbox inbox;
  std::mutex acked_mutex;
  std::set<std::string> acked;
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
    std::atomic<long> acks{0};
    std::vector<std::thread> senders;
    for (const auto* user : {"alice", "carol"}) {
      senders.emplace_back(stream, server.port, std::string(user), round, std::ref(acked_mutex),
                           std::ref(acked), std::ref(acks));
    }
    // A random moment in the stream, never at a chosen point of a write.
    const long kill_after = std::uniform_int_distribution<long>(1, 400)(random);
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    while (acks < kill_after && std::chrono::steady_clock::now() < give_up)
      std::this_thread::yield();
    CHECK(acks >= kill_after);
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
  std::set<std::string> texts;
  std::size_t out_of_order = 0;
  for (std::size_t i = 0; i < inbox.received.size(); ++i) {
    if (i > 0 && inbox.received[i].first <= inbox.received[i - 1].first) ++out_of_order;
    texts.insert(inbox.received[i].second);
  }
  CHECK(out_of_order == 0);
  CHECK(texts.size() == inbox.received.size());
  std::size_t undelivered = 0;
  for (const auto& text : acked)
    undelivered += texts.contains(text) ? 0 : 1;
  CHECK(undelivered == 0);

  // And in history: alice's direct messages, paged back from the newest.
  std::set<std::string> history;
  p::MessageId anchor = 0;
  for (bool more = true; more;) {
    bob.send(
        p::HistoryQuery{9, p::ConversationKind::direct, "alice",
                        anchor == 0 ? p::HistoryDirection::latest : p::HistoryDirection::before,
                        anchor, p::max_history_page});
    const auto page = bob.expect<p::HistoryPage>();
    for (const auto& entry : page.entries)
      history.insert(entry.text);
    more = page.more && !page.entries.empty();
    if (more) anchor = page.entries.front().id;
  }
  std::size_t not_in_history = 0;
  for (const auto& text : acked)
    not_in_history += text.find("-alice-") == std::string::npos || history.contains(text) ? 0 : 1;
  CHECK(not_in_history == 0);
  MESSAGE(rounds << " kill -9 rounds: " << acked.size() << " acknowledged, "
                 << inbox.received.size() << " delivered (" << inbox.missed
                 << " as missed after a restart), " << undelivered << " lost, "
                 << inbox.received.size() - texts.size() << " duplicates");
}
