#pragma once

// tessenger::Clock: where a Server reads the time. The default is the
// system's clocks; a ManualClock lets tests (and simulations) move time by
// hand, so that timeouts, blocks and pings are tested without waiting.
//
// Threading: now() and advance() are safe from any thread. A server
// subscribes when it starts and unsubscribes before its destructor returns.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <tessenger/export.hpp>

namespace tessenger {

class TESSENGER_EXPORT Clock {
 public:
  using Steady = std::chrono::steady_clock::time_point;
  using Wall = std::chrono::system_clock::time_point;

  virtual ~Clock();
  /// For deadlines: never goes backwards.
  virtual Steady steady() const = 0;
  /// For timestamps shown to people and kept in logs.
  virtual Wall wall() const = 0;

  using Subscription = std::shared_ptr<void>;
  /// Calls `jumped` (on the thread that moves the clock) whenever time moves
  /// other than by itself, so that timers armed for the old time are checked
  /// again. Dropping the returned handle unsubscribes. Real clocks never jump.
  virtual Subscription on_jump(std::function<void()> jumped);
};

/// The system's steady and wall clocks.
TESSENGER_EXPORT std::shared_ptr<Clock> system_clock();

/// Time that moves only when advance() is called. Starts at the real time.
class TESSENGER_EXPORT ManualClock final : public Clock {
 public:
  ManualClock();
  Steady steady() const override;
  Wall wall() const override;
  Subscription on_jump(std::function<void()> jumped) override;
  /// Moves both clocks forward and tells every subscriber.
  void advance(std::chrono::nanoseconds by);

 private:
  struct Listener {
    std::function<void()> jumped;
  };
  mutable std::mutex mutex_;
  Steady steady_;
  Wall wall_;
  std::vector<std::weak_ptr<Listener>> listeners_;
};

}  // namespace tessenger
