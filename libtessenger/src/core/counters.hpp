#pragma once

// Statistics written by one thread (the server's strand) and read from any:
// a relaxed load and store instead of a locked add, since there is one writer.

#include <atomic>
#include <cstdint>

namespace tessenger::core {

class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void set(std::uint64_t n) noexcept { value_.store(n, std::memory_order_relaxed); }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// What the hub counts (see ServerStats for the meaning of each).
struct HubCounters {
  Counter online;
  Counter logins;
  Counter failed_logins;
  Counter blocks;
  Counter direct_messages;
  Counter group_messages;
  Counter group_deliveries;
  Counter rate_limited;
  Counter connections_refused;
  Counter login_timeouts;
  Counter pings_sent;
  Counter ping_timeouts;
  Counter login_probes;
  Counter unsupported_requests;
  Counter store_failures;
};

}  // namespace tessenger::core
