// 200 clients logged in at once, each sending to others: every message is
// delivered exactly once, in order per sender, and logged once.

#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include "chat_client.hpp"
#include "test_server.hpp"

using namespace tessenger;
using namespace tessenger::testing;

TEST_CASE("200 clients exchange messages: exactly once, in order, logged once") {
  constexpr int users = 200;
  constexpr int peers_per_user = 3;
  constexpr int messages_per_peer = 5;
  auto name = [](int i) { return "user" + std::to_string(i); };

  std::vector<Account> accounts;
  for (int i = 0; i < users; ++i)
    accounts.push_back({name(i), "pw" + std::to_string(i)});
  TestServer server({}, accounts);

  // Every client on one io_context run by two threads: the strands keep
  // each connection's callbacks serialised.
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&io] { io.run(); });

  std::vector<std::unique_ptr<ChatClient>> clients;
  for (int i = 0; i < users; ++i) {
    clients.push_back(std::make_unique<ChatClient>(io, server.port()));
    REQUIRE(clients.back()->hello().ok());
    clients.back()->must_login(name(i), "pw" + std::to_string(i));
  }

  // Everything is pipelined: no client waits for a reply before sending on.
  std::atomic<int> replies{0};
  std::atomic<int> failures{0};
  std::promise<void> all_replied;
  constexpr int total = users * peers_per_user * messages_per_peer;
  for (int k = 0; k < messages_per_peer; ++k) {
    for (int i = 0; i < users; ++i) {
      for (int p = 1; p <= peers_per_user; ++p) {
        clients[static_cast<std::size_t>(i)]->client().send_direct(
            name((i + p) % users),
            name(i) + "->" + name((i + p) % users) + " #" + std::to_string(k),
            [&](Result<DirectMessageSent> result) {
              if (!result) ++failures;
              if (++replies == total) all_replied.set_value();
            });
      }
    }
  }
  REQUIRE(all_replied.get_future().wait_for(deadline) == std::future_status::ready);
  CHECK(failures == 0);

  for (int r = 0; r < users; ++r) {
    std::map<std::string, int> next_from;  // sender -> next expected number
    for (int n = 0; n < peers_per_user * messages_per_peer; ++n) {
      const auto message = clients[static_cast<std::size_t>(r)]->next<protocol::DirectEvent>();
      const auto expected =
          message.from + "->" + name(r) + " #" + std::to_string(next_from[message.from]++);
      CHECK(message.text == expected);
    }
    CHECK(next_from.size() == static_cast<std::size_t>(peers_per_user));
    for (int p = 1; p <= peers_per_user; ++p) {
      CHECK(next_from[name((r - p + users) % users)] == messages_per_peer);
    }
  }
  // Nothing extra: every frame sent before each client's pong has arrived.
  for (auto& client : clients)
    CHECK(client->quiet());

  std::ifstream log(server.data_dir() / "messagelog.txt");
  std::set<std::string> logged;
  int seq = 0;
  for (std::string line; std::getline(log, line);) {
    ++seq;
    const auto first = line.find("; ");
    REQUIRE(first != std::string::npos);
    CHECK(line.substr(0, first) == std::to_string(seq));
    const auto sender = line.find("; ", first + 2);
    REQUIRE(sender != std::string::npos);
    CHECK(logged.insert(line.substr(sender + 2)).second);
  }
  CHECK(seq == total);

  clients.clear();
  work.reset();
  for (auto& thread : threads)
    thread.join();
}
