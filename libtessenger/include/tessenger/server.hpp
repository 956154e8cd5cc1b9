#pragma once

// tessenger::Server: the chat server, an Asio adapter around the domain core.
//
// Threading: every public member may be called from any thread. The server
// serialises all its work (every connection, the domain state, the logs and
// the observer callbacks) on one strand of the executor it runs on; running
// that executor on several threads is safe but does not make it faster.
//
// Lifetime: once the destructor has returned no observer callback or log
// sink call runs any more, also on an io_context the caller owns and runs on
// other threads (the destructor waits for a callback running on another
// thread to return). No callback runs while the library holds a lock, and a
// callback may destroy the Server it is called from, unless the Server owns
// its thread (that destructor joins the thread, so it must run on another).
// The rule is the same for Client and FileTransfer.

#include <memory>
#include <system_error>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <tessenger/export.hpp>
#include <tessenger/server_types.hpp>

namespace tessenger {

class TESSENGER_EXPORT Server {
 public:
  /// Runs on the caller's executor (an io_context's, a strand, a thread
  /// pool's): the caller runs it.
  Server(const asio::any_io_executor& executor, ServerConfig config, ServerObserver observer = {});
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

  /// Number of open connections (logged in or not, closing ones included).
  std::size_t connection_count() const noexcept;

  /// Replaces the observer; takes effect for events after the call.
  void set_observer(ServerObserver observer);

  /// What the server is doing and has done, read without stopping it.
  ServerStats stats() const;

 private:
  class Impl;
  struct OwnedContext;
  // Destroyed after impl_: destroying the io_context releases the handlers
  // that still hold the Impl.
  std::unique_ptr<OwnedContext> owned_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace tessenger
