#pragma once

#include <array>
#include <cstdint>

namespace tessenger::transfer {

/// Remembers which of the last `bits` packet numbers were accepted, so a
/// replayed datagram (or one older than the window) is refused. Feed it only
/// authenticated packet numbers, or a forger could move the window.
class ReplayWindow {
 public:
  static constexpr std::uint64_t bits = 16384;

  /// True if `pn` is new and recent enough; does not record it.
  bool fresh(std::uint64_t pn) const {
    if (!any_ || pn > highest_) return true;
    if (highest_ - pn >= bits) return false;
    return !test(pn);
  }

  void mark(std::uint64_t pn) {
    if (!any_ || pn > highest_) {
      const std::uint64_t first_clear = any_ ? highest_ + 1 : pn;
      if (!any_ || pn - highest_ >= bits) {
        words_.fill(0);
      } else {
        for (std::uint64_t i = first_clear; i <= pn; ++i)
          clear(i);
      }
      highest_ = pn;
      any_ = true;
    }
    set(pn);
  }

  std::uint64_t highest() const { return highest_; }
  bool any() const { return any_; }

 private:
  bool test(std::uint64_t pn) const { return (words_[index(pn)] >> (pn % 64)) & 1u; }
  void set(std::uint64_t pn) { words_[index(pn)] |= std::uint64_t{1} << (pn % 64); }
  void clear(std::uint64_t pn) { words_[index(pn)] &= ~(std::uint64_t{1} << (pn % 64)); }
  static std::size_t index(std::uint64_t pn) { return static_cast<std::size_t>((pn % bits) / 64); }

  std::array<std::uint64_t, bits / 64> words_{};
  std::uint64_t highest_ = 0;
  bool any_ = false;
};

}  // namespace tessenger::transfer
