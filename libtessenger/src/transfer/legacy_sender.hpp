#pragma once

// Sends one file in the original client's datagram format (legacy_format.hpp)
// to a receiver that never answers: paced, because loss cannot be detected
// and the original receiver reads one datagram at a time. The same
// interface as Sender, so FileTransfer drives both alike.

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>

#include <tessenger/transfer_engine.hpp>

namespace tessenger::transfer {

class LegacySender {
 public:
  /// `header`: legacy::header(sender, file name). `bytes_per_second`: the pace.
  LegacySender(std::string header, ChunkSource& source, std::uint64_t size,
               std::uint64_t bytes_per_second, TimePoint now);

  /// The original receiver sends nothing back.
  void on_datagram(std::span<std::byte>, TimePoint) {}
  /// The header once, then the file in chunks of at most 1,024 bytes, then
  /// `end`. The original sends the header before every chunk and its
  /// receiver writes each copy into the file, so it goes once. A last chunk
  /// that reads `end` goes as two datagrams, which the receiver would take
  /// for the end mark.
  std::size_t poll_send(std::span<std::byte> out, TimePoint now);
  TimePoint next_expiry() const;
  void on_timeout(TimePoint) {}
  /// Stops sending; the receiver cannot be told.
  void cancel(TimePoint now);

  State state() const { return state_; }
  bool closed(TimePoint) const { return state_ != State::active; }
  std::error_code error() const { return error_; }
  std::string error_reason() const { return reason_; }
  Progress progress() const { return {offset_, size_}; }
  const Stats& stats() const { return stats_; }

 private:
  enum class Step { header, chunks, end };
  void fail(errc code, std::string why);

  std::string header_;
  ChunkSource& source_;
  std::uint64_t size_;
  std::uint64_t offset_ = 0;
  Step step_ = Step::header;
  // Pacing: a datagram may leave once next_send_ - burst_ <= now; each
  // pushes next_send_ on by the time its size takes at the rate.
  std::chrono::nanoseconds cost(std::uint64_t bytes) const;
  std::uint64_t rate_;
  std::chrono::nanoseconds burst_;
  TimePoint next_send_;
  State state_ = State::active;
  std::error_code error_;
  std::string reason_;
  Stats stats_;
};

}  // namespace tessenger::transfer
