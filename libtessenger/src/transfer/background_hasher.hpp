#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "transfer/sha256.hpp"

namespace tessenger::transfer {

/// A FileHasher that hashes on a thread of its own, so receiving and hashing
/// use two cores. update() copies into a ring; update_stable() only queues
/// where the bytes are, and the thread reads them there. Both bound how far
/// hashing may lag: update() waits while the ring is full, update_stable()
/// while more than `ring_bytes` * 4 are queued, so finish() waits for at most
/// a few milliseconds of hashing.
class BackgroundHasher final : public FileHasher {
 public:
  static constexpr std::size_t default_ring_bytes = 4u << 20;

  explicit BackgroundHasher(std::size_t ring_bytes = default_ring_bytes);
  ~BackgroundHasher() override;
  BackgroundHasher(const BackgroundHasher&) = delete;
  BackgroundHasher& operator=(const BackgroundHasher&) = delete;

  void update(std::span<const std::byte> data) override;
  void update_stable(std::span<const std::byte> data) override;
  Digest finish() override;

 private:
  // Bytes to hash, in order: the next `size` bytes of the ring (stable is
  // null) or `size` bytes at `stable`.
  struct Segment {
    const std::byte* stable;
    std::size_t size;
  };

  void run();
  void enqueue(const std::byte* stable, std::size_t size);

  std::size_t ring_size_;
  std::unique_ptr<std::byte[]> ring_;  // not zeroed: pages are touched as used
  Sha256 sha_;                         // only the worker touches it until finish() has waited
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Segment> queue_;
  std::size_t stable_queued_ = 0;
  // Running totals: ring_[written_ % ring_size_] is the next byte to fill,
  // ring_[hashed_ % ring_size_] the next to hash.
  std::size_t written_ = 0;
  std::size_t hashed_ = 0;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace tessenger::transfer
