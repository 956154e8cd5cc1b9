// A client of a made-up version N+1 (tests/support/next_protocol.hpp) and the
// real server of version N: they agree on N, the server reads the newer
// client's frames, refuses its N+1-only request with unsupported_request
// and keeps the connection.

#include <doctest/doctest.h>

#include "next_protocol.hpp"
#include "test_server.hpp"
#include "wire_client.hpp"

using namespace tessenger;
using namespace tessenger::testing;
namespace p = tessenger::protocol;

namespace {

void send_next(WireClient& client, const next::Message& message, std::uint8_t frame_version) {
  client.send_bytes(next::encode(message, frame_version));
}

}  // namespace

TEST_CASE("a client of version N+1 and the server of version N interoperate") {
  TestServer server;
  WireClient bob(server.port());
  REQUIRE(std::holds_alternative<p::LoginOk>(bob.login("bob", "pb")));

  WireClient newer(server.port());
  send_next(newer, p::Hello{1, p::min_version, next::version, "next-client"}, p::min_version);
  const auto ok = newer.expect<p::HelloOk>();
  CHECK(ok.request_id == 1);
  CHECK(ok.version == p::version);
  const std::uint8_t v = ok.version;

  send_next(newer, p::Login{2, "alice", "pa", 9}, v);
  CHECK(newer.expect<p::LoginOk>().username == "alice");
  CHECK(newer.expect<p::MissedEnd>().count == 0);

  // An N+1-only request: refused, nothing else happens.
  send_next(newer, next::Shout{3, "HELLO ALL"}, v);
  const auto refused = newer.expect<p::Error>();
  CHECK(refused.request_id == 3);
  CHECK(refused.code == static_cast<std::uint16_t>(errc::unsupported_request));

  // An N+1-only event-range frame from a client is ignored.
  send_next(newer, next::Wave{"alice"}, v);

  // A message that grew a field in N+1 goes out in N's layout and is delivered.
  send_next(newer, next::DirectSend{4, "bob", "still here", 60}, v);
  CHECK(newer.expect<p::DirectSent>().request_id == 4);
  const auto event = bob.expect<p::DirectEvent>();
  CHECK(event.from == "alice");
  CHECK(event.text == "still here");

  send_next(newer, p::Ping{5, 55}, v);
  CHECK(newer.expect<p::Pong>() == p::Pong{5, 55});
}

TEST_CASE("an unknown request before login is refused the same way") {
  TestServer server;
  WireClient newer(server.port());
  send_next(newer, p::Hello{1, p::min_version, next::version, "next-client"}, p::min_version);
  newer.expect<p::HelloOk>();
  send_next(newer, next::Shout{2, "early"}, p::version);
  const auto refused = newer.expect<p::Error>();
  CHECK(refused.request_id == 2);
  CHECK(refused.code == static_cast<std::uint16_t>(errc::unsupported_request));
  send_next(newer, p::Login{3, "alice", "pa", 9}, p::version);
  CHECK(newer.expect<p::LoginOk>().username == "alice");
}
