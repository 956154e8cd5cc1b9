#include <algorithm>
#include <cstring>
#include <optional>

#include <tessenger/transfer_engine.hpp>

#include "transfer/aead.hpp"
#include "transfer/congestion.hpp"
#include "transfer/engine_common.hpp"
#include "transfer/gap_tracker.hpp"
#include "transfer/replay_window.hpp"
#include "transfer/sha256.hpp"
#include "transfer/wire.hpp"

namespace tessenger::transfer {

namespace {

constexpr TimePoint never = TimePoint::max();
// Acknowledge at least every this many DATA datagrams (RFC 9000 §13.2.2 uses 2).
constexpr unsigned ack_every = 2;
// Bytes hashed from the sink per datagram when catching up (resume, reordering).
constexpr std::uint64_t hash_step = 4ull << 20;
constexpr std::size_t hash_buffer_size = 256 * 1024;

}  // namespace

struct Receiver::Impl {
  Impl(const TransferParams& p, const Digest& digest, ChunkSink& s, const Config& cfg,
       TimePoint now, std::span<const ByteRange> already_have,
       std::unique_ptr<FileHasher> given_hasher)
      : params(p),
        expected(digest),
        sink(s),
        config(cfg),
        aead(p.key),
        hasher(std::move(given_hasher)),
        memory(s.memory()),
        last_peer_activity(now) {
    if (memory.size() < p.size) memory = {};
    if (params.size > config.max_receive_size) {
      fail(errc::transfer_too_large,
           "the file (" + std::to_string(params.size) + " bytes) is larger than the limit of " +
               std::to_string(config.max_receive_size) + " bytes",
           true, now + config.idle_timeout);
      return;
    }
    for (const auto& r : already_have) {
      have.add(std::min(r.begin, params.size), std::min(r.end, params.size));
    }
  }

  TransferParams params;
  Digest expected;
  ChunkSink& sink;
  Config config;
  Aead aead;
  ReplayWindow replay;
  GapTracker have;
  Sha256 inline_hash;
  // The caller's hasher (e.g. one on a thread of its own); it is dropped as
  // soon as the outcome is known, so a finished transfer holds no thread.
  std::unique_ptr<FileHasher> hasher;
  std::span<std::byte> memory;  // sink.memory(), if it holds the whole file
  std::uint64_t hashed = 0;
  std::vector<std::byte> hash_buffer;
  std::vector<ByteRange> scratch;
  std::vector<std::uint64_t> touched;  // offsets received since the last ACK
  wire::Ack ack;
  Stats stats;

  State state = State::active;
  std::error_code error;
  std::string reason;
  std::uint64_t next_pn = 0;
  TimePoint largest_time{};
  unsigned unacked = 0;
  bool ack_now = false;
  TimePoint ack_deadline = never;
  bool done_pending = false;
  bool abort_pending = false;
  errc abort_code = errc::transfer_aborted;
  TimePoint last_peer_activity;
  TimePoint close_at = never;
  bool drained = false;  // close_at has passed: no timer left

  FileHasher& hash() { return hasher ? *hasher : inline_hash; }

  void fail(errc code, std::string why, bool tell_peer, TimePoint close) {
    if (state != State::active) return;
    hasher.reset();
    state = State::failed;
    error = make_error_code(code);
    reason = std::move(why);
    abort_pending = tell_peer;
    abort_code = code;
    close_at = close;
    ack_now = false;
    ack_deadline = never;
  }

  std::uint64_t window_end() const {
    const auto c = have.contiguous();
    return std::min(params.size, c + std::min(config.receive_window, params.size - c));
  }

  std::size_t max_ranges() const { return 4 * std::max<std::size_t>(config.max_inflight, 16); }

  bool hash_from_sink(std::uint64_t until, TimePoint now) {
    if (!memory.empty()) {
      if (hashed < until) {
        hash().update_stable(memory.subspan(hashed, until - hashed));
        hashed = until;
      }
      return true;
    }
    if (hash_buffer.empty()) hash_buffer.resize(hash_buffer_size);
    while (hashed < until) {
      const auto n =
          static_cast<std::size_t>(std::min<std::uint64_t>(until - hashed, hash_buffer.size()));
      const auto part = std::span(hash_buffer).first(n);
      if (const auto ec = sink.read(hashed, part)) {
        fail(errc::disk_error, "cannot read back the received file: " + ec.message(), true,
             now + config.idle_timeout);
        return false;
      }
      hash().update(part);
      hashed += n;
    }
    return true;
  }

  void check_complete(TimePoint now) {
    if (state != State::active || have.contiguous() < params.size) return;
    if (!hash_from_sink(params.size, now)) return;
    const auto digest = hash().finish();
    hasher.reset();
    if (digest != expected) {
      fail(errc::transfer_checksum, "the received file's SHA-256 does not match the offer", true,
           now + config.idle_timeout);
      return;
    }
    if (const auto ec = sink.commit()) {
      fail(errc::disk_error, "cannot store the received file: " + ec.message(), true,
           now + config.idle_timeout);
      return;
    }
    state = State::done;
    done_pending = true;
    close_at = now + config.idle_timeout;
    ack_now = false;
    ack_deadline = never;
  }

  // Whether [offset, offset + size) is inside the file and the window and,
  // unless it only repeats what is held, within the holes the receiver tracks.
  bool acceptable(std::uint64_t offset, std::size_t size) const {
    if (offset > params.size || size > params.size - offset) return false;
    const std::uint64_t end = offset + size;
    return end <= window_end() &&
           (size == 0 || have.range_count() < max_ranges() || have.find(offset));
  }

  // Stores newly received bytes: in the sink's memory, or through write().
  bool store(std::uint64_t offset, std::span<const std::byte> part, TimePoint now) {
    if (!memory.empty()) {
      const auto into = memory.subspan(offset, part.size());
      if (into.data() != part.data()) std::memcpy(into.data(), part.data(), part.size());
      return true;
    }
    if (const auto ec = sink.write(offset, part)) {
      fail(errc::disk_error, "cannot write the received file: " + ec.message(), true,
           now + config.idle_timeout);
      return false;
    }
    return true;
  }

  // `bytes` are in the datagram, or already in place in memory.
  void on_data(const wire::Header& h, std::uint64_t offset, std::span<const std::byte> bytes,
               bool out_of_order, TimePoint now) {
    if (!acceptable(offset, bytes.size())) {
      ++stats.dropped_malformed;
      return;
    }
    const std::uint64_t end = offset + bytes.size();
    if (!bytes.empty()) {
      scratch.clear();
      const auto fresh = have.add(offset, end, &scratch);
      stats.duplicate_bytes += bytes.size() - fresh;
      for (const auto& piece : scratch) {
        const auto part = bytes.subspan(piece.begin - offset, piece.end - piece.begin);
        if (!store(piece.begin, part, now)) return;
        // In-order data is hashed where it is, never read back.
        if (piece.begin == hashed) {
          if (memory.empty()) {
            hash().update(part);
          } else {
            hash().update_stable(memory.subspan(piece.begin, part.size()));
          }
          hashed = piece.end;
        }
      }
      if (touched.size() < wire::max_ack_ranges) touched.push_back(offset);
    }
    if (h.packet_number == replay.highest()) largest_time = now;
    ++unacked;
    if (out_of_order || bytes.empty() || unacked >= ack_every) {
      ack_now = true;
    } else if (ack_deadline == never) {
      ack_deadline = now + max_ack_delay;
    }
    const auto target = std::min(have.contiguous(), hashed + hash_step);
    if (hashed < target && !hash_from_sink(target, now)) return;
    check_complete(now);
  }

  // Opens a datagram from the sender in place, except that the file bytes of
  // a DATA datagram that are all new go straight into the sink's memory (its
  // offset is decrypted first to learn where): `placed` then says where they
  // are. A forgery leaves garbage only where nothing is held, and marks nothing.
  bool open_sender_datagram(const wire::Header& h, std::span<std::byte> datagram,
                            std::span<std::byte>& payload, std::optional<ByteRange>& placed) {
    constexpr auto overhead = wire::header_size + wire::tag_size;
    if (memory.empty() || state != State::active || h.type != wire::Type::data ||
        datagram.size() <= overhead + wire::data_prefix) {
      return open_datagram(aead, datagram, false, h.packet_number, payload);
    }
    const auto text = datagram.subspan(wire::header_size, datagram.size() - overhead);
    const auto prefix = text.first(wire::data_prefix);
    const auto rest = text.subspan(wire::data_prefix);
    if (!aead.open_begin(false, h.packet_number, datagram.first(wire::header_size)) ||
        !aead.open_update(prefix, prefix)) {
      return false;
    }
    const auto at = wire::get_u64(prefix.data());
    const bool direct = acceptable(at, rest.size()) && have.disjoint(at, at + rest.size());
    const auto into = direct ? memory.subspan(at, rest.size()) : rest;
    if (!aead.open_update(rest, into) || !aead.open_end(datagram.last(wire::tag_size)))
      return false;
    payload = text;
    if (direct) placed = ByteRange{at, at + rest.size()};
    return true;
  }

  void on_datagram(std::span<std::byte> datagram, TimePoint now) {
    wire::Header h;
    if (wire::parse_header(datagram, h) != wire::Error::none || h.from_receiver ||
        h.transfer_id != params.transfer_id) {
      ++stats.dropped_malformed;
      return;
    }
    if (!replay.fresh(h.packet_number)) {
      ++stats.dropped_replay;
      return;
    }
    std::span<std::byte> payload;
    std::optional<ByteRange> placed;
    if (!open_sender_datagram(h, datagram, payload, placed)) {
      ++stats.dropped_auth;
      return;
    }
    // A gap in packet numbers means loss or reordering: acknowledge at once.
    const bool out_of_order =
        replay.any() ? h.packet_number != replay.highest() + 1 : h.packet_number != 0;
    replay.mark(h.packet_number);
    ++stats.datagrams_received;
    last_peer_activity = now;

    if (h.type == wire::Type::abort) {
      if (payload.size() != wire::abort_size) {
        ++stats.dropped_malformed;
        return;
      }
      const auto code = abort_code_from_wire(wire::get_u16(payload.data()));
      fail(code, peer_abort_reason(false, code), false, now);
      return;
    }
    switch (state) {
      case State::done:
        done_pending = true;
        return;
      case State::failed:
        abort_pending = true;
        return;
      case State::active: {
        std::uint64_t offset = 0;
        std::span<const std::byte> bytes;
        if (placed) {
          offset = placed->begin;
          bytes = memory.subspan(offset, placed->end - offset);
        } else if (wire::decode_data(payload, offset, bytes) != wire::Error::none) {
          ++stats.dropped_malformed;
          return;
        }
        on_data(h, offset, bytes, out_of_order, now);
        return;
      }
    }
  }

  std::size_t write_ack(std::span<std::byte> out, TimePoint now) {
    const auto contiguous = have.contiguous();
    ack.largest_pn = replay.highest();
    const auto delay = std::chrono::duration_cast<std::chrono::microseconds>(now - largest_time);
    ack.ack_delay_us =
        static_cast<std::uint32_t>(std::clamp<std::int64_t>(delay.count(), 0, UINT32_MAX));
    ack.max_offset = window_end();
    ack.contiguous = contiguous;
    ack.ranges.clear();
    // First the ranges that just grew, so every datagram received is
    // acknowledged, then the highest ones.
    for (const auto off : touched) {
      const auto r = have.find(off);
      if (r && r->begin > contiguous) ack.ranges.push_back(*r);
    }
    touched.clear();
    std::sort(ack.ranges.begin(), ack.ranges.end(),
              [](const ByteRange& a, const ByteRange& b) { return a.begin > b.begin; });
    ack.ranges.erase(std::unique(ack.ranges.begin(), ack.ranges.end()), ack.ranges.end());
    const auto touched_count = ack.ranges.size();
    for (auto it = have.ranges().rbegin();
         it != have.ranges().rend() && ack.ranges.size() < wire::max_ack_ranges; ++it) {
      if (it->first <= contiguous) break;
      const ByteRange r{it->first, it->second};
      if (!std::binary_search(
              ack.ranges.begin(), ack.ranges.begin() + touched_count, r,
              [](const ByteRange& a, const ByteRange& b) { return a.begin > b.begin; }))
        ack.ranges.push_back(r);
    }
    std::sort(ack.ranges.begin(), ack.ranges.end(),
              [](const ByteRange& a, const ByteRange& b) { return a.begin > b.begin; });

    const std::uint64_t pn = next_pn++;
    wire::write_header(out, {wire::Type::ack, true, params.transfer_id, pn});
    const auto size = wire::encode_ack(out.subspan(wire::header_size), ack);
    unacked = 0;
    ack_now = false;
    ack_deadline = never;
    return seal_datagram(aead, out, size, true, pn);
  }

  std::size_t poll_send(std::span<std::byte> out, TimePoint now) {
    std::size_t n = 0;
    if (abort_pending) {
      abort_pending = false;
      n = write_abort(out, aead, params.transfer_id, true, next_pn++, abort_code);
    } else if (done_pending) {
      done_pending = false;
      const std::uint64_t pn = next_pn++;
      wire::write_header(out, {wire::Type::done, true, params.transfer_id, pn});
      n = seal_datagram(aead, out, 0, true, pn);
    } else if (state == State::active && (ack_now || ack_deadline <= now) && replay.any()) {
      n = write_ack(out, now);
    }
    if (n > 0) ++stats.datagrams_sent;
    return n;
  }

  TimePoint next_expiry() const {
    if (state != State::active) return drained ? never : close_at;
    return std::min(last_peer_activity + config.idle_timeout, ack_deadline);
  }

  void on_timeout(TimePoint now) {
    if (state != State::active) {
      drained = now >= close_at;
      return;
    }
    if (now >= last_peer_activity + config.idle_timeout) {
      fail(errc::transfer_timeout,
           "no data from the sender for " + seconds_text(config.idle_timeout), true, now);
      return;
    }
    if (ack_deadline <= now) ack_now = true;
  }
};

Receiver::Receiver(const TransferParams& params, const Digest& sha256, ChunkSink& sink,
                   const Config& config, TimePoint now, std::span<const ByteRange> already_have,
                   std::unique_ptr<FileHasher> hasher)
    : impl_(std::make_unique<Impl>(params, sha256, sink, config, now, already_have,
                                   std::move(hasher))) {}
Receiver::~Receiver() = default;
Receiver::Receiver(Receiver&&) noexcept = default;
Receiver& Receiver::operator=(Receiver&&) noexcept = default;

void Receiver::on_datagram(std::span<std::byte> datagram, TimePoint now) {
  impl_->on_datagram(datagram, now);
}
std::size_t Receiver::poll_send(std::span<std::byte> out, TimePoint now) {
  return impl_->poll_send(out, now);
}
TimePoint Receiver::next_expiry() const {
  return impl_->next_expiry();
}
void Receiver::on_timeout(TimePoint now) {
  impl_->on_timeout(now);
}
void Receiver::cancel(TimePoint now) {
  impl_->fail(errc::transfer_aborted, "the transfer was cancelled", true, now);
}
void Receiver::decline(TimePoint now) {
  impl_->fail(errc::transfer_aborted, "the offer was declined", true,
              now + impl_->config.idle_timeout);
}
State Receiver::state() const {
  return impl_->state;
}
bool Receiver::closed(TimePoint now) const {
  return impl_->state != State::active && !impl_->abort_pending && !impl_->done_pending &&
         now >= impl_->close_at;
}
std::error_code Receiver::error() const {
  return impl_->error;
}
std::string Receiver::error_reason() const {
  return impl_->reason;
}
Progress Receiver::progress() const {
  return {impl_->have.total(), impl_->params.size};
}
const Stats& Receiver::stats() const {
  return impl_->stats;
}
std::uint64_t Receiver::transfer_id() const {
  return impl_->params.transfer_id;
}
std::vector<ByteRange> Receiver::received_ranges() const {
  return impl_->have.to_vector();
}

}  // namespace tessenger::transfer
