#include <doctest/doctest.h>

#include "helpers.hpp"
#include "samples.hpp"

using namespace tessenger;
using namespace tessenger::protocol;
using namespace tessenger::protocol::test;

namespace {

// The error must not depend on how the bytes arrive.
void expect_error(const Bytes& stream, errc expected, const Limits& limits = {}) {
  const auto whole = decode_whole(stream, limits);
  CHECK(whole.error == make_error_code(expected));
  CHECK(whole.messages.empty());
  const auto bytewise = decode_bytewise(stream, limits);
  CHECK(bytewise.error == make_error_code(expected));
  CHECK(bytewise.messages.empty());
}

// A valid DirectSend frame whose text is `text`, unchecked.
Bytes direct_send_with(std::string text) {
  return encode(DirectSend{1, "bob", std::move(text)});
}

}  // namespace

TEST_CASE("header checks run in the documented order") {
  // Every case violates the rules after its expected one as well.
  expect_error(header(0, 0x02, version + 1, 1), errc::unsupported_version);
  expect_error(header(0, 0x02, 0), errc::unsupported_version);
  expect_error(header(0, 0x02, min_version, 1), errc::bad_flags);
  expect_error(header(12, 0x0a, version, 0x8000), errc::bad_flags);
  // An unknown type is not a header error: the frame rules still apply.
  expect_error(header(0, 0xff), errc::empty_frame);
  expect_error(header(0, 0x02), errc::empty_frame);
  expect_error(header(0xffffffff, 0x00), errc::frame_too_large);
  expect_error(header(0xffffffff, 0x02), errc::frame_too_large);
}

TEST_CASE("an oversized length is refused on the header alone") {
  for (const std::uint32_t length : {0xffffffffu, 64u * 1024 + 1}) {
    CAPTURE(length);
    SUBCASE("header only, no payload yet") {
      Decoder decoder;
      const auto r = decoder.feed(header(length, 0x03));
      CHECK(r.error == make_error_code(errc::frame_too_large));
      CHECK(r.consumed <= header_size);
      CHECK(decoder.idle());
    }
    SUBCASE("header followed by payload bytes") {
      Decoder decoder;
      const auto r = decoder.feed(concat(header(length, 0x03), Bytes(1000, std::byte{'x'})));
      CHECK(r.error == make_error_code(errc::frame_too_large));
      CHECK(r.consumed <= header_size);
      CHECK(decoder.idle());
    }
    SUBCASE("header arriving byte by byte") {
      Decoder decoder;
      const Bytes h = header(length, 0x03);
      std::size_t consumed = 0;
      for (std::size_t i = 0; i + 1 < h.size(); ++i) {
        const auto r = decoder.feed(std::span(h).subspan(i, 1));
        REQUIRE_FALSE(r.error);
        consumed += r.consumed;
      }
      const auto r = decoder.feed(std::span(h).last(1));
      CHECK(r.error == make_error_code(errc::frame_too_large));
      CHECK(consumed + r.consumed <= header_size);
      CHECK(decoder.idle());
    }
  }

  Limits small;
  small.max_frame_size = 11;
  expect_error(encode(Ping{1, 2}), errc::frame_too_large, small);
  small.max_frame_size = 12;
  CHECK_FALSE(decode_whole(encode(Ping{1, 2}), small).error);
}

TEST_CASE("a flag or a group change outside its range is malformed") {
  for (const std::uint8_t bad : {2, 0x80, 0xff}) {
    CAPTURE(int{bad});
    Bytes left = encode(GroupLeft{1, "g", true});
    left.back() = std::byte{bad};
    expect_error(left, errc::malformed_frame);
  }
  for (const std::uint8_t bad : {0, 4, 0xff}) {
    CAPTURE(int{bad});
    Bytes notice = encode(GroupNoticeEvent{"g", "u", GroupChange::left});
    notice.back() = std::byte{bad};
    expect_error(notice, errc::malformed_frame);
  }
  CHECK(decode_whole(encode(GroupLeft{1, "g", false})).messages.size() == 1);
}

TEST_CASE("a payload must be consumed exactly") {
  for (const auto& m : samples::one_of_each()) {
    CAPTURE(name_of(type_of(m)));
    const Bytes frame = encode(m);
    const auto payload = static_cast<std::uint32_t>(frame.size() - header_size);

    for (std::uint32_t length = 1; length < payload; ++length) {
      Bytes truncated(frame.begin(), frame.begin() + header_size + length);
      set_length(truncated, length);
      const auto out = decode_whole(truncated);
      REQUIRE(out.error == make_error_code(errc::malformed_frame));
    }

    Bytes trailing = frame;
    trailing.push_back(std::byte{0});
    set_length(trailing, payload + 1);
    expect_error(trailing, errc::malformed_frame);
  }
}

TEST_CASE("a stream that ends mid-frame yields nothing and no error") {
  const Bytes frame = encode(DirectSend{1, "bob", "hello"});
  Decoder decoder;
  const auto r = decoder.feed(std::span(frame).first(frame.size() - 1));
  CHECK_FALSE(r.error);
  CHECK_FALSE(r.message);
  CHECK(r.consumed == frame.size() - 1);
  CHECK_FALSE(decoder.idle());
}

TEST_CASE("strings must be strict UTF-8") {
  const std::pair<const char*, std::string> bad[] = {
      {"overlong two-byte '/'", "\xc0\xaf"},
      {"overlong two-byte NUL", "\xc1\x80"},
      {"overlong three-byte", "\xe0\x80\xaf"},
      {"overlong four-byte", "\xf0\x80\x80\xaf"},
      {"high surrogate", "\xed\xa0\x80"},
      {"low surrogate", "\xed\xbf\xbf"},
      {"above U+10FFFF", "\xf4\x90\x80\x80"},
      {"lead byte F5", "\xf5\x80\x80\x80"},
      {"byte FF", "\xff"},
      {"stray continuation", "ab\x80"},
      {"truncated at end", "ok\xe2\x82"},
      {"truncated before ASCII", "\xe2\x82z"},
      {"four-byte cut short", "\xf0\x9f\x98"},
  };
  for (const auto& [what, text] : bad) {
    CAPTURE(what);
    expect_error(direct_send_with(text), errc::invalid_utf8);
    expect_error(encode(Login{1, text, "pw", 1}), errc::invalid_utf8);
    expect_error(encode(GroupCreate{1, "g", {"ok", text}}), errc::invalid_utf8);
    expect_error(encode(ActiveUsers{1, {{"bob", text, 1, 2}}}), errc::invalid_utf8);
  }
  CHECK_FALSE(decode_whole(direct_send_with("\xf4\x8f\xbf\xbf \xed\x9f\xbf \xee\x80\x80")).error);
}

TEST_CASE("each kind of field has its own length limit") {
  const Limits l;
  const auto over = [](std::size_t limit) { return std::string(limit + 1, 'x'); };
  const std::pair<const char*, Message> cases[] = {
      {"username", Login{1, over(l.max_username), "pw", 1}},
      {"password", Login{1, "alice", over(l.max_password), 1}},
      {"direct to", DirectSend{1, over(l.max_username), "hi"}},
      {"direct text", DirectSend{1, "bob", over(l.max_text)}},
      {"group name", GroupJoin{1, over(l.max_group_name)}},
      {"group text", GroupSend{1, "g", over(l.max_text)}},
      {"member name", GroupCreate{1, "g", {"bob", over(l.max_username)}}},
      {"file name", FileOffer{1, "bob", over(l.max_file_name), 1, {}}},
      {"software", Hello{1, 1, 1, over(l.max_software_name)}},
      {"server software", HelloOk{1, 1, over(l.max_software_name), 1}},
      {"peer address", FileOfferOk{1, 1, over(64), 1, {}}},
      {"user address", ActiveUsers{1, {{"bob", over(64), 1, 1}}}},
      {"sender address", FileIncomingEvent{1, "bob", "f", 1, {}, over(64), 1, {}}},
      {"error detail", Error{1, 200, over(256)}},
      {"shutdown reason", ShutdownEvent{301, over(256)}},
      {"event from", DirectEvent{over(l.max_username), 1, "hi"}},
      {"event text", GroupEvent{"g", "bob", 1, over(l.max_text)}},
      {"invite group", InviteEvent{over(l.max_group_name), "bob"}},
      {"logged out", LoggedOut{1, over(l.max_username)}},
      {"created member", GroupCreated{1, "g", {over(l.max_username)}}},
      {"member count", GroupCreate{1, "g", std::vector<std::string>(l.max_list_entries + 1, "b")}},
      {"created count",
       GroupCreated{1, "g", std::vector<std::string>(l.max_list_entries + 1, "b")}},
  };
  for (const auto& [what, m] : cases) {
    CAPTURE(what);
    expect_error(encode(m), errc::field_too_long);
  }
}

TEST_CASE("a declared length beyond the limit wins over missing bytes") {
  // Text length 0xffff with no text bytes at all.
  const Bytes frame =
      concat(header(11, 0x03), bytes({0, 0, 0, 1, 0, 3, 'b', 'o', 'b', 0xff, 0xff}));
  expect_error(frame, errc::field_too_long);
}

TEST_CASE("a list count the payload cannot hold is malformed, not allocated") {
  // GroupCreate claiming 1000 members with no member bytes.
  expect_error(concat(header(9, 0x05), bytes({0, 0, 0, 1, 0, 1, 'g', 0x03, 0xe8})),
               errc::malformed_frame);
  // ActiveUsers claiming 65535 entries.
  expect_error(concat(header(6, 0x43), bytes({0, 0, 0, 1, 0xff, 0xff})), errc::malformed_frame);
}

TEST_CASE("decode_payload applies the frame rules to a payload in hand") {
  const Limits limits;
  Message out = Ping{9, 9};
  const Bytes ping = encode(Ping{1, 2});
  const auto payload = std::span(ping).subspan(header_size);
  CHECK(decode_payload(static_cast<MessageType>(0x3f), payload, limits, out) ==
        make_error_code(errc::unknown_message));
  CHECK(decode_payload(MessageType::ping, {}, limits, out) == make_error_code(errc::empty_frame));
  Limits tiny;
  tiny.max_frame_size = 4;
  CHECK(decode_payload(MessageType::ping, payload, tiny, out) ==
        make_error_code(errc::frame_too_large));
  CHECK(decode_payload(MessageType::pong, payload.first(11), limits, out) ==
        make_error_code(errc::malformed_frame));
  CHECK(out == Message{Ping{9, 9}});
  CHECK_FALSE(decode_payload(MessageType::pong, payload, limits, out));
  CHECK(out == Message{Pong{1, 2}});
}

TEST_CASE("after an error the decoder stays dead") {
  const Bytes good = encode(Ping{1, 2});
  const std::pair<const char*, Bytes> failures[] = {
      {"header", header(0, 0x0a)},
      {"payload", direct_send_with("\xff")},
  };
  for (const auto& [what, bad] : failures) {
    CAPTURE(what);
    Decoder decoder;
    const auto first = decoder.feed(concat(good, bad));
    REQUIRE(first.message);
    const auto failed = decoder.feed(std::span(bad));
    REQUIRE(failed.error);
    for (int i = 0; i < 3; ++i) {
      const auto again = decoder.feed(good);
      CHECK(again.error == failed.error);
      CHECK(again.consumed == 0);
      CHECK_FALSE(again.message);
    }
    CHECK(decoder.feed({}).error == failed.error);
    CHECK(decoder.idle());
  }
}
