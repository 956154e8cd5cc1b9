#pragma once

// The real tessenger-server and tessenger-client binaries, started by the
// test on 127.0.0.1 with the server on port 0, talking over pipes.

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "process.hpp"
#include "temp_dir.hpp"
#include "text_match.hpp"

namespace tessenger::testing {

using namespace std::chrono_literals;

inline constexpr std::chrono::milliseconds cli_deadline = 20s;

inline const std::string prompt =
    "Enter one of the following commands (/msgto, /activeuser, /creategroup, /joingroup, "
    "/groupmsg, /logout, /p2pvideo):";

// True once every thread of `pid` is stopped (state T in /proc), so that a
// SIGSTOP has taken effect before the test goes on.
inline bool stopped(pid_t pid) {
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream in(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    // The state follows the command name, which is in parentheses.
    const auto close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] != 'T') {
      return false;
    }
  }
  return !ec;
}

class CliServer {
 public:
  /// Starts a server in `dir` (credentials.txt and the logs live there).
  CliServer(const TempDir& dir, int max_attempts = 3, std::vector<std::string> extra = {})
      : dir_(dir), max_attempts_(max_attempts), extra_(std::move(extra)) {
    start();
  }

  void start() {
    std::vector<std::string> argv{TESSENGER_SERVER_PATH, "127.0.0.1", "0",
                                  std::to_string(max_attempts_)};
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    process_.emplace(argv, dir_.path());
    constexpr std::string_view listening = "TESSENGER server listening on 127.0.0.1:";
    while (auto line = process_->read_line(cli_deadline)) {
      if (matches(*line, std::string(listening) + "{N}")) {
        port_ = static_cast<std::uint16_t>(std::stoi(line->substr(listening.size())));
        return;
      }
    }
    FAIL("the server did not report its port: " << process_->error_output());
  }

  /// SIGTERM, as an operator would; the exit status.
  std::optional<int> stop() {
    process_->signal(SIGTERM);
    return process_->wait(cli_deadline);
  }

  /// SIGKILL, as a crash; start() brings it back on a new port.
  void kill() {
    process_->signal(SIGKILL);
    process_->wait(cli_deadline);
  }

  std::uint16_t port() const { return port_; }
  Process& process() { return *process_; }

 private:
  const TempDir& dir_;
  int max_attempts_;
  std::vector<std::string> extra_;
  std::optional<Process> process_;
  std::uint16_t port_ = 0;
};

class CliClient {
 public:
  explicit CliClient(std::uint16_t port, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{TESSENGER_CLIENT_PATH, "127.0.0.1", std::to_string(port), "0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_.emplace(argv);
  }

  /// The next stdout line, or "<nothing>" at the deadline.
  std::string line() { return process_->read_line(cli_deadline).value_or("<nothing>"); }
  void send(std::string_view input) { process_->write_line(input); }

  /// Runs the login dialogue up to the command prompt.
  void login(const std::string& user, const std::string& password) {
    CHECK(line() == "Please login");
    send(user);
    send(password);
    CHECK(line() == "Username: Password: Welcome to TESSENGER!");
    CHECK(line() == prompt);
  }

  /// Sends a command; returns its output lines up to the next prompt.
  std::vector<std::string> command(std::string_view input) {
    send(input);
    std::vector<std::string> lines;
    for (auto next = line(); next != prompt; next = line()) {
      lines.push_back(next);
      if (next == "<nothing>") break;
    }
    return lines;
  }

  std::optional<int> wait() { return process_->wait(cli_deadline); }
  Process& process() { return *process_; }

 private:
  std::optional<Process> process_;
};

}  // namespace tessenger::testing

template <>
struct doctest::StringMaker<std::vector<std::string>> {
  static doctest::String convert(const std::vector<std::string>& lines) {
    std::string text = "{";
    for (const auto& line : lines)
      text += "\n  \"" + line + "\"";
    return (text + " }").c_str();
  }
};
