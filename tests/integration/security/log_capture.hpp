#pragma once

// Collects what a Server logs (on its own thread) so a test can wait, with a
// deadline, for a line to appear.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <tessenger/server_types.hpp>

namespace tessenger::testing {

class LogCapture {
 public:
  /// A sink that records into this capture; the capture must outlive the server.
  LogSink sink(LogLevel min_level = LogLevel::info) {
    return {min_level, [state = state_](LogLevel, std::string_view text) {
              {
                std::lock_guard lock(state->mutex);
                state->lines.emplace_back(text);
              }
              state->changed.notify_all();
            }};
  }

  /// True once a line containing `part` has been logged, false at the deadline.
  bool wait_for(std::string_view part,
                std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
    std::unique_lock lock(state_->mutex);
    return state_->changed.wait_for(lock, timeout, [&] { return find(part) != 0; });
  }
  /// How many lines contain `part` so far.
  std::size_t count(std::string_view part) const {
    std::lock_guard lock(state_->mutex);
    return find(part);
  }

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<std::string> lines;
  };
  std::size_t find(std::string_view part) const {
    std::size_t n = 0;
    for (const auto& line : state_->lines) {
      if (line.find(part) != std::string::npos) ++n;
    }
    return n;
  }

  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace tessenger::testing
