#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <tessenger/protocol.hpp>

namespace tessenger::app {

/// Columns `text` (UTF-8) takes on a terminal; SGR sequences take none.
std::size_t display_width(std::string_view text);
/// `text` cut to at most `columns` columns (whole characters, SGR kept).
std::string fit_width(std::string_view text, std::size_t columns);

/// A size for a person: "512 B", "1.5 kB", "52 MB", "3.2 GB" (powers of 1000).
std::string human_size(std::uint64_t bytes);
/// A duration for a person: "0.4 s", "12 s", "3 min 5 s", "2 h 10 min".
std::string human_duration(std::chrono::duration<double> duration);
/// A rate: human_size per second ("11 MB/s").
std::string human_rate(double bytes_per_second);

/// Colours and styles for the terminal, or none at all (NO_COLOR,
/// --no-color, stdout not a terminal). Every function takes text that is
/// already safe for the terminal.
class Palette {
 public:
  explicit Palette(bool enabled) : enabled_(enabled) {}
  bool enabled() const noexcept { return enabled_; }

  /// A user's name in a colour of its own, the same in every session.
  std::string user(std::string_view name) const;
  std::string error(std::string_view text) const;
  std::string dim(std::string_view text) const;
  std::string bold(std::string_view text) const;
  /// For the prompt: the SGR sequences between '\1' pairs (libedit's
  /// markers for characters that take no room).
  std::string prompt(std::string_view name) const;

 private:
  std::string sgr(std::string_view code, std::string_view text) const;
  bool enabled_;
};

/// Short timestamps for the terminal: "HH:MM" in local time, preceded by a
/// line with the full date when the day differs from the last one shown.
class ShortTime {
 public:
  /// The date line to print first ("-- Monday 7 December 2026 --"), or
  /// empty when the day is the same as the last call's.
  std::string day_change(protocol::Timestamp timestamp);
  static std::string short_time(protocol::Timestamp timestamp);

 private:
  int last_day_ = -1;  // days since the epoch, local time
};

/// A transfer's status for the status line: "sending clip.mp4 to bob 12
/// MB/50 MB 24% 4.1 MB/s ETA 9 s" (`upload`) or "receiving ... from ...";
/// plain ASCII, so that it reads the same in any locale.
std::string transfer_status(bool upload, std::string_view file, std::string_view peer,
                            std::uint64_t done, std::uint64_t total, double bytes_per_second);

}  // namespace tessenger::app
