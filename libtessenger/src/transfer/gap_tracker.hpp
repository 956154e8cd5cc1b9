#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include <tessenger/transfer_engine.hpp>

namespace tessenger::transfer {

/// A set of disjoint byte ranges [begin, end). Touching ranges are merged, so
/// the number of entries is the number of holes plus one at most.
class GapTracker {
 public:
  /// Adds [begin, end) and appends to `added` (if given) each sub-range that
  /// was not already present. Returns the number of new bytes.
  std::uint64_t add(std::uint64_t begin, std::uint64_t end,
                    std::vector<ByteRange>* added = nullptr);

  bool contains(std::uint64_t begin, std::uint64_t end) const;
  /// No byte of [begin, end) is present.
  bool disjoint(std::uint64_t begin, std::uint64_t end) const;
  /// The range holding `offset`, if any.
  std::optional<ByteRange> find(std::uint64_t offset) const;
  /// End of the range that starts at 0, or 0.
  std::uint64_t contiguous() const;
  std::uint64_t total() const { return total_; }
  std::size_t range_count() const { return ranges_.size(); }
  std::vector<ByteRange> to_vector() const;
  const std::map<std::uint64_t, std::uint64_t>& ranges() const { return ranges_; }

 private:
  std::map<std::uint64_t, std::uint64_t> ranges_;  // begin -> end
  std::uint64_t total_ = 0;
};

}  // namespace tessenger::transfer
