#include "transfer/background_hasher.hpp"

#include <algorithm>
#include <cstring>

#include <pthread.h>

namespace tessenger::transfer {

namespace {

// Bytes hashed between two looks at the queue: frees ring space for the
// writer often without taking the lock per block.
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

// Called with mutex_ held. Consecutive pieces of one kind grow the last
// segment, so a stream of datagrams costs no allocation.
void BackgroundHasher::enqueue(const std::byte* stable, std::size_t size) {
  if (!queue_.empty()) {
    auto& last = queue_.back();
    if (stable == nullptr ? last.stable == nullptr
                          : last.stable && last.stable + last.size == stable) {
      last.size += size;
      return;
    }
  }
  queue_.push_back({stable, size});
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
      enqueue(nullptr, n);
    }
    changed_.notify_all();
    data = data.subspan(n);
  }
}

void BackgroundHasher::update_stable(std::span<const std::byte> data) {
  if (data.empty()) return;
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return stable_queued_ < 4 * ring_size_; });
    stable_queued_ += data.size();
    enqueue(data.data(), data.size());
  }
  changed_.notify_all();
}

Digest BackgroundHasher::finish() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return queue_.empty(); });
  return sha_.finish();
}

void BackgroundHasher::run() {
  // Named so that top and perf tell it from the embedder's threads.
  pthread_setname_np(pthread_self(), "tsg-hasher");
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    const std::byte* from = queue_.front().stable;
    auto size = std::min(queue_.front().size, hash_slice);
    if (from == nullptr) {
      const auto start = hashed_ % ring_size_;
      size = std::min(size, ring_size_ - start);
      from = ring_.get() + start;
    }
    lock.unlock();
    sha_.update(std::span(from, size));
    lock.lock();
    auto& front = queue_.front();
    front.size -= size;
    if (front.stable) {
      front.stable += size;
      stable_queued_ -= size;
    } else {
      hashed_ += size;
    }
    if (front.size == 0) queue_.pop_front();
    changed_.notify_all();
  }
}

}  // namespace tessenger::transfer
