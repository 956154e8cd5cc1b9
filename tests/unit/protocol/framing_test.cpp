#include <doctest/doctest.h>

#include "helpers.hpp"
#include "samples.hpp"

using namespace tessenger;
using namespace tessenger::protocol;
using namespace tessenger::protocol::test;

namespace {

struct Stream {
  std::vector<Message> messages;
  Bytes bytes;
  std::vector<std::size_t> frame_ends;
};

Stream make_stream() {
  Stream s;
  s.messages = samples::one_of_each();
  for (const auto& m : samples::empty_fields())
    s.messages.push_back(m);
  for (const auto& m : samples::one_of_each())
    s.messages.push_back(m);
  for (const auto& m : s.messages) {
    encode(m, s.bytes);
    s.frame_ends.push_back(s.bytes.size());
  }
  return s;
}

}  // namespace

TEST_CASE("any split of a stream yields the same messages") {
  const Stream s = make_stream();

  SUBCASE("whole") {
    const auto out = decode_whole(s.bytes);
    CHECK_FALSE(out.error);
    CHECK(out.messages == s.messages);
    CHECK(out.feeds == s.messages.size());
  }
  SUBCASE("one byte at a time") {
    const auto out = decode_bytewise(s.bytes);
    CHECK_FALSE(out.error);
    CHECK(out.messages == s.messages);
    CHECK(out.feeds == s.bytes.size());
  }
  SUBCASE("split in two at every byte boundary") {
    for (std::size_t cut = 0; cut <= s.bytes.size(); ++cut) {
      CAPTURE(cut);
      Decoder decoder;
      const auto out = drive(decoder, s.bytes, [cut](std::size_t offset) {
        return offset < cut ? cut - offset : std::size_t(-1);
      });
      REQUIRE_FALSE(out.error);
      REQUIRE(out.messages == s.messages);
      CHECK(decoder.idle());
    }
  }
  SUBCASE("chunks of every size from 2 to 64") {
    for (std::size_t size = 2; size <= 64; ++size) {
      CAPTURE(size);
      Decoder decoder;
      const auto out = drive(decoder, s.bytes, [size](std::size_t) { return size; });
      REQUIRE_FALSE(out.error);
      REQUIRE(out.messages == s.messages);
    }
  }
}

TEST_CASE("each feed stops right after the frame it completes") {
  const std::vector<Message> ten(10, Message{DirectEvent{"alice", 7, "ten in a row"}});
  Bytes buffer;
  for (const auto& m : ten)
    encode(m, buffer);
  const std::size_t frame_size = buffer.size() / 10;

  Decoder decoder;
  std::span<const std::byte> rest(buffer);
  for (int i = 0; i < 10; ++i) {
    CAPTURE(i);
    const auto r = decoder.feed(rest);
    REQUIRE_FALSE(r.error);
    CHECK(r.consumed == frame_size);
    REQUIRE(r.message);
    CHECK(*r.message == ten[static_cast<std::size_t>(i)]);
    rest = rest.subspan(r.consumed);
  }
  CHECK(rest.empty());
  CHECK(decoder.idle());
}

TEST_CASE("a frame straddling two reads is buffered, then completed") {
  const Stream s = make_stream();
  const std::size_t first_end = s.frame_ends[0];
  const std::size_t cut = first_end + 5;  // inside the second frame's header

  Decoder decoder;
  auto r = decoder.feed(std::span(s.bytes).first(cut));
  REQUIRE(r.message);
  CHECK(r.consumed == first_end);
  CHECK(decoder.idle());

  r = decoder.feed(std::span(s.bytes).subspan(first_end, cut - first_end));
  CHECK_FALSE(r.message);
  CHECK(r.consumed == 5);
  CHECK_FALSE(decoder.idle());

  r = decoder.feed(std::span(s.bytes).subspan(cut));
  REQUIRE(r.message);
  CHECK(*r.message == s.messages[1]);
  CHECK(r.consumed == s.frame_ends[1] - cut);
  CHECK(decoder.idle());
}

TEST_CASE("fast path and buffered path agree, valid or not") {
  std::vector<Bytes> frames;
  for (const auto& m : samples::one_of_each())
    frames.push_back(encode(m));
  for (const auto& m : samples::at_limits())
    frames.push_back(encode(m));
  frames.push_back(encode(DirectSend{1, "bob", "\xc0\xaf"}));
  frames.push_back(encode(GroupJoin{1, std::string(33, 'g')}));
  Bytes trailing = encode(Ping{1, 2});
  trailing.push_back(std::byte{0});
  set_length(trailing, 13);
  frames.push_back(trailing);

  for (const auto& frame : frames) {
    Decoder fast;
    const auto whole = fast.feed(frame);
    CHECK(whole.consumed == frame.size());

    Decoder slow;
    const auto head = slow.feed(std::span(frame).first(header_size + 1));
    CHECK_FALSE(head.message);
    CHECK_FALSE(head.error);
    const auto tail = slow.feed(std::span(frame).subspan(header_size + 1));
    CHECK(tail.consumed == frame.size() - header_size - 1);

    CHECK(whole.error == tail.error);
    CHECK(whole.message == tail.message);
  }
}

TEST_CASE("empty input is a no-op") {
  Decoder decoder;
  const auto r = decoder.feed({});
  CHECK(r.consumed == 0);
  CHECK_FALSE(r.message);
  CHECK_FALSE(r.error);
  CHECK(decoder.idle());
}

TEST_CASE("the decoder keeps its limits") {
  Limits limits;
  limits.max_frame_size = 100;
  const Decoder decoder(limits);
  CHECK(decoder.limits().max_frame_size == 100);
}
