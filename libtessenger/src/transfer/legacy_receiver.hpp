#pragma once

// Receives one file in the original client's datagram format
// (legacy_format.hpp) into a sink, with nothing to verify it by: the end
// mark commits whatever arrived. The same interface as Receiver, so
// FileTransfer drives both alike; it has checked the source address.

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>

#include <tessenger/transfer_engine.hpp>

namespace tessenger::transfer {

class LegacyReceiver {
 public:
  /// `header`: legacy::header(sender, file name), dropped wherever it comes
  /// (the original sends it before every chunk). `sender` names the peer in
  /// reasons. Fails after `idle_timeout` without a datagram, or once more
  /// than `max_size` bytes arrived.
  LegacyReceiver(std::string header, std::string sender, ChunkSink& sink, std::uint64_t max_size,
                 std::chrono::milliseconds idle_timeout, TimePoint now);

  void on_datagram(std::span<std::byte> datagram, TimePoint now);
  /// The original sender hears nothing.
  std::size_t poll_send(std::span<std::byte>, TimePoint) { return 0; }
  TimePoint next_expiry() const;
  void on_timeout(TimePoint now);
  void cancel(TimePoint now);

  State state() const { return state_; }
  bool closed(TimePoint) const { return state_ != State::active; }
  std::error_code error() const { return error_; }
  std::string error_reason() const { return reason_; }
  /// `total` is unknown (the format has no size): it is the bytes held.
  Progress progress() const { return {bytes_, bytes_}; }
  const Stats& stats() const { return stats_; }

 private:
  void fail(errc code, std::string why);

  std::string header_;
  std::string sender_;
  ChunkSink& sink_;
  std::uint64_t max_size_;
  std::chrono::milliseconds idle_timeout_;
  TimePoint last_datagram_;
  std::uint64_t bytes_ = 0;
  State state_ = State::active;
  std::error_code error_;
  std::string reason_;
  Stats stats_;
};

}  // namespace tessenger::transfer
