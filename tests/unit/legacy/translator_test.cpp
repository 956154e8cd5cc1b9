// The legacy translator without sockets: text commands in, native requests
// out; native replies and events in, the original client's texts out.

#include <doctest/doctest.h>

#include <tessenger/timestamp.hpp>

#include "legacy/translator.hpp"

namespace p = tessenger::protocol;
using tessenger::errc;
using namespace tessenger::legacy;

namespace {

constexpr p::Timestamp when = 1'699'646'230'000'000;  // a fixed instant

p::Error error_for(p::RequestId id, errc code, std::string detail = {}) {
  return {id, static_cast<std::uint16_t>(code), std::move(detail)};
}

std::string only(const Output& out) {
  REQUIRE(out.writes.size() == 1);
  return out.writes.front();
}

template <class T>
T as(const p::Message& m) {
  REQUIRE(std::holds_alternative<T>(m));
  return std::get<T>(m);
}

// A translator logged in as alice.
Translator logged_in() {
  Translator t(3);
  (void)t.hello();
  const auto login = as<p::Login>(t.on_text("alice pa 5000"));
  CHECK(only(t.render(p::LoginOk{login.request_id, "alice"})) == "Welcome to TESSENGER!");
  return t;
}

}  // namespace

TEST_CASE("the first byte tells a legacy login from a native frame and a TLS ClientHello") {
  CHECK(starts_legacy(std::byte{'a'}));
  CHECK(starts_legacy(std::byte{'9'}));
  CHECK_FALSE(starts_legacy(std::byte{0x00}));
  CHECK_FALSE(starts_legacy(std::byte{0x16}));
  CHECK_FALSE(starts_legacy(std::byte{0xff}));
}

TEST_CASE("the trigger words are broken invisibly, and only they") {
  const std::string joiner = "\u2060";
  CHECK(neutralise("all fine") == "all fine");
  CHECK(neutralise("error") == "e" + joiner + "rror");
  CHECK(neutralise("Bye now, blocked p2pvideo") ==
        "B" + joiner + "ye now, b" + joiner + "locked p" + joiner + "2pvideo");
  CHECK(neutralise("errorerror") == "e" + joiner + "rrore" + joiner + "rror");
  for (const auto* word : {"blocked", "error", "Bye", "p2pvideo"}) {
    const auto out = neutralise(std::string("x") + word + "y");
    CHECK(out.find(word) == std::string::npos);
  }
  // Case matters to the original, so it matters here.
  CHECK(neutralise("bye ERROR") == "bye ERROR");
}

TEST_CASE("long texts are split at most 2000 bytes apiece, never inside a UTF-8 sequence") {
  std::string text;
  for (int i = 0; i < 1500; ++i)
    text += "\xc3\xa9";  // é, two bytes
  const auto parts = split(text);
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].size() == 2000);
  CHECK(parts[0] + parts[1] == text);
  CHECK(split("short") == std::vector<std::string>{"short"});
  std::string odd = "a" + text;  // the cut falls inside a character
  const auto odd_parts = split(odd);
  CHECK(odd_parts[0].size() == 1999);
  CHECK(odd_parts[0] + odd_parts[1] == odd);
}

TEST_CASE("login: version 1 hello, fields, and every failure's text") {
  Translator t(2);
  const auto hello = as<p::Hello>(t.hello());
  CHECK(hello.min_version == 1);
  CHECK(hello.max_version == 1);
  CHECK(t.render(p::HelloOk{hello.request_id, 1, "s", 2048}).writes.empty());

  const auto login = as<p::Login>(t.on_text("alice pa 5000"));
  CHECK(login.username == "alice");
  CHECK(login.password == "pa");
  CHECK(login.udp_port == 5000);
  CHECK(only(t.render(error_for(login.request_id, errc::invalid_password))) ==
        "Invalid password. Please try again.");

  // Malformed: a login as nobody, refused and counted as an unknown user.
  for (const auto* bad :
       {"alice pa", "alice pa port", "alice pa 70000", "a b c d", "\xff\xfe x 1"}) {
    CAPTURE(bad);
    CHECK(as<p::Login>(t.on_text(bad)).username.empty());
  }
  const auto first = as<p::Login>(t.on_text("nobody x 1"));
  auto out = t.render(error_for(first.request_id, errc::invalid_username));
  CHECK(only(out) == "Invalid username. Please try again.");
  CHECK_FALSE(out.close);
  const auto second = as<p::Login>(t.on_text("nobody x 1"));
  out = t.render(error_for(second.request_id, errc::invalid_username));
  CHECK(only(out) == "Invalid details provided. Maximum attempts reached. Closing connection.");
  CHECK(out.close);

  Translator u(3);
  const auto blocked = as<p::Login>(u.on_text("bob x 1"));
  CHECK(only(u.render(error_for(blocked.request_id, errc::account_blocked_now))) ==
        "Invalid details. Your account has been blocked. Please try again later.");
  const auto again = as<p::Login>(u.on_text("bob x 1"));
  CHECK(only(u.render(error_for(again.request_id, errc::account_blocked))) ==
        "Your account is blocked due to multiple login failures. Please try again later.");
  const auto twice = as<p::Login>(u.on_text("bob pb 1"));
  out = u.render(error_for(twice.request_id, errc::already_logged_in));
  CHECK(only(out) == "error: You account already logined!");
  CHECK(out.close);
}

TEST_CASE("msgto, activeuser and their texts") {
  auto t = logged_in();
  const auto dm = as<p::DirectSend>(t.on_text("msgto bob  hello   there "));
  CHECK(dm.to == "bob");
  CHECK(dm.text == "hello   there");
  const auto date = tessenger::format_timestamp(when);
  CHECK(only(t.render(p::DirectSent{dm.request_id, when})) == "message sent at " + date);
  const auto off = as<p::DirectSend>(t.on_text("msgto carol hi"));
  CHECK(only(t.render(error_for(off.request_id, errc::user_not_online, "carol"))) ==
        "user carol not online");
  CHECK(only(t.render(p::DirectEvent{"bob", when, "an error, Bye"})) ==
        date + ", bob: an e\u2060rror, B\u2060ye");

  const auto who = as<p::ActiveUsersQuery>(t.on_text("activeuser"));
  CHECK(only(t.render(p::ActiveUsers{
            who.request_id,
            {{"alice", "127.0.0.1", 5000, when}, {"bob", "10.0.0.2", 6000, when}}})) ==
        "alice, 127.0.0.1, 5000, " + date + ".\nbob, 10.0.0.2, 6000, " + date);
}

TEST_CASE("groups: the original's texts, typos included") {
  auto t = logged_in();
  const auto date = tessenger::format_timestamp(when);
  // The creator must list itself; the request invites the others.
  const auto missing = as<p::Ping>(t.on_text("creategroup g1 bob"));
  CHECK(only(t.render(p::Pong{missing.request_id, 0})) ==
        "invaid group name: g1 or not include yourself in group");
  const auto create = as<p::GroupCreate>(t.on_text("creategroup g1 alice bob"));
  CHECK(create.members == std::vector<std::string>{"bob"});
  CHECK(only(t.render(p::GroupCreated{create.request_id, "g1", {"alice", "bob"}})) ==
        "Group chat created g1");
  const auto exists = as<p::GroupCreate>(t.on_text("creategroup g1 alice"));
  CHECK(only(t.render(error_for(exists.request_id, errc::group_exists, "g1"))) ==
        "Failed to create the group chat g1: g1 exists or conflict with other user name");

  const auto join = as<p::GroupJoin>(t.on_text("joingroup g2"));
  CHECK(only(t.render(p::GroupJoined{join.request_id, "g2"})) ==
        "Joined the group chat:g2 successfully.");
  const auto none = as<p::GroupJoin>(t.on_text("joingroup nog"));
  CHECK(only(t.render(error_for(none.request_id, errc::group_not_found, "nog"))) ==
        "Groupchat nog doesn\u2019t exist.");
  const auto twice = as<p::GroupJoin>(t.on_text("joingroup g2"));
  CHECK(only(t.render(error_for(twice.request_id, errc::already_joined, "g2"))) ==
        "You have already joined Groupchat g2");

  const auto send = as<p::GroupSend>(t.on_text("groupmsg g2 hi all"));
  CHECK(send.text == "hi all");
  CHECK(only(t.render(p::GroupSent{send.request_id, when})) ==
        "Group chat message sent at." + date);
  const auto gone = as<p::GroupSend>(t.on_text("groupmsg nog x"));
  CHECK(only(t.render(error_for(gone.request_id, errc::group_not_found_for_message))) ==
        "The group chat does not exist.");
  const auto unjoined = as<p::GroupSend>(t.on_text("groupmsg g3 x"));
  CHECK(only(t.render(error_for(unjoined.request_id, errc::group_not_joined))) ==
        "Please join the group before sending message");
  CHECK(only(t.render(p::GroupEvent{"g2", "bob", when, "p2pvideo a b"})) ==
        date + ", g2, bob: p\u20602pvideo a b");
}

TEST_CASE("p2pvideo, logout, unknown commands, rate limits") {
  auto t = logged_in();
  const auto offer = as<p::FileOffer>(t.on_text("p2pvideo bob clip.mp4"));
  CHECK(offer.to == "bob");
  CHECK(offer.file_name == "clip.mp4");
  CHECK(only(t.render(p::FileOfferLegacy{offer.request_id, "127.0.0.1", 6000})) ==
        "p2pvideo 127.0.0.1 6000 clip.mp4 alice");
  const auto off = as<p::FileOffer>(t.on_text("p2pvideo carol clip.mp4"));
  CHECK(only(t.render(error_for(off.request_id, errc::user_not_online, "carol"))) ==
        "receiver not exists");
  // The answer would repeat the name to the client, which would disconnect.
  const auto reserved = as<p::Ping>(t.on_text("p2pvideo bob error.log"));
  const auto notice = only(t.render(p::Pong{reserved.request_id, 0}));
  CHECK_FALSE(has_disconnect_word(notice));

  for (const auto* bad :
       {"hello", "msgto bob", "logout now", "activeuser x", "/msgto bob hi", ""}) {
    CAPTURE(bad);
    const auto ping = as<p::Ping>(t.on_text(bad));
    CHECK(only(t.render(p::Pong{ping.request_id, 0})) == "Invalid command!");
  }
  // The original logged out on any text containing "logout".
  CHECK(std::holds_alternative<p::DirectSend>(t.on_text("msgto bob please logout")));
  const auto limited = as<p::DirectSend>(t.on_text("msgto bob hi"));
  CHECK(only(t.render(error_for(limited.request_id, errc::rate_limited))) ==
        "You are sending messages too fast.");
  const auto canned = as<p::Ping>(t.on_text("nonsense"));
  CHECK(only(t.render(error_for(canned.request_id, errc::rate_limited))) ==
        "You are sending messages too fast.");

  const auto bye = as<p::Logout>(t.on_text("logout"));
  const auto out = t.render(p::LoggedOut{bye.request_id, "alice"});
  CHECK(only(out) == "Bye, alice!");
  CHECK(out.close);
}

TEST_CASE("texts the original never had are free of the trigger words") {
  auto t = logged_in();
  const auto self = as<p::DirectSend>(t.on_text("msgto alice hi"));
  CHECK_FALSE(
      has_disconnect_word(only(t.render(error_for(self.request_id, errc::cannot_message_self)))));
  const auto bad = as<p::DirectSend>(t.on_text("msgto bob \x01"));
  CHECK_FALSE(has_disconnect_word(only(t.render(error_for(bad.request_id, errc::invalid_text)))));
  const auto invite = only(t.render(p::InviteEvent{"g1", "bob"}));
  CHECK(invite == "bob invited you to group g1; use joingroup g1 to join.");
  for (const auto code : {errc::login_timeout, errc::server_shutdown, errc::rate_limited}) {
    CHECK_FALSE(has_disconnect_word(
        only(t.render(p::ShutdownEvent{static_cast<std::uint16_t>(code), "x"}))));
  }
  // A native message longer than the original's read arrives in parts.
  const auto long_event = t.render(p::DirectEvent{"bob", when, std::string(4096, 'x')});
  CHECK(long_event.writes.size() == 3);
  for (const auto& part : long_event.writes)
    CHECK(part.size() <= max_write);
}
