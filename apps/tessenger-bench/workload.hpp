#pragma once

// Pieces shared by the message scenarios: stamped message texts, pre-encoded
// frames patched in place, and CPU accounting over the measured window.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tessenger/protocol.hpp>

#include "histogram.hpp"
#include "report.hpp"

namespace bench {

/// What every bench message carries at the start of its text, in hex so the
/// server accepts it as ordinary text: send time (16 digits, ns of the
/// monotonic clock), sequence number within its sender (8), sender index (4).
struct Stamp {
  std::uint64_t sent_ns = 0;
  std::uint32_t seq = 0;
  std::uint16_t sender = 0;
};

/// Text bytes a message needs to carry its stamp.
inline constexpr std::size_t min_payload = 28;

/// A text of `payload` bytes with room for a stamp.
std::string stamp_text(std::size_t payload);
std::optional<Stamp> read_stamp(std::string_view text) noexcept;

/// One encoded request frame, appended many times with a new request id and
/// stamp each time, without re-encoding.
class FrameTemplate {
 public:
  /// `message` is a DirectSend or a GroupSend whose text came from stamp_text().
  explicit FrameTemplate(const tessenger::protocol::Message& message);
  void append(std::vector<std::byte>& out, std::uint32_t request_id, const Stamp& stamp) const;

 private:
  std::vector<std::byte> bytes_;
  std::size_t text_at_ = 0;
};

/// CPU used by the server (when its pid is known) and by the bench between
/// start() and stop(), against wall time.
class CpuMeter {
 public:
  explicit CpuMeter(pid_t server) : server_(server) {}
  void start();
  void stop();
  double wall_seconds() const noexcept;
  /// NaN when the server's pid is unknown.
  double server_seconds() const;
  double bench_seconds() const;
  /// Adds server_cpu_percent, bench_cpu_percent and duration_s.
  void report(Report& report) const;

 private:
  pid_t server_;
  std::uint64_t wall_start_ = 0, wall_end_ = 0;
  std::chrono::nanoseconds server_start_{}, server_end_{}, bench_start_{}, bench_end_{};
};

/// The frames that log in synthetic user `index`, sent back to back: the
/// server answers them in order (HelloOk, then LoginOk).
void append_login(std::vector<std::byte>& out, std::size_t index);

/// A histogram's percentiles in microseconds.
Latency latency_of(const Histogram& histogram);

}  // namespace bench
