#pragma once

// The baseline: a trivial TCP relay in a child process (so its CPU is
// measured like the server's). Connections are paired in accept order; each
// one's bytes are forwarded to its partner unparsed, with one read buffer and
// one write in flight per direction. No relay design can do less work per
// message on the same connections.

#include <sys/types.h>

#include <cstdint>

namespace bench {

class Relay {
 public:
  /// Forks the relay, listening on 127.0.0.1 on a free port.
  Relay();
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  pid_t pid() const noexcept { return pid_; }

 private:
  pid_t pid_ = 0;
  std::uint16_t port_ = 0;
};

}  // namespace bench
