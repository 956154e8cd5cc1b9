#pragma once

// Rate limits without I/O: a token bucket kept as one time stamp (the
// generic cell rate algorithm), and the key under which an address is
// counted. Time is always passed in, so the limits are tested without sleeping.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace tessenger::core {

using SteadyTime = std::chrono::steady_clock::time_point;

/// Allows `burst` events back to back, then one every `interval`. Holds only
/// the time at which the bucket will be full again, so it costs 8 bytes.
class TokenBucket {
 public:
  using Duration = std::chrono::steady_clock::duration;

  /// A bucket refilling `events` per `period`, holding at most `events`.
  static Duration interval_for(std::uint32_t events, Duration period) noexcept {
    return events == 0 ? Duration::zero() : period / events;
  }

  /// True if one more event at `now` stays within the limit.
  bool allows(SteadyTime now, Duration interval, std::uint32_t burst) const noexcept {
    if (burst == 0) return false;
    return full_at_ <= now + interval * (burst - 1);
  }
  /// Counts one event at `now` (whether or not it was allowed).
  void take(SteadyTime now, Duration interval) noexcept {
    full_at_ = (full_at_ > now ? full_at_ : now) + interval;
  }
  /// Checks and counts in one step; a refused event is not counted.
  bool try_take(SteadyTime now, Duration interval, std::uint32_t burst) noexcept {
    if (!allows(now, interval, burst)) return false;
    take(now, interval);
    return true;
  }
  /// Returns an event counted earlier that turned out not to count.
  void give_back(Duration interval) noexcept { full_at_ -= interval; }
  /// True when the bucket has refilled completely.
  bool full(SteadyTime now) const noexcept { return full_at_ <= now; }

 private:
  SteadyTime full_at_{};
};

/// The key per-address limits count under: the address itself for IPv4, and
/// its /64 prefix for IPv6, since one host usually owns a whole /64. IPv4
/// addresses written as IPv4-mapped IPv6 count as IPv4. Text that is not an
/// address is its own key.
std::string address_key(std::string_view address);

}  // namespace tessenger::core
