// Thousands of groups over real sockets: the server's descriptor count stays
// flat (group logs are opened on demand), and every group's log is complete.

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_server.hpp"
#include "wire_client.hpp"

using namespace tessenger;
using namespace tessenger::testing;
namespace p = tessenger::protocol;

namespace {

std::size_t open_descriptors() {
  return static_cast<std::size_t>(std::distance(
      std::filesystem::directory_iterator("/proc/self/fd"), std::filesystem::directory_iterator{}));
}

}  // namespace

TEST_CASE("5,000 groups with a message each keep the descriptor count flat") {
  constexpr int groups = 5000;
  constexpr int pipelined = 250;
  // The server keeps at most 32 group logs open; a few more for what an
  // event loop may hold for a moment.
  constexpr std::size_t margin = 32 + 8;
  ServerConfig config;
  config.limits.max_groups_per_user = groups;
  config.limits.message_rate = 0;
  TestServer server(config);
  WireClient alice(server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(alice.login("alice", "pa")));

  const auto name = [](int i) { return "g" + std::to_string(i); };
  const auto before = open_descriptors();
  std::size_t peak = before;
  p::RequestId id = 10;
  for (int start = 0; start < groups; start += pipelined) {
    for (int i = start; i < start + pipelined; ++i) {
      alice.send(p::GroupCreate{++id, name(i), {}});
      alice.send(p::GroupSend{++id, name(i), "hello " + name(i)});
    }
    for (int i = start; i < start + pipelined; ++i) {
      REQUIRE(alice.expect<p::GroupCreated>().group == name(i));
      alice.expect<p::GroupSent>();
    }
    peak = std::max(peak, open_descriptors());
  }
  const auto after = open_descriptors();
  MESSAGE("descriptors with " << groups << " groups: " << before << " before, peak " << peak << ", "
                              << after << " after");
  CHECK(peak <= before + margin);
  CHECK(after <= before + margin);

  server.stop();  // writes and syncs every log
  for (int i = 0; i < groups; ++i) {
    const auto lines = lines_of(server.data_dir() / (name(i) + "_messagelog.txt"));
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].starts_with("1; "));
    CHECK(lines[0].ends_with("; alice; hello " + name(i)));
  }
}
