#pragma once

// RFC 9002 loss recovery pieces: RTT estimation (§5), NewReno congestion
// control (§7, appendix B) and a pacer (§7.7). Time is always an argument.

#include <chrono>
#include <cstdint>

#include <tessenger/transfer_engine.hpp>

namespace tessenger::transfer {

using std::chrono::nanoseconds;

inline constexpr nanoseconds initial_rtt = std::chrono::milliseconds(100);
inline constexpr nanoseconds timer_granularity = std::chrono::milliseconds(1);
/// The receiver acknowledges within this; the sender adds it to the PTO.
inline constexpr nanoseconds max_ack_delay = std::chrono::milliseconds(5);

class RttEstimator {
 public:
  /// One sample: time from sending the largest newly acknowledged packet to
  /// its ACK, and the delay the receiver reported.
  void on_sample(nanoseconds latest, nanoseconds ack_delay);

  bool has_sample() const { return has_sample_; }
  nanoseconds smoothed() const { return smoothed_; }
  nanoseconds rttvar() const { return rttvar_; }
  nanoseconds latest() const { return latest_; }
  nanoseconds min() const { return min_; }
  /// Probe timeout before backoff: srtt + max(4 rttvar, granularity) + max_ack_delay.
  nanoseconds pto() const;
  /// RFC 9002 §6.1.2: 9/8 of max(srtt, latest), at least the granularity.
  nanoseconds loss_delay() const;

 private:
  bool has_sample_ = false;
  nanoseconds smoothed_ = initial_rtt;
  nanoseconds rttvar_ = initial_rtt / 2;
  nanoseconds latest_{0};
  nanoseconds min_{0};
};

class NewReno {
 public:
  NewReno(std::uint64_t max_datagram, std::uint64_t max_window);

  std::uint64_t window() const { return cwnd_; }
  std::uint64_t ssthresh() const { return ssthresh_; }
  bool in_slow_start() const { return cwnd_ < ssthresh_; }

  /// A packet sent at `sent` was acknowledged. `limited` says the sender was
  /// using most of the window; an application- or flow-limited sender does
  /// not grow it (RFC 9002 §7.8).
  void on_ack(std::uint64_t bytes, TimePoint sent, bool limited);
  /// Packets were declared lost; `sent` is when the newest of them went out.
  void on_congestion_event(TimePoint sent, TimePoint now);

 private:
  std::uint64_t max_datagram_;
  std::uint64_t max_window_;
  std::uint64_t cwnd_;
  std::uint64_t ssthresh_ = UINT64_MAX;
  std::uint64_t ca_acked_ = 0;  // bytes acked towards the next additive increase
  TimePoint recovery_start_{};
  bool in_recovery_ever_ = false;
};

/// Spreads a window's worth of datagrams over one RTT at 1.25x the rate
/// cwnd/srtt, allowing a small burst.
class Pacer {
 public:
  explicit Pacer(std::uint64_t max_datagram) : max_datagram_(max_datagram) {}

  /// When a datagram of `bytes` may leave (now or later).
  TimePoint next_send(std::uint64_t bytes, std::uint64_t cwnd, nanoseconds srtt, TimePoint now);
  void on_sent(std::uint64_t bytes, std::uint64_t cwnd, nanoseconds srtt, TimePoint now);

 private:
  void refill(std::uint64_t cwnd, nanoseconds srtt, TimePoint now);
  std::uint64_t capacity(std::uint64_t cwnd) const;

  std::uint64_t max_datagram_;
  double tokens_ = 0;  // bytes; negative while in debt
  bool started_ = false;
  TimePoint last_{};
};

}  // namespace tessenger::transfer
