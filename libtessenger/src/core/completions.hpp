#pragma once

// Brings asynchronous results (a Store's, a Presence's) back to the hub's
// thread in the order their operations were issued. A result may arrive on
// any thread, even inside the call that started the operation; it is queued
// and run later from a task posted through `Post`, so a continuation never
// runs inside the hub's own call stack. Several results that arrive between
// two passes of the event loop share one posted task.
//
// Each operation costs one allocation: a node holding the continuation and,
// once it arrives, the result. The callback handed to the store holds only
// the node's address, small enough for std::function to keep without
// allocating. So a callback must be called exactly once (the Store contract).

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
  ~Completions() { state_->close(); }
  Completions(const Completions&) = delete;
  Completions& operator=(const Completions&) = delete;

  /// A callback for an asynchronous operation: calling it with the result,
  /// from any thread, runs `continuation(result)` on the hub's thread after
  /// every continuation wrapped before it.
  template <class T, class Continuation>
  std::function<void(T)> wrap(Continuation continuation) {
    auto* node = new Result<T, Continuation>(state_, state_->issued++, std::move(continuation));
    return [node](T result) {
      node->result.emplace(std::move(result));
      if (const auto state = node->state.lock()) {
        state->arrive(node);
      } else {
        delete node;  // the hub is gone
      }
    };
  }

  /// Operations issued whose continuation has not run yet.
  std::uint64_t pending() const noexcept { return state_->issued - state_->delivered; }

 private:
  struct State;
  struct Node {
    Node(std::weak_ptr<State> s, std::uint64_t n) : state(std::move(s)), seq(n) {}
    virtual ~Node() = default;
    virtual void run() = 0;
    std::weak_ptr<State> state;  // weak: queued nodes must not keep their queue alive
    std::uint64_t seq;
  };
  template <class T, class Continuation>
  struct Result final : Node {
    Result(std::weak_ptr<State> s, std::uint64_t n, Continuation c)
        : Node(std::move(s), n), continuation(std::move(c)) {}
    void run() override { continuation(std::move(*result)); }
    Continuation continuation;
    std::optional<T> result;
  };

  struct State : std::enable_shared_from_this<State> {
    explicit State(Post p) : post(std::move(p)) {}
    ~State() {
      for (auto* node : arrived)
        delete node;
      for (auto* node : ready)
        delete node;
    }

    void arrive(Node* node) {
      {
        std::lock_guard lock(mutex);
        if (closed) {
          delete node;
          return;
        }
        arrived.push_back(node);
        if (drain_posted) return;
        drain_posted = true;
      }
      post([self = shared_from_this()] { self->drain(); });
    }

    void close() {
      std::lock_guard lock(mutex);
      closed = true;
    }

    // On the hub's thread only.
    void drain() {
      {
        std::lock_guard lock(mutex);
        if (closed) return;
        batch.swap(arrived);
        drain_posted = false;
      }
      for (auto* node : batch) {
        const auto slot = node->seq - delivered;
        if (ready.size() <= slot) ready.resize(slot + 1, nullptr);
        ready[slot] = node;
      }
      batch.clear();
      while (!ready.empty() && ready.front() != nullptr) {
        std::unique_ptr<Node> node(ready.front());
        ready.pop_front();
        ++delivered;
        node->run();
      }
    }

    Post post;
    std::mutex mutex;
    std::vector<Node*> arrived;  // under mutex
    bool drain_posted = false;   // under mutex
    bool closed = false;         // under mutex
    // The hub's thread only:
    std::vector<Node*> batch;
    std::uint64_t issued = 0;
    std::uint64_t delivered = 0;
    std::deque<Node*> ready;  // by seq - delivered; null: not arrived yet
  };
  std::shared_ptr<State> state_;
};

}  // namespace tessenger::core
