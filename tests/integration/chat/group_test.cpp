// SPEC §4 group commands through the library Client: the whole life cycle
// and every error.

#include <doctest/doctest.h>

#include "chat_client.hpp"
#include "test_server.hpp"

using namespace tessenger;
using namespace tessenger::testing;

namespace {

struct Room {
  TestServer server;
  ChatClient alice{server.port()};
  ChatClient bob{server.port()};
  ChatClient carol{server.port()};
  ChatClient dave{server.port()};

  Room() {
    alice.must_login("alice", "pa");
    bob.must_login("bob", "pb");
    carol.must_login("carol", "pc");
    dave.must_login("dave", "pd");
  }
};

}  // namespace

TEST_CASE("creating a group joins the creator and invites the listed users") {
  Room room;
  // The creator listed too (as the original required) and repeats are ignored.
  const auto created = room.alice.create_group("chat1", {"alice", "bob", "carol", "bob"});
  REQUIRE(created.ok());
  CHECK(created->group == "chat1");
  CHECK(created->members == std::vector<std::string>{"alice", "bob", "carol"});
  for (auto* invited : {&room.bob, &room.carol}) {
    const auto invite = invited->next<protocol::InviteEvent>();
    CHECK(invite.group == "chat1");
    CHECK(invite.from == "alice");
  }
  CHECK(room.dave.quiet());
  CHECK(room.alice.quiet());
}

TEST_CASE("group creation errors") {
  Room room;
  REQUIRE(room.alice.create_group("chat", {"bob"}).ok());
  CHECK(room.bob.next<protocol::InviteEvent>().group == "chat");

  const auto exists = room.carol.create_group("chat", {"dave"});
  CHECK(exists.error() == errc::group_exists);
  CHECK(exists.detail() == "chat");

  CHECK(room.alice.create_group("bad-name", {"bob"}).error() == errc::invalid_group_name);
  CHECK(room.alice.create_group("under_score", {"bob"}).error() == errc::invalid_group_name);
  CHECK(room.alice.create_group(std::string(33, 'g'), {"bob"}).error() == errc::invalid_group_name);
  CHECK(room.alice.create_group(std::string(32, 'g'), {"bob"}).ok());
  CHECK(room.bob.next<protocol::InviteEvent>().group == std::string(32, 'g'));

  // The first listed user that is not online is named, and nothing is created.
  const auto offline = room.alice.create_group("team", {"bob", "erin", "zed"});
  CHECK(offline.error() == errc::user_not_online);
  CHECK(offline.detail() == "erin");
  const auto unknown = room.alice.create_group("team", {"zed"});
  CHECK(unknown.error() == errc::user_not_online);
  CHECK(unknown.detail() == "zed");
  const auto bad_name = room.alice.create_group("team", {"bob", "no/slash"});
  CHECK(bad_name.error() == errc::user_not_online);
  CHECK(bad_name.detail() == "no/slash");
  CHECK(room.bob.join_group("team").error() == errc::group_not_found);
  CHECK(room.bob.quiet());

  REQUIRE(room.alice.create_group("team", {"bob"}).ok());
  CHECK(room.bob.next<protocol::InviteEvent>().group == "team");
}

TEST_CASE("joining a group") {
  Room room;
  REQUIRE(room.alice.create_group("chat", {"bob", "carol"}).ok());
  const auto missing = room.bob.join_group("nochat");
  CHECK(missing.error() == errc::group_not_found);
  CHECK(missing.detail() == "nochat");
  const auto uninvited = room.dave.join_group("chat");
  CHECK(uninvited.error() == errc::not_invited);
  CHECK(uninvited.detail() == "chat");
  const auto creator = room.alice.join_group("chat");
  CHECK(creator.error() == errc::already_joined);
  CHECK(creator.detail() == "chat");
  const auto joined = room.bob.join_group("chat");
  REQUIRE(joined.ok());
  CHECK(joined->group == "chat");
  CHECK(room.bob.join_group("chat").error() == errc::already_joined);
  // Group names are case-sensitive.
  CHECK(room.bob.join_group("Chat").error() == errc::group_not_found);
}

TEST_CASE("group messages reach every other joined member only") {
  Room room;
  REQUIRE(room.alice.create_group("chat", {"bob", "carol"}).ok());
  REQUIRE(room.bob.join_group("chat").ok());
  CHECK(room.bob.next<protocol::InviteEvent>().group == "chat");
  CHECK(room.carol.next<protocol::InviteEvent>().group == "chat");

  const auto sent = room.bob.send_group("chat", "  hello group ");
  REQUIRE(sent.ok());
  const auto message = room.alice.next<protocol::GroupEvent>();
  CHECK(message.group == "chat");
  CHECK(message.from == "bob");
  CHECK(message.text == "hello group");
  CHECK(message.timestamp == sent->timestamp);
  CHECK(room.bob.quiet());    // no echo to the sender
  CHECK(room.carol.quiet());  // invited, not joined
  CHECK(room.dave.quiet());   // not invited

  REQUIRE(room.carol.join_group("chat").ok());
  REQUIRE(room.alice.send_group("chat", "all three").ok());
  CHECK(room.bob.next<protocol::GroupEvent>().text == "all three");
  CHECK(room.carol.next<protocol::GroupEvent>().text == "all three");
  CHECK(room.alice.quiet());
}

TEST_CASE("group message errors") {
  Room room;
  REQUIRE(room.alice.create_group("chat", {"bob"}).ok());
  CHECK(room.alice.send_group("nochat", "hi").error() == errc::group_not_found_for_message);
  CHECK(room.dave.send_group("chat", "hi").error() == errc::not_group_member);
  CHECK(room.bob.send_group("chat", "hi").error() == errc::group_not_joined);
  CHECK(room.alice.send_group("chat", "  ").error() == errc::invalid_text);
  CHECK(room.alice.send_group("chat", "a\tb").error() == errc::invalid_text);
  CHECK(room.alice.send_group("chat", std::string(5000, 'x')).error() == errc::invalid_text);
  CHECK(room.bob.next<protocol::InviteEvent>().group == "chat");
  CHECK(room.bob.quiet());
}

TEST_CASE("a member who logs out stays a member") {
  Room room;
  REQUIRE(room.alice.create_group("chat", {"bob"}).ok());
  REQUIRE(room.bob.join_group("chat").ok());
  REQUIRE(room.bob.logout().ok());
  // An offline member gets the message at its next login, marked missed.
  const auto sent = room.alice.send_group("chat", "while away");
  REQUIRE(sent.ok());

  ChatClient bob(room.server.port());
  bob.must_login("bob", "pb");
  const auto missed = bob.next<protocol::GroupEvent>();
  CHECK(missed.text == "while away");
  CHECK(missed.missed);
  CHECK(missed.id == sent->id);
  CHECK(missed.timestamp == sent->timestamp);
  CHECK(bob.quiet());
  CHECK(bob.join_group("chat").error() == errc::already_joined);
  REQUIRE(bob.send_group("chat", "back").ok());
  CHECK(room.alice.next<protocol::GroupEvent>().text == "back");
}
