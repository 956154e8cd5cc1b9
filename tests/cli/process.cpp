#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

extern char** environ;

namespace tessenger::testing {
namespace {

void check(int result, const char* what) {
  if (result != 0) throw std::system_error(result, std::generic_category(), what);
}

struct Pipe {
  int read = -1;
  int write = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
      throw std::system_error(errno, std::generic_category(), "pipe2");
    read = fds[0];
    write = fds[1];
  }
};

}  // namespace

Process::Process(const std::vector<std::string>& argv, const std::filesystem::path& cwd) {
  // A child that exits early must not kill the test through a write to its stdin.
  ::signal(SIGPIPE, SIG_IGN);
  Pipe in, out, err;
  posix_spawn_file_actions_t actions;
  check(posix_spawn_file_actions_init(&actions), "posix_spawn_file_actions_init");
  // dup2 clears FD_CLOEXEC on the copies; every other pipe end closes on exec.
  posix_spawn_file_actions_adddup2(&actions, in.read, 0);
  posix_spawn_file_actions_adddup2(&actions, out.write, 1);
  posix_spawn_file_actions_adddup2(&actions, err.write, 2);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());

  std::vector<char*> args;
  for (const auto& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const int spawned = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in.read);
  ::close(out.write);
  ::close(err.write);
  if (spawned != 0) {
    ::close(in.write);
    ::close(out.read);
    ::close(err.read);
    throw std::system_error(spawned, std::generic_category(), "posix_spawn " + argv[0]);
  }
  stdin_fd_ = in.write;
  out_reader_ = std::thread([this, fd = out.read] { drain(fd, out_); });
  err_reader_ = std::thread([this, fd = err.read] { drain(fd, err_); });
  waiter_ = std::thread([this] {
    // Wait without reaping, so signal() can never hit a recycled pid: the
    // child is reaped under the lock that signal() takes.
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) < 0 &&
           errno == EINTR) {
    }
    int status = 0;
    std::lock_guard lock(mutex_);
    ::waitpid(pid_, &status, 0);
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    changed_.notify_all();
  });
}

Process::~Process() {
  signal(SIGKILL);
  close_stdin();
  waiter_.join();
  out_reader_.join();
  err_reader_.join();
}

void Process::drain(int fd, Stream& stream) {
  char chunk[4096];
  for (;;) {
    const auto n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    std::lock_guard lock(mutex_);
    if (n <= 0) {
      stream.ended = true;
      break;
    }
    stream.buffer.append(chunk, static_cast<std::size_t>(n));
    changed_.notify_all();
  }
  ::close(fd);
  changed_.notify_all();
}

void Process::write(std::string_view text) {
  std::lock_guard lock(stdin_mutex_);
  while (stdin_fd_ >= 0 && !text.empty()) {
    const auto n = ::write(stdin_fd_, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

void Process::close_stdin() {
  std::lock_guard lock(stdin_mutex_);
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  stdin_fd_ = -1;
}

std::optional<std::string> Process::take_line(Stream& stream, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout,
                    [&] { return stream.buffer.find('\n') != std::string::npos || stream.ended; });
  const auto end = stream.buffer.find('\n');
  if (end == std::string::npos) {
    if (!stream.ended || stream.buffer.empty()) return std::nullopt;
    auto rest = std::move(stream.buffer);
    stream.buffer.clear();
    return rest;
  }
  auto line = stream.buffer.substr(0, end);
  stream.buffer.erase(0, end + 1);
  return line;
}

std::optional<std::string> Process::read_line(std::chrono::milliseconds timeout) {
  return take_line(out_, timeout);
}

std::optional<std::string> Process::read_error_line(std::chrono::milliseconds timeout) {
  return take_line(err_, timeout);
}

std::string Process::error_output(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return err_.ended; });
  return err_.buffer;
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return status_.has_value(); });
  return status_;
}

void Process::signal(int number) {
  std::lock_guard lock(mutex_);
  if (!status_) ::kill(pid_, number);
}

}  // namespace tessenger::testing
