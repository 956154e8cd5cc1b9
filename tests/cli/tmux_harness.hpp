#pragma once

// The real tessenger-client in a real terminal: a tmux server of the test's
// own (its own -L socket, so parallel runs never meet), keys typed with
// send-keys, the screen read with capture-pane. Every wait is for something
// on the screen, with a deadline.

#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "eventually.hpp"
#include "process.hpp"

namespace tessenger::testing {

class Tmux {
 public:
  /// Runs `command` (argv; environment settings first, as for env(1)) in
  /// a new `columns`x`rows` window. When it ends the pane shows
  /// "[exit N]" and keeps its content.
  Tmux(std::vector<std::string> command, int columns = 80, int rows = 24)
      : socket_("tessenger-test-" + std::to_string(::getpid()) + "-" +
                std::to_string(counter()++)) {
    std::string shell = "env LC_ALL=C.UTF-8 TERM=tmux-256color";
    for (const auto& word : command)
      shell += " '" + word + "'";
    shell += "; echo \"[exit $?]\"; exec sleep 600";
    tmux({"new-session", "-d", "-x", std::to_string(columns), "-y", std::to_string(rows), "-s", "t",
          shell});
  }
  ~Tmux() { tmux({"kill-server"}); }
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  /// Types `text` as it is.
  void type(const std::string& text) { tmux({"send-keys", "-t", "t", "-l", text}); }
  /// Presses keys by tmux's names: "Enter", "Up", "Tab", "C-r", "C-d"...
  void keys(const std::vector<std::string>& names) {
    std::vector<std::string> args{"send-keys", "-t", "t"};
    args.insert(args.end(), names.begin(), names.end());
    tmux(args);
  }
  /// Pastes `text` as a terminal paste, all at once.
  void paste(const std::string& text) {
    tmux({"set-buffer", "--", text});
    tmux({"paste-buffer", "-t", "t"});
  }

  /// The screen's lines, without trailing blanks; `escapes` keeps colours.
  std::vector<std::string> screen(bool escapes = false) {
    std::vector<std::string> args{"capture-pane", "-p", "-t", "t"};
    if (escapes) args.push_back("-e");
    auto lines = tmux(args);
    for (auto& line : lines)
      line.erase(line.find_last_not_of(' ') + 1);
    while (!lines.empty() && lines.back().empty())
      lines.pop_back();
    return lines;
  }
  std::string text(bool escapes = false) {
    std::string all;
    for (const auto& line : screen(escapes))
      all += line + "\n";
    return all;
  }
  /// The cursor's column and row.
  std::pair<int, int> cursor() {
    const auto out = tmux({"display-message", "-p", "-t", "t", "#{cursor_x} #{cursor_y}"});
    if (out.empty()) return {-1, -1};
    const auto space = out[0].find(' ');
    return {std::stoi(out[0].substr(0, space)), std::stoi(out[0].substr(space + 1))};
  }

  /// Waits until `ready(screen)` holds; false at the deadline.
  bool wait(const std::function<bool(const std::vector<std::string>&)>& ready,
            std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
    // tmux announces nothing: the screen is read until it shows what is awaited.
    return eventually([&] { return ready(screen()); }, deadline);
  }
  /// Waits until some line of the screen contains `part`.
  bool wait_for(const std::string& part,
                std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
    return wait(
        [&](const std::vector<std::string>& lines) {
          for (const auto& line : lines)
            if (line.find(part) != std::string::npos) return true;
          return false;
        },
        deadline);
  }
  /// Waits until the last line of the screen is `line`.
  bool wait_last(const std::string& line) {
    return wait([&](const std::vector<std::string>& lines) {
      return !lines.empty() && lines.back() == line;
    });
  }

 private:
  static std::atomic<int>& counter() {
    static std::atomic<int> next{0};
    return next;
  }

  std::vector<std::string> tmux(const std::vector<std::string>& args) {
    std::vector<std::string> argv{
        "/usr/bin/env", "LC_ALL=C.UTF-8", "/usr/bin/tmux", "-f", "/dev/null", "-L", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    Process process(argv);
    std::vector<std::string> lines;
    while (auto line = process.read_line(std::chrono::seconds(10)))
      lines.push_back(*line);
    const auto status = process.wait(std::chrono::seconds(10));
    if (status != 0 && args.front() != "kill-server") {
      FAIL("tmux " << args.front() << " failed: " << process.error_output());
    }
    return lines;
  }

  std::string socket_;
};

}  // namespace tessenger::testing
