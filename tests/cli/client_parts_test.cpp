// The tessenger-client's pure parts: command parsing, message checks, texts
// and timestamps. No sockets, no processes.

#include <doctest/doctest.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include <tessenger/errc.hpp>

#include <tessenger/timestamp.hpp>
#include "commands.hpp"
#include "common/message_text.hpp"
#include "common/texts.hpp"
#include "text_match.hpp"

using namespace tessenger;
using namespace tessenger::app;

TEST_CASE("commands are accepted with and without the slash") {
  for (const char* line : {"/msgto bob hello there", "msgto bob hello there"}) {
    const auto command = parse_command(line);
    const auto* msg = std::get_if<MsgTo>(&command);
    REQUIRE(msg);
    CHECK(msg->user == "bob");
    CHECK(msg->text == "hello there");
  }
  CHECK(std::holds_alternative<ActiveUser>(parse_command("activeuser")));
  CHECK(std::holds_alternative<ActiveUser>(parse_command("  /activeuser  ")));
  CHECK(std::holds_alternative<Logout>(parse_command("/logout")));
  CHECK(std::holds_alternative<Logout>(parse_command("logout")));
}

TEST_CASE("message text keeps its inner spacing") {
  const auto command = parse_command("/msgto  bob   a  b\tc ");
  const auto* msg = std::get_if<MsgTo>(&command);
  REQUIRE(msg);
  CHECK(msg->user == "bob");
  CHECK(msg->text == "a  b\tc ");
  const auto group = parse_command("/groupmsg chat  hi   all");
  REQUIRE(std::holds_alternative<GroupMsg>(group));
  CHECK(std::get<GroupMsg>(group).group == "chat");
  CHECK(std::get<GroupMsg>(group).text == "hi   all");
}

TEST_CASE("creategroup collects every listed user") {
  const auto command = parse_command("/creategroup chat bob carol  dave");
  const auto* create = std::get_if<CreateGroup>(&command);
  REQUIRE(create);
  CHECK(create->group == "chat");
  CHECK(create->users == std::vector<std::string>{"bob", "carol", "dave"});
  const auto join = parse_command("joingroup chat");
  REQUIRE(std::holds_alternative<JoinGroup>(join));
  CHECK(std::get<JoinGroup>(join).group == "chat");
}

TEST_CASE("wrong usage gives the command's usage line") {
  auto usage = [](const char* line) {
    const auto command = parse_command(line);
    REQUIRE(std::holds_alternative<Usage>(command));
    return std::string(std::get<Usage>(command).line);
  };
  CHECK(usage("/msgto") == "Usage: /msgto USER MESSAGE");
  CHECK(usage("/msgto bob") == "Usage: /msgto USER MESSAGE");
  CHECK(usage("/msgto bob   ") == "Usage: /msgto USER MESSAGE");
  CHECK(usage("/activeuser now") == "Usage: /activeuser");
  CHECK(usage("/creategroup") == "Usage: /creategroup GROUP USER [USER...]");
  CHECK(usage("/creategroup chat") == "Usage: /creategroup GROUP USER [USER...]");
  CHECK(usage("/joingroup") == "Usage: /joingroup GROUP");
  CHECK(usage("/joingroup a b") == "Usage: /joingroup GROUP");
  CHECK(usage("/groupmsg chat") == "Usage: /groupmsg GROUP MESSAGE");
  CHECK(usage("/logout now") == "Usage: /logout");
}

TEST_CASE("p2pvideo takes a user and the rest of the line as the file") {
  const auto command = parse_command("/p2pvideo bob  my video.mp4  ");
  const auto* video = std::get_if<P2pVideo>(&command);
  REQUIRE(video);
  CHECK(video->user == "bob");
  CHECK(video->file == "my video.mp4");
  CHECK(std::get<P2pVideo>(parse_command("p2pvideo bob a.mp4")).file == "a.mp4");
  for (const char* line : {"/p2pvideo", "/p2pvideo bob", "/p2pvideo bob   "}) {
    const auto usage = parse_command(line);
    REQUIRE(std::holds_alternative<Usage>(usage));
    CHECK(std::get<Usage>(usage).line == "Usage: /p2pvideo USER FILE");
  }
}

TEST_CASE("unknown commands and blank lines") {
  CHECK(std::holds_alternative<InvalidCommand>(parse_command("/dance")));
  CHECK(std::holds_alternative<InvalidCommand>(parse_command("/")));
  CHECK(std::holds_alternative<InvalidCommand>(parse_command("//msgto bob hi")));
  CHECK(std::holds_alternative<NoCommand>(parse_command("")));
  CHECK(std::holds_alternative<NoCommand>(parse_command("")));
  CHECK(std::holds_alternative<NoCommand>(parse_command(" \t ")));
}

TEST_CASE("command names are case-insensitive; /help and /logout --force") {
  CHECK(std::get<MsgTo>(parse_command("MSGTO bob hi")).text == "hi");
  CHECK(std::holds_alternative<ActiveUser>(parse_command("/ACTIVEUSER")));
  CHECK(std::get<Help>(parse_command("/Help")).topic.empty());
  CHECK(std::get<Help>(parse_command("/help msgto")).topic == "msgto");
  CHECK(std::get<Usage>(parse_command("/help a b")).line == "Usage: /help [COMMAND]");
  CHECK(std::get<Logout>(parse_command("/logout --force")).force);
  CHECK_FALSE(std::get<Logout>(parse_command("/logout")).force);
  CHECK(std::get<Usage>(parse_command("/logout --now")).line == "Usage: /logout");
  REQUIRE(find_command("/HISTORY") != nullptr);
  CHECK(find_command("history")->usage == "/history USER|GROUP [N]");
  CHECK(find_command("dance") == nullptr);
}

TEST_CASE("p2pvideo's FILE may be quoted and start with ~/") {
  const char* home = std::getenv("HOME");
  const auto video = std::get<P2pVideo>(parse_command("/p2pvideo bob \"my clip.mp4\""));
  CHECK(video.file == "\"my clip.mp4\"");
  CHECK(video.path == "my clip.mp4");
  if (home)
    CHECK(std::get<P2pVideo>(parse_command("/p2pvideo bob ~/a.mp4")).path ==
          std::string(home) + "/a.mp4");
}

TEST_CASE("message text is trimmed and checked") {
  CHECK(std::get<std::string>(clean_message("  hello  ")) == "hello");
  CHECK(std::get<std::string>(clean_message("grüße 👋")) == "grüße 👋");
  CHECK(std::get<TextProblem>(clean_message("   ")) == TextProblem::empty);
  CHECK(std::get<TextProblem>(clean_message("a\tb")) == TextProblem::control_character);
  CHECK(std::get<TextProblem>(clean_message("a\x7f")) == TextProblem::control_character);
  CHECK(std::get<TextProblem>(clean_message("a\xc2\x85")) == TextProblem::control_character);
  CHECK(std::get<TextProblem>(clean_message("a\xff")) == TextProblem::not_utf8);
  CHECK(std::get<TextProblem>(clean_message("\xc0\xaf")) == TextProblem::not_utf8);
  CHECK(std::get<TextProblem>(clean_message("\xed\xa0\x80")) == TextProblem::not_utf8);
  CHECK(std::get<TextProblem>(clean_message("\xe2\x82")) == TextProblem::not_utf8);
  CHECK(std::holds_alternative<std::string>(clean_message(std::string(4096, 'x'))));
  CHECK(std::get<TextProblem>(clean_message(std::string(4097, 'x'))) == TextProblem::too_long);
  CHECK(std::holds_alternative<std::string>(clean_message(" " + std::string(4096, 'x') + " ")));
  CHECK(describe(TextProblem::too_long) == "Message is too long: at most 4096 bytes.");
}

TEST_CASE("error texts are the SPEC texts") {
  auto text = [](errc code, std::string_view detail = {}) {
    return error_text(make_error_code(code), detail);
  };
  CHECK(text(errc::invalid_username) == "Invalid username. Please try again.");
  CHECK(text(errc::invalid_password) == "Invalid password. Please try again.");
  CHECK(text(errc::account_blocked_now) ==
        "Invalid password. Your account has been blocked. Please try again later.");
  CHECK(text(errc::account_blocked) ==
        "Your account is blocked due to multiple login failures. Please try again later.");
  CHECK(text(errc::already_logged_in) == "This account is already logged in.");
  CHECK(text(errc::user_not_online, "bob") == "bob is not online.");
  CHECK(text(errc::cannot_message_self) == "You cannot message yourself.");
  CHECK(text(errc::group_exists, "chat") == "a group chat (Name: chat) already exists");
  CHECK(text(errc::group_not_found, "chat") == "Groupchat chat doesn't exist.");
  CHECK(text(errc::not_invited, "chat") == "You are not invited to group chat.");
  CHECK(text(errc::already_joined, "chat") == "You have already joined Groupchat chat.");
  CHECK(text(errc::group_not_found_for_message) == "The group chat does not exist.");
  CHECK(text(errc::not_group_member) == "You are not in this group chat.");
  CHECK(text(errc::group_not_joined) == "Please join the group before sending messages.");
  CHECK(text(errc::no_such_file, "a.mp4") == "No such file: a.mp4");
  CHECK(text::command_prompt ==
        "Enter one of the following commands (/msgto, /activeuser, /creategroup, /joingroup, "
        "/groupmsg, /logout, /p2pvideo):");
  CHECK_FALSE(error_text(std::make_error_code(std::errc::connection_refused), {}).empty());
}

TEST_CASE("timestamps use the SPEC format in local time") {
  // Pin the zone so the expected text does not depend on the machine.
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  // 10 November 2023 20:57:10 UTC, plus some microseconds.
  const protocol::Timestamp at = 1'699'649'830'123'456;
  CHECK(format_timestamp(at) == "10 November 2023 20:57:10");
  CHECK(format_timestamp(0) == "01 January 1970 00:00:00");
  CHECK(format_timestamp(-1) == "31 December 1969 23:59:59");
  ::setenv("TZ", "Asia/Tokyo", 1);
  ::tzset();
  CHECK(format_timestamp(at) == "11 November 2023 05:57:10");
}

TEST_CASE("the tests' timestamp matcher accepts the SPEC format only") {
  using tessenger::testing::matches;
  CHECK(matches("10 November 2023 20:57:10, alice: hi", "{TS}, alice: hi"));
  CHECK(matches("1; 01 May 2024 00:00:00; bob; 127.0.0.1; 5001", "1; {TS}; bob; 127.0.0.1; {N}"));
  CHECK_FALSE(matches("1 November 2023 20:57:10", "{TS}"));
  CHECK_FALSE(matches("10 Nov 2023 20:57:10", "{TS}"));
  CHECK_FALSE(matches("10 November 2023 20:57", "{TS}"));
  CHECK_FALSE(matches("10 November 2023 20:57:10 extra", "{TS}"));
  CHECK_FALSE(matches("port x", "port {N}"));
}
