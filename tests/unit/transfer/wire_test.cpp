#include <doctest/doctest.h>

#include <vector>

#include "transfer/wire.hpp"

using namespace tessenger::transfer;
using wire::Error;

namespace {

std::vector<std::byte> datagram_with_header(const wire::Header& h, std::size_t payload) {
  std::vector<std::byte> d(wire::header_size + payload + wire::tag_size);
  wire::write_header(d, h);
  return d;
}

}  // namespace

TEST_CASE("header round trip for every type and direction") {
  for (const auto& [type, from_receiver] :
       {std::pair{wire::Type::data, false}, std::pair{wire::Type::ack, true},
        std::pair{wire::Type::done, true}, std::pair{wire::Type::abort, false},
        std::pair{wire::Type::abort, true}}) {
    const wire::Header in{type, from_receiver, 0x0123456789abcdefULL, 0xfedcba9876543210ULL};
    const auto d = datagram_with_header(in, 0);
    wire::Header out;
    REQUIRE(wire::parse_header(d, out) == Error::none);
    CHECK(out.type == in.type);
    CHECK(out.from_receiver == in.from_receiver);
    CHECK(out.transfer_id == in.transfer_id);
    CHECK(out.packet_number == in.packet_number);
    CHECK(peek_transfer_id(d) == in.transfer_id);
    CHECK(tessenger::transfer::from_receiver(d) == in.from_receiver);
  }
}

TEST_CASE("header bytes are big-endian at fixed offsets") {
  const auto d = datagram_with_header({wire::Type::data, false, 0x1122334455667788ULL, 7}, 0);
  CHECK(d[0] == std::byte{'T'});
  CHECK(d[1] == std::byte{'F'});
  CHECK(d[2] == std::byte{1});
  CHECK(d[3] == std::byte{1});
  CHECK(d[4] == std::byte{0x11});
  CHECK(d[11] == std::byte{0x88});
  CHECK(d[19] == std::byte{7});
}

TEST_CASE("every malformed header class is refused") {
  const wire::Header ok{wire::Type::data, false, 42, 1};
  wire::Header out;
  SUBCASE("too short: every length below header + tag") {
    const auto d = datagram_with_header(ok, 0);
    for (std::size_t n = 0; n < d.size(); ++n)
      CHECK(wire::parse_header(std::span(d).first(n), out) == Error::too_short);
    CHECK_FALSE(peek_transfer_id(std::span(d).first(5)).has_value());
  }
  SUBCASE("bad magic") {
    auto d = datagram_with_header(ok, 0);
    d[0] = std::byte{'X'};
    CHECK(wire::parse_header(d, out) == Error::bad_magic);
    d[0] = std::byte{'T'};
    d[1] = std::byte{0};
    CHECK(wire::parse_header(d, out) == Error::bad_magic);
  }
  SUBCASE("bad version") {
    auto d = datagram_with_header(ok, 0);
    d[2] = std::byte{2};
    CHECK(wire::parse_header(d, out) == Error::bad_version);
  }
  SUBCASE("unknown type codes") {
    auto d = datagram_with_header(ok, 0);
    for (const int t : {0, 5, 0x7f, 0x80, 0x85, 0xff}) {
      d[3] = std::byte(t);
      CHECK(wire::parse_header(d, out) == Error::bad_type);
    }
  }
  SUBCASE("types from the wrong side") {
    auto d = datagram_with_header(ok, 0);
    d[3] = std::byte{0x81};  // DATA from a receiver
    CHECK(wire::parse_header(d, out) == Error::bad_direction);
    d[3] = std::byte{0x02};  // ACK from a sender
    CHECK(wire::parse_header(d, out) == Error::bad_direction);
    d[3] = std::byte{0x03};  // DONE from a sender
    CHECK(wire::parse_header(d, out) == Error::bad_direction);
  }
}

TEST_CASE("ACK payload round trip") {
  wire::Ack in;
  in.largest_pn = 99;
  in.ack_delay_us = 1234;
  in.max_offset = 1 << 30;
  in.contiguous = 5000;
  in.ranges = {{9000, 10000}, {7000, 8000}, {5001, 6000}};
  std::vector<std::byte> buf(wire::ack_fixed + 3 * wire::ack_range_size);
  REQUIRE(wire::encode_ack(buf, in) == buf.size());
  wire::Ack out;
  REQUIRE(wire::decode_ack(buf, out) == Error::none);
  CHECK(out.largest_pn == 99);
  CHECK(out.ack_delay_us == 1234);
  CHECK(out.max_offset == in.max_offset);
  CHECK(out.contiguous == 5000);
  CHECK(out.ranges == in.ranges);

  SUBCASE("the most ranges fit in max_ack_datagram") {
    in.ranges.clear();
    for (std::size_t i = 0; i < wire::max_ack_ranges; ++i) {
      const std::uint64_t b = 1'000'000 - i * 100;
      in.ranges.push_back({b, b + 50});
    }
    std::vector<std::byte> big(wire::ack_fixed + in.ranges.size() * wire::ack_range_size);
    wire::encode_ack(big, in);
    CHECK(wire::header_size + big.size() + wire::tag_size <= max_ack_datagram);
    REQUIRE(wire::decode_ack(big, out) == Error::none);
    CHECK(out.ranges.size() == wire::max_ack_ranges);
  }
}

TEST_CASE("malformed ACK payloads") {
  wire::Ack in;
  in.contiguous = 100;
  in.ranges = {{300, 400}, {150, 200}};
  std::vector<std::byte> buf(wire::ack_fixed + 2 * wire::ack_range_size);
  wire::encode_ack(buf, in);
  wire::Ack out;
  SUBCASE("truncated at every length") {
    for (std::size_t n = 0; n < buf.size(); ++n)
      CHECK(wire::decode_ack(std::span(buf).first(n), out) == Error::bad_length);
  }
  SUBCASE("trailing bytes") {
    buf.push_back(std::byte{0});
    CHECK(wire::decode_ack(buf, out) == Error::bad_length);
  }
  SUBCASE("count above the maximum") {
    wire::put_u16(buf.data() + 28, static_cast<std::uint16_t>(wire::max_ack_ranges + 1));
    CHECK(wire::decode_ack(buf, out) == Error::bad_length);
  }
  SUBCASE("ranges in ascending order") {
    in.ranges = {{150, 200}, {300, 400}};
    wire::encode_ack(buf, in);
    CHECK(wire::decode_ack(buf, out) == Error::bad_ranges);
  }
  SUBCASE("empty range") {
    in.ranges = {{300, 300}, {150, 200}};
    wire::encode_ack(buf, in);
    CHECK(wire::decode_ack(buf, out) == Error::bad_ranges);
  }
  SUBCASE("touching ranges") {
    in.ranges = {{200, 400}, {150, 200}};
    wire::encode_ack(buf, in);
    CHECK(wire::decode_ack(buf, out) == Error::bad_ranges);
  }
  SUBCASE("range at or below the contiguous prefix") {
    in.ranges = {{300, 400}, {100, 120}};
    wire::encode_ack(buf, in);
    CHECK(wire::decode_ack(buf, out) == Error::bad_ranges);
  }
}

TEST_CASE("DATA payload") {
  std::vector<std::byte> p(wire::data_prefix + 3);
  wire::put_u64(p.data(), 1ull << 40);  // past 4 GiB
  std::uint64_t offset = 0;
  std::span<const std::byte> bytes;
  REQUIRE(wire::decode_data(p, offset, bytes) == Error::none);
  CHECK(offset == (1ull << 40));
  CHECK(bytes.size() == 3);
  CHECK(wire::decode_data(std::span(p).first(7), offset, bytes) == Error::bad_length);
  wire::put_u64(p.data(), UINT64_MAX - 1);
  CHECK(wire::decode_data(p, offset, bytes) == Error::bad_offset);
}

TEST_CASE("integers are big-endian") {
  std::byte b[8];
  wire::put_u64(b, 0x0102030405060708ULL);
  CHECK(b[0] == std::byte{1});
  CHECK(b[7] == std::byte{8});
  CHECK(wire::get_u64(b) == 0x0102030405060708ULL);
  wire::put_u32(b, 0xa0b0c0d0u);
  CHECK(wire::get_u32(b) == 0xa0b0c0d0u);
  wire::put_u16(b, 0xbeef);
  CHECK(wire::get_u16(b) == 0xbeef);
}
