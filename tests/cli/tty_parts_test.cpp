// The terminal client's pure parts: completion, human units, widths.

#include <doctest/doctest.h>

#include <clocale>
#include <cstdlib>
#include <filesystem>

#include "commands.hpp"
#include "completion.hpp"
#include "temp_dir.hpp"
#include "tty_format.hpp"

using namespace tessenger::app;

TEST_CASE("Tab completes command names in any case, with or without the slash") {
  const CompletionSources none;
  auto c = complete_line("/act", none);
  CHECK(c.erase == 4);
  CHECK(c.insert == "/activeuser ");
  c = complete_line("/ACT", none);
  CHECK(c.insert == "/activeuser ");
  c = complete_line("joi", none);
  CHECK(c.insert == "joingroup ");
  // Several candidates and nothing in common to add: they are listed.
  c = complete_line("/", none);
  CHECK(c.insert.empty());
  CHECK(c.choices.size() == command_table().size());
  c = complete_line("/hi", none);
  CHECK(c.insert == "/history ");
  c = complete_line("/help gr", none);
  CHECK(c.insert == "groupmsg ");
}

TEST_CASE("Tab completes users and groups by the argument's place") {
  const CompletionSources names{{"Hans", "Yoda", "Yoshi"}, {"jedi", "sith"}};
  CHECK(complete_line("/msgto Ha", names).insert == "ns ");
  CHECK(complete_line("/msgto Yo", names).insert.empty());
  CHECK(complete_line("/msgto Yo", names).choices == std::vector<std::string>{"Yoda", "Yoshi"});
  CHECK(complete_line("/msgto Hans hello Ha", names).insert.empty());
  CHECK(complete_line("/creategroup team Hans Yod", names).insert == "a ");
  CHECK(complete_line("/groupmsg j", names).insert == "edi ");
  CHECK(complete_line("/joingroup s", names).insert == "ith ");
  CHECK(complete_line("/history s", names).insert == "ith ");
  CHECK(complete_line("/history H", names).insert == "ans ");
  CHECK(complete_line("/p2pvideo Yos", names).insert == "hi ");
}

TEST_CASE("Tab completes file paths for /p2pvideo, with ~ and quotes") {
  tessenger::testing::TempDir dir("tessenger-complete");
  dir.write("my clip.mp4", "x");
  dir.write("notes.txt", "x");
  std::filesystem::create_directory(dir / "videos");
  const auto base = dir.path().string() + "/";
  const CompletionSources names{{"Yoda"}, {}};
  CHECK(complete_line("/p2pvideo Yoda " + base + "my", names).insert == " clip.mp4");
  CHECK(complete_line("/p2pvideo Yoda \"" + base + "my", names).insert == " clip.mp4\"");
  CHECK(complete_line("/p2pvideo Yoda " + base + "vi", names).insert == "deos/");
  const auto listed = complete_line("/p2pvideo Yoda " + base, names).choices;
  CHECK(listed == std::vector<std::string>{"my clip.mp4", "notes.txt", "videos/"});

  const char* home = std::getenv("HOME");
  const std::string saved = home ? home : "";
  ::setenv("HOME", dir.path().c_str(), 1);
  CHECK(complete_line("/p2pvideo Yoda ~/no", names).insert == "tes.txt");
  ::setenv("HOME", saved.c_str(), 1);
}

TEST_CASE("sizes, durations and rates in human units") {
  CHECK(human_size(0) == "0 B");
  CHECK(human_size(999) == "999 B");
  CHECK(human_size(1500) == "1.5 kB");
  CHECK(human_size(52'428'800) == "52 MB");
  CHECK(human_size(3'200'000'000) == "3.2 GB");
  CHECK(human_duration(std::chrono::milliseconds(400)) == "0.4 s");
  CHECK(human_duration(std::chrono::seconds(185)) == "3 min 5 s");
  CHECK(human_rate(11'900'000) == "12 MB/s");
  CHECK(transfer_status(true, "a.mp4", "bob", 10'000'000, 50'000'000, 2'000'000) ==
        "sending a.mp4 to bob 10 MB/50 MB 20% 2.0 MB/s ETA 20 s");
}

TEST_CASE("widths ignore colour and cut whole characters") {
  std::setlocale(LC_CTYPE, "C.UTF-8");
  CHECK(display_width("\x1b[31mred\x1b[0m") == 3);
  CHECK(display_width("añb") == 3);
  CHECK(fit_width("abcdef", 3) == "abc");
  CHECK(fit_width("\x1b[2mabcdef\x1b[0m", 2) == "\x1b[2mab\x1b[0m");
}

TEST_CASE("colours are stable per user and absent when disabled") {
  const Palette on(true);
  const Palette off(false);
  CHECK(on.user("Hans") == on.user("Hans"));
  CHECK(on.user("Hans").find("\x1b[") == 0);
  CHECK(off.user("Hans") == "Hans");
  CHECK(off.error("oops") == "oops");
  CHECK(off.prompt("Hans") == "Hans> ");
}
