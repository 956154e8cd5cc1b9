// SPEC §6 steps 1-2 through the library Client: the server introduces the
// sender to the receiver; file data never passes through it.

#include <doctest/doctest.h>

#include "chat_client.hpp"
#include "test_server.hpp"

using namespace tessenger;
using namespace tessenger::testing;

namespace {

Result<FileOfferAccepted> offer(ChatClient& from, const std::string& to, const std::string& name,
                                std::uint64_t size, const protocol::Sha256& sha256) {
  return await<FileOfferAccepted>(
      [&](auto done) { from.client().offer_file(to, name, size, sha256, std::move(done)); });
}

}  // namespace

TEST_CASE("a file offer tells the sender where to send and the receiver what comes") {
  TestServer server;
  ChatClient alice(server.port());
  ChatClient bob(server.port());
  alice.must_login("alice", "pa", 6001);
  bob.must_login("bob", "pb", 6002);
  protocol::Sha256 digest{};
  digest[0] = 0xab;
  digest[31] = 0xcd;

  const auto ok = offer(alice, "bob", "movie.mp4", 123456, digest);
  REQUIRE(ok.ok());
  CHECK(ok->peer_address == "127.0.0.1");
  CHECK(ok->peer_udp_port == 6002);
  CHECK(ok->transfer_id != 0);

  const auto incoming = bob.next<protocol::FileIncomingEvent>();
  CHECK(incoming.transfer_id == ok->transfer_id);
  CHECK(incoming.from == "alice");
  CHECK(incoming.file_name == "movie.mp4");
  CHECK(incoming.size == 123456);
  CHECK(incoming.sha256 == digest);
  CHECK(incoming.sender_address == "127.0.0.1");
  CHECK(incoming.sender_udp_port == 6001);
  CHECK(incoming.key == ok->key);
  CHECK(alice.quiet());

  // Every offer gets its own id and key.
  const auto again = offer(alice, "bob", "movie.mp4", 123456, digest);
  REQUIRE(again.ok());
  CHECK(again->transfer_id != ok->transfer_id);
  CHECK(again->key != ok->key);
  CHECK(bob.next<protocol::FileIncomingEvent>().transfer_id == again->transfer_id);
}

TEST_CASE("file offers to offline, unknown or own accounts are refused") {
  TestServer server;
  ChatClient alice(server.port());
  alice.must_login("alice", "pa");
  const auto offline = offer(alice, "bob", "a.bin", 1, {});
  CHECK(offline.error() == errc::user_not_online);
  CHECK(offline.detail() == "bob");
  CHECK(offer(alice, "zed", "a.bin", 1, {}).error() == errc::user_not_online);
  CHECK(offer(alice, "alice", "a.bin", 1, {}).error() == errc::cannot_message_self);
  // Refused locally: the name field would break the codec's limit.
  CHECK(offer(alice, "bob", std::string(300, 'f'), 1, {}).error() == errc::field_too_long);
  CHECK(alice.ping(9)->payload == 9);
}
