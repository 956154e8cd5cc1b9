#pragma once

// Keeps a flood of one kind of event from flooding the log: each kind (the
// format string of its line) gets a few lines per window; the rest are
// counted and summarised in one line when the window has passed, e.g.
// `192.0.2.7: login as h1 refused: ... (and 7,312 more like it in the last 10 s)`.
// Time is passed in; single-threaded, like its owner.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include <tessenger/server_types.hpp>

namespace tessenger::core {

class LogLimiter {
 public:
  using Time = std::chrono::steady_clock::time_point;
  static constexpr std::chrono::seconds window{10};
  static constexpr std::uint32_t lines_per_window = 5;

  explicit LogLimiter(LogSink sink) : sink_(std::move(sink)) {}

  bool enabled(LogLevel level) const noexcept { return sink_.enabled(level); }

  /// Writes `text` unless its kind has had its lines for this window.
  void write(const void* kind, LogLevel level, std::string_view text, Time now) {
    if (!sink_.enabled(level)) return;
    Kind& entry = kinds_[kind];
    if (now - entry.since >= window) {
      summarise(entry);
      entry.since = now;
      entry.written = 0;
    }
    if (entry.written == lines_per_window) {
      if (entry.suppressed++ == 0) entry.example.assign(text);
      entry.level = level;
      return;
    }
    ++entry.written;
    sink_.write(level, text);
  }

  /// Writes the summary of every kind whose window has passed.
  void flush(Time now) {
    for (auto& [kind, entry] : kinds_) {
      if (entry.suppressed != 0 && now - entry.since >= window) summarise(entry);
    }
  }

  /// When flush() next has something to write.
  std::optional<Time> next_summary() const {
    std::optional<Time> next;
    for (const auto& [kind, entry] : kinds_) {
      if (entry.suppressed != 0 && (!next || entry.since + window < *next)) {
        next = entry.since + window;
      }
    }
    return next;
  }

 private:
  struct Kind {
    Time since{};
    std::uint32_t written = 0;
    std::uint64_t suppressed = 0;
    std::string example;  // the first line left out
    LogLevel level = LogLevel::info;
  };

  void summarise(Kind& entry) {
    if (entry.suppressed == 0) return;
    sink_.write(entry.level, fmt::format("{} (and {} more like it in the last {} s)", entry.example,
                                         entry.suppressed - 1, window.count()));
    entry.suppressed = 0;
    entry.example.clear();
  }

  LogSink sink_;
  std::unordered_map<const void*, Kind> kinds_;  // at most one per line in the code
};

}  // namespace tessenger::core
