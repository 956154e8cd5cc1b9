// echo_bot: a tessenger::Client on the caller's io_context that logs in and
// answers every direct message with the same text.
//
//   echo_bot HOST PORT USERNAME PASSWORD
//
// Prints "echo_bot: logged in as USERNAME" once it is ready. SIGINT or
// SIGTERM logs out and exits 0; a refused login or a lost connection exits 1.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <tessenger/client.hpp>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: echo_bot HOST PORT USERNAME PASSWORD\n");
    return 2;
  }
  const std::string host = argv[1];
  const auto port = static_cast<std::uint16_t>(std::atoi(argv[2]));
  const std::string username = argv[3];
  const std::string password = argv[4];

  asio::io_context io;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  int status = 1;

  tessenger::Client client(io);
  // Attached after construction: the handlers use the client itself.
  tessenger::ClientEvents events;
  events.on_direct_message = [&client](const tessenger::protocol::DirectEvent& message) {
    // The event's strings are borrowed: copy them into the request.
    client.send_direct(message.from, message.text, [](auto result) {
      if (!result)
        std::fprintf(stderr, "echo_bot: reply failed: %s\n", result.error().message().c_str());
    });
  };
  events.on_disconnected = [&](std::error_code code, std::string_view) {
    std::fprintf(stderr, "echo_bot: disconnected: %s\n", code.message().c_str());
    signals.cancel();
  };
  client.set_events(std::move(events));

  client.connect(host, port, [&](tessenger::Result<tessenger::ServerInfo> hello) {
    if (!hello) {
      std::fprintf(stderr, "echo_bot: cannot connect: %s\n", hello.error().message().c_str());
      return signals.cancel();
    }
    client.login(username, password, 0, [&](tessenger::Result<tessenger::LoggedIn> login) {
      if (!login) {
        std::fprintf(stderr, "echo_bot: login refused: %s\n", login.error().message().c_str());
        client.close();
        return signals.cancel();
      }
      std::printf("echo_bot: logged in as %s\n", login->username.c_str());
      std::fflush(stdout);
    });
  });

  signals.async_wait([&](std::error_code ec, int) {
    if (ec) return;  // cancelled: the session already ended
    client.logout([&](tessenger::Result<tessenger::SessionEnded> bye) { status = bye ? 0 : 1; });
  });

  io.run();
  return status;
}
