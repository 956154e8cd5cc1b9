#pragma once

// A log-linear latency histogram: constant memory, < 1% relative error, and
// recording is an index computation and an increment, cheap enough to run on
// every delivered message.

#include <array>
#include <cstdint>

namespace bench {

class Histogram {
 public:
  void record(std::uint64_t nanoseconds) noexcept;
  void merge(const Histogram& other) noexcept;

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t max() const noexcept { return max_; }
  /// The value below which a fraction `q` (0..1) of the samples lie, in ns.
  double quantile(double q) const noexcept;

 private:
  static constexpr int sub_bits = 6;  // 64 sub-buckets per power of two
  static constexpr std::size_t linear = std::size_t{2} << sub_bits;
  static constexpr std::size_t buckets =
      linear + (64 - sub_bits - 1) * (std::size_t{1} << sub_bits);

  static std::size_t index(std::uint64_t v) noexcept;
  static double midpoint(std::size_t index) noexcept;

  std::array<std::uint64_t, buckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace bench
