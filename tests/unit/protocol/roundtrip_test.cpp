#include <doctest/doctest.h>

#include <set>

#include "helpers.hpp"
#include "samples.hpp"

using namespace tessenger;
using namespace tessenger::protocol;
using namespace tessenger::protocol::test;

namespace {

void check_round_trip(const Message& m, const Limits& limits = {}) {
  CAPTURE(name_of(type_of(m)));
  const Bytes frame = encode(m);
  REQUIRE(frame.size() > header_size);

  Message decoded;
  REQUIRE_FALSE(decode_payload(type_of(m), std::span(frame).subspan(header_size), limits, decoded));
  CHECK(decoded == m);

  Decoder decoder(limits);
  auto r = decoder.feed(frame);
  REQUIRE_FALSE(r.error);
  CHECK(r.consumed == frame.size());
  REQUIRE(r.message);
  CHECK(*r.message == m);
  CHECK(encode(*r.message) == frame);
  CHECK(decoder.idle());
}

}  // namespace

TEST_CASE("every message type round-trips") {
  const auto all = samples::one_of_each();
  std::set<std::size_t> alternatives;
  for (const auto& m : all) {
    alternatives.insert(m.index());
    check_round_trip(m);
  }
  CHECK(alternatives.size() == std::variant_size_v<Message>);
}

TEST_CASE("empty strings and empty lists round-trip") {
  for (const auto& m : samples::empty_fields())
    check_round_trip(m);
}

TEST_CASE("fields at exactly their limit round-trip") {
  for (const auto& m : samples::at_limits())
    check_round_trip(m);

  Limits tight;
  tight.max_username = 3;
  tight.max_text = 10;
  tight.max_list_entries = 2;
  tight.max_group_name = 4;
  tight.max_file_name = 5;
  tight.max_password = 6;
  tight.max_software_name = 7;
  for (const auto& m : samples::at_limits(tight))
    check_round_trip(m, tight);
}

TEST_CASE("wire layout is big-endian and in declaration order") {
  // Version 1 frames, as in docs/protocol.md §4.4.
  SUBCASE("ping") {
    const Bytes frame = encode(Ping{0x01020304, 0x1122334455667788ull}, 1);
    CHECK(frame == bytes({0,    0,    0,    12,   1,    0x0a, 0,    0,        // header
                          0x01, 0x02, 0x03, 0x04,                             // request_id
                          0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}));  // payload
  }
  SUBCASE("direct send with multi-byte text") {
    const Bytes frame = encode(DirectSend{7, "bob", "\xc3\xa9!"}, 1);
    CHECK(frame == bytes({0, 0, 0,    14,   1,   0x03, 0, 0, 0, 0, 0, 7,  //
                          0, 3, 'b',  'o',  'b',                          //
                          0, 3, 0xc3, 0xa9, '!'}));
  }
  SUBCASE("negative timestamp is two's complement") {
    const Bytes frame = encode(DirectSent{1, -2}, 1);
    CHECK(frame == bytes({0,    0,    0,    12,   1,    0x42, 0,    0,   0, 0, 0, 1,  //
                          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}));
  }
  SUBCASE("group create: group, then counted member list") {
    const Bytes frame = encode(GroupCreate{2, "g", {"a", "bc"}}, 1);
    CHECK(frame == bytes({0, 0, 0,   16, 1, 0x05, 0, 0,   0, 0, 0,   2,  //
                          0, 1, 'g', 0,  2, 0,    1, 'a', 0, 2, 'b', 'c'}));
  }
  SUBCASE("active users: counted entries of name, address, port, since") {
    const Bytes frame = encode(ActiveUsers{3, {{"a", "b", 0x1234, 5}}}, 1);
    CHECK(frame == bytes({0, 0, 0, 22, 1,   0x43, 0, 0,   0,    0,    0, 3,  //
                          0, 1, 0, 1,  'a', 0,    1, 'b', 0x12, 0x34,        //
                          0, 0, 0, 0,  0,   0,    0, 5}));
  }
}

TEST_CASE("encode appends and sizes the buffer exactly") {
  const Message a = DirectEvent{"alice", 1, "hello"};
  const Message b = Pong{2, 3};
  Bytes fresh;
  encode(a, fresh);
  CHECK(fresh.capacity() == fresh.size());

  Bytes both = encode(a);
  const auto first_size = both.size();
  encode(b, both);
  CHECK(both.size() == first_size + encode(b).size());
  CHECK(Bytes(both.begin(), both.begin() + static_cast<std::ptrdiff_t>(first_size)) == encode(a));
}

TEST_CASE("encode refuses what the format cannot represent") {
  CHECK_THROWS_AS(encode(DirectSend{1, "bob", std::string(65536, 'x')}), std::length_error);
  CHECK_THROWS_AS(encode(GroupCreate{1, "g", std::vector<std::string>(65536)}), std::length_error);
  CHECK_NOTHROW(encode(DirectSend{1, "bob", std::string(65535, 'x')}));
}

TEST_CASE("type_of, is_request and name_of") {
  const auto all = samples::one_of_each();
  std::set<std::string_view> names;
  for (const auto& m : all) {
    const auto type = type_of(m);
    const auto code = static_cast<unsigned>(type);
    CAPTURE(code);
    CHECK(is_request(type) == (code >= 0x01 && code <= 0x3f));
    CHECK(name_of(type) != "unknown");
    names.insert(name_of(type));
    const auto frame = encode(m);
    CHECK(std::to_integer<unsigned>(frame[5]) == code);
  }
  CHECK(names.size() == all.size());
  CHECK(type_of(DirectSend{}) == MessageType::direct_send);
  CHECK(type_of(ShutdownEvent{}) == MessageType::shutdown_event);
  CHECK(name_of(MessageType::direct_send) == "direct_send");
  CHECK(name_of(MessageType::file_incoming_event) == "file_incoming_event");
  CHECK(name_of(static_cast<MessageType>(0x3f)) == "unknown");
  CHECK(is_request(MessageType::hello));
  CHECK(is_request(MessageType::ping));
  CHECK_FALSE(is_request(MessageType::hello_ok));
  CHECK_FALSE(is_request(MessageType::error));
  CHECK_FALSE(is_request(MessageType::direct_event));
}
