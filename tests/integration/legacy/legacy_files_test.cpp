// Files between the generations over loopback, bytes compared: a native
// FileTransfer receiving the original client's datagrams (header before
// every chunk, from a port nobody announced, maybe before it heard of the
// file) and sending them to a receiver that behaves like the original's
// UDP_recv; then both directions end to end, a LegacyClient beside a
// tessenger-client.

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <string>
#include <vector>

#include <tessenger/file_transfer.hpp>

#include "cli_harness.hpp"
#include "eventually.hpp"
#include "legacy_client.hpp"
#include "test_server.hpp"

using tessenger::errc;
using tessenger::FileTransfer;
using tessenger::LegacyIncoming;
using tessenger::TransferCallbacks;
using tessenger::TransferOptions;
using tessenger::TransferResult;
using tessenger::testing::CliClient;
using tessenger::testing::eventually;
using tessenger::testing::LegacyClient;
using tessenger::testing::LegacyUdpReceiver;
using tessenger::testing::TempDir;
using tessenger::testing::TestServer;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Lines = std::vector<std::string>;

namespace {

// A UDP socket on one loopback address, as another program would have.
class UdpFrom {
 public:
  explicit UdpFrom(const char* address) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    ::inet_pton(AF_INET, address, &sa.sin_addr);
    REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  }
  ~UdpFrom() { ::close(fd_); }
  void send(std::uint16_t port, const std::string& datagram) {
    const auto to = tessenger::testing::loopback_address(port);
    ::sendto(fd_, datagram.data(), datagram.size(), 0, reinterpret_cast<const sockaddr*>(&to),
             sizeof to);
  }

 private:
  int fd_ = -1;
};

struct Outcome {
  bool ok = false;
  TransferResult result;
  errc code{};
  std::string reason;
};

// Callbacks that fulfil `outcome` once.
TransferCallbacks reporting(std::promise<Outcome>& outcome) {
  TransferCallbacks callbacks;
  callbacks.on_complete = [&outcome](const TransferResult& r) {
    outcome.set_value({true, r, {}, {}});
  };
  callbacks.on_failure = [&outcome](std::error_code ec, const std::string& reason) {
    outcome.set_value({false, {}, static_cast<errc>(ec.value()), reason});
  };
  return callbacks;
}

Outcome wait(std::promise<Outcome>& outcome) {
  auto future = outcome.get_future();
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  return future.get();
}

std::string content_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::string pattern(std::size_t size, unsigned seed) {
  std::string s;
  for (std::size_t i = 0; i < size; ++i)
    s.push_back(static_cast<char>((i * 7919u + seed) % 251u));
  return s;
}

Lines names_in(const fs::path& dir) {
  Lines names;
  for (const auto& entry : fs::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TransferOptions options_for(const TempDir& dir, std::chrono::milliseconds idle = 5s) {
  TransferOptions options;
  options.download_dir = dir.path();
  options.idle_timeout = idle;
  return options;
}

const asio::ip::udp::endpoint any_port{asio::ip::make_address("127.0.0.1"), 0};

}  // namespace

TEST_CASE("legacy reception: only the announced sender's datagrams, also those that came early") {
  TempDir downloads;
  FileTransfer files(any_port, options_for(downloads));
  const auto port = files.local_port();
  const std::string header = "UDP%%alice_notes.txt";
  UdpFrom alice("127.0.0.1");
  UdpFrom neighbour("127.0.0.1");
  UdpFrom stranger("127.0.0.2");

  // All of it arrives before the receiver has heard of the file.
  stranger.send(port, header);
  stranger.send(port, "from the wrong address");
  alice.send(port, header);
  alice.send(port, "first, ");
  neighbour.send(port, "from the wrong port");
  alice.send(port, header);
  alice.send(port, "second");
  alice.send(port, "end");
  REQUIRE(eventually([&] { return files.stats().datagrams_received == 8; }));

  std::promise<Outcome> outcome;
  REQUIRE_FALSE(files.expect_legacy_file(
      {"alice", "notes.txt", asio::ip::make_address("127.0.0.1")}, reporting(outcome)));
  const auto got = wait(outcome);
  REQUIRE(got.ok);
  CHECK_FALSE(got.result.verified);
  CHECK(got.result.path == downloads / "alice_notes.txt");
  CHECK(got.result.size == 13);
  CHECK(content_of(downloads / "alice_notes.txt") == "first, second");
  CHECK(names_in(downloads.path()) == Lines{"alice_notes.txt"});
}

TEST_CASE("legacy reception: live, never over an existing file, never outside the download dir") {
  TempDir root;
  fs::create_directory(root / "downloads");
  auto options = options_for(root);
  options.download_dir = root / "downloads";
  FileTransfer files(any_port, options);
  const auto port = files.local_port();
  std::ofstream(root / "downloads" / "alice_escape.bin") << "already here";

  const std::string name = "sub/../../escape.bin";
  std::promise<Outcome> outcome;
  REQUIRE_FALSE(files.expect_legacy_file({"alice", name, asio::ip::make_address("127.0.0.1")},
                                         reporting(outcome)));
  // As the original sends it: the header before every 1,024-byte chunk.
  const auto content = pattern(20 * 1024 + 123, 1);
  UdpFrom alice("127.0.0.1");
  for (std::size_t at = 0; at < content.size(); at += 1024) {
    alice.send(port, "UDP%%alice_" + name);
    alice.send(port, content.substr(at, 1024));
  }
  alice.send(port, "end");
  const auto got = wait(outcome);
  REQUIRE(got.ok);
  CHECK(got.result.path == root / "downloads" / "alice_escape (1).bin");
  CHECK(content_of(got.result.path) == content);
  CHECK(content_of(root / "downloads" / "alice_escape.bin") == "already here");
  CHECK(names_in(root / "downloads") == Lines{"alice_escape (1).bin", "alice_escape.bin"});
  CHECK(names_in(root.path()) == Lines{"downloads"});
}

TEST_CASE("legacy reception: silence fails it and leaves nothing behind") {
  TempDir downloads;
  FileTransfer files(any_port, options_for(downloads, 300ms));
  const auto port = files.local_port();
  const auto alice_at = asio::ip::make_address("127.0.0.1");

  std::promise<Outcome> nothing;
  REQUIRE_FALSE(files.expect_legacy_file({"alice", "missing.txt", alice_at}, reporting(nothing)));
  std::promise<Outcome> stalled;
  REQUIRE_FALSE(files.expect_legacy_file({"alice", "half.txt", alice_at}, reporting(stalled)));
  UdpFrom alice("127.0.0.1");
  alice.send(port, "UDP%%alice_half.txt");
  alice.send(port, std::string(1024, 'h'));

  const auto none = wait(nothing);
  CHECK_FALSE(none.ok);
  CHECK(none.code == errc::transfer_timeout);
  CHECK(none.reason == "nothing arrived from alice within 0.3 s");
  const auto half = wait(stalled);
  CHECK(half.code == errc::transfer_timeout);
  CHECK(half.reason ==
        "alice stopped sending for 0.3 s after 1024 bytes, without the end mark; nothing was kept");
  CHECK(eventually([&] { return files.active() == 0; }));
  CHECK(names_in(downloads.path()).empty());
}

TEST_CASE("legacy sending: what the original's receiver takes, whole") {
  TempDir dir;
  FileTransfer files(any_port, options_for(dir));
  LegacyUdpReceiver carol;
  const asio::ip::udp::endpoint to{asio::ip::make_address("127.0.0.1"), carol.port()};
  // Its last chunk reads "end", which the receiver would take for the mark.
  const auto content = pattern(48 * 1024, 2) + "end";
  dir.write("Bye-blocked.error.txt", content);

  std::promise<Outcome> outcome;
  REQUIRE_FALSE(
      files.send_legacy_file(dir / "Bye-blocked.error.txt", to, "bob", reporting(outcome)));
  const auto got = wait(outcome);
  REQUIRE(got.ok);
  CHECK_FALSE(got.result.verified);
  CHECK(got.result.size == content.size());
  CHECK(carol.wait_for("Received") == "Received Bye-blocked.error.txt from bob");
  CHECK(carol.file("bob_Bye-blocked.error.txt") == content);
  CHECK_FALSE(carol.broken());

  dir.write("50%%off.txt", "x");
  CHECK(files.send_legacy_file(dir / "50%%off.txt", to, "bob", {}) == errc::invalid_argument);
  CHECK(files.send_legacy_file(dir / "absent.txt", to, "bob", {}) == errc::no_such_file);
}

TEST_CASE("p2pvideo from the original client to tessenger-client, and back") {
  TestServer server;
  TempDir files;
  TempDir downloads;
  LegacyUdpReceiver alice_udp;
  LegacyClient alice(server.port(), files.path());
  REQUIRE(alice.login("alice pa " + std::to_string(alice_udp.port())));
  CliClient bob(server.port(), {"--download-dir", downloads.path().string()});
  bob.login("bob", "pb");

  // Legacy to native: a trigger word in the name, then a name with separators.
  const auto clip = pattern(20 * 1024 + 77, 3);
  files.write("p2pvideo.mp4", clip);
  CHECK(alice.command("p2pvideo bob p2pvideo.mp4", "p2pvideo 127.0.0.1").ends_with(" alice"));
  CHECK(bob.line() ==
        "alice is sending you p2pvideo.mp4 over the legacy protocol of the original client: it "
        "comes unverified and may be incomplete.");
  CHECK(bob.line() == tessenger::testing::prompt);
  CHECK(bob.line() == "Received p2pvideo.mp4 from alice");
  CHECK(bob.line() == tessenger::testing::prompt);
  CHECK(content_of(downloads / "alice_p2pvideo.mp4") == clip);

  fs::create_directory(files / "sub");
  files.write("escape.bin", "hostile");
  CHECK(alice.command("p2pvideo bob sub/../escape.bin", "p2pvideo 127.0.0.1").ends_with(" alice"));
  CHECK(bob.line().starts_with("alice is sending you sub/../escape.bin over the legacy"));
  CHECK(bob.line() == tessenger::testing::prompt);
  CHECK(bob.line() == "Received sub/../escape.bin from alice");
  CHECK(bob.line() == tessenger::testing::prompt);
  CHECK(content_of(downloads / "alice_escape.bin") == "hostile");
  CHECK(names_in(downloads.path()) == Lines{"alice_escape.bin", "alice_p2pvideo.mp4"});

  // Native to legacy: trigger words in the name reach nobody's TCP stream.
  const auto report = pattern(30 * 1024, 4);
  files.write("Bye-blocked.error.txt", report);
  const auto path = (files / "Bye-blocked.error.txt").string();
  CHECK(bob.command("/p2pvideo alice " + path) ==
        Lines{"alice uses the original client: " + path +
              " goes over its legacy protocol, unverified: nothing can tell whether it arrives "
              "whole."});
  CHECK(bob.line() == path + " has been uploaded.");
  CHECK(bob.line() == tessenger::testing::prompt);
  CHECK(alice_udp.wait_for("Received") == "Received Bye-blocked.error.txt from bob");
  CHECK(alice_udp.file("bob_Bye-blocked.error.txt") == report);
  CHECK(alice.command("activeuser", "bob, 127.0.0.1").find("alice, 127.0.0.1") !=
        std::string::npos);
  CHECK_FALSE(alice.reader_died());
}
