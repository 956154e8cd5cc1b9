#include <algorithm>
#include <deque>
#include <unordered_map>

#include <tessenger/transfer_engine.hpp>

#include "transfer/aead.hpp"
#include "transfer/congestion.hpp"
#include "transfer/engine_common.hpp"
#include "transfer/gap_tracker.hpp"
#include "transfer/replay_window.hpp"
#include "transfer/wire.hpp"

namespace tessenger::transfer {

namespace {

constexpr TimePoint never = TimePoint::max();
// RFC 9002 §6.1.1: a packet this many numbers below one acknowledged is lost.
constexpr std::uint64_t packet_threshold = 3;
constexpr unsigned max_reorder_level = 4;
constexpr unsigned max_pto_backoff = 6;
// Before the receiver's first ACK states its window.
constexpr std::uint64_t initial_peer_window = 1ull << 20;
constexpr double loss_gain = 1.0 / 256;
// Above this share of datagrams lost, loss is congestion whatever the delay.
constexpr double congestion_loss_rate = 0.10;

}  // namespace

struct Sender::Impl {
  struct Sent {
    std::uint64_t pn;
    std::uint64_t offset;
    std::uint32_t len;    // file bytes; 0 for a ping
    std::uint32_t bytes;  // whole datagram
    TimePoint time;
    bool in_flight;
    bool after_loss;  // resent because declared lost
  };

  Impl(const TransferParams& p, ChunkSource& src, const Config& cfg, TimePoint now)
      : params(p),
        source(src),
        config(cfg),
        chunk(std::clamp<std::size_t>(cfg.chunk_size, 1, max_chunk_size)),
        max_datagram(chunk + data_overhead),
        aead(p.key),
        cc(max_datagram, max_datagram * std::max<std::size_t>(cfg.max_inflight, 2)),
        pacer(max_datagram),
        peer_max_offset(initial_peer_window),
        ping_needed(p.size == 0),
        last_peer_activity(now) {}

  TransferParams params;
  ChunkSource& source;
  Config config;
  std::size_t chunk;
  std::uint64_t max_datagram;
  Aead aead;
  RttEstimator rtt;
  NewReno cc;
  Pacer pacer;
  ReplayWindow replay;
  GapTracker acked;
  std::vector<ByteRange> scratch;
  wire::Ack ack;
  Stats stats;

  State state = State::active;
  std::error_code error;
  std::string reason;

  std::deque<Sent> sent;  // every DATA by packet number, oldest unresolved first
  std::unordered_map<std::uint64_t, std::uint64_t> inflight_by_offset;  // newest copy
  std::deque<std::uint64_t> retransmit;
  std::uint64_t next_pn = 0;
  std::uint64_t next_offset = 0;  // first offset never sent
  std::uint64_t peer_max_offset;
  std::uint64_t bytes_in_flight = 0;
  std::uint64_t largest_acked = 0;
  bool any_acked = false;
  bool cwnd_blocked = false;
  TimePoint loss_time = never;
  TimePoint last_ack_eliciting = never;
  TimePoint pacer_wait = never;
  unsigned pto_count = 0;
  unsigned reorder_level = 0;
  double loss_rate = 0;  // moving average over about the last 256 datagrams
  int probes_pending = 0;
  bool ping_needed;
  TimePoint last_peer_activity;
  bool abort_pending = false;
  errc abort_code = errc::transfer_aborted;
  TimePoint close_at = never;
  bool drained = false;  // close_at has passed: no timer left

  std::uint64_t chunk_len(std::uint64_t offset) const {
    return std::min<std::uint64_t>(chunk, params.size - offset);
  }

  Sent* find(std::uint64_t pn) {
    if (sent.empty() || pn < sent.front().pn) return nullptr;
    const auto i = pn - sent.front().pn;
    return i < sent.size() ? &sent[static_cast<std::size_t>(i)] : nullptr;
  }

  bool all_acked() const { return acked.contiguous() >= params.size; }

  void fail(errc code, std::string why, bool tell_peer, TimePoint close) {
    if (state != State::active) return;
    state = State::failed;
    error = make_error_code(code);
    reason = std::move(why);
    abort_pending = tell_peer;
    abort_code = code;
    close_at = close;
    sent.clear();
    inflight_by_offset.clear();
    retransmit.clear();
    bytes_in_flight = 0;
  }

  TimePoint pto_deadline() const {
    if (last_ack_eliciting == never) return never;
    if (bytes_in_flight == 0 && !all_acked()) return never;
    return last_ack_eliciting + rtt.pto() * (1u << std::min(pto_count, max_pto_backoff));
  }

  TimePoint idle_deadline() const { return last_peer_activity + config.idle_timeout; }

  void resolve(Sent& s) {
    if (!s.in_flight) return;
    s.in_flight = false;
    bytes_in_flight -= s.bytes;
  }

  void on_acked(Sent& s, bool limited) {
    if (!s.in_flight) return;
    resolve(s);
    loss_rate -= loss_rate * loss_gain;
    cc.on_ack(s.bytes, s.time, limited);
  }

  // Loss is taken as congestion when the path shows it: queueing delay
  // above min RTT, or a loss rate no random drop pattern of a sane path has.
  // Isolated random loss (radio, a lossy link) then costs a resend, not half
  // the window.
  bool congestion_signal() const {
    if (!rtt.has_sample()) return true;
    const auto queueing = std::max(rtt.min() / 2, 4 * timer_granularity);
    return rtt.latest() > rtt.min() + queueing || loss_rate > congestion_loss_rate;
  }

  void ack_chunk(std::uint64_t offset, bool limited) {
    const auto it = inflight_by_offset.find(offset);
    if (it == inflight_by_offset.end()) return;
    Sent* s = find(it->second);
    // Acknowledged by an ACK sent before the resend could have arrived: the
    // first copy was only late, so the path reorders more than assumed.
    if (s && s->after_loss && ack.largest_pn < s->pn && reorder_level < max_reorder_level)
      ++reorder_level;
    inflight_by_offset.erase(it);
    if (s) on_acked(*s, limited);
  }

  void detect_lost(TimePoint now) {
    loss_time = never;
    // Once reordering has been seen, only time says a packet is lost (as
    // RACK does), and the time allowed grows with each wrong declaration.
    const auto delay = rtt.loss_delay() * (2 + reorder_level) / 2;
    const auto threshold = reorder_level == 0 ? packet_threshold : UINT64_MAX;
    TimePoint newest_lost{};
    bool lost_any = false;
    while (!sent.empty()) {
      Sent& s = sent.front();
      if (s.in_flight && s.len > 0 && acked.contains(s.offset, s.offset + s.len)) resolve(s);
      if (!s.in_flight) {
        sent.pop_front();
        continue;
      }
      if (!any_acked || s.pn > largest_acked) break;
      if (s.time + delay <= now || largest_acked - s.pn >= threshold) {
        resolve(s);
        ++stats.packets_lost;
        loss_rate += (1 - loss_rate) * loss_gain;
        lost_any = true;
        newest_lost = s.time;
        if (s.len > 0) {
          const auto it = inflight_by_offset.find(s.offset);
          // A newer copy (a probe) still in flight covers this chunk.
          if (it != inflight_by_offset.end() && it->second == s.pn) {
            inflight_by_offset.erase(it);
            retransmit.push_back(s.offset);
          }
        }
        sent.pop_front();
        continue;
      }
      loss_time = s.time + delay;
      break;
    }
    if (lost_any && congestion_signal()) cc.on_congestion_event(newest_lost, now);
  }

  void on_ack(TimePoint now) {
    if (ack.largest_pn >= next_pn || ack.contiguous > params.size ||
        (!ack.ranges.empty() && ack.ranges.front().end > params.size)) {
      ++stats.dropped_malformed;
      return;
    }
    peer_max_offset = std::max(peer_max_offset, ack.max_offset);
    const bool limited = cwnd_blocked || bytes_in_flight * 2 >= cc.window();
    cwnd_blocked = false;
    bool newly = false;

    scratch.clear();
    acked.add(0, ack.contiguous, &scratch);
    // A receiver that reported ever more scattered ranges could grow this
    // without bound; past the cap only its contiguous prefix counts.
    if (acked.range_count() < 4 * std::max<std::size_t>(config.max_inflight, 16)) {
      for (const auto& r : ack.ranges)
        acked.add(r.begin, r.end, &scratch);
    }
    for (const auto& piece : scratch) {
      for (std::uint64_t off = piece.begin / chunk * chunk; off < piece.end; off += chunk) {
        if (acked.contains(off, off + chunk_len(off))) ack_chunk(off, limited);
      }
      newly = true;
    }

    if (!any_acked || ack.largest_pn > largest_acked) {
      any_acked = true;
      largest_acked = ack.largest_pn;
      newly = true;
      if (Sent* s = find(ack.largest_pn)) {
        rtt.on_sample(now - s->time, std::chrono::microseconds(ack.ack_delay_us));
        // Pings and chunks whose ranges did not fit in this ACK.
        if (s->len == 0) on_acked(*s, limited);
      }
    }
    if (newly) pto_count = 0;
    detect_lost(now);
  }

  void on_datagram(std::span<std::byte> datagram, TimePoint now) {
    wire::Header h;
    if (wire::parse_header(datagram, h) != wire::Error::none || !h.from_receiver ||
        h.transfer_id != params.transfer_id) {
      ++stats.dropped_malformed;
      return;
    }
    if (!replay.fresh(h.packet_number)) {
      ++stats.dropped_replay;
      return;
    }
    std::span<std::byte> payload;
    if (!open_datagram(aead, datagram, true, h.packet_number, payload)) {
      ++stats.dropped_auth;
      return;
    }
    replay.mark(h.packet_number);
    ++stats.datagrams_received;
    last_peer_activity = now;

    if (h.type == wire::Type::abort) {
      if (payload.size() != wire::abort_size) {
        ++stats.dropped_malformed;
        return;
      }
      const auto code = abort_code_from_wire(wire::get_u16(payload.data()));
      fail(code, peer_abort_reason(true, code), false, now);
      return;
    }
    if (state == State::failed) {
      abort_pending = true;
      return;
    }
    if (state == State::done) return;
    if (h.type == wire::Type::done) {
      if (!payload.empty()) {
        ++stats.dropped_malformed;
        return;
      }
      state = State::done;
      close_at = now;
      sent.clear();
      inflight_by_offset.clear();
      retransmit.clear();
      bytes_in_flight = 0;
      return;
    }
    if (wire::decode_ack(payload, ack) != wire::Error::none) {
      ++stats.dropped_malformed;
      return;
    }
    on_ack(now);
  }

  std::size_t send_data(std::span<std::byte> out, std::uint64_t offset, std::uint64_t len,
                        TimePoint now, bool after_loss = false) {
    const std::uint64_t pn = next_pn;
    wire::write_header(out, {wire::Type::data, false, params.transfer_id, pn});
    wire::put_u64(out.data() + wire::header_size, offset);
    if (len > 0) {
      const auto body = out.subspan(wire::header_size + wire::data_prefix, len);
      if (const auto ec = source.read(offset, body)) {
        fail(errc::disk_error, "cannot read the file: " + ec.message(), true, now + 3 * rtt.pto());
        return poll_send(out, now);
      }
    }
    const auto n = seal_datagram(aead, out, wire::data_prefix + len, false, pn);
    ++next_pn;
    sent.push_back({pn, offset, static_cast<std::uint32_t>(len), static_cast<std::uint32_t>(n), now,
                    true, after_loss});
    bytes_in_flight += n;
    if (len > 0) inflight_by_offset[offset] = pn;
    if (offset < next_offset) stats.bytes_retransmitted += len;
    if (len > 0) next_offset = std::max(next_offset, offset + len);
    ++stats.datagrams_sent;
    stats.data_bytes_sent += len;
    last_ack_eliciting = now;
    pacer.on_sent(n, cc.window(), rtt.smoothed(), now);
    return n;
  }

  // The next chunk to send: losses first, then new data the window allows.
  bool pick(std::uint64_t& offset, bool& from_retransmit) {
    while (!retransmit.empty()) {
      const auto off = retransmit.front();
      if (acked.contains(off, off + chunk_len(off)) || inflight_by_offset.contains(off)) {
        retransmit.pop_front();
        continue;
      }
      offset = off;
      from_retransmit = true;
      return true;
    }
    while (next_offset < params.size) {
      const auto len = chunk_len(next_offset);
      if (acked.contains(next_offset, next_offset + len)) {
        next_offset += len;
        continue;
      }
      if (next_offset + len > peer_max_offset) return false;
      offset = next_offset;
      from_retransmit = false;
      return true;
    }
    return false;
  }

  std::size_t send_probe(std::span<std::byte> out, TimePoint now) {
    std::uint64_t offset = 0;
    bool from_retransmit = false;
    if (pick(offset, from_retransmit)) {
      if (from_retransmit) retransmit.pop_front();
      return send_data(out, offset, chunk_len(offset), now);
    }
    for (const Sent& s : sent) {
      if (s.in_flight && s.len > 0 && !acked.contains(s.offset, s.offset + s.len))
        return send_data(out, s.offset, s.len, now);
    }
    return send_data(out, params.size, 0, now);
  }

  std::size_t poll_send(std::span<std::byte> out, TimePoint now) {
    if (state == State::failed) {
      if (!abort_pending) return 0;
      abort_pending = false;
      return write_abort(out, aead, params.transfer_id, false, next_pn++, abort_code);
    }
    if (state == State::done) return 0;
    if (probes_pending > 0) {
      --probes_pending;
      return send_probe(out, now);
    }
    if (ping_needed) {
      ping_needed = false;
      return send_data(out, params.size, 0, now);
    }
    std::uint64_t offset = 0;
    bool from_retransmit = false;
    if (!pick(offset, from_retransmit)) return 0;
    const auto len = chunk_len(offset);
    const auto bytes = len + data_overhead;
    if (bytes_in_flight + bytes > cc.window() || sent.size() >= config.max_inflight) {
      cwnd_blocked = true;
      return 0;
    }
    const auto when = pacer.next_send(bytes, cc.window(), rtt.smoothed(), now);
    if (when > now) {
      pacer_wait = when;
      return 0;
    }
    pacer_wait = never;
    if (from_retransmit) retransmit.pop_front();
    return send_data(out, offset, len, now, from_retransmit);
  }

  TimePoint next_expiry() const {
    if (state != State::active) return drained ? never : close_at;
    TimePoint t = idle_deadline();
    t = std::min(t, loss_time != never ? loss_time : pto_deadline());
    return std::min(t, pacer_wait);
  }

  void on_timeout(TimePoint now) {
    if (state != State::active) {
      drained = now >= close_at;
      return;
    }
    if (now >= idle_deadline()) {
      fail(errc::transfer_timeout,
           "no answer from the receiver for " + seconds_text(config.idle_timeout), true, now);
      return;
    }
    if (pacer_wait <= now) pacer_wait = never;
    if (loss_time != never) {
      if (now >= loss_time) detect_lost(now);
      return;
    }
    if (now >= pto_deadline()) {
      ++pto_count;
      probes_pending = bytes_in_flight > 0 ? 2 : 1;
    }
  }
};

Sender::Sender(const TransferParams& params, ChunkSource& source, const Config& config,
               TimePoint now)
    : impl_(std::make_unique<Impl>(params, source, config, now)) {}
Sender::~Sender() = default;
Sender::Sender(Sender&&) noexcept = default;
Sender& Sender::operator=(Sender&&) noexcept = default;

void Sender::on_datagram(std::span<std::byte> datagram, TimePoint now) {
  impl_->on_datagram(datagram, now);
}
std::size_t Sender::poll_send(std::span<std::byte> out, TimePoint now) {
  return impl_->poll_send(out, now);
}
TimePoint Sender::next_expiry() const {
  return impl_->next_expiry();
}
void Sender::on_timeout(TimePoint now) {
  impl_->on_timeout(now);
}
void Sender::cancel(TimePoint now) {
  impl_->fail(errc::transfer_aborted, "the transfer was cancelled", true,
              now + 3 * impl_->rtt.pto());
}
State Sender::state() const {
  return impl_->state;
}
bool Sender::closed(TimePoint now) const {
  return impl_->state != State::active && !impl_->abort_pending && now >= impl_->close_at;
}
std::error_code Sender::error() const {
  return impl_->error;
}
std::string Sender::error_reason() const {
  return impl_->reason;
}
Progress Sender::progress() const {
  const auto done = impl_->state == State::done ? impl_->params.size : impl_->acked.total();
  return {done, impl_->params.size};
}
const Stats& Sender::stats() const {
  return impl_->stats;
}
std::uint64_t Sender::transfer_id() const {
  return impl_->params.transfer_id;
}
std::uint64_t Sender::congestion_window() const {
  return impl_->cc.window();
}
std::chrono::nanoseconds Sender::smoothed_rtt() const {
  return impl_->rtt.smoothed();
}

}  // namespace tessenger::transfer
