// Real tessenger-server nodes on one real redis-server, for the cluster tests.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "../../cli/cli_harness.hpp"
#include "redis_server.hpp"

namespace tessenger::testing {

// Nodes n0, n1, ... on one Redis, each with its own data directory.
struct Cluster {
  RedisServer redis;
  TempDir dir{"tessenger-cluster"};
  std::vector<std::unique_ptr<CliServer>> nodes;

  Cluster(int count, const std::string& credentials) {
    dir.write("credentials.txt", credentials);
    for (int i = 0; i < count; ++i)
      add();
  }
  void add() {
    const std::string name = "n" + std::to_string(nodes.size());
    std::filesystem::create_directories(dir / name);
    // Polling /activeuser is many requests: no rate limit.
    nodes.push_back(std::make_unique<CliServer>(
        dir, 3,
        std::vector<std::string>{"--cluster", redis.url(), "--node-name", name, "--data-dir", name,
                                 "--message-rate", "0"}));
    joined(nodes.size() - 1);
  }
  // Waits for the node to say it joined: before that it refuses logins.
  void joined(std::size_t node) {
    while (auto line = nodes.at(node)->process().read_line(cli_deadline)) {
      if (line->find("joined the cluster") != std::string::npos) return;
    }
    FAIL("node " << node << " did not join the cluster");
  }
  // Starts a killed node again, under its old name, on a new port.
  void restart(std::size_t node) {
    nodes.at(node)->start();
    joined(node);
  }
  std::uint16_t port(std::size_t node) const { return nodes.at(node)->port(); }
};

// The users /activeuser lists, in the order it lists them.
inline std::vector<std::string> active(CliClient& client) {
  std::vector<std::string> names;
  for (const auto& line : client.command("/activeuser")) {
    if (line == "no other active user") break;
    names.push_back(line.substr(0, line.find(',')));
  }
  return names;
}

// Waits until `client`'s /activeuser shows `expected`; false at the deadline.
inline bool shows(CliClient& client, const std::vector<std::string>& expected,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto names = active(client); names != expected; names = active(client)) {
    if (std::chrono::steady_clock::now() > deadline) {
      MESSAGE("/activeuser still lists " << names.size()
                                         << " users: " << (names.empty() ? "" : names.front()));
      return false;
    }
  }
  return true;
}

}  // namespace tessenger::testing
