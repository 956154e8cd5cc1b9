#pragma once

// A real tessenger::Server on 127.0.0.1 with an OS-chosen port, a temporary
// data directory and a credentials file, running on a thread of its own.

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <tessenger/server.hpp>

#include "temp_dir.hpp"

namespace tessenger::testing {

struct Account {
  std::string username;
  std::string password;
};

inline std::vector<Account> default_accounts() {
  return {{"alice", "pa"}, {"bob", "pb"}, {"carol", "pc"}, {"dave", "pd"}, {"erin", "pe"}};
}

class TestServer {
 public:
  explicit TestServer(ServerConfig config = {}, std::vector<Account> accounts = default_accounts(),
                      ServerObserver observer = {})
      : config_(std::move(config)), observer_(std::move(observer)) {
    std::string credentials;
    for (const auto& a : accounts)
      credentials += a.username + " " + a.password + "\n";
    dir_.write("credentials.txt", credentials);
    config_.bind_address = config_.bind_address.empty() ? "127.0.0.1" : config_.bind_address;
    config_.credentials_file = dir_ / "credentials.txt";
    config_.data_dir = dir_ / "data";
    start();
  }

  /// Stops the server (as SIGTERM would) and starts a new one on the same
  /// data directory, on a new port.
  void restart() {
    server_->stop();
    server_.reset();
    config_.port = 0;
    start();
  }
  void stop() { server_->stop(); }

  std::uint16_t port() const { return server_->local_port(); }
  const std::filesystem::path& data_dir() const { return config_.data_dir; }
  Server& server() { return *server_; }
  const TempDir& dir() const { return dir_; }

 private:
  void start() {
    server_ = std::make_unique<Server>(config_, observer_);
    server_->start();
  }

  TempDir dir_;
  ServerConfig config_;
  ServerObserver observer_;
  std::unique_ptr<Server> server_;
};

}  // namespace tessenger::testing
