#pragma once

// tessenger::Server: the chat server, an Asio adapter around the domain core.
//
// Threading: the server serialises all its work (every connection, the
// domain state, the logs, the observer callbacks) on one strand of the
// io_context it runs on. Running that io_context on several threads is safe
// but does not make the server faster; one thread is the intended setup.
//
// Thread safety: distinct objects: safe. Shared objects: start() and the
// destructor from one thread; stop() and local_port() from any thread.

#include <memory>
#include <system_error>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <tessenger/export.hpp>
#include <tessenger/server_types.hpp>

namespace tessenger {

class TESSENGER_EXPORT Server {
 public:
  /// Runs on the caller's io_context: the caller calls io.run().
  Server(asio::io_context& io, ServerConfig config, ServerObserver observer = {});
  /// Owns an io_context and runs it on one thread of its own, started by
  /// start() and joined by stop() or the destructor.
  explicit Server(ServerConfig config, ServerObserver observer = {});
  ~Server();

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Loads the credentials, opens the logs (emptying userlog.txt) and starts
  /// listening. Throws std::system_error with a message naming what failed
  /// (address in use, bad address, unreadable credentials, unwritable data dir).
  void start();
  /// As start(), reporting failure through `ec`; `what` gets the message.
  void start(std::error_code& ec, std::string* what = nullptr);

  /// The bound TCP port (useful with port 0). Valid after start().
  std::uint16_t local_port() const noexcept;
  asio::ip::tcp::endpoint local_endpoint() const;

  /// Stops accepting, sends every client a ShutdownEvent, flushes every log
  /// and closes all connections. Idempotent; safe from any thread, including
  /// a signal handler's completion. Returns once the work is queued; with an
  /// owned thread it also joins that thread.
  void stop();

  /// Number of live connections (logged in or not). Safe from any thread.
  std::size_t connection_count() const noexcept;

 private:
  class Impl;
  struct OwnedContext;
  // Destroyed after impl_: destroying the io_context releases the handlers
  // that still hold the Impl.
  std::unique_ptr<OwnedContext> owned_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace tessenger
