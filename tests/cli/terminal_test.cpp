// tessenger-client on a real terminal (tmux) against the real server: what
// a person sees while typing, completing, pasting and leaving. The other
// side is a client over pipes (its texts are those of cli_test.cpp).

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <memory>

#include "cli_harness.hpp"
#include "tmux_harness.hpp"

using namespace tessenger::testing;

namespace {

constexpr auto accounts = "Hans pa\nYoda pb\n";

struct Files {
  TempDir dir{"tessenger-tty"};
  Files() {
    dir.write("credentials.txt", accounts);
    dir.write("password", "pa\n");
  }
};

// A server, Yoda logged in through a pipe, and Hans on a terminal.
struct Chat : Files {
  CliServer server{dir};
  CliClient yoda{server.port()};
  std::unique_ptr<Tmux> hans;

  Chat() { yoda.login("Yoda", "pb"); }

  /// Starts Hans's client with `env` (NAME=VALUE words) and waits for his prompt.
  Tmux& start_hans(std::vector<std::string> env = {}, int columns = 80, int rows = 24,
                   std::vector<std::string> args = {}) {
    hans.reset();
    std::vector<std::string> command{"XDG_STATE_HOME=" + (dir / "state").string(), "NO_COLOR="};
    command.insert(command.end(), env.begin(), env.end());
    for (const auto& word :
         {std::string(TESSENGER_CLIENT_PATH), std::string("127.0.0.1"),
          std::to_string(server.port()), std::string("0"), std::string("--user"),
          std::string("Hans"), std::string("--password-file"), (dir / "password").string()}) {
      command.push_back(word);
    }
    command.insert(command.end(), args.begin(), args.end());
    hans = std::make_unique<Tmux>(command, columns, rows);
    REQUIRE_MESSAGE(hans->wait_last("Hans>"), hans->text());
    return *hans;
  }
};

bool has_line(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

std::size_t count_containing(const std::vector<std::string>& lines, const std::string& part) {
  return static_cast<std::size_t>(std::count_if(lines.begin(), lines.end(), [&](const auto& line) {
    return line.find(part) != std::string::npos;
  }));
}

}  // namespace

TEST_CASE("a message that arrives while typing is printed above; the half line stays intact") {
  Chat chat;
  auto& hans = chat.start_hans();
  const std::string half = "/msgto Yoda I am in the middle";
  hans.type(half);
  REQUIRE(hans.wait_last("Hans> " + half));

  CHECK(chat.yoda.command("/msgto Hans interrupting you!").size() == 1);
  REQUIRE_MESSAGE(hans.wait_for("Yoda: interrupting you!"), hans.text());
  const auto screen = hans.screen();
  CHECK(screen.back() == "Hans> " + half);
  CHECK(matches(screen[screen.size() - 2], "{N}:{N} Yoda: interrupting you!"));
  CHECK(hans.cursor().first == static_cast<int>(("Hans> " + half).size()));
  // The sender's name in its colour.
  CHECK(hans.text(true).find("\x1b[") != std::string::npos);

  hans.type(" of typing");
  hans.keys({"Enter"});
  CHECK(matches(chat.yoda.line(), "{TS}, Hans: I am in the middle of typing"));
  CHECK(chat.yoda.line() == prompt);
  CHECK(hans.wait_for("Hans -> Yoda: I am in the middle of typing"));
}

TEST_CASE("history: Up recalls, Ctrl-R searches, and it is kept per user for the next session") {
  Chat chat;
  auto& hans = chat.start_hans();
  hans.type("/activeuser");
  hans.keys({"Enter"});
  REQUIRE(hans.wait_for("Yoda, 127.0.0.1, "));
  hans.type("/HELP msgto");
  hans.keys({"Enter"});
  REQUIRE(hans.wait_for("send USER a private message"));
  CHECK(has_line(hans.screen(), "Usage: /msgto USER MESSAGE"));

  hans.keys({"C-r"});
  hans.type("activ");
  // libedit shows the search under the line found.
  REQUIRE_MESSAGE(hans.wait([](const auto& lines) {
    return lines.size() > 2 && lines.back() == "bck:activ" &&
           lines[lines.size() - 2] == "Hans> /activeuser";
  }),
                  hans.text());
  hans.keys({"Enter"});
  REQUIRE_MESSAGE(
      hans.wait([](const auto& lines) { return count_containing(lines, "Yoda, 127.0.0.1") == 2; }),
      hans.text());
  hans.keys({"Up"});
  REQUIRE(hans.wait_last("Hans> /activeuser"));
  hans.keys({"Up"});
  REQUIRE(hans.wait_last("Hans> /HELP msgto"));
  hans.keys({"C-u"});
  REQUIRE(hans.wait_last("Hans>"));

  hans.type("/logout");
  hans.keys({"Enter"});
  REQUIRE(hans.wait_for("[exit 0]"));
  std::ifstream file(chat.dir / "state" / "tessenger" / "history-Hans");
  const std::string saved((std::istreambuf_iterator<char>(file)), {});
  CHECK(saved.find("/activeuser") != std::string::npos);

  auto& again = chat.start_hans();
  again.keys({"Up", "Up", "Up"});
  CHECK(again.wait_last("Hans> /HELP msgto"));
}

TEST_CASE("Tab completes commands, users, groups and file paths") {
  Chat chat;
  chat.dir.write("clip one.mp4", "video");
  // What an interrupted download leaves (FileTransfer's partial file).
  chat.dir.write(".tessenger-0123456789abcdef.part", std::string(2000, 'p'));
  // No XDG_STATE_HOME: the history goes to ~/.local/state/tessenger.
  auto& hans = chat.start_hans({"XDG_STATE_HOME=", "HOME=" + chat.dir.path().string()}, 80, 24,
                               {"--download-dir", chat.dir.path().string()});
  CHECK(hans.wait_for("1 interrupted download (2.0 kB) in "));
  hans.type("/creategroup jedi Yoda");
  hans.keys({"Enter"});
  REQUIRE(hans.wait_for("Group chat room has been created, room name: jedi"));

  hans.type("/ACT");
  hans.keys({"Tab"});
  CHECK(hans.wait_last("Hans> /activeuser"));
  hans.keys({"C-u"});
  hans.type("/msgto Yo");
  hans.keys({"Tab"});
  CHECK(hans.wait_last("Hans> /msgto Yoda"));
  hans.keys({"C-u"});
  hans.type("/groupmsg je");
  hans.keys({"Tab"});
  CHECK(hans.wait_last("Hans> /groupmsg jedi"));
  hans.keys({"C-u"});
  hans.type("/p2pvideo Yoda ~/cl");
  hans.keys({"Tab"});
  CHECK(hans.wait_last("Hans> /p2pvideo Yoda ~/clip one.mp4"));
  hans.keys({"C-u"});
  // Several candidates: listed above the input, which stays as typed.
  hans.type("/h");
  hans.keys({"Tab"});
  CHECK(hans.wait_for("/help  /history"));
  CHECK(hans.wait_last("Hans> /h"));
  hans.type("i");
  hans.keys({"Tab"});
  CHECK(hans.wait_last("Hans> /history"));
  hans.keys({"C-u"});
  hans.type("/msgto Yoda hi");
  hans.keys({"Enter"});
  CHECK(hans.wait_for("Hans -> Yoda: hi"));
  CHECK(std::filesystem::exists(chat.dir / ".local" / "state" / "tessenger" / "history-Hans"));
}

TEST_CASE("a 5,000-byte typed message is refused, not cut; a 3-line paste is 3 commands") {
  Chat chat;
  auto& hans = chat.start_hans();
  hans.type("/msgto Yoda " + std::string(5000, 'x'));
  hans.keys({"Enter"});
  REQUIRE_MESSAGE(hans.wait_for("Message is too long: at most 4096 bytes."), hans.text());

  hans.paste("/msgto Yoda one\r/msgto Yoda two\r/msgto Yoda three\r");
  // The long message never reached Yoda: the first he gets is the paste's.
  for (const auto* text : {"one", "two", "three"}) {
    CHECK(matches(chat.yoda.line(), std::string("{TS}, Hans: ") + text));
    CHECK(chat.yoda.line() == prompt);
  }
  CHECK(hans.wait_for("Hans -> Yoda: three"));
}

TEST_CASE("50 columns, no colour: a wrapped half line survives a message") {
  Chat chat;
  auto& hans = chat.start_hans({"NO_COLOR=1"}, 50, 24);
  const std::string half = "/msgto Yoda " + std::string(40, 'a') + " and more";
  hans.type(half);
  const std::string first_row = ("Hans> " + half).substr(0, 50);
  const std::string second_row = ("Hans> " + half).substr(50);
  REQUIRE(hans.wait_last(second_row));

  CHECK(chat.yoda.command("/msgto Hans hello narrow").size() == 1);
  REQUIRE(hans.wait_for("Yoda: hello narrow"));
  const auto screen = hans.screen();
  REQUIRE(screen.size() >= 3);
  CHECK(screen[screen.size() - 2] == first_row);
  CHECK(screen.back() == second_row);
  CHECK(hans.text(true).find("\x1b[3") == std::string::npos);

  hans.keys({"Enter"});
  CHECK(matches(chat.yoda.line(), "{TS}, Hans: " + half.substr(12)));
}

TEST_CASE("Ctrl-D and Ctrl-C log out on a fresh line; a server shutdown ends the client") {
  Chat chat;
  {
    auto& hans = chat.start_hans();
    hans.keys({"C-d"});
    REQUIRE_MESSAGE(hans.wait_for("[exit 0]"), hans.text());
    const auto screen = hans.screen();
    CHECK(screen[screen.size() - 2] == "Bye, Hans!");
  }
  {
    auto& hans = chat.start_hans();
    hans.type("half typed");
    REQUIRE(hans.wait_last("Hans> half typed"));
    hans.keys({"C-c"});
    REQUIRE_MESSAGE(hans.wait_for("[exit 0]"), hans.text());
    const auto screen = hans.screen();
    CHECK(screen[screen.size() - 2] == "Bye, Hans!");
    CHECK(count_containing(screen, "half typed") == 0);
  }
  {
    auto& hans = chat.start_hans();
    hans.type("half typed");
    REQUIRE(hans.wait_last("Hans> half typed"));
    CHECK(chat.server.stop() == 0);
    REQUIRE_MESSAGE(hans.wait_for("[exit 1]"), hans.text());
    const auto screen = hans.screen();
    CHECK(screen[screen.size() - 2] == "The server is shutting down. Bye!");
  }
}

TEST_CASE("a transfer's status line beside the input; /logout asks; a killed peer ends it") {
  Chat chat;
  chat.dir.write("clip.bin", std::string(1'000'000, 'c'));
  auto& hans = chat.start_hans({"HOME=" + chat.dir.path().string()});
  // Frozen, Yoda acknowledges nothing: the upload stays at its start.
  chat.yoda.process().signal(SIGSTOP);
  REQUIRE(eventually([&] { return stopped(chat.yoda.process().pid()); }));
  hans.type("/p2pvideo Yoda ~/clip.bin");
  hans.keys({"Enter"});
  REQUIRE_MESSAGE(hans.wait_for("Sending clip.bin (1.0 MB) to Yoda."), hans.text());
  hans.type("/logout");
  hans.keys({"Enter"});
  REQUIRE(hans.wait_for("A transfer is running (clip.bin to Yoda)."));
  // Ctrl-D is /logout: the same answer, and the session goes on.
  hans.keys({"C-d"});
  REQUIRE(hans.wait([](const auto& lines) {
    return count_containing(lines, "A transfer is running (clip.bin to Yoda).") == 2;
  }));
  hans.type("half typed");
  REQUIRE(hans.wait([](const auto& lines) {
    return lines.size() > 2 && lines.back() == "Hans> half typed" &&
           lines[lines.size() - 2].starts_with("sending clip.bin to Yoda ");
  }));

  // How soon is measured in cli_test.cpp; here, what the terminal shows.
  chat.yoda.process().signal(SIGKILL);
  REQUIRE_MESSAGE(
      hans.wait_for("Upload of ~/clip.bin to Yoda failed: Yoda logged out or lost the connection."),
      hans.text());
  // The status line is gone; the half line is intact.
  REQUIRE(hans.wait([](const auto& lines) {
    return lines.size() > 2 && lines.back() == "Hans> half typed" &&
           !lines[lines.size() - 2].starts_with("sending");
  }));
  hans.keys({"C-u"});
  hans.type("/logout");
  hans.keys({"Enter"});
  CHECK(hans.wait_for("[exit 0]"));
}
