#pragma once

// The lifetime rule every public class keeps (Server, Client, FileTransfer):
// once its destructor has returned, none of its user callbacks runs any more,
// even on an io_context the caller owns and runs on other threads; no
// callback runs while the library holds a lock; and a callback may destroy
// the object it was called from.
//
// Each user callback goes through enter(); the destructor calls close().
// close() waits for callbacks running on other threads to return (never for
// one on its own thread: that is a callback destroying its object) and makes
// every later enter() refuse. The mutex guards only two counters, never a
// callback.

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace tessenger::net {

class CallbackGate {
 public:
  /// Calls `callback(args...)` unless the gate is closed. Returns whether it ran.
  template <class Callback, class... Args>
  bool run(Callback&& callback, Args&&... args) {
    if (!enter()) return false;
    struct Leave {
      CallbackGate& gate;
      ~Leave() { gate.leave(); }
    } leave{*this};
    std::forward<Callback>(callback)(std::forward<Args>(args)...);
    return true;
  }

  /// From now on run() calls nothing. Returns once no callback runs on
  /// another thread. Idempotent.
  void close() {
    const auto self = std::this_thread::get_id();
    std::unique_lock lock(mutex_);
    closed_ = true;
    idle_.wait(lock, [&] {
      return std::all_of(running_.begin(), running_.end(), [&](auto id) { return id == self; });
    });
  }

  bool closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

 private:
  bool enter() {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    running_.push_back(std::this_thread::get_id());
    return true;
  }
  void leave() {
    {
      std::lock_guard lock(mutex_);
      running_.erase(std::find(running_.begin(), running_.end(), std::this_thread::get_id()));
    }
    idle_.notify_all();
  }

  mutable std::mutex mutex_;
  std::condition_variable idle_;
  std::vector<std::thread::id> running_;  // one entry per callback running now
  bool closed_ = false;
};

}  // namespace tessenger::net
