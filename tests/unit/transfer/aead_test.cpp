#include <doctest/doctest.h>

#include <algorithm>
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

  explicit Pair(const Key& receiver_key = key_of(1), bool lend_memory = false)
      : sender(params, source, config, now),
        receiver({77, receiver_key, 3000}, sha256(source.data), lent(sink, lend_memory), config,
                 now) {}

  static test::MemorySink& lent(test::MemorySink& sink, bool lend_memory) {
    sink.lend_memory = lend_memory;
    return sink;
  }

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

TEST_CASE("open in steps equals open, and may put the rest of the text elsewhere") {
  Aead a(key_of(5));
  std::vector<std::byte> buf(wire::header_size + 100 + wire::tag_size);
  wire::write_header(buf, {wire::Type::data, false, 1, 3});
  const auto text = test::random_bytes(100, 5);
  std::copy(text.begin(), text.end(), buf.begin() + wire::header_size);
  REQUIRE(seal_datagram(a, buf, 100, false, 3) == buf.size());
  const auto aad = std::span(buf).first(wire::header_size);
  const auto sealed = std::span(buf).subspan(wire::header_size, 100);
  const auto tag = std::span(buf).last(wire::tag_size);

  std::vector<std::byte> head(8), rest(92);
  REQUIRE(a.open_begin(false, 3, aad));
  REQUIRE(a.open_update(sealed.first(8), head));
  REQUIRE(a.open_update(sealed.subspan(8), rest));
  CHECK(a.open_end(tag));
  CHECK(std::equal(head.begin(), head.end(), text.begin()));
  CHECK(std::equal(rest.begin(), rest.end(), text.begin() + 8));

  auto flipped = std::vector<std::byte>(sealed.begin(), sealed.end());
  flipped[50] ^= std::byte{0x04};
  REQUIRE(a.open_begin(false, 3, aad));
  REQUIRE(a.open_update(flipped, flipped));
  CHECK_FALSE(a.open_end(tag));
  // Decryption is a stream cipher's: the flip shows through until the tag is checked.
  CHECK(flipped[50] == (text[50] ^ std::byte{0x04}));
  CHECK_FALSE(a.open_update(sealed.first(8), std::span(rest).first(7)));
}

TEST_CASE("into lent memory: a forged datagram marks nothing and is overwritten by the real one") {
  Pair p(key_of(1), true);
  const auto chunk = p.config.chunk_size;
  auto first = p.next_data();
  p.receiver.on_datagram(first, p.now);
  REQUIRE(p.receiver.progress().done == chunk);
  auto second = p.next_data();

  SUBCASE("a flipped file byte") {
    auto forged = second;
    forged[wire::header_size + 8 + 12] ^= std::byte{0x80};
    p.receiver.on_datagram(forged, p.now);
    CHECK(p.receiver.stats().dropped_auth == 1);
    CHECK(p.receiver.progress().done == chunk);
    // It was decrypted in place in the sink: the garbage is there, unmarked.
    CHECK(p.sink.data[chunk + 12] == (std::byte{0x5a} ^ std::byte{0x80}));
  }
  SUBCASE("a flipped offset points it at other free bytes") {
    auto forged = second;
    forged[wire::header_size + 7] ^= std::byte{0x01};
    p.receiver.on_datagram(forged, p.now);
    CHECK(p.receiver.stats().dropped_auth == 1);
    CHECK(p.receiver.progress().done == chunk);
  }
  SUBCASE("an offset over bytes held is decrypted in the datagram, not over them") {
    auto forged = second;
    // Offset 1200 becomes 1200 ^ 0x0400 = 176: inside the first chunk.
    forged[wire::header_size + 6] ^= std::byte{0x04};
    p.receiver.on_datagram(forged, p.now);
    CHECK(p.receiver.stats().dropped_auth == 1);
    CHECK(std::all_of(p.sink.data.begin(), p.sink.data.begin() + static_cast<long>(chunk),
                      [](std::byte b) { return b == std::byte{0x5a}; }));
  }
  p.receiver.on_datagram(second, p.now);
  CHECK(p.receiver.progress().done == 2 * chunk);
  auto third = p.next_data();
  p.receiver.on_datagram(third, p.now);
  CHECK(p.receiver.state() == State::done);
  CHECK(p.sink.committed);
  CHECK(p.sink.data == p.source.data);
  CHECK(p.sink.writes == 0);
  CHECK(p.sink.reads == 0);
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
