#include "transfer/congestion.hpp"

#include <algorithm>

namespace tessenger::transfer {

void RttEstimator::on_sample(nanoseconds latest, nanoseconds ack_delay) {
  latest_ = std::max(latest, nanoseconds{1});
  if (!has_sample_) {
    has_sample_ = true;
    min_ = latest_;
    smoothed_ = latest_;
    rttvar_ = latest_ / 2;
    return;
  }
  min_ = std::min(min_, latest_);
  // The ACK delay is only subtracted when that does not go below min_rtt.
  nanoseconds adjusted = latest_;
  const auto delay = std::min(ack_delay, max_ack_delay);
  if (latest_ >= min_ + delay) adjusted = latest_ - delay;
  const auto diff = smoothed_ > adjusted ? smoothed_ - adjusted : adjusted - smoothed_;
  rttvar_ = (3 * rttvar_ + diff) / 4;
  smoothed_ = (7 * smoothed_ + adjusted) / 8;
}

nanoseconds RttEstimator::pto() const {
  return smoothed_ + std::max(4 * rttvar_, timer_granularity) + max_ack_delay;
}

nanoseconds RttEstimator::loss_delay() const {
  const auto base = std::max(smoothed_, latest_);
  return std::max(base + base / 8, timer_granularity);
}

NewReno::NewReno(std::uint64_t max_datagram, std::uint64_t max_window)
    : max_datagram_(max_datagram),
      max_window_(std::max(max_window, 2 * max_datagram)),
      cwnd_(std::min(10 * max_datagram, std::max<std::uint64_t>(14'720, 2 * max_datagram))) {}

void NewReno::on_ack(std::uint64_t bytes, TimePoint sent, bool limited) {
  if (in_recovery_ever_ && sent <= recovery_start_) return;
  if (!limited) return;
  if (cwnd_ < ssthresh_) {
    cwnd_ += bytes;
  } else {
    ca_acked_ += bytes;
    if (ca_acked_ >= cwnd_) {
      ca_acked_ -= cwnd_;
      cwnd_ += max_datagram_;
    }
  }
  cwnd_ = std::min(cwnd_, max_window_);
}

void NewReno::on_congestion_event(TimePoint sent, TimePoint now) {
  // One reduction per round trip: losses of packets sent before the current
  // recovery period started belong to the same event.
  if (in_recovery_ever_ && sent <= recovery_start_) return;
  in_recovery_ever_ = true;
  recovery_start_ = now;
  ssthresh_ = std::max(cwnd_ / 2, 2 * max_datagram_);
  cwnd_ = ssthresh_;
  ca_acked_ = 0;
}

std::uint64_t Pacer::capacity(std::uint64_t cwnd) const {
  // A burst of up to 10 datagrams, never more than a quarter of the window
  // once the window is large.
  return std::max<std::uint64_t>(10 * max_datagram_, cwnd / 4);
}

void Pacer::refill(std::uint64_t cwnd, nanoseconds srtt, TimePoint now) {
  const auto cap = static_cast<double>(capacity(cwnd));
  if (!started_) {
    started_ = true;
    tokens_ = cap;
    last_ = now;
    return;
  }
  if (now > last_) {
    const double rate = 1.25 * static_cast<double>(cwnd) /
                        static_cast<double>(std::max<std::int64_t>(srtt.count(), 1));
    tokens_ = std::min(cap, tokens_ + rate * static_cast<double>((now - last_).count()));
    last_ = now;
  }
}

TimePoint Pacer::next_send(std::uint64_t bytes, std::uint64_t cwnd, nanoseconds srtt,
                           TimePoint now) {
  refill(cwnd, srtt, now);
  const auto need = static_cast<double>(bytes);
  if (tokens_ >= need) return now;
  const double rate = 1.25 * static_cast<double>(cwnd) /
                      static_cast<double>(std::max<std::int64_t>(srtt.count(), 1));
  const auto wait = nanoseconds(static_cast<std::int64_t>((need - tokens_) / rate) + 1);
  // A wait shorter than a timer can measure costs more than the burst it
  // avoids: send now and let the bucket go into debt (at most one
  // granularity's worth of the rate).
  if (wait < timer_granularity) return now;
  return now + wait;
}

void Pacer::on_sent(std::uint64_t bytes, std::uint64_t cwnd, nanoseconds srtt, TimePoint now) {
  refill(cwnd, srtt, now);
  tokens_ -= static_cast<double>(bytes);
}

}  // namespace tessenger::transfer
