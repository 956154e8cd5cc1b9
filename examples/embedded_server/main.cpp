// embedded_server: a program that runs a TESSENGER server inside itself.
//
// It shows the two extension points an embedder usually needs: a custom
// Authenticator (here: accounts in a table built in code) and a
// ServerObserver that reacts to activity (here: printing it). The server runs
// on this program's own io_context; SIGINT or SIGTERM stops it cleanly.
//
//   embedded_server [port] [data_dir]

#include <csignal>
#include <cstdio>
#include <map>
#include <string>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <tessenger/server.hpp>

namespace {

class InMemoryAccounts final : public tessenger::Authenticator {
 public:
  explicit InMemoryAccounts(std::map<std::string, std::string, std::less<>> accounts)
      : accounts_(std::move(accounts)) {}

  bool exists(std::string_view username) const override {
    return accounts_.find(username) != accounts_.end();
  }
  bool verify(std::string_view username, std::string_view password) const override {
    const auto it = accounts_.find(username);
    return it != accounts_.end() && it->second == password;
  }

 private:
  std::map<std::string, std::string, std::less<>> accounts_;
};

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const auto port = argc > 1 ? static_cast<std::uint16_t>(std::stoi(argv[1])) : std::uint16_t{0};

  tessenger::ServerConfig config;
  config.bind_address = "127.0.0.1";
  config.port = port;
  config.data_dir = argc > 2 ? argv[2] : "embedded-data";
  config.authenticator = std::make_shared<InMemoryAccounts>(
      std::map<std::string, std::string, std::less<>>{{"alice", "pa"}, {"bob", "pb"}});

  tessenger::ServerObserver observer;
  observer.on_login = [](std::string_view user, std::string_view address, std::uint16_t) {
    say("login: " + std::string(user) + " from " + std::string(address));
  };
  observer.on_logout = [](std::string_view user) { say("logout: " + std::string(user)); };
  observer.on_direct_message = [](std::string_view from, std::string_view to,
                                  std::string_view text) {
    say("message: " + std::string(from) + " -> " + std::string(to) + ": " + std::string(text));
  };
  observer.on_group_created = [](std::string_view group, std::string_view creator,
                                 std::span<const std::string> invited) {
    say("group: " + std::string(creator) + " created " + std::string(group) + " inviting " +
        std::to_string(invited.size()));
  };

  asio::io_context io(1);
  tessenger::Server server(io, config, observer);
  std::error_code ec;
  std::string what;
  server.start(ec, &what);
  if (ec) {
    std::fprintf(stderr, "embedded_server: %s\n", what.c_str());
    return 1;
  }
  // Before saying it listens: a signal sent on seeing that line must find
  // the handler in place.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code error, int) {
    if (!error) server.stop();
  });
  say("embedded_server: listening on 127.0.0.1:" + std::to_string(server.local_port()));
  io.run();
  say("embedded_server: stopped");
  return 0;
}
