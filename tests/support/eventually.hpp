#pragma once

// Waits, with a deadline, for a condition that nothing announces (a
// Server::stats() count, say): checks it every millisecond until it holds.

#include <chrono>
#include <thread>

namespace tessenger::testing {

/// True as soon as `condition()` is, false if it still is not at the deadline.
template <class Condition>
bool eventually(Condition&& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    // The polling interval: short enough not to slow a test, long enough not
    // to take a core from the server on a small machine.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace tessenger::testing
