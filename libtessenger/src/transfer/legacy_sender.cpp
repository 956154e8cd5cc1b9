#include "transfer/legacy_sender.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "transfer/legacy_format.hpp"

namespace tessenger::transfer {

namespace {

// Datagrams that may leave back to back: a receiver on the same machine
// holds far more than this in its socket buffer.
constexpr std::uint64_t burst_datagrams = 8;

}  // namespace

LegacySender::LegacySender(std::string header, ChunkSource& source, std::uint64_t size,
                           std::uint64_t bytes_per_second, TimePoint now)
    : header_(std::move(header)),
      source_(source),
      size_(size),
      rate_(std::max<std::uint64_t>(bytes_per_second, 1)),
      burst_(cost(burst_datagrams * legacy::max_datagram)),
      next_send_(now) {}

std::chrono::nanoseconds LegacySender::cost(std::uint64_t bytes) const {
  return std::chrono::nanoseconds(bytes * 1'000'000'000 / rate_);
}

std::size_t LegacySender::poll_send(std::span<std::byte> out, TimePoint now) {
  if (state_ != State::active || next_send_ - burst_ > now) return 0;
  std::size_t n = 0;
  switch (step_) {
    case Step::header:
      n = header_.size();
      std::memcpy(out.data(), header_.data(), n);
      step_ = size_ == 0 ? Step::end : Step::chunks;
      break;
    case Step::chunks: {
      n = static_cast<std::size_t>(std::min<std::uint64_t>(legacy::max_datagram, size_ - offset_));
      if (const auto ec = source_.read(offset_, out.first(n))) {
        fail(errc::disk_error, "cannot read the file: " + ec.message());
        return 0;
      }
      if (legacy::equals(out.first(n), legacy::end_mark)) n = 1;
      offset_ += n;
      stats_.data_bytes_sent += n;
      if (offset_ == size_) step_ = Step::end;
      break;
    }
    case Step::end:
      n = legacy::end_mark.size();
      std::memcpy(out.data(), legacy::end_mark.data(), n);
      state_ = State::done;
      break;
  }
  next_send_ = std::max(next_send_, now - burst_) + cost(n);
  ++stats_.datagrams_sent;
  return n;
}

TimePoint LegacySender::next_expiry() const {
  return state_ == State::active ? next_send_ - burst_ : TimePoint::max();
}

void LegacySender::cancel(TimePoint) {
  if (state_ == State::active) fail(errc::transfer_aborted, "the transfer was cancelled");
}

void LegacySender::fail(errc code, std::string why) {
  state_ = State::failed;
  error_ = make_error_code(code);
  reason_ = std::move(why);
}

}  // namespace tessenger::transfer
