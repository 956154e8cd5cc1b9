#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>

#include "transfer/sha256.hpp"

namespace tessenger::transfer {

/// A FileHasher that hashes on a thread of its own: the caller only copies
/// into a ring, so receiving and hashing use two cores. The ring bounds the
/// memory and how far hashing may lag: update() waits while it is full, and
/// finish() waits for at most one ring's worth (about 2.5 ms for 4 MiB).
class BackgroundHasher final : public FileHasher {
 public:
  static constexpr std::size_t default_ring_bytes = 4u << 20;

  explicit BackgroundHasher(std::size_t ring_bytes = default_ring_bytes);
  ~BackgroundHasher() override;
  BackgroundHasher(const BackgroundHasher&) = delete;
  BackgroundHasher& operator=(const BackgroundHasher&) = delete;

  void update(std::span<const std::byte> data) override;
  Digest finish() override;

 private:
  void run();

  std::size_t ring_size_;
  std::unique_ptr<std::byte[]> ring_;  // not zeroed: pages are touched as used
  Sha256 sha_;                         // only the worker touches it until finish() has waited
  std::mutex mutex_;
  std::condition_variable changed_;
  // Running totals: ring_[written_ % ring_size_] is the next byte to fill,
  // ring_[hashed_ % ring_size_] the next to hash.
  std::size_t written_ = 0;
  std::size_t hashed_ = 0;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace tessenger::transfer
