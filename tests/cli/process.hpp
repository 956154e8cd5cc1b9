#pragma once

// A child process with its stdin, stdout and stderr on pipes, for tests that
// drive the real binaries. Output is drained by reader threads as it comes,
// so a chatty child never blocks on a full pipe; every wait has a deadline.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace tessenger::testing {

class Process {
 public:
  /// Starts argv[0] (a path) in `cwd` (empty: the current directory).
  /// Throws std::system_error if it cannot be started.
  explicit Process(const std::vector<std::string>& argv, const std::filesystem::path& cwd = {});
  /// Kills the child if it is still running, and reaps it.
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  /// Writes to the child's stdin (ignored once it is closed).
  void write(std::string_view text);
  void write_line(std::string_view line) { write(std::string(line) + "\n"); }
  void close_stdin();

  /// The next line of stdout (without "\n"); nothing at the deadline or when
  /// stdout ended without another line.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  /// The same for stderr.
  std::optional<std::string> read_error_line(std::chrono::milliseconds timeout);
  /// Everything the child wrote to stderr, once it closed stderr or at the
  /// deadline, whichever comes first.
  std::string error_output(std::chrono::milliseconds timeout = {});

  /// The exit status (128 + N after signal N), or nothing at the deadline.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  void signal(int number);
  pid_t pid() const { return pid_; }

 private:
  struct Stream {
    std::string buffer;
    bool ended = false;
  };
  std::optional<std::string> take_line(Stream& stream, std::chrono::milliseconds timeout);
  void drain(int fd, Stream& stream);

  pid_t pid_ = -1;
  std::mutex stdin_mutex_;  // apart from mutex_: a blocked write must not stall the readers
  int stdin_fd_ = -1;
  std::mutex mutex_;
  std::condition_variable changed_;
  Stream out_;
  Stream err_;
  std::optional<int> status_;
  std::thread out_reader_;
  std::thread err_reader_;
  std::thread waiter_;
};

}  // namespace tessenger::testing
