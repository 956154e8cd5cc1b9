// The original client's datagram format (docs/legacy.md), sans I/O: what
// LegacySender emits and at what pace, and what LegacyReceiver keeps.

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include <tessenger/transfer_engine.hpp>

#include "transfer/legacy_format.hpp"
#include "transfer/legacy_receiver.hpp"
#include "transfer/legacy_sender.hpp"

using namespace tessenger::transfer;
using tessenger::errc;
using namespace std::chrono_literals;

namespace {

struct StringSource final : ChunkSource {
  std::string data;
  std::error_code read(std::uint64_t offset, std::span<std::byte> out) override {
    std::memcpy(out.data(), data.data() + offset, out.size());
    return {};
  }
};

struct StringSink final : ChunkSink {
  std::string data;
  bool committed = false;
  std::error_code write(std::uint64_t offset, std::span<const std::byte> bytes) override {
    CHECK(offset == data.size());
    data.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return {};
  }
  std::error_code read(std::uint64_t, std::span<std::byte>) override { return {}; }
  std::error_code commit() override {
    committed = true;
    return {};
  }
};

std::string text(std::span<const std::byte> d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

std::span<std::byte> bytes(std::string& s) {
  return std::as_writable_bytes(std::span(s.data(), s.size()));
}

// Everything the sender emits, polling at `step` intervals from `start`.
std::vector<std::string> drain(LegacySender& sender, TimePoint& now, Clock::duration step) {
  std::vector<std::string> out;
  std::vector<std::byte> buffer(2048);
  while (sender.state() == State::active) {
    while (const auto n = sender.poll_send(buffer, now))
      out.push_back(text(std::span(buffer).first(n)));
    if (sender.state() != State::active) break;
    REQUIRE(sender.next_expiry() > now);
    now = std::max(now + step, sender.next_expiry());
  }
  return out;
}

}  // namespace

TEST_CASE("legacy sender: the header once, 1,024-byte chunks, then end") {
  StringSource source;
  for (int i = 0; i < 3 * 1024 + 10; ++i)
    source.data.push_back(static_cast<char>(i * 31 % 251));
  auto now = TimePoint{} + 1h;
  LegacySender sender(legacy::header("bob", "clip.mp4"), source, source.data.size(), 1u << 30, now);
  const auto out = drain(sender, now, 1ms);
  REQUIRE(out.size() == 6);
  CHECK(out[0] == "UDP%%bob_clip.mp4");
  CHECK(out[1].size() == 1024);
  CHECK(out[4].size() == 10);
  CHECK(out[1] + out[2] + out[3] + out[4] == source.data);
  CHECK(out[5] == "end");
  CHECK(sender.state() == State::done);
  CHECK(sender.progress().done == source.data.size());
}

TEST_CASE("legacy sender: a last chunk that reads end is split, an empty file is header and end") {
  StringSource source;
  source.data = std::string(1024, 'x') + "end";
  auto now = TimePoint{} + 1h;
  LegacySender sender(legacy::header("bob", "f"), source, source.data.size(), 1u << 30, now);
  const auto out = drain(sender, now, 1ms);
  REQUIRE(out.size() == 5);
  CHECK(out[2] == "e");
  CHECK(out[3] == "nd");
  CHECK(out[4] == "end");

  StringSource empty;
  LegacySender none(legacy::header("bob", "f"), empty, 0, 1u << 30, now);
  CHECK(drain(none, now, 1ms) == std::vector<std::string>{"UDP%%bob_f", "end"});
}

TEST_CASE("legacy sender: paced at its rate, in bursts of a few datagrams") {
  StringSource source;
  source.data = std::string(1024 * 1024, 'p');
  const auto start = TimePoint{} + 1h;
  auto now = start;
  // 1 MiB at 4 MiB/s: a quarter of a second, whatever the polling step.
  LegacySender sender(legacy::header("bob", "f"), source, source.data.size(), 4u << 20, now);
  std::vector<std::byte> buffer(2048);
  std::size_t most_at_once = 0;
  while (sender.state() == State::active) {
    std::size_t burst = 0;
    while (sender.poll_send(buffer, now) != 0)
      ++burst;
    most_at_once = std::max(most_at_once, burst);
    if (sender.state() == State::active) now = sender.next_expiry();
  }
  const auto took = now - start;
  CHECK(took >= 240ms);
  CHECK(took <= 260ms);
  CHECK(most_at_once <= 9);
  CHECK(sender.stats().data_bytes_sent == source.data.size());
}

TEST_CASE("legacy header: names the original receiver cannot take") {
  CHECK_FALSE(legacy::header_problem("bob", "clip.mp4"));
  CHECK(legacy::header_problem("bob", "50%%off.txt"));
  CHECK(legacy::header_problem("bob", std::string(1020, 'n')));
  CHECK_FALSE(legacy::header_problem("bob", std::string(1024 - 9, 'n')));
}

TEST_CASE("legacy receiver: drops every copy of the header, commits at end") {
  StringSink sink;
  auto now = TimePoint{} + 1h;
  LegacyReceiver receiver(legacy::header("alice", "a.txt"), "alice", sink, 1 << 20, 1s, now);
  std::string header = "UDP%%alice_a.txt";
  std::string one = "first chunk ";
  std::string two = "UDP%%alice_a.txt.";  // not the header: kept
  std::string end = "end";
  for (auto* d : {&header, &one, &header, &two, &header})
    receiver.on_datagram(bytes(*d), now);
  CHECK(receiver.state() == State::active);
  CHECK_FALSE(sink.committed);
  receiver.on_datagram(bytes(end), now);
  CHECK(receiver.state() == State::done);
  CHECK(sink.committed);
  CHECK(sink.data == one + two);
  CHECK(receiver.progress().done == sink.data.size());
}

TEST_CASE("legacy receiver: an idle timeout and a size limit fail it") {
  auto now = TimePoint{} + 1h;
  {
    StringSink sink;
    LegacyReceiver receiver(legacy::header("alice", "a"), "alice", sink, 1 << 20, 1s, now);
    CHECK(receiver.next_expiry() == now + 1s);
    receiver.on_timeout(now + 999ms);
    CHECK(receiver.state() == State::active);
    receiver.on_timeout(now + 1s);
    CHECK(receiver.error() == errc::transfer_timeout);
    CHECK(receiver.error_reason() == "nothing arrived from alice within 1.0 s");
  }
  {
    StringSink sink;
    LegacyReceiver receiver(legacy::header("alice", "a"), "alice", sink, 1 << 20, 1s, now);
    std::string chunk(100, 'c');
    receiver.on_datagram(bytes(chunk), now);
    receiver.on_timeout(now + 1s);
    CHECK(receiver.error() == errc::transfer_timeout);
    CHECK(
        receiver.error_reason() ==
        "alice stopped sending for 1.0 s after 100 bytes, without the end mark; nothing was kept");
    CHECK_FALSE(sink.committed);
  }
  {
    StringSink sink;
    LegacyReceiver receiver(legacy::header("alice", "a"), "alice", sink, 150, 1s, now);
    std::string chunk(100, 'c');
    receiver.on_datagram(bytes(chunk), now);
    receiver.on_datagram(bytes(chunk), now);
    CHECK(receiver.error() == errc::transfer_too_large);
    CHECK(sink.data.size() == 100);
  }
}
