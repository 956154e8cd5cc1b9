#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/line_reader.hpp"
#include "completion.hpp"

namespace tessenger::app {

/// The interactive terminal after login: line editing with libedit on a
/// thread of its own, output printed above the input line, and a status
/// line between the two.
///
/// The terminal thread owns libedit and the tty: it waits (poll) for a key,
/// for output handed over by other threads and for an interrupt, so a
/// message that arrives while a line is half typed is printed above it and
/// the line is redrawn intact, cursor where it was. Finished lines are
/// queued in order for read_line() (several pasted lines are several
/// commands, none lost) and kept in the history.
///
/// Thread safety: every member may be called from any thread, except that
/// read_line() is for one thread at a time. print() and status() never
/// block on the terminal.
class Terminal {
 public:
  struct Options {
    /// Shown before the input; may hold SGR sequences between '\1' pairs.
    std::string prompt;
    /// Where the history is loaded from and saved to; empty: kept in memory only.
    std::filesystem::path history_file;
    /// What Tab completes (runs on the terminal thread).
    std::function<Completion(std::string_view before_cursor)> complete;
  };

  /// Edits on `in_fd`/`out_fd` (a terminal); `interrupt_fd` becoming
  /// readable (a signal's wake-up pipe) ends the input with
  /// Status::interrupted. Starts the terminal thread.
  Terminal(int in_fd, int out_fd, int interrupt_fd, Options options);
  /// Stops (see stop()).
  ~Terminal();
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  /// One line of output (already safe for the terminal: network text went
  /// through terminal_safe()), printed above the input.
  void print(std::string line);
  /// The status line shown just above the input, cut to the terminal's
  /// width; empty hides it.
  void status(std::string line);
  /// The next line the user entered; end_of_input once for each Ctrl-D on
  /// an empty line (editing goes on), and from then on when the terminal
  /// went away; interrupted from the moment `interrupt_fd` is readable.
  LineReader::Status read_line(std::string& line);
  /// Prints what is queued, removes the input line and the status line,
  /// restores the terminal's settings and discards typed-ahead input, so
  /// nothing typed here reaches the shell. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessenger::app
