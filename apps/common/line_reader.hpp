#pragma once

#include <string>

namespace tessenger::app {

/// Reads lines from a file descriptor (a terminal, a pipe or a file) and can
/// be woken from another thread or a signal handler while it waits.
///
/// Thread safety: read_line() from one thread; interrupt() from any thread
/// and from signal handlers (it only write()s to a pipe).
class LineReader {
 public:
  enum class Status { line, end_of_input, interrupted };

  explicit LineReader(int fd = 0);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  /// Waits for the next line (without its "\n" or "\r\n"). A last line
  /// without a newline is still a line. Once interrupted, every later call
  /// returns Status::interrupted at once.
  Status read_line(std::string& line);

  /// Makes the current and every later read_line() return interrupted.
  void interrupt() noexcept;

  int fd() const noexcept { return fd_; }
  /// Readable once interrupt() was called (and from then on), for a poll().
  int interrupt_fd() const noexcept { return wake_[0]; }

 private:
  bool fill();

  int fd_;
  int wake_[2] = {-1, -1};
  bool eof_ = false;
  std::string buffer_;
};

/// True if `fd` is a terminal.
bool is_terminal(int fd) noexcept;

/// Turns off echo on a terminal for its lifetime (for passwords); does
/// nothing when `fd` is not a terminal.
class EchoOff {
 public:
  explicit EchoOff(int fd = 0);
  ~EchoOff();
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  int fd_;
  bool active_ = false;
  unsigned long saved_lflag_ = 0;
};

}  // namespace tessenger::app
