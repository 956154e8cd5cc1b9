// Version negotiation and the rules that let the wire grow: every spoken
// version is accepted, unknown types are skipped, and a made-up version N+1
// (tests/support/next_protocol.hpp, the same codec with a bigger schema)
// interoperates with this build's N.

#include <doctest/doctest.h>

#include <stdexcept>

#include "helpers.hpp"
#include "next_protocol.hpp"
#include "samples.hpp"

using namespace tessenger;
using namespace tessenger::protocol;
using namespace tessenger::protocol::test;

namespace {

// Every type code this build does not define, with one sample per range.
std::vector<int> undefined_codes() {
  std::vector<int> out;
  for (int code = 0; code < 256; ++code) {
    if (name_of(static_cast<MessageType>(code)) == "unknown") out.push_back(code);
  }
  return out;
}

Bytes frame_of(int type, const Bytes& payload, int frame_version = version) {
  return concat(header(static_cast<std::uint32_t>(payload.size()), type, frame_version), payload);
}

}  // namespace

TEST_CASE("the header accepts every version from min_version to version") {
  REQUIRE(min_version < version);
  for (int v = 0; v < 256; ++v) {
    CAPTURE(v);
    const Bytes frame = frame_of(0x0a, bytes({0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2}), v);
    const auto out = decode_whole(frame);
    if (v >= min_version && v <= version) {
      REQUIRE_FALSE(out.error);
      REQUIRE(out.messages.size() == 1);
      CHECK(out.messages[0] == Message{Ping{1, 2}});
    } else {
      CHECK(out.error == make_error_code(errc::unsupported_version));
    }
  }
}

TEST_CASE("after set_version only the negotiated version is accepted") {
  Decoder decoder;
  CHECK(decoder.negotiated_version() == 0);
  CHECK_FALSE(decoder.set_version(version + 1));
  CHECK_FALSE(decoder.set_version(0));
  REQUIRE(decoder.set_version(min_version));
  CHECK(decoder.negotiated_version() == min_version);
  auto r = decoder.feed(encode(Ping{1, 2}, min_version));
  REQUIRE(r.message);
  CHECK(r.version == min_version);
  r = decoder.feed(encode(Ping{1, 2}, version));
  CHECK(r.error == make_error_code(errc::unsupported_version));
}

TEST_CASE("encode writes the version it is given and refuses one it does not speak") {
  for (std::uint8_t v = min_version; v <= version; ++v) {
    const auto frame = encode(Ping{1, 2}, v);
    CHECK(std::to_integer<int>(frame[4]) == v);
  }
  CHECK(std::to_integer<int>(encode(Ping{1, 2})[4]) == version);
  CHECK_THROWS_AS(encode(Ping{1, 2}, version + 1), std::invalid_argument);
  CHECK_THROWS_AS(encode(Ping{1, 2}, 0), std::invalid_argument);
}

TEST_CASE("an unknown type of any range is consumed and reported, and the stream goes on") {
  const Bytes after = encode(Ping{7, 8});
  for (const int code : undefined_codes()) {
    CAPTURE(code);
    const bool request = code >= 0x01 && code <= 0x3f;
    const Bytes unknown = frame_of(code, bytes({0x12, 0x34, 0x56, 0x78, 0xaa, 0xbb}));
    const Bytes stream = concat(unknown, after);
    for (const bool bytewise : {false, true}) {
      CAPTURE(bytewise);
      Decoder decoder;
      std::vector<UnknownMessage> seen;
      std::vector<Message> messages;
      std::size_t offset = 0;
      while (offset < stream.size()) {
        const auto chunk = std::span(stream).subspan(offset, bytewise ? 1 : stream.size() - offset);
        const auto r = decoder.feed(chunk);
        REQUIRE_FALSE(r.error);
        REQUIRE(r.consumed > 0);
        offset += r.consumed;
        if (r.unknown) seen.push_back(*r.unknown);
        if (r.message) messages.push_back(*r.message);
      }
      REQUIRE(seen.size() == 1);
      CHECK(seen[0].type == code);
      CHECK(seen[0].version == version);
      if (request) {
        CHECK(seen[0].request_id == RequestId{0x12345678});
      } else {
        CHECK_FALSE(seen[0].request_id);
      }
      REQUIRE(messages.size() == 1);
      CHECK(messages[0] == Message{Ping{7, 8}});
      CHECK(decoder.idle());
    }
  }
}

TEST_CASE("an unknown request too short for its request id is malformed") {
  for (const int code : undefined_codes()) {
    if (code < 0x01 || code > 0x3f) continue;
    CAPTURE(code);
    CHECK(decode_whole(frame_of(code, bytes({1, 2, 3}))).error ==
          make_error_code(errc::malformed_frame));
    CHECK(decode_bytewise(frame_of(code, bytes({1, 2, 3}))).error ==
          make_error_code(errc::malformed_frame));
  }
  // A reply or event of an unknown type needs no particular payload.
  CHECK_FALSE(decode_whole(frame_of(0x7f, bytes({1}))).error);
  CHECK_FALSE(decode_whole(frame_of(0xbf, bytes({1}))).error);
}

TEST_CASE("a type exists only from the version that introduced it") {
  CHECK(since_version(MessageType::hello) == 1);
  CHECK(since_version(MessageType::login_attempt_event) == 2);
  for (const auto type :
       {MessageType::group_leave, MessageType::group_delete, MessageType::group_left,
        MessageType::group_deleted, MessageType::group_notice_event}) {
    CHECK(since_version(type) == 2);
  }
  for (const auto type : {MessageType::history_query, MessageType::history_page,
                          MessageType::missed_end, MessageType::file_offer_legacy,
                          MessageType::legacy_file_event, MessageType::file_offer_check,
                          MessageType::file_offer_checked, MessageType::transfer_cancelled_event}) {
    CHECK(since_version(type) == 3);
  }
  CHECK(since_version(static_cast<MessageType>(0xff)) == 0);
  CHECK(name_of(MessageType::login_attempt_event) == "login_attempt_event");

  const LoginAttemptEvent event{"192.0.2.1", 1'700'000'000'000'000};
  const auto v2 = decode_whole(encode(event, 2));
  REQUIRE(v2.messages.size() == 1);
  CHECK(v2.messages[0] == Message{event});

  // The same bytes in a version 1 frame are a type version 1 does not have.
  Decoder decoder;
  const auto r = decoder.feed(encode(event, 1));
  REQUIRE_FALSE(r.error);
  CHECK_FALSE(r.message);
  REQUIRE(r.unknown);
  CHECK(r.unknown->type == 0x85);
  CHECK(r.unknown->version == 1);

  Message out;
  const Bytes frame = encode(event, 2);
  CHECK(decode_payload(MessageType::login_attempt_event, std::span(frame).subspan(header_size), {},
                       out, 1) == make_error_code(errc::unknown_message));
  CHECK_FALSE(decode_payload(MessageType::login_attempt_event,
                             std::span(frame).subspan(header_size), {}, out, 2));
  CHECK(decode_payload(MessageType::ping, std::span(frame).subspan(header_size), {}, out,
                       version + 1) == make_error_code(errc::unsupported_version));
}

namespace {

// What a frame of `v` carries of `m`: the fields added after it are left out.
Message as_of_version(Message m, std::uint8_t v) {
  if (v >= 3) return m;
  std::visit(
      [](auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Login>) {
          x.resume_after = 0;
        } else if constexpr (std::is_same_v<T, DirectSent>) {
          x.id = 0;
          x.stored = false;
        } else if constexpr (std::is_same_v<T, GroupSent>) {
          x.id = 0;
        } else if constexpr (std::is_same_v<T, DirectEvent> || std::is_same_v<T, GroupEvent>) {
          x.id = 0;
          x.missed = false;
        }
      },
      m);
  return m;
}

}  // namespace

TEST_CASE("fields added in version 3 are left out of older frames, which keep their size") {
  const DirectEvent event{"alice", 1, "hi", 99, true};
  CHECK(encode(event, 3).size() == encode(event, 2).size() + 9);
  CHECK(encode(Login{1, "a", "b", 2, 7}, 3).size() ==
        encode(Login{1, "a", "b", 2, 7}, 2).size() + 8);
  CHECK(as_of_version(event, 2) == Message{DirectEvent{"alice", 1, "hi", 0, false}});
}

TEST_CASE("every message round-trips in every version that has it") {
  for (const auto& m : samples::one_of_each()) {
    for (std::uint8_t v = min_version; v <= version; ++v) {
      if (since_version(type_of(m)) > v) continue;
      CAPTURE(name_of(type_of(m)));
      CAPTURE(int{v});
      const auto frame = encode(m, v);
      Decoder decoder;
      const auto r = decoder.feed(frame);
      REQUIRE(r.message);
      CHECK(*r.message == as_of_version(m, v));
      CHECK(r.version == v);
      CHECK(encode(*r.message, r.version) == frame);
    }
  }
}

// ---- A peer of version N+1 and one of version N. ----

TEST_CASE("N+1 and N negotiate N, and each reads the other's frames") {
  // The N+1 client says hello in min_version, so N reads it.
  const Hello hello{1, min_version, next::version, "next-client"};
  const auto hello_frame = next::encode(next::Message{hello}, min_version);
  Decoder server;
  auto r = server.feed(hello_frame);
  REQUIRE(r.message);
  const auto& got = std::get<Hello>(*r.message);
  CHECK(got == hello);

  // N picks the lower maximum: N.
  const std::uint8_t chosen = std::min(got.max_version, version);
  CHECK(chosen == version);
  REQUIRE(server.set_version(chosen));

  // The N+1 side reads N's HelloOk and adopts N.
  next::Decoder client;
  auto n = client.feed(encode(HelloOk{1, chosen, "server", 65536}, chosen));
  REQUIRE(n.message);
  const auto ok = std::get<HelloOk>(*n.message);
  CHECK(ok.version == version);
  client.set_version(ok.version);
  CHECK(next::negotiate(Hello{1, min_version, version, "n-client"}) == version);

  // N+1's DirectSend, in a version N frame, leaves out the field N lacks.
  const next::DirectSend newer{2, "bob", "hi", 60};
  const auto direct = next::encode(next::Message{newer}, ok.version);
  CHECK(direct == encode(DirectSend{2, "bob", "hi"}, version));
  r = server.feed(direct);
  REQUIRE(r.message);
  CHECK(*r.message == Message{DirectSend{2, "bob", "hi"}});

  // N's frames are read by N+1; the appended field keeps its default.
  n = client.feed(encode(DirectSend{3, "alice", "yo"}, version));
  REQUIRE(n.message);
  CHECK(std::get<next::DirectSend>(*n.message) == next::DirectSend{3, "alice", "yo", 0});

  // Between two N+1 peers the field travels.
  next::Decoder peer;
  const auto full = next::encode(next::Message{newer}, next::version);
  CHECK(full.size() == direct.size() + 4);
  n = peer.feed(full);
  REQUIRE(n.message);
  CHECK(std::get<next::DirectSend>(*n.message) == newer);
}

TEST_CASE("an N+1-only request reaches N as unknown with its id; the stream goes on") {
  Decoder server;
  REQUIRE(server.set_version(version));
  Bytes stream = next::encode(next::Message{next::Shout{41, "HEY"}}, version);
  const auto wave = next::encode(next::Message{next::Wave{"carol"}}, version);
  stream.insert(stream.end(), wave.begin(), wave.end());
  const auto ping = encode(Ping{42, 9}, version);
  stream.insert(stream.end(), ping.begin(), ping.end());

  auto r = server.feed(stream);
  REQUIRE_FALSE(r.error);
  REQUIRE(r.unknown);
  CHECK(*r.unknown == UnknownMessage{next::shout_type, version, 41});
  stream.erase(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(r.consumed));
  r = server.feed(stream);
  REQUIRE(r.unknown);
  CHECK(*r.unknown == UnknownMessage{next::wave_type, version, std::nullopt});
  stream.erase(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(r.consumed));
  r = server.feed(stream);
  REQUIRE(r.message);
  CHECK(*r.message == Message{Ping{42, 9}});

  // N's answer to it is an ordinary Error that N+1 reads.
  next::Decoder client;
  const auto n = client.feed(
      encode(Error{41, static_cast<std::uint16_t>(errc::unsupported_request), {}}, version));
  REQUIRE(n.message);
  CHECK(std::get<Error>(*n.message).code == static_cast<std::uint16_t>(errc::unsupported_request));
}

TEST_CASE("a frame of a version N does not speak is refused by N") {
  const auto frame = next::encode(next::Message{next::DirectSend{1, "bob", "x", 5}}, next::version);
  CHECK(decode_whole(frame).error == make_error_code(errc::unsupported_version));
}

// ---- tessenger::Protocol ----

TEST_CASE("Protocol calls back per message, unknown frame and error, across any split") {
  Bytes stream = encode(HelloOk{1, min_version, "server", 65536}, min_version);
  encode(DirectEvent{"bob", 5, "hi"}, stream, min_version);
  const auto shout = next::encode(next::Message{next::Shout{9, "x"}}, min_version);
  stream.insert(stream.end(), shout.begin(), shout.end());
  encode(Ping{3, 4}, stream, min_version);

  for (const std::size_t chunk : {stream.size(), std::size_t{1}, std::size_t{7}}) {
    CAPTURE(chunk);
    std::vector<Message> messages;
    std::vector<UnknownMessage> unknown;
    std::error_code error;
    Protocol protocol({[&](Message& m) { messages.push_back(std::move(m)); },
                       [&](const UnknownMessage& u) { unknown.push_back(u); },
                       [&](std::error_code e) { error = e; }});
    CHECK(protocol.version() == version);
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
      REQUIRE(protocol.feed(std::span(stream).subspan(at, std::min(chunk, stream.size() - at))));
    }
    CHECK_FALSE(error);
    REQUIRE(messages.size() == 3);
    CHECK(std::holds_alternative<HelloOk>(messages[0]));
    CHECK(messages[1] == Message{DirectEvent{"bob", 5, "hi"}});
    CHECK(messages[2] == Message{Ping{3, 4}});
    REQUIRE(unknown.size() == 1);
    CHECK(unknown[0].request_id == RequestId{9});
    // The HelloOk set the version for both directions.
    CHECK(protocol.version() == min_version);
    CHECK(std::to_integer<int>(protocol.encode(Pong{3, 4})[4]) == min_version);
  }
}

TEST_CASE("Protocol encodes Hello in min_version and adopts the HelloOk it sends") {
  Protocol server;
  CHECK(std::to_integer<int>(server.encode(Hello{1, min_version, version, "c"})[4]) == min_version);
  const auto ok = server.encode(HelloOk{1, min_version, "s", 1024});
  CHECK(std::to_integer<int>(ok[4]) == min_version);
  CHECK(server.version() == min_version);
  // From now on it accepts only the negotiated version.
  CHECK_FALSE(server.feed(encode(Ping{1, 1}, version)));
  CHECK(server.error() == make_error_code(errc::unsupported_version));
}

TEST_CASE("Protocol stops at the first error and reports it once") {
  int errors = 0;
  int messages = 0;
  Protocol protocol({[&](Message&) { ++messages; }, {}, [&](std::error_code) { ++errors; }});
  Bytes stream = encode(Ping{1, 2});
  const Bytes bad = header(0, 0x0a);
  stream.insert(stream.end(), bad.begin(), bad.end());
  encode(Ping{3, 4}, stream);
  CHECK_FALSE(protocol.feed(stream));
  CHECK_FALSE(protocol.feed(encode(Ping{5, 6})));
  CHECK(messages == 1);
  CHECK(errors == 1);
  CHECK(protocol.error() == make_error_code(errc::empty_frame));
}

TEST_CASE("Protocol refuses a HelloOk naming a version it does not speak") {
  std::error_code error;
  Protocol protocol({{}, {}, [&](std::error_code e) { error = e; }});
  CHECK_FALSE(protocol.feed(encode(HelloOk{1, version + 1, "s", 1})));
  CHECK(error == make_error_code(errc::unsupported_version));
}
