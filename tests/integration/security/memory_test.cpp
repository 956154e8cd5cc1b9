// Memory held by half-sent frames (issue 13, finding 6): 2,000 connections
// from 8 addresses each declare a 64 KiB frame and send 65,000 bytes of it.
// Unfinished frames stay within their shared budget, the slowest senders
// being dropped, while honest users chat; and the real tessenger-server
// gives the memory back once the attackers leave. RSS is asserted only
// without AddressSanitizer, whose quarantine keeps freed memory resident;
// the attack runs either way. The figures are printed.

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "eventually.hpp"
#include "process.hpp"
#include "test_server.hpp"
#include "wire_client.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define TESSENGER_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TESSENGER_TEST_ASAN 1
#endif
#endif

namespace p = tessenger::protocol;
using tessenger::testing::eventually;
using tessenger::testing::Process;
using tessenger::testing::TempDir;
using tessenger::testing::TestServer;
using tessenger::testing::WireClient;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int attackers = 2000;
constexpr std::size_t declared = 64 * 1024;
constexpr std::size_t sent = 65'000;
// What the server holds for one of them: the header and the declared payload.
constexpr std::size_t held_each = p::header_size + declared;
constexpr std::uint64_t page_size = 4096;

// A Hello's header declaring 64 KiB, then 65,000 bytes of its payload.
std::vector<std::byte> half_frame() {
  auto bytes = p::encode(p::Hello{1, 1, 1, "x"});
  bytes.resize(p::header_size);
  bytes[0] = std::byte{0};
  bytes[1] = std::byte{static_cast<unsigned char>(declared >> 16)};
  bytes[2] = std::byte{static_cast<unsigned char>((declared >> 8) & 0xff)};
  bytes[3] = std::byte{static_cast<unsigned char>(declared & 0xff)};
  bytes.resize(p::header_size + sent, std::byte{'a'});
  return bytes;
}

std::string source(int i) {
  return "127.0.0." + std::to_string(60 + i % 8);
}

// Opens the attackers one after the other, calling `between` after each.
template <class Between>
std::vector<std::unique_ptr<WireClient>> attack(std::uint16_t port, Between&& between) {
  const auto frame = half_frame();
  std::vector<std::unique_ptr<WireClient>> clients;
  for (int i = 0; i < attackers; ++i) {
    clients.push_back(std::make_unique<WireClient>(port, "127.0.0.1", 0, source(i)));
    try {
      clients.back()->send_bytes(frame);
    } catch (const std::runtime_error&) {
      // Dropped while it sent.
    }
    between();
  }
  return clients;
}

// The resident set of a process, in bytes.
std::uint64_t rss(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  FAIL("no VmRSS");
  return 0;
}

// The server's TCP sockets on loopback (local port `port`), from
// /proc/net/tcp: how many are connected, and the bytes they hold unread
// (for the listener: connections not yet accepted).
struct Sockets {
  std::size_t connected = 0;
  std::uint64_t unread = 0;
  std::string unread_lines;  // for a failure's message
};
Sockets server_sockets(std::uint16_t port) {
  std::ifstream table("/proc/net/tcp");
  std::string line;
  std::getline(table, line);
  Sockets sockets;
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues;
    fields >> slot >> local >> remote >> state >> queues;
    // 127.0.0.1, where the server listens (the attackers use 127.0.0.60-67).
    if (local.rfind("0100007F:", 0) != 0 || std::stoul(local.substr(9), nullptr, 16) != port) {
      continue;
    }
    const auto unread = std::stoull(queues.substr(queues.find(':') + 1), nullptr, 16);
    sockets.unread += unread;
    if (unread != 0) sockets.unread_lines += line + "\n";
    // ESTABLISHED or CLOSE_WAIT: a descriptor the server has not closed.
    if (state == "01" || state == "08") ++sockets.connected;
  }
  return sockets;
}

double mib(std::uint64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

}  // namespace

TEST_CASE("unfinished frames stay within their budget; the slowest senders are dropped") {
  constexpr std::size_t budget = 16 * 1024 * 1024;
  tessenger::ServerConfig config;
  config.limits.max_incomplete_frame_bytes = budget;
  TestServer server(config);
  auto& s = server.server();
  WireClient alice(server.port());
  WireClient bob(server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(alice.login("alice", "pa")));
  REQUIRE(std::holds_alternative<p::LoginOk>(bob.login("bob", "pb")));

  std::uint64_t most = 0;
  const auto start = Clock::now();
  auto clients =
      attack(server.port(), [&] { most = std::max(most, s.stats().incomplete_frame_bytes); });
  // Every frame has been read: held whole, or dropped with its connection.
  REQUIRE(eventually(
      [&] {
        const auto stats = s.stats();
        most = std::max(most, stats.incomplete_frame_bytes);
        return stats.incomplete_frame_drops + stats.incomplete_frame_bytes / held_each == attackers;
      },
      30s));
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  const auto during = s.stats();
  CHECK(most <= budget);
  CHECK(during.incomplete_frame_bytes <= budget);
  CHECK(during.incomplete_frame_bytes % held_each == 0);
  CHECK(during.incomplete_frame_drops >= attackers - budget / held_each);
  CHECK(during.connections == 2 + attackers - during.incomplete_frame_drops);

  // The honest users were not touched.
  alice.send(p::DirectSend{10, "bob", "still here"});
  CHECK(alice.expect<p::DirectSent>().request_id == 10);
  CHECK(bob.expect<p::DirectEvent>().text == "still here");

  clients.clear();
  CHECK(eventually([&] { return s.stats().connections == 2; }));
  CHECK(s.stats().incomplete_frame_bytes == 0);
  MESSAGE(attackers << " connections from 8 addresses, each 65,000 bytes into a 64 KiB frame, in "
                    << elapsed.count() << " ms, budget " << mib(budget)
                    << " MiB: unfinished frames held at most " << mib(most) << " MiB; "
                    << during.incomplete_frame_drops << " dropped, "
                    << during.incomplete_frame_bytes / held_each << " held; after they left "
                    << s.stats().incomplete_frame_bytes << " bytes");
}

TEST_CASE("tessenger-server gives the memory of 2,000 half-sent frames back once they leave") {
  TempDir dir;
  dir.write("credentials.txt", "alice pa\nbob pb\n");
  Process server({TESSENGER_SERVER_PATH, "127.0.0.1", "0", "3", "--credentials",
                  (dir / "credentials.txt").string(), "--data-dir", (dir / "data").string()});
  std::uint16_t port = 0;
  while (port == 0) {
    const auto line = server.read_line(30s);
    REQUIRE(line.has_value());
    if (line->starts_with("TESSENGER server listening on 127.0.0.1:")) {
      port = static_cast<std::uint16_t>(std::stoul(line->substr(40)));
    }
  }
  // A session first, so that what one costs the first time is in the base.
  {
    WireClient alice(port);
    REQUIRE(std::holds_alternative<p::LoginOk>(alice.login("alice", "pa")));
    alice.send(p::DirectSend{5, "alice", "x"});
    alice.next();
  }
  REQUIRE(eventually([&] { return server_sockets(port).connected == 0; }));
  const auto before = rss(server.pid());

  std::uint64_t peak = 0;
  int opened = 0;
  std::size_t most_connected = 0;
  auto sample = [&] {
    peak = std::max(peak, rss(server.pid()));
    most_connected = std::max(most_connected, server_sockets(port).connected);
  };
  auto clients = attack(port, [&] {
    if (++opened % 100 == 0) sample();
  });
  const bool all_read = eventually([&] { return server_sockets(port).unread == 0; }, 30s);
  if (!all_read) MESSAGE("unread:\n" << server_sockets(port).unread_lines);
  REQUIRE(all_read);
  sample();
  const auto held = server_sockets(port).connected;

  clients.clear();
  const auto left = Clock::now();
  REQUIRE(eventually([&] { return server_sockets(port).connected == 0; }, 10s));
  // Within 10 s of their leaving (a trim follows the closes within a
  // second). Asio keeps the state of every socket it has had open at once
  // for reuse (about 170 bytes each), spread over the heap where they were
  // allocated: each may keep one page resident, which no trim can return.
  const auto bound = before + before / 5 + most_connected * page_size;
  bool back = false;
#if !defined(TESSENGER_TEST_ASAN)
  back =
      eventually([&] { return rss(server.pid()) <= bound; },
                 std::chrono::duration_cast<std::chrono::milliseconds>(left + 10s - Clock::now()));
  CHECK(back);
#endif
  const auto after = rss(server.pid());
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - left);
  const std::string outcome = back ? "reached" : "not checked (AddressSanitizer)";
  MESSAGE("tessenger-server RSS: " << mib(before) << " MiB before, at most " << mib(peak)
                                   << " MiB with " << held << " of " << attackers
                                   << " attackers still connected, " << mib(after) << " MiB "
                                   << took.count() << " ms after they left; bound " << mib(bound)
                                   << " MiB (20 % over before: " << mib(before + before / 5)
                                   << " MiB, plus a page for each of at most " << most_connected
                                   << " sockets at once): " << outcome);
  server.signal(SIGTERM);
  CHECK(server.wait(30s).has_value());
}
