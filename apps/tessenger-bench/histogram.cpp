#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace bench {

// Values below `linear` get a bucket each; above, each power of two is split
// into 2^sub_bits buckets, so a bucket is never wider than 1/64 of its value.
std::size_t Histogram::index(std::uint64_t v) noexcept {
  if (v < linear) return static_cast<std::size_t>(v);
  const int shift = std::bit_width(v) - 1 - sub_bits;
  const auto sub = static_cast<std::size_t>(v >> shift) - (std::size_t{1} << sub_bits);
  return linear + static_cast<std::size_t>(shift - 1) * (std::size_t{1} << sub_bits) + sub;
}

double Histogram::midpoint(std::size_t i) noexcept {
  if (i < linear) return static_cast<double>(i);
  const std::size_t k = i - linear;
  const int shift = static_cast<int>(k >> sub_bits) + 1;
  const auto sub = (k & ((std::size_t{1} << sub_bits) - 1)) + (std::size_t{1} << sub_bits);
  const double low = std::ldexp(static_cast<double>(sub), shift);
  return low + std::ldexp(1.0, shift) / 2;
}

void Histogram::record(std::uint64_t nanoseconds) noexcept {
  ++counts_[index(nanoseconds)];
  ++count_;
  max_ = std::max(max_, nanoseconds);
}

void Histogram::merge(const Histogram& other) noexcept {
  for (std::size_t i = 0; i < buckets; ++i)
    counts_[i] += other.counts_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

double Histogram::quantile(double q) const noexcept {
  if (count_ == 0) return 0;
  const auto rank = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(midpoint(i), static_cast<double>(max_));
  }
  return static_cast<double>(max_);
}

}  // namespace bench
