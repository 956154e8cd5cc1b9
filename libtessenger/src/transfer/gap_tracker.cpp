#include "transfer/gap_tracker.hpp"

#include <algorithm>
#include <iterator>

namespace tessenger::transfer {

std::uint64_t GapTracker::add(std::uint64_t begin, std::uint64_t end,
                              std::vector<ByteRange>* added) {
  if (begin >= end) return 0;
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= begin) it = prev;
  }
  // A range starting at or before `begin` keeps its node and only grows:
  // in-order data, the common case, then allocates nothing.
  auto kept = ranges_.end();
  std::uint64_t merged_end = end;
  std::uint64_t cursor = begin;
  std::uint64_t fresh = 0;
  while (it != ranges_.end() && it->first <= end) {
    if (cursor < it->first) {
      fresh += it->first - cursor;
      if (added) added->push_back({cursor, it->first});
    }
    cursor = std::max(cursor, it->second);
    merged_end = std::max(merged_end, it->second);
    if (it->first <= begin) {
      kept = it++;
    } else {
      it = ranges_.erase(it);
    }
  }
  if (cursor < end) {
    fresh += end - cursor;
    if (added) added->push_back({cursor, end});
  }
  if (kept != ranges_.end()) {
    kept->second = merged_end;
  } else {
    ranges_.emplace(begin, merged_end);
  }
  total_ += fresh;
  return fresh;
}

bool GapTracker::contains(std::uint64_t begin, std::uint64_t end) const {
  if (begin >= end) return true;
  auto it = ranges_.upper_bound(begin);
  if (it == ranges_.begin()) return false;
  --it;
  return it->first <= begin && it->second >= end;
}

bool GapTracker::disjoint(std::uint64_t begin, std::uint64_t end) const {
  const auto it = ranges_.upper_bound(begin);
  if (it != ranges_.end() && it->first < end) return false;
  return it == ranges_.begin() || std::prev(it)->second <= begin;
}

std::optional<ByteRange> GapTracker::find(std::uint64_t offset) const {
  auto it = ranges_.upper_bound(offset);
  if (it == ranges_.begin()) return std::nullopt;
  --it;
  if (offset >= it->second) return std::nullopt;
  return ByteRange{it->first, it->second};
}

std::uint64_t GapTracker::contiguous() const {
  if (ranges_.empty() || ranges_.begin()->first != 0) return 0;
  return ranges_.begin()->second;
}

std::vector<ByteRange> GapTracker::to_vector() const {
  std::vector<ByteRange> out;
  out.reserve(ranges_.size());
  for (const auto& [b, e] : ranges_)
    out.push_back({b, e});
  return out;
}

}  // namespace tessenger::transfer
