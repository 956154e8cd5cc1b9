#include "transfer/background_hasher.hpp"

#include <algorithm>
#include <cstring>

namespace tessenger::transfer {

namespace {

// Bytes hashed between two looks at the ring: frees space for the writer
// often without taking the lock per block.
constexpr std::size_t hash_slice = 256 * 1024;

}  // namespace

BackgroundHasher::BackgroundHasher(std::size_t ring_bytes)
    : ring_size_(std::max(ring_bytes, hash_slice)),
      ring_(new std::byte[ring_size_]),
      worker_([this] { run(); }) {}

BackgroundHasher::~BackgroundHasher() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  worker_.join();
}

void BackgroundHasher::update(std::span<const std::byte> data) {
  while (!data.empty()) {
    std::size_t start = 0;
    std::size_t room = 0;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return written_ - hashed_ < ring_size_; });
      start = written_ % ring_size_;
      room = std::min(ring_size_ - (written_ - hashed_), ring_size_ - start);
    }
    // The worker never reads past written_, so this part is ours to fill.
    const auto n = std::min(room, data.size());
    std::memcpy(ring_.get() + start, data.data(), n);
    {
      const std::lock_guard lock(mutex_);
      written_ += n;
    }
    changed_.notify_all();
    data = data.subspan(n);
  }
}

Digest BackgroundHasher::finish() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return hashed_ == written_; });
  return sha_.finish();
}

void BackgroundHasher::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || hashed_ != written_; });
    if (stopping_) return;
    const auto start = hashed_ % ring_size_;
    const auto n = std::min({written_ - hashed_, ring_size_ - start, hash_slice});
    lock.unlock();
    sha_.update(std::span(ring_.get() + start, n));
    lock.lock();
    hashed_ += n;
    changed_.notify_all();
  }
}

}  // namespace tessenger::transfer
