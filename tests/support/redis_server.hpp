#pragma once

// A real redis-server for cluster tests, in a temporary directory of its
// own, listening on a unix socket there (no TCP port to collide with other
// runs) and, when asked, on a free loopback port. Started with the
// appendonly file on and `appendfsync always`, so a kill -9 of Redis loses
// nothing it acknowledged. Needs tests/cli/process.cpp in the test.

#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../cli/process.hpp"
#include "temp_dir.hpp"

namespace tessenger::testing {

/// A loopback TCP port that was free a moment ago (bound, then released):
/// Redis reads port 0 as "no TCP", so it cannot be asked to pick one.
inline std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("bind() failed");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

class RedisServer {
 public:
  struct Options {
    bool tcp = false;  ///< also listen on 127.0.0.1:port()
  };

  RedisServer() : RedisServer(Options{}) {}
  explicit RedisServer(Options options)
      : dir_("tessenger-redis"), port_(options.tcp ? free_loopback_port() : 0) {
    start();
  }
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  /// unix:///…/redis.sock, for --cluster.
  std::string url() const { return "unix://" + socket_path().string(); }
  std::string tcp_url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  std::filesystem::path socket_path() const { return dir_ / "redis.sock"; }
  std::uint16_t port() const { return port_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  pid_t pid() const { return process_ ? process_->pid() : -1; }

  /// Starts it again (after kill()) with the same socket, port and data.
  void start() {
    process_ = std::make_unique<Process>(std::vector<std::string>{"/usr/bin/redis-server",
                                                                  "--port",
                                                                  std::to_string(port_),
                                                                  "--bind",
                                                                  "127.0.0.1",
                                                                  "--unixsocket",
                                                                  socket_path().string(),
                                                                  "--unixsocketperm",
                                                                  "700",
                                                                  "--dir",
                                                                  dir_.path().string(),
                                                                  "--appendonly",
                                                                  "yes",
                                                                  "--appendfsync",
                                                                  "always",
                                                                  "--save",
                                                                  "",
                                                                  "--daemonize",
                                                                  "no",
                                                                  "--loglevel",
                                                                  "notice"},
                                         dir_.path());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      const auto line = process_->read_line(std::chrono::milliseconds(200));
      if (line && line->find("eady to accept connections") != std::string::npos) return;
      if (process_->wait(std::chrono::milliseconds(0))) break;
    }
    throw std::runtime_error("redis-server did not start: " +
                             process_->error_output(std::chrono::milliseconds(200)));
  }
  /// SIGKILL, as a crash.
  void kill() {
    if (!process_) return;
    process_->signal(SIGKILL);
    process_->wait(std::chrono::seconds(5));
    process_.reset();
  }
  void pause() { process_->signal(SIGSTOP); }
  void resume() { process_->signal(SIGCONT); }
  void stop() {
    if (!process_) return;
    process_->signal(SIGCONT);
    process_->signal(SIGTERM);
    if (!process_->wait(std::chrono::seconds(5))) kill();
    process_.reset();
  }

 private:
  TempDir dir_;
  std::uint16_t port_;
  std::unique_ptr<Process> process_;
};

}  // namespace tessenger::testing
