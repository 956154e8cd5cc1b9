#include <doctest/doctest.h>

#include <chrono>
#include <vector>

#include "memory_file.hpp"
#include "transfer/aead.hpp"
#include "transfer/wire.hpp"

using namespace tessenger::transfer;
using namespace std::chrono_literals;

namespace {

Key key_of(std::uint8_t seed) {
  Key k{};
  for (std::size_t i = 0; i < k.size(); ++i)
    k[i] = static_cast<std::uint8_t>(seed + i);
  return k;
}

struct Pair {
  test::MemorySource source{std::vector<std::byte>(3000, std::byte{0x5a})};
  test::MemorySink sink{3000};
  TransferParams params{77, key_of(1), 3000};
  TimePoint now{};
  Config config;
  Sender sender;
  Receiver receiver;

  explicit Pair(const Key& receiver_key = key_of(1))
      : sender(params, source, config, now),
        receiver({77, receiver_key, 3000}, sha256(source.data), sink, config, now) {}

  std::vector<std::byte> next_data() {
    std::vector<std::byte> d(max_datagram_size);
    d.resize(sender.poll_send(d, now));
    return d;
  }
};

}  // namespace

TEST_CASE("seal then open restores the text; the tag covers header and payload") {
  Aead a(key_of(3));
  std::vector<std::byte> buf(wire::header_size + 5 + wire::tag_size);
  wire::write_header(buf, {wire::Type::data, false, 1, 9});
  for (std::size_t i = 0; i < 5; ++i)
    buf[wire::header_size + i] = std::byte(i);
  const auto n = seal_datagram(a, buf, 5, false, 9);
  REQUIRE(n == buf.size());
  CHECK(buf[wire::header_size] != std::byte{0});  // encrypted

  SUBCASE("intact") {
    std::span<std::byte> payload;
    REQUIRE(open_datagram(a, buf, false, 9, payload));
    REQUIRE(payload.size() == 5);
    CHECK(payload[4] == std::byte{4});
  }
  SUBCASE("any single bit flipped anywhere fails") {
    for (std::size_t i = 0; i < buf.size(); ++i) {
      auto copy = buf;
      copy[i] ^= std::byte{0x01};
      std::span<std::byte> payload;
      CHECK_FALSE(open_datagram(a, copy, false, 9, payload));
    }
  }
  SUBCASE("wrong direction or packet number (nonce) fails") {
    auto copy = buf;
    std::span<std::byte> payload;
    CHECK_FALSE(open_datagram(a, copy, true, 9, payload));
    copy = buf;
    CHECK_FALSE(open_datagram(a, copy, false, 10, payload));
  }
  SUBCASE("another key fails") {
    Aead other(key_of(4));
    std::span<std::byte> payload;
    CHECK_FALSE(open_datagram(other, buf, false, 9, payload));
  }
}

TEST_CASE("the receiver drops forged, corrupted and replayed datagrams and counts them") {
  Pair p;
  const auto first = p.next_data();
  REQUIRE(first.size() == p.config.chunk_size + data_overhead);

  auto copy = first;
  p.receiver.on_datagram(copy, p.now);
  CHECK(p.receiver.stats().datagrams_received == 1);
  CHECK(p.receiver.progress().done == p.config.chunk_size);

  SUBCASE("replayed") {
    copy = first;
    p.receiver.on_datagram(copy, p.now);
    CHECK(p.receiver.stats().dropped_replay == 1);
    CHECK(p.receiver.stats().datagrams_received == 1);
  }
  SUBCASE("corrupted payload") {
    auto second = p.next_data();
    second[40] ^= std::byte{0x80};
    p.receiver.on_datagram(second, p.now);
    CHECK(p.receiver.stats().dropped_auth == 1);
    CHECK(p.receiver.progress().done == p.config.chunk_size);
  }
  SUBCASE("header changed: packet number") {
    auto second = p.next_data();
    second[19] ^= std::byte{0x02};
    p.receiver.on_datagram(second, p.now);
    CHECK(p.receiver.stats().dropped_auth == 1);
  }
  SUBCASE("header changed: transfer id is not this transfer") {
    auto second = p.next_data();
    second[11] ^= std::byte{0x01};
    p.receiver.on_datagram(second, p.now);
    CHECK(p.receiver.stats().dropped_malformed == 1);
  }
  SUBCASE("forged with a guessed key") {
    Aead forger(key_of(9));
    std::vector<std::byte> forged(wire::header_size + 8 + 10 + wire::tag_size);
    wire::write_header(forged, {wire::Type::data, false, 77, 50});
    seal_datagram(forger, forged, 18, false, 50);
    p.receiver.on_datagram(forged, p.now);
    CHECK(p.receiver.stats().dropped_auth == 1);
    CHECK(p.receiver.progress().done == p.config.chunk_size);
  }
  SUBCASE("a forged datagram does not poison the replay window") {
    auto second = p.next_data();
    auto forged = second;
    forged[30] ^= std::byte{0x10};
    p.receiver.on_datagram(forged, p.now);
    CHECK(p.receiver.stats().dropped_auth == 1);
    p.receiver.on_datagram(second, p.now);
    CHECK(p.receiver.stats().datagrams_received == 2);
  }
  SUBCASE("a packet number older than the window is refused") {
    Aead same(key_of(1));
    std::vector<std::byte> late(wire::header_size + 8 + wire::tag_size);
    wire::write_header(late, {wire::Type::data, false, 77, 20000});
    seal_datagram(same, late, 8, false, 20000);
    p.receiver.on_datagram(late, p.now);
    CHECK(p.receiver.stats().datagrams_received == 2);
    wire::write_header(late, {wire::Type::data, false, 77, 1});
    late.resize(wire::header_size + 8 + wire::tag_size);
    seal_datagram(same, late, 8, false, 1);
    p.receiver.on_datagram(late, p.now);
    CHECK(p.receiver.stats().dropped_replay == 1);
  }
}

TEST_CASE("a receiver with another key accepts nothing") {
  Pair p(key_of(2));
  for (int i = 0; i < 3; ++i) {
    auto d = p.next_data();
    p.receiver.on_datagram(d, p.now);
  }
  CHECK(p.receiver.stats().dropped_auth == 3);
  CHECK(p.receiver.progress().done == 0);
  std::vector<std::byte> out(max_datagram_size);
  CHECK(p.receiver.poll_send(out, p.now) == 0);
}

TEST_CASE("the sender drops a reflected DATA datagram and forged ACKs") {
  Pair p;
  auto d = p.next_data();
  p.sender.on_datagram(d, p.now);
  CHECK(p.sender.stats().dropped_malformed == 1);

  Aead forger(key_of(9));
  std::vector<std::byte> ack(wire::header_size + wire::ack_fixed + wire::tag_size);
  wire::write_header(ack, {wire::Type::ack, true, 77, 0});
  wire::Ack body;
  body.contiguous = 3000;
  body.max_offset = 3000;
  wire::encode_ack(std::span(ack).subspan(wire::header_size), body);
  seal_datagram(forger, ack, wire::ack_fixed, true, 0);
  p.sender.on_datagram(ack, p.now);
  CHECK(p.sender.stats().dropped_auth == 1);
  CHECK(p.sender.progress().done == 0);
}
