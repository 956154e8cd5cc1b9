#include "relay.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/write.hpp>

#include "process.hpp"

namespace bench {
namespace {

using asio::ip::tcp;

// One direction of a pair: read what the source sends, write it all to the
// sink, then read again.
class Pipe : public std::enable_shared_from_this<Pipe> {
 public:
  Pipe(std::shared_ptr<tcp::socket> source, std::shared_ptr<tcp::socket> sink)
      : source_(std::move(source)), sink_(std::move(sink)) {}

  void read() {
    source_->async_read_some(asio::buffer(buffer_),
                             [self = shared_from_this()](std::error_code ec, std::size_t n) {
                               if (ec) return self->shut();
                               self->write(n);
                             });
  }

 private:
  void write(std::size_t n) {
    asio::async_write(*sink_, asio::buffer(buffer_.data(), n),
                      [self = shared_from_this()](std::error_code ec, std::size_t) {
                        if (ec) return self->shut();
                        self->read();
                      });
  }
  void shut() {
    std::error_code ignored;
    source_->close(ignored);
    sink_->close(ignored);
  }

  std::shared_ptr<tcp::socket> source_;
  std::shared_ptr<tcp::socket> sink_;
  std::array<std::byte, 64 * 1024> buffer_;
};

class RelayServer {
 public:
  RelayServer(asio::io_context& io)
      : acceptor_(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {}

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  void accept() {
    acceptor_.async_accept([this](std::error_code ec, tcp::socket socket) {
      if (ec) return;
      socket.set_option(tcp::no_delay(true));
      auto accepted = std::make_shared<tcp::socket>(std::move(socket));
      if (waiting_) {
        std::make_shared<Pipe>(waiting_, accepted)->read();
        std::make_shared<Pipe>(accepted, waiting_)->read();
        waiting_.reset();
      } else {
        waiting_ = std::move(accepted);
      }
      accept();
    });
  }

 private:
  tcp::acceptor acceptor_;
  std::shared_ptr<tcp::socket> waiting_;
};

[[noreturn]] void relay_main(int report_fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  asio::io_context io(1);
  RelayServer server(io);
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](std::error_code, int) { io.stop(); });
  const std::uint16_t port = server.port();
  if (::write(report_fd, &port, sizeof port) != sizeof port) std::_Exit(1);
  ::close(report_fd);
  server.accept();
  io.run();
  std::_Exit(0);
}

}  // namespace

Relay::Relay() {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
  if (pid_ == 0) {
    ::close(fds[0]);
    try {
      relay_main(fds[1]);
    } catch (...) {
      std::_Exit(1);
    }
  }
  ::close(fds[1]);
  const auto n = ::read(fds[0], &port_, sizeof port_);
  ::close(fds[0]);
  if (n != sizeof port_) {
    stop_child(pid_, std::chrono::seconds(1));
    throw std::runtime_error("the relay did not start");
  }
}

Relay::~Relay() {
  stop_child(pid_, std::chrono::seconds(5));
}

}  // namespace bench
