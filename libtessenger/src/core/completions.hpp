#pragma once

// Brings asynchronous results (a Store's, a Presence's) back to the hub's
// thread in the order their operations were issued. A result may arrive on
// any thread, even inside the call that started the operation; it is queued
// and run later from a task posted through `Post`, so a continuation never
// runs inside the hub's own call stack. Several results that arrive between
// two passes of the event loop share one posted task.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace tessenger::core {

class Completions {
 public:
  /// Runs a task later on the hub's thread (the adapter: asio::post to its strand).
  using Post = std::function<void(std::function<void()>)>;

  explicit Completions(Post post) : state_(std::make_shared<State>(std::move(post))) {}
  ~Completions() {
    std::lock_guard lock(state_->mutex);
    state_->closed = true;
  }
  Completions(const Completions&) = delete;
  Completions& operator=(const Completions&) = delete;

  /// A callback for an asynchronous operation: calling it with the result,
  /// from any thread, runs `continuation(result)` on the hub's thread after
  /// every continuation wrapped before it.
  template <class T, class Continuation>
  std::function<void(T)> wrap(Continuation continuation) {
    const auto seq = state_->issued++;
    return [state = state_, seq, continuation = std::move(continuation)](T result) mutable {
      state->arrive(seq,
                    [continuation = std::move(continuation), result = std::move(result)]() mutable {
                      continuation(std::move(result));
                    });
    };
  }

  /// Operations issued whose continuation has not run yet.
  std::uint64_t pending() const noexcept { return state_->issued - state_->delivered; }

 private:
  struct State : std::enable_shared_from_this<State> {
    explicit State(Post p) : post(std::move(p)) {}

    void arrive(std::uint64_t seq, std::function<void()> task) {
      {
        std::lock_guard lock(mutex);
        if (closed) return;
        arrived.emplace_back(seq, std::move(task));
        if (drain_posted) return;
        drain_posted = true;
      }
      post([self = shared_from_this()] { self->drain(); });
    }

    // On the hub's thread only.
    void drain() {
      std::vector<std::pair<std::uint64_t, std::function<void()>>> batch;
      {
        std::lock_guard lock(mutex);
        if (closed) return;
        batch.swap(arrived);
        drain_posted = false;
      }
      for (auto& [seq, task] : batch) {
        const auto slot = seq - delivered;
        if (ready.size() <= slot) ready.resize(slot + 1);
        ready[slot] = std::move(task);
      }
      while (!ready.empty() && ready.front()) {
        auto task = std::move(*ready.front());
        ready.pop_front();
        ++delivered;
        task();
      }
    }

    Post post;
    std::mutex mutex;
    std::vector<std::pair<std::uint64_t, std::function<void()>>> arrived;  // under mutex
    bool drain_posted = false;                                             // under mutex
    bool closed = false;                                                   // under mutex
    // The hub's thread only:
    std::uint64_t issued = 0;
    std::uint64_t delivered = 0;
    std::deque<std::optional<std::function<void()>>> ready;  // by seq - delivered
  };
  std::shared_ptr<State> state_;
};

}  // namespace tessenger::core
