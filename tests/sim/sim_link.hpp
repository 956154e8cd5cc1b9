#pragma once

// A deterministic in-memory network under a virtual clock, after ngtcp2's
// examples/sim.h: each direction has a rate, a bounded queue, a delay, and
// seeded loss, duplication, corruption and reordering.

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <queue>
#include <random>
#include <vector>

#include <tessenger/transfer_engine.hpp>

namespace sim {

using namespace std::chrono_literals;
using tessenger::transfer::TimePoint;
using Duration = std::chrono::nanoseconds;

struct LinkConfig {
  double loss = 0;       ///< probability a datagram vanishes
  double duplicate = 0;  ///< probability it arrives twice
  double corrupt = 0;    ///< probability one byte is flipped on the way
  double reorder = 0;    ///< probability it is held back by up to 4x the delay
  Duration delay = 10ms;
  Duration jitter = 0ms;
  std::uint64_t rate = 100'000'000;     ///< bytes per second
  std::uint64_t queue_bytes = 1 << 20;  ///< tail drop beyond this
};

struct LinkStats {
  std::uint64_t sent = 0;
  std::uint64_t dropped = 0;             ///< random loss and queue overflow
  std::uint64_t dropped_data_bytes = 0;  ///< file bytes in dropped or corrupted DATA
  std::uint64_t corrupted = 0;
  std::uint64_t duplicated = 0;
};

class Link {
 public:
  Link(const LinkConfig& config, std::mt19937_64& rng) : config_(config), rng_(rng) {}

  void set_config(const LinkConfig& config) { config_ = config; }
  const LinkStats& stats() const { return stats_; }

  void send(std::span<const std::byte> datagram, TimePoint now) {
    ++stats_.sent;
    const bool is_data = datagram.size() > 3 && datagram[3] == std::byte{1};
    const std::uint64_t file_bytes =
        is_data ? datagram.size() - tessenger::transfer::data_overhead : 0;
    if (chance(config_.loss) || queued_bytes(now) + datagram.size() > config_.queue_bytes) {
      ++stats_.dropped;
      stats_.dropped_data_bytes += file_bytes;
      return;
    }
    const auto serialise = Duration(static_cast<std::int64_t>(
        1e9 * static_cast<double>(datagram.size()) / static_cast<double>(config_.rate)));
    free_at_ = std::max(free_at_, now) + serialise;
    TimePoint at = free_at_ + config_.delay;
    if (config_.jitter.count() > 0) at += Duration(rng_() % config_.jitter.count());
    if (chance(config_.reorder)) at += Duration(rng_() % (4 * config_.delay.count() + 1));
    std::vector<std::byte> bytes(datagram.begin(), datagram.end());
    if (chance(config_.corrupt)) {
      ++stats_.corrupted;
      stats_.dropped_data_bytes += file_bytes;
      bytes[rng_() % bytes.size()] ^= std::byte(1 + rng_() % 255);
    }
    if (chance(config_.duplicate)) {
      ++stats_.duplicated;
      queue_.push({at + config_.delay / 2, seq_++, bytes});
    }
    queue_.push({at, seq_++, std::move(bytes)});
  }

  TimePoint next_delivery() const { return queue_.empty() ? TimePoint::max() : queue_.top().at; }

  template <class F>
  void deliver(TimePoint now, F&& f) {
    while (!queue_.empty() && queue_.top().at <= now) {
      auto bytes = queue_.top().bytes;
      queue_.pop();
      f(std::span(bytes));
    }
  }

 private:
  struct InFlight {
    TimePoint at;
    std::uint64_t seq;
    std::vector<std::byte> bytes;
    bool operator>(const InFlight& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };

  bool chance(double p) { return p > 0 && std::uniform_real_distribution<>(0, 1)(rng_) < p; }

  std::uint64_t queued_bytes(TimePoint now) const {
    if (free_at_ <= now) return 0;
    return static_cast<std::uint64_t>(static_cast<double>((free_at_ - now).count()) *
                                      static_cast<double>(config_.rate) / 1e9);
  }

  LinkConfig config_;
  std::mt19937_64& rng_;
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> queue_;
  TimePoint free_at_{};
  std::uint64_t seq_ = 0;
  LinkStats stats_;
};

}  // namespace sim
