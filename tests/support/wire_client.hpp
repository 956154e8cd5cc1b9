#pragma once

// A blocking protocol-level client for tests: raw bytes and typed messages
// over a TCP socket, every wait bounded by a deadline (a test never hangs and
// never sleeps to synchronise).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <tessenger/errc.hpp>
#include <tessenger/protocol.hpp>

namespace tessenger::testing {

using namespace std::chrono_literals;

class WireClient {
 public:
  /// `receive_buffer` > 0 shrinks SO_RCVBUF, to play a client that reads slowly.
  /// `source` binds the local end to that address (any of 127.0.0.0/8 plays
  /// another host on loopback).
  explicit WireClient(std::uint16_t port, const std::string& address = "127.0.0.1",
                      int receive_buffer = 0, const std::string& source = {}) {
    const bool v6 = address.find(':') != std::string::npos;
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    if (receive_buffer > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    if (!source.empty()) {
      sockaddr_in from{};
      from.sin_family = AF_INET;
      ::inet_pton(AF_INET, source.c_str(), &from.sin_addr);
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
        ::close(fd_);
        throw std::runtime_error(std::string("bind failed: ") + std::strerror(errno));
      }
    }
    sockaddr_storage storage{};
    socklen_t length = 0;
    if (v6) {
      auto* sa = reinterpret_cast<sockaddr_in6*>(&storage);
      sa->sin6_family = AF_INET6;
      sa->sin6_port = htons(port);
      ::inet_pton(AF_INET6, address.c_str(), &sa->sin6_addr);
      length = sizeof *sa;
    } else {
      auto* sa = reinterpret_cast<sockaddr_in*>(&storage);
      sa->sin_family = AF_INET;
      sa->sin_port = htons(port);
      ::inet_pton(AF_INET, address.c_str(), &sa->sin_addr);
      length = sizeof *sa;
    }
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&storage), length) != 0) {
      ::close(fd_);
      throw std::runtime_error(std::string("connect failed: ") + std::strerror(errno));
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~WireClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  WireClient(const WireClient&) = delete;
  WireClient& operator=(const WireClient&) = delete;

  void send_bytes(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
      const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(std::string("send failed: ") + std::strerror(errno));
      }
      bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
  }
  /// In the negotiated version (the newest before a Hello).
  void send(const protocol::Message& message) { send_bytes(protocol::encode(message, version_)); }

  /// The next message, or nothing if the connection closed or the deadline passed.
  std::optional<protocol::Message> next(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (queue_.empty()) {
      if (!fill(deadline)) return std::nullopt;
    }
    auto message = std::move(queue_.front());
    queue_.pop_front();
    return message;
  }

  /// Waits for the next message of type T, failing on anything else.
  template <typename T>
  T expect(std::chrono::milliseconds timeout = 5s) {
    auto message = next(timeout);
    if (!message) throw std::runtime_error("no message before the deadline");
    if (!std::holds_alternative<T>(*message)) {
      throw std::runtime_error(std::string("unexpected message ") +
                               std::string(protocol::name_of(protocol::type_of(*message))));
    }
    return std::get<T>(std::move(*message));
  }

  /// True if the server closes the connection before the deadline; messages
  /// that arrive first are kept for next().
  bool closed_within(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!closed_) {
      if (!fill(deadline) && !closed_) return false;
    }
    return true;
  }

  /// Hello (offering versions 1..max_version) then Login; returns the reply to the login.
  protocol::Message login(const std::string& user, const std::string& password,
                          std::uint16_t udp_port = 9, std::uint8_t max_version = 1,
                          protocol::MessageId resume_after = 0) {
    send(protocol::Hello{1, 1, max_version, "wire-client"});
    version_ = expect<protocol::HelloOk>().version;
    send(protocol::Login{2, user, password, udp_port, resume_after});
    auto reply = next();
    if (!reply) throw std::runtime_error("no login reply");
    return *reply;
  }

  int fd() const { return fd_; }

 private:
  bool fill(std::chrono::steady_clock::time_point deadline) {
    if (closed_) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready <= 0) return false;
    std::byte buffer[65536];
    const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    std::span<const std::byte> input(buffer, static_cast<std::size_t>(n));
    while (!input.empty()) {
      auto result = decoder_.feed(input);
      input = input.subspan(result.consumed);
      if (result.error) throw std::runtime_error("server sent an undecodable frame");
      if (result.message) queue_.push_back(std::move(*result.message));
    }
    return true;
  }

  int fd_ = -1;
  std::uint8_t version_ = protocol::version;
  bool closed_ = false;
  protocol::Decoder decoder_;
  std::deque<protocol::Message> queue_;
};

/// The error a reply carries; nothing if the reply is not an Error.
inline std::optional<errc> code_of(const protocol::Message& reply) {
  const auto* error = std::get_if<protocol::Error>(&reply);
  if (error == nullptr) return std::nullopt;
  return static_cast<errc>(error->code);
}

}  // namespace tessenger::testing
