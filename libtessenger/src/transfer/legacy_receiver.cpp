#include "transfer/legacy_receiver.hpp"

#include <utility>

#include "transfer/engine_common.hpp"
#include "transfer/legacy_format.hpp"

namespace tessenger::transfer {

LegacyReceiver::LegacyReceiver(std::string header, std::string sender, ChunkSink& sink,
                               std::uint64_t max_size, std::chrono::milliseconds idle_timeout,
                               TimePoint now)
    : header_(std::move(header)),
      sender_(std::move(sender)),
      sink_(sink),
      max_size_(max_size),
      idle_timeout_(idle_timeout),
      last_datagram_(now) {}

void LegacyReceiver::on_datagram(std::span<std::byte> datagram, TimePoint now) {
  if (state_ != State::active) return;
  last_datagram_ = now;
  ++stats_.datagrams_received;
  if (legacy::equals(datagram, header_)) {
    stats_.duplicate_bytes += datagram.size();
    return;
  }
  if (legacy::equals(datagram, legacy::end_mark)) {
    if (const auto ec = sink_.commit()) {
      fail(errc::disk_error, "cannot store the received file: " + ec.message());
      return;
    }
    state_ = State::done;
    return;
  }
  if (datagram.size() > max_size_ - bytes_) {
    fail(errc::transfer_too_large,
         "the file is larger than the limit of " + std::to_string(max_size_) + " bytes");
    return;
  }
  if (const auto ec = sink_.write(bytes_, datagram)) {
    fail(errc::disk_error, "cannot write the received file: " + ec.message());
    return;
  }
  bytes_ += datagram.size();
}

TimePoint LegacyReceiver::next_expiry() const {
  return state_ == State::active ? last_datagram_ + idle_timeout_ : TimePoint::max();
}

void LegacyReceiver::on_timeout(TimePoint now) {
  if (state_ != State::active || now < last_datagram_ + idle_timeout_) return;
  const auto quiet = seconds_text(idle_timeout_);
  if (stats_.datagrams_received == 0) {
    // The original sends nothing at all when it cannot open the file.
    fail(errc::transfer_timeout, "nothing arrived from " + sender_ + " within " + quiet);
    return;
  }
  fail(errc::transfer_timeout, sender_ + " stopped sending for " + quiet + " after " +
                                   std::to_string(bytes_) +
                                   " bytes, without the end mark; nothing was kept");
}

void LegacyReceiver::cancel(TimePoint) {
  if (state_ == State::active) fail(errc::transfer_aborted, "the transfer was cancelled");
}

void LegacyReceiver::fail(errc code, std::string why) {
  state_ = State::failed;
  error_ = make_error_code(code);
  reason_ = std::move(why);
}

}  // namespace tessenger::transfer
