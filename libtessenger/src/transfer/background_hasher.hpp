#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

#include "transfer/sha256.hpp"

namespace tessenger::transfer {

/// A FileHasher that hashes on a thread of its own: the caller only copies
/// into a ring, so receiving and hashing use two cores. The ring bounds the
/// memory and how far hashing may lag: update() waits while it is full, and
/// finish() waits for at most one ring's worth (about 2.5 ms for 4 MiB).
class BackgroundHasher final : public FileHasher {
 public:
  explicit BackgroundHasher(std::size_t ring_bytes = 4u << 20);
  ~BackgroundHasher() override;
  BackgroundHasher(const BackgroundHasher&) = delete;
  BackgroundHasher& operator=(const BackgroundHasher&) = delete;

  void update(std::span<const std::byte> data) override;
  Digest finish() override;

 private:
  void run();

  std::vector<std::byte> ring_;
  Sha256 sha_;  // only the worker touches it until finish() has waited
  std::mutex mutex_;
  std::condition_variable changed_;
  // Running totals: ring_[written_ % size] is the next byte to fill,
  // ring_[hashed_ % size] the next to hash.
  std::size_t written_ = 0;
  std::size_t hashed_ = 0;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace tessenger::transfer
