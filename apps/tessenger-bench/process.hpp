#pragma once

// The processes a benchmark measures: a tessenger-server child (or one we
// attach to), the relay child, and the bench itself.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace bench {

/// Synthetic account `index` (0-based): the name and password the bench uses.
std::string user_name(std::size_t index);
std::string user_password(std::size_t index);
/// Writes `count` accounts as a credentials file (plain-text passwords).
void write_credentials(const std::filesystem::path& file, std::size_t count);

/// A directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

/// CPU time (user + system) of a process and all its threads, from
/// /proc/PID/stat.
std::chrono::nanoseconds process_cpu(pid_t pid);
/// CPU time of this process, from getrusage(RUSAGE_SELF).
std::chrono::nanoseconds self_cpu();
/// CPU time of the calling thread, from getrusage(RUSAGE_THREAD).
std::chrono::nanoseconds thread_cpu();
/// Resident set size in bytes and thread count, from /proc/PID/status.
std::uint64_t process_rss(pid_t pid);
int process_threads(pid_t pid);

/// Raises RLIMIT_NOFILE to at least `wanted` descriptors (up to the hard
/// limit); returns the soft limit now in force.
std::size_t raise_fd_limit(std::size_t wanted);

/// The server under test: a tessenger-server child started on 127.0.0.1 port
/// 0 with a fresh credentials file and data directory, or one already running.
class ServerUnderTest {
 public:
  struct Options {
    std::string attach;  ///< HOST:PORT of a running server; empty = start a child
    pid_t attach_pid = 0;
    std::filesystem::path binary;  ///< empty = next to this binary's build tree
    std::vector<std::string> extra_args;
    /// The started server's --store: memory keeps figures comparable across
    /// versions; sqlite measures the durable default.
    std::string store = "memory";
    std::size_t users = 0;  ///< accounts the credentials file must hold
    /// Set: the server's --data-dir (kept, e.g. a database filled
    /// beforehand), with the credentials file written beside it.
    std::filesystem::path data_dir;
  };

  explicit ServerUnderTest(const Options& options);
  ~ServerUnderTest();
  ServerUnderTest(const ServerUnderTest&) = delete;
  ServerUnderTest& operator=(const ServerUnderTest&) = delete;

  const std::string& host() const noexcept { return host_; }
  std::uint16_t port() const noexcept { return port_; }
  /// 0 when attached to a server whose pid was not given.
  pid_t pid() const noexcept { return pid_; }

 private:
  std::optional<TempDir> dir_;
  std::string host_ = "127.0.0.1";
  std::uint16_t port_ = 0;
  pid_t pid_ = 0;
  bool owned_ = false;
};

/// Where tessenger-server is when built next to this binary (or installed
/// beside it).
std::filesystem::path default_server_binary();

/// Stops a child with SIGTERM, then SIGKILL if it has not exited in time.
void stop_child(pid_t pid, std::chrono::milliseconds grace);

/// Starts `args` (a path, or a name looked up in PATH) with its standard
/// output and error sent to files (the same file may be given twice), so a
/// chatty child never blocks on a full pipe. The child gets SIGTERM if the
/// bench dies.
pid_t spawn_child(std::vector<std::string> args, const std::filesystem::path& output,
                  const std::filesystem::path& errors);

}  // namespace bench
