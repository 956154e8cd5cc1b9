#pragma once

#include <mutex>
#include <string_view>

namespace tessenger::app {

/// Line output shared by several threads: each call reaches the file
/// descriptor whole and at once (no stdio buffering), so output stays in
/// order and a script reading a pipe sees every line as soon as it exists.
///
/// Thread safety: distinct objects: safe. Shared objects: safe.
class Console {
 public:
  explicit Console(int fd = 1) : fd_(fd) {}

  /// Writes `text` through terminal_safe() and a newline: every line holds
  /// names and texts from the network, and none of them may steer the
  /// terminal or forge a line.
  void line(std::string_view text);
  /// Writes `text` as is: only for the app's own bytes (a prompt that the
  /// input continues, a progress bar's carriage return), never network text.
  void write(std::string_view text);

 private:
  void write_locked(std::string_view text);

  int fd_;
  std::mutex mutex_;
};

}  // namespace tessenger::app
