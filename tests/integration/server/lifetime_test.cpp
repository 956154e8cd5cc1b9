// The lifetime rule of Server (server.hpp): no observer callback runs once
// the destructor has returned, also on a caller's io_context run by several
// threads, and a callback may destroy the server it is called from.

#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <tessenger/server.hpp>

#include "temp_dir.hpp"
#include "wire_client.hpp"

namespace p = tessenger::protocol;
using tessenger::Server;
using tessenger::ServerConfig;
using tessenger::ServerObserver;
using tessenger::testing::TempDir;
using tessenger::testing::WireClient;
using namespace std::chrono_literals;

namespace {

ServerConfig config_in(const TempDir& dir) {
  dir.write("credentials.txt", "alice pa\nbob pb\n");
  ServerConfig config;
  config.credentials_file = dir / "credentials.txt";
  config.data_dir = dir / "data";
  return config;
}

p::Message login(WireClient& client, const std::string& user, const std::string& password) {
  client.send(p::Hello{1, 1, 2, "lifetime-test"});
  client.expect<p::HelloOk>();
  client.send(p::Login{2, user, password, 9});
  return *client.next();
}

}  // namespace

TEST_CASE(
    "no observer callback runs after the destructor returned (caller's io_context, 2 threads)") {
  for (int round = 0; round < 10; ++round) {
    TempDir dir;
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::atomic<bool> destroyed{false};
    std::atomic<int> late{0};
    std::atomic<int> calls{0};
    ServerObserver observer;
    observer.on_direct_message = [&](std::string_view, std::string_view, std::string_view) {
      if (destroyed) ++late;
      ++calls;
      std::this_thread::yield();
    };
    observer.on_logout = [&](std::string_view) {
      if (destroyed) ++late;
    };
    auto server = std::make_unique<Server>(io, config_in(dir), observer);
    server->start();
    std::thread first([&] { io.run(); });
    std::thread second([&] { io.run(); });

    WireClient alice(server->local_port());
    WireClient bob(server->local_port());
    REQUIRE(std::holds_alternative<p::LoginOk>(login(alice, "alice", "pa")));
    REQUIRE(std::holds_alternative<p::LoginOk>(login(bob, "bob", "pb")));
    std::atomic<bool> flooding{true};
    std::thread flood([&] {
      for (p::RequestId r = 10; flooding && r < 100'000; ++r) {
        try {
          alice.send(p::DirectSend{r, "bob", "flood"});
        } catch (const std::exception&) {
          return;  // the server went away
        }
      }
    });
    while (calls < 20)
      std::this_thread::yield();
    server.reset();
    destroyed = true;
    flooding = false;
    flood.join();
    work.reset();
    io.stop();
    first.join();
    second.join();
    CHECK(late == 0);
  }
}

TEST_CASE("an observer callback may destroy the server it is called from") {
  TempDir dir;
  asio::io_context io;
  std::unique_ptr<Server> server;
  std::atomic<int> logins{0};
  ServerObserver observer;
  observer.on_login = [&](std::string_view, std::string_view, std::uint16_t) {
    ++logins;
    server.reset();
  };
  server = std::make_unique<Server>(io, config_in(dir), observer);
  server->start();
  const auto port = server->local_port();
  std::thread runner([&] { io.run(); });
  WireClient alice(port);
  alice.send(p::Hello{1, 1, 2, "lifetime-test"});
  alice.send(p::Login{2, "alice", "pa", 9});
  // The server is gone: the connection ends, whatever it managed to send.
  CHECK(alice.closed_within(5s));
  runner.join();
  CHECK(logins == 1);
  CHECK(server == nullptr);
}
