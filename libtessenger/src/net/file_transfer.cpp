#include <tessenger/file_transfer.hpp>

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "net/callback_gate.hpp"
#include "transfer/background_hasher.hpp"
#include "transfer/file_io.hpp"
#include "transfer/legacy_format.hpp"
#include "transfer/legacy_receiver.hpp"
#include "transfer/legacy_sender.hpp"

namespace tessenger {

namespace {

using transfer::Clock;
using transfer::TimePoint;
using udp = asio::ip::udp;

constexpr std::size_t recv_batch = 32;
constexpr std::size_t send_batch = 64;
constexpr std::size_t recv_slot = 65'536;
// Receive batches handled per wake-up before timers and sends get a turn.
constexpr int max_recv_rounds = 8;
// Consecutive datagrams of one size for one peer leave as one UDP GSO
// message: the stack is crossed once per 64 KiB instead of per datagram.
// Older kernels take at most 64 segments; an IPv4 payload at most 65,507 bytes.
constexpr std::size_t max_gso_segments = 64;
constexpr std::size_t max_gso_bytes = 65'000;
// The original client starts sending a file the moment the server answers
// it, perhaps before its receiver has heard of the file: datagrams that
// match no transfer are kept this long, up to this much, for
// expect_legacy_file(). Only datagrams the size the original sends.
constexpr auto legacy_hold_time = std::chrono::seconds(2);
constexpr std::size_t legacy_hold_bytes = 1u << 20;
constexpr std::size_t legacy_hold_max_datagram = 2048;

// A v4-mapped IPv6 source and its IPv4 form are the same peer.
udp::endpoint normalise(const udp::endpoint& e) {
  if (e.address().is_v6() && e.address().to_v6().is_v4_mapped())
    return {asio::ip::make_address_v4(asio::ip::v4_mapped, e.address().to_v6()), e.port()};
  return e;
}

// Holds nothing: the Receiver of a refused (too large) offer never writes.
struct NullSink final : transfer::ChunkSink {
  std::error_code write(std::uint64_t, std::span<const std::byte>) override {
    return make_error_code(errc::disk_error);
  }
  std::error_code read(std::uint64_t, std::span<std::byte>) override {
    return make_error_code(errc::disk_error);
  }
  std::error_code commit() override { return make_error_code(errc::disk_error); }
};

void set_buffer(int fd, int force_opt, int opt, std::size_t bytes) {
  const int value = static_cast<int>(std::min<std::size_t>(bytes, 1u << 30));
  // Root may exceed net.core.[rw]mem_max; others get what the kernel allows.
  if (::setsockopt(fd, SOL_SOCKET, force_opt, &value, sizeof value) != 0)
    ::setsockopt(fd, SOL_SOCKET, opt, &value, sizeof value);
}

}  // namespace

IncomingTransfer incoming_from(const protocol::FileIncomingEvent& event, std::error_code& ec) {
  IncomingTransfer in;
  const auto address = asio::ip::make_address(event.sender_address, ec);
  if (ec) return in;
  in.transfer_id = event.transfer_id;
  in.key = event.key;
  in.sender_name = event.from;
  in.file_name = event.file_name;
  in.size = event.size;
  in.sha256 = event.sha256;
  in.sender_endpoint = normalise({address, event.sender_udp_port});
  return in;
}

LegacyIncoming legacy_incoming_from(const protocol::LegacyFileEvent& event, std::error_code& ec) {
  const auto address = asio::ip::make_address(event.sender_address, ec);
  if (ec) return {};
  return {event.from, event.file_name, normalise({address, 0}).address()};
}

struct FileTransfer::Impl : std::enable_shared_from_this<Impl> {
  struct Entry {
    std::uint64_t id = 0;
    udp::endpoint peer;
    TransferCallbacks callbacks;
    std::unique_ptr<transfer::FileSource> source;
    std::unique_ptr<transfer::ChunkSink> sink_holder;
    transfer::FileSink* file_sink = nullptr;  // null for a refused offer
    transfer::ReceivePaths paths;
    transfer::Digest sha256{};
    std::filesystem::path source_path;
    bool hashing_thread = false;  // its Receiver was given a BackgroundHasher
    std::optional<transfer::Sender> sender;
    std::optional<transfer::Receiver> receiver;
    // The original client's format (docs/legacy.md): exactly one of the four is set.
    std::optional<transfer::LegacySender> legacy_sender;
    std::optional<transfer::LegacyReceiver> legacy_receiver;
    std::string legacy_header;  // legacy_receiver: the datagram that fixes peer's port
    bool peer_fixed = true;     // false until then
    TimePoint started;
    TimePoint last_progress{};
    std::uint64_t progress_reported = UINT64_MAX;
    TimePoint last_save{};
    std::uint64_t saved_bytes = 0;
    bool reported = false;

    // Calls `f` with whichever engine this transfer runs.
    template <class Self, class F>
    static decltype(auto) visit(Self& self, F&& f) {
      if (self.sender) return f(*self.sender);
      if (self.receiver) return f(*self.receiver);
      if (self.legacy_sender) return f(*self.legacy_sender);
      return f(*self.legacy_receiver);
    }

    transfer::State state() const {
      return visit(*this, [](auto& x) { return x.state(); });
    }
    transfer::Progress progress() const {
      return visit(*this, [](auto& x) { return x.progress(); });
    }
    TimePoint next_expiry() const {
      return visit(*this, [](auto& x) { return x.next_expiry(); });
    }
    bool closed(TimePoint now) const {
      return visit(*this, [now](auto& x) { return x.closed(now); });
    }
    void on_timeout(TimePoint now) {
      visit(*this, [now](auto& x) { x.on_timeout(now); });
    }
    std::size_t poll_send(std::span<std::byte> out, TimePoint now) {
      return visit(*this, [out, now](auto& x) { return x.poll_send(out, now); });
    }
    void on_datagram(std::span<std::byte> d, TimePoint now) {
      visit(*this, [d, now](auto& x) { x.on_datagram(d, now); });
    }
    void cancel(TimePoint now) {
      visit(*this, [now](auto& x) { x.cancel(now); });
    }
    std::error_code error() const {
      return visit(*this, [](auto& x) { return x.error(); });
    }
    std::string error_reason() const {
      return visit(*this, [](auto& x) { return x.error_reason(); });
    }
    const transfer::Stats& engine_stats() const {
      return visit(*this, [](auto& x) -> const transfer::Stats& { return x.stats(); });
    }
    bool legacy() const { return legacy_sender || legacy_receiver; }
  };

  using Map = std::unordered_map<std::uint64_t, std::unique_ptr<Entry>>;

  Impl(asio::any_io_executor ex, const udp::endpoint& bind, TransferOptions opts)
      : strand(asio::make_strand(ex)),
        socket(strand),
        timer(strand),
        options(std::move(opts)),
        gso(options.segmentation_offload) {
    // std::system_category, so callers can compare with std::errc values.
    const auto check = [](const std::error_code& ec, const char* what) {
      if (ec) throw std::system_error(ec.value(), std::system_category(), what);
    };
    std::error_code ec;
    socket.open(bind.protocol(), ec);
    check(ec, "cannot open the UDP socket");
    socket.bind(bind, ec);
    check(ec, "cannot bind the UDP socket");
    socket.non_blocking(true, ec);
    check(ec, "cannot make the UDP socket non-blocking");
    bound = socket.local_endpoint(ec);
    check(ec, "cannot read the UDP socket's address");
    const int fd = socket.native_handle();
    set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, options.socket_buffer);
    set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, options.socket_buffer);
    // Coalesced receives come with their segment size; without GRO (older
    // kernels) every datagram is read on its own, which also works.
    const int gro = options.segmentation_offload ? 1 : 0;
    ::setsockopt(fd, IPPROTO_UDP, UDP_GRO, &gro, sizeof gro);
    options.chunk_size = std::clamp<std::size_t>(options.chunk_size, 1, transfer::max_chunk_size);
    send_slot = std::max(options.chunk_size + transfer::data_overhead, transfer::max_ack_datagram);
    recv_buffers.resize(recv_batch * recv_slot);
    send_buffers.resize(send_batch * send_slot);
    pending.reserve(send_batch);
  }

  // A stop() that never ran (the io_context went away first) still leaves
  // what resumes a receiving transfer.
  ~Impl() {
    if (stopped) return;
    for (auto* map : {&receiving, &legacy})
      for (auto& [id, e] : *map)
        leave_partial(*e);
  }

  // Every map of transfers, for what is done to all of them.
  std::array<Map*, 3> maps() { return {&sending, &receiving, &legacy}; }

  asio::strand<asio::any_io_executor> strand;
  udp::socket socket;
  asio::steady_timer timer;
  TransferOptions options;
  udp::endpoint bound;
  net::CallbackGate gate;
  std::atomic<bool> closing{false};  // the destructor ran: stop at the next turn
  std::atomic<std::uint64_t> next_legacy_id{1};

  // What members called on any thread need: which ids are taken (by
  // transfers still in the maps or on their way there), which of them are
  // still active or hold a hashing thread, and the counters the strand
  // published last. Never held while a callback or an engine runs.
  struct Slot {
    bool active = true;
    bool hashing = false;
  };
  mutable std::mutex registry_mutex;
  std::unordered_map<std::uint64_t, Slot> registry;
  FileTransferStats published;

  // From here on, only the strand touches a member.
  Map sending;
  Map receiving;
  // Cancelled between send_file/expect_file and the entry's arrival on the
  // strand (add() posts it): cancelled as soon as it arrives.
  std::set<std::uint64_t> cancelled_early;
  Map legacy;  // both directions, in the original client's format
  struct Held {
    udp::endpoint from;
    std::vector<std::byte> data;
    TimePoint at;
  };
  std::deque<Held> held;  // datagrams that matched no transfer, for expect_legacy_file
  std::size_t held_bytes = 0;
  FileTransferStats counters;
  transfer::Stats retired;  // engine drop counters of transfers already gone
  bool stopped = false;
  bool reading = false;
  bool waiting_write = false;
  bool kick_posted = false;
  bool processing = false;
  bool gso;  // off for good once the kernel or route refuses it
  TimePoint timer_at = TimePoint::max();

  std::size_t send_slot = 0;
  std::vector<std::byte> recv_buffers;
  std::vector<std::byte> send_buffers;
  struct Pending {
    std::size_t size;
    udp::endpoint to;
  };
  std::vector<Pending> pending;
  std::size_t pending_sent = 0;

  void stop() {
    if (stopped) return;
    stopped = true;
    std::error_code ignored;
    timer.cancel();
    socket.close(ignored);
    for (auto& [id, e] : receiving)
      leave_partial(*e);
    for (auto& [id, e] : legacy)
      leave_partial(*e);
    sending.clear();
    receiving.clear();
    legacy.clear();
    held.clear();
    std::lock_guard lock(registry_mutex);
    registry.clear();
  }

  // True once stopped; the first turn after the destructor stops here.
  bool halted() {
    if (!stopped && closing.load(std::memory_order_acquire)) stop();
    return stopped;
  }

  void arm_read() {
    if (reading || stopped) return;
    reading = true;
    socket.async_wait(udp::socket::wait_read, [self = shared_from_this()](std::error_code ec) {
      self->reading = false;
      if (ec || self->halted()) return;
      self->on_readable();
    });
  }

  void kick() {
    if (kick_posted || stopped) return;
    kick_posted = true;
    asio::post(strand, [self = shared_from_this()] {
      self->kick_posted = false;
      if (!self->halted()) self->process(Clock::now());
    });
  }

  // Runs `work` on the strand unless the FileTransfer is stopped by then.
  template <class Work>
  void on_strand(Work&& work) {
    asio::post(strand, [self = shared_from_this(), work = std::forward<Work>(work)]() mutable {
      if (!self->halted()) work(*self);
    });
  }

  void on_readable() {
    const bool drained = receive_some();
    process(Clock::now());
    if (drained) {
      arm_read();
      return;
    }
    // Asio's reactor is edge-triggered: a socket left with data would not be
    // reported readable again, so come back for the rest ourselves.
    reading = true;
    asio::post(strand, [self = shared_from_this()] {
      self->reading = false;
      if (!self->halted()) self->on_readable();
    });
  }

  // Reads and dispatches what the socket holds, up to a bound; true if it
  // is now empty.
  bool receive_some() {
    mmsghdr msgs[recv_batch];
    iovec iov[recv_batch];
    sockaddr_storage addrs[recv_batch];
    alignas(cmsghdr) unsigned char control[recv_batch][CMSG_SPACE(sizeof(int))];
    for (int round = 0; round < max_recv_rounds; ++round) {
      for (std::size_t i = 0; i < recv_batch; ++i) {
        iov[i] = {recv_buffers.data() + i * recv_slot, recv_slot};
        std::memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_name = &addrs[i];
        msgs[i].msg_hdr.msg_namelen = sizeof addrs[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_control = control[i];
        msgs[i].msg_hdr.msg_controllen = sizeof control[i];
      }
      const int n = ::recvmmsg(socket.native_handle(), msgs, recv_batch, MSG_DONTWAIT, nullptr);
      if (n <= 0) return true;
      const auto now = Clock::now();
      for (int i = 0; i < n; ++i) {
        auto& m = msgs[i];
        if (m.msg_hdr.msg_flags & MSG_TRUNC) {
          ++counters.dropped_malformed;
          continue;
        }
        udp::endpoint from;
        if (m.msg_hdr.msg_namelen > from.capacity()) continue;
        std::memcpy(from.data(), &addrs[i], m.msg_hdr.msg_namelen);
        from.resize(m.msg_hdr.msg_namelen);
        from = normalise(from);
        const auto received =
            std::span(recv_buffers.data() + static_cast<std::size_t>(i) * recv_slot, m.msg_len);
        const auto segment = gro_segment_size(m.msg_hdr, received.size());
        if (segment < received.size())
          counters.datagrams_received_coalesced += (received.size() + segment - 1) / segment;
        for (std::size_t at = 0; at < received.size(); at += segment)
          dispatch(from, received.subspan(at, std::min(segment, received.size() - at)), now);
      }
    }
    return false;
  }

  // The size of each datagram GRO joined into one read: all but the last
  // have it. A read with no GRO record is one datagram.
  static std::size_t gro_segment_size(msghdr& h, std::size_t received) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
      if (c->cmsg_level != SOL_UDP || c->cmsg_type != UDP_GRO) continue;
      int size = 0;
      std::memcpy(&size, CMSG_DATA(c), sizeof size);
      if (size > 0) return static_cast<std::size_t>(size);
    }
    return std::max<std::size_t>(received, 1);
  }

  void dispatch(const udp::endpoint& from, std::span<std::byte> datagram, TimePoint now) {
    ++counters.datagrams_received;
    if (!legacy.empty() && to_legacy(from, datagram, now)) return;
    const auto id = transfer::peek_transfer_id(datagram);
    if (!id) {
      ++counters.dropped_malformed;
      hold(from, datagram, now);
      return;
    }
    Map& map = transfer::from_receiver(datagram) ? sending : receiving;
    const auto it = map.find(*id);
    if (it == map.end()) {
      ++counters.dropped_unknown;
      hold(from, datagram, now);
      return;
    }
    Entry& e = *it->second;
    if (from != e.peer) {
      ++counters.dropped_wrong_peer;
      return;
    }
    e.on_datagram(datagram, now);
  }

  // A datagram for a file from a user of the original client: from the port
  // its header came from, or that header from the announced address.
  bool to_legacy(const udp::endpoint& from, std::span<std::byte> datagram, TimePoint now) {
    Entry* claimant = nullptr;
    for (auto& [id, e] : legacy) {
      if (!e->legacy_receiver) continue;
      if (e->peer_fixed) {
        if (e->peer != from) continue;
        e->on_datagram(datagram, now);
        return true;
      }
      if (claimant == nullptr && e->peer.address() == from.address() &&
          transfer::legacy::equals(datagram, e->legacy_header))
        claimant = e.get();
    }
    if (claimant == nullptr) return false;
    claimant->peer = from;
    claimant->peer_fixed = true;
    claimant->on_datagram(datagram, now);
    return true;
  }

  void hold(const udp::endpoint& from, std::span<const std::byte> datagram, TimePoint now) {
    if (datagram.size() > legacy_hold_max_datagram) return;
    while (!held.empty() && (now - held.front().at > legacy_hold_time ||
                             held_bytes + datagram.size() > legacy_hold_bytes)) {
      held_bytes -= held.front().data.size();
      held.pop_front();
    }
    held.push_back({from, {datagram.begin(), datagram.end()}, now});
    held_bytes += datagram.size();
    ++counters.held_for_legacy;
  }

  // A legacy reception just added: what its sender sent before, from the
  // header on, is its own.
  void claim_held(Entry& e, TimePoint now) {
    const auto header = std::find_if(held.begin(), held.end(), [&](const Held& h) {
      return h.from.address() == e.peer.address() && now - h.at <= legacy_hold_time &&
             transfer::legacy::equals(h.data, e.legacy_header);
    });
    if (header == held.end()) return;
    e.peer = header->from;
    e.peer_fixed = true;
    for (auto it = header; it != held.end();) {
      if (it->from != e.peer) {
        ++it;
        continue;
      }
      e.on_datagram(it->data, now);
      held_bytes -= it->data.size();
      it = held.erase(it);
    }
  }

  // Runs timers, collects datagrams, sends them, reports outcomes, re-arms the timer.
  void process(TimePoint now) {
    if (halted() || processing) return;
    processing = true;
    receive_some();
    for (auto* map : maps()) {
      for (auto& [id, e] : *map) {
        if (e->next_expiry() <= now) e->on_timeout(now);
      }
    }
    flush_engines(now);
    processing = false;
    report(now);
    if (stopped) return;
    arm_timer();
    publish();
  }

  void publish() {
    auto s = counters;
    s.dropped_auth = retired.dropped_auth;
    s.dropped_replay = retired.dropped_replay;
    for (auto* map : maps()) {
      for (auto& [id, e] : *map) {
        s.dropped_auth += e->engine_stats().dropped_auth;
        s.dropped_replay += e->engine_stats().dropped_replay;
      }
    }
    std::lock_guard lock(registry_mutex);
    s.hashed_on_own_thread = published.hashed_on_own_thread;
    published = s;
  }

  void flush_engines(TimePoint now) {
    while (!waiting_write) {
      if (pending_sent == pending.size()) {
        pending.clear();
        pending_sent = 0;
        fill(now);
        if (pending.empty()) return;
      }
      if (!send_pending()) return;
    }
  }

  // Takes datagrams from the engines in turn until the batch is full.
  void fill(TimePoint now) {
    bool any = true;
    while (any && pending.size() < send_batch) {
      any = false;
      for (auto* map : {&receiving, &sending, &legacy}) {
        for (auto& [id, e] : *map) {
          if (pending.size() >= send_batch) break;
          auto slot = std::span(send_buffers).subspan(pending.size() * send_slot, send_slot);
          const auto n = e->poll_send(slot, now);
          if (n == 0) continue;
          pending.push_back({n, e->peer});
          any = true;
        }
      }
    }
  }

  // How many pending datagrams from `first` one message carries: with GSO,
  // a run to the same peer where all but the last have the first's size.
  std::size_t gso_run(std::size_t first) const {
    if (!gso) return 1;
    const auto& head = pending[first];
    std::size_t count = 1;
    std::size_t bytes = head.size;
    for (std::size_t i = first + 1; i < pending.size() && count < max_gso_segments; ++i) {
      const auto& p = pending[i];
      if (pending[i - 1].size != head.size || p.size > head.size || p.to != head.to ||
          bytes + p.size > max_gso_bytes)
        break;
      bytes += p.size;
      ++count;
    }
    return count;
  }

  // Returns false when the socket is full; a write wait then resumes.
  bool send_pending() {
    mmsghdr msgs[send_batch];
    iovec iov[send_batch];
    std::size_t carried[send_batch];
    alignas(cmsghdr) unsigned char control[send_batch][CMSG_SPACE(sizeof(std::uint16_t))];
    unsigned count = 0;
    for (std::size_t first = pending_sent; first < pending.size(); ++count) {
      const auto run = gso_run(first);
      for (std::size_t i = first; i < first + run; ++i)
        iov[i - pending_sent] = {send_buffers.data() + i * send_slot, pending[i].size};
      auto& h = msgs[count].msg_hdr;
      std::memset(&msgs[count], 0, sizeof msgs[count]);
      h.msg_name = const_cast<sockaddr*>(pending[first].to.data());
      h.msg_namelen = static_cast<socklen_t>(pending[first].to.size());
      h.msg_iov = &iov[first - pending_sent];
      h.msg_iovlen = run;
      if (run > 1) {
        h.msg_control = control[count];
        h.msg_controllen = sizeof control[count];
        cmsghdr* c = CMSG_FIRSTHDR(&h);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
        const auto segment = static_cast<std::uint16_t>(pending[first].size);
        std::memcpy(CMSG_DATA(c), &segment, sizeof segment);
      }
      carried[count] = run;
      first += run;
    }
    const int n = ::sendmmsg(socket.native_handle(), msgs, count, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wait_writable();
        return false;
      }
      // A kernel without UDP GSO, or a route that cannot segment (a device
      // without checksum offload: EIO; a segment above its MTU: EMSGSIZE or,
      // on older kernels, EINVAL): send one by one, which IP may fragment.
      if (carried[0] > 1 && (errno == EMSGSIZE || errno == EINVAL || errno == EIO ||
                             errno == ENOPROTOOPT || errno == EOPNOTSUPP)) {
        gso = false;
        return true;
      }
      // Any other error (e.g. an unreachable peer) loses this message, as
      // the network could: loss recovery handles it.
      pending_sent += carried[0];
      return true;
    }
    for (int i = 0; i < n; ++i) {
      counters.datagrams_sent += carried[i];
      if (carried[i] > 1) counters.datagrams_sent_offloaded += carried[i];
      pending_sent += carried[i];
    }
    return true;
  }

  void wait_writable() {
    waiting_write = true;
    socket.async_wait(udp::socket::wait_write, [self = shared_from_this()](std::error_code ec) {
      self->waiting_write = false;
      if (ec || self->halted()) return;
      self->process(Clock::now());
    });
  }

  void arm_timer() {
    TimePoint next = TimePoint::max();
    for (auto* map : maps())
      for (auto& [id, e] : *map)
        next = std::min(next, e->next_expiry());
    if (next == timer_at) return;
    timer_at = next;
    if (next == TimePoint::max()) {
      timer.cancel();
      return;
    }
    timer.expires_at(next);
    timer.async_wait([self = shared_from_this(), next](std::error_code ec) {
      if (ec || self->halted() || self->timer_at != next) return;
      self->timer_at = TimePoint::max();
      self->process(Clock::now());
    });
  }

  void save_record(Entry& e) {
    if (!e.receiver || !e.file_sink || e.receiver->state() != transfer::State::active) return;
    if (e.file_sink->flush()) return;
    transfer::save_ranges(e.paths.record, e.receiver->progress().total, e.sha256,
                          e.receiver->received_ranges());
    e.saved_bytes = e.receiver->progress().done;
  }

  // Whether another receiving transfer (the same file offered again) writes
  // the partial file `e` writes.
  bool partial_shared(const Entry& e) const {
    return std::any_of(receiving.begin(), receiving.end(), [&](const auto& other) {
      return other.second.get() != &e && other.second->file_sink &&
             other.second->paths.partial == e.paths.partial;
    });
  }

  // An unfinished transfer that never held a byte leaves no file behind: a
  // flood of offers without data must not fill the download dir. One that
  // did keeps its partial file and record, to resume.
  void leave_partial(Entry& e) {
    // A legacy file cannot resume: its sender starts from the beginning.
    if (e.legacy_receiver && e.file_sink && e.legacy_receiver->state() == transfer::State::active)
      e.file_sink->discard();
    if (!e.receiver || !e.file_sink || e.receiver->state() != transfer::State::active) return;
    if (e.receiver->progress().done == 0) {
      if (!partial_shared(e)) e.file_sink->discard();
      return;
    }
    save_record(e);
  }

  // Progress, completion and failure callbacks, run after the engines are
  // left in a consistent state; closed transfers are removed.
  void report(TimePoint now) {
    std::vector<std::function<void()>> calls;
    for (auto* map : maps()) {
      for (auto it = map->begin(); it != map->end();) {
        Entry& e = *it->second;
        if (!e.reported) collect(e, now, calls);
        if (e.reported && e.closed(now)) {
          const auto& s = e.engine_stats();
          retired.dropped_auth += s.dropped_auth;
          retired.dropped_replay += s.dropped_replay;
          {
            std::lock_guard lock(registry_mutex);
            registry.erase(it->first);
          }
          it = map->erase(it);
        } else {
          ++it;
        }
      }
    }
    // A callback may destroy the FileTransfer: this keeps the state alive
    // until the loop ends, and the closed gate skips the callbacks after it.
    const auto self = shared_from_this();
    for (auto& call : calls) {
      if (!gate.run(call)) break;
    }
  }

  template <class Calls>
  void collect(Entry& e, TimePoint now, Calls& calls) {
    const auto progress = e.progress();
    const auto state = e.state();
    if (state == transfer::State::active) {
      if (e.callbacks.on_progress && progress.done != e.progress_reported &&
          now - e.last_progress >= options.progress_interval) {
        e.progress_reported = progress.done;
        e.last_progress = now;
        calls.push_back(
            [cb = e.callbacks.on_progress, progress] { cb(progress.done, progress.total); });
      }
      if (e.receiver && now - e.last_save >= options.resume_save_interval &&
          progress.done != e.saved_bytes) {
        e.last_save = now;
        save_record(e);
      }
      return;
    }
    e.reported = true;
    {
      std::lock_guard lock(registry_mutex);
      registry[e.id].active = false;
    }
    if (state == transfer::State::done) {
      TransferResult result;
      result.path = e.file_sink != nullptr ? e.file_sink->final_path() : e.source_path;
      result.size = progress.total;
      result.verified = !e.legacy();
      result.elapsed = now - e.started;
      result.stats = e.engine_stats();
      if (e.callbacks.on_progress && e.progress_reported != progress.total) {
        calls.push_back(
            [cb = e.callbacks.on_progress, progress] { cb(progress.total, progress.total); });
      }
      if (e.callbacks.on_complete)
        calls.push_back([cb = e.callbacks.on_complete, result] { cb(result); });
      return;
    }
    const auto ec = e.error();
    const auto reason = e.error_reason();
    // Nothing of a legacy file is worth keeping: it cannot resume.
    if (e.legacy_receiver && e.file_sink) e.file_sink->discard();
    if (e.receiver && e.file_sink) {
      // Bad data is worth nothing, and neither is a partial file that never
      // got any; anything else may resume later.
      if (ec == errc::transfer_checksum) {
        e.file_sink->discard();
      } else if (progress.done == 0) {
        if (!partial_shared(e)) e.file_sink->discard();
      } else {
        e.file_sink->flush();
        transfer::save_ranges(e.paths.record, progress.total, e.sha256,
                              e.receiver->received_ranges());
      }
    }
    if (e.callbacks.on_failure)
      calls.push_back([cb = e.callbacks.on_failure, ec, reason] { cb(ec, reason); });
  }

  transfer::Config engine_config() const {
    transfer::Config c;
    c.chunk_size = options.chunk_size;
    c.idle_timeout = options.idle_timeout;
    c.max_receive_size = options.max_receive_size;
    return c;
  }

  // Takes `id` for a new transfer, unless it is in use. A receiving one
  // that may hash on a thread of its own asks for one of those too (only
  // active receivers count: they drop their hasher when they finish).
  bool reserve(std::uint64_t id, bool wants_hashing_thread, bool* got_hashing_thread = nullptr) {
    std::lock_guard lock(registry_mutex);
    if (registry.contains(id)) return false;
    Slot slot;
    if (wants_hashing_thread) {
      const auto busy = std::count_if(registry.begin(), registry.end(), [](const auto& entry) {
        return entry.second.active && entry.second.hashing;
      });
      slot.hashing = static_cast<std::size_t>(busy) < options.max_hashing_threads;
      *got_hashing_thread = slot.hashing;
    }
    registry.emplace(id, slot);
    return true;
  }

  void release(std::uint64_t id) {
    std::lock_guard lock(registry_mutex);
    registry.erase(id);
  }

  // Hands a transfer built on the calling thread to the strand.
  void add(std::unique_ptr<Entry> e, bool is_sender) {
    asio::post(strand, [self = shared_from_this(), e = std::move(e), is_sender]() mutable {
      // Stopped before it got here: it leaves what a stop leaves.
      if (self->halted()) {
        self->leave_partial(*e);
        return;
      }
      const auto id = e->id;
      if (e->legacy_receiver) self->claim_held(*e, Clock::now());
      (e->legacy() ? self->legacy
       : is_sender ? self->sending
                   : self->receiving)
          .emplace(id, std::move(e));
      if (self->cancelled_early.erase(id) != 0) {
        self->cancel(id);
        return;
      }
      self->kick();
    });
  }

  std::error_code send_file(std::uint64_t id, const transfer::Key& key,
                            const std::filesystem::path& path, const udp::endpoint& peer,
                            TransferCallbacks callbacks) {
    if (closing.load(std::memory_order_acquire)) return make_error_code(errc::invalid_argument);
    std::error_code ec;
    auto source = transfer::FileSource::open(path, ec);
    if (!source) return make_error_code(errc::no_such_file);
    if (!reserve(id, false)) return make_error_code(errc::invalid_argument);
    auto e = std::make_unique<Entry>();
    e->id = id;
    e->peer = normalise(peer);
    e->callbacks = std::move(callbacks);
    e->source_path = path;
    e->started = Clock::now();
    e->sender.emplace(transfer::TransferParams{id, key, source->size()}, *source, engine_config(),
                      e->started);
    e->source = std::move(source);
    add(std::move(e), true);
    return {};
  }

  std::unique_ptr<Entry> receiving_entry(const IncomingTransfer& in, TransferCallbacks callbacks) {
    auto e = std::make_unique<Entry>();
    e->id = in.transfer_id;
    e->peer = normalise(in.sender_endpoint);
    e->callbacks = std::move(callbacks);
    e->sha256 = in.sha256;
    e->started = Clock::now();
    return e;
  }

  // A file the ring holds whole is hashed inline: a thread is not worth it.
  bool wants_hashing_thread(const IncomingTransfer& in) const {
    return in.size <= options.max_receive_size &&
           in.size > transfer::BackgroundHasher::default_ring_bytes;
  }

  // Starts the Receiver on e.sink_holder, or refuses a file over the limit
  // without touching the sink (the Receiver only tells the peer).
  void start_receiver(Entry& e, const IncomingTransfer& in, bool hashing_thread,
                      std::span<const transfer::ByteRange> have = {}) {
    const transfer::TransferParams params{in.transfer_id, in.key, in.size};
    if (in.size > options.max_receive_size) {
      e.sink_holder = std::make_unique<NullSink>();
      e.receiver.emplace(params, in.sha256, *e.sink_holder, engine_config(), e.started);
      return;
    }
    std::unique_ptr<transfer::FileHasher> hasher;
    if (hashing_thread) {
      try {
        hasher = std::make_unique<transfer::BackgroundHasher>();
        e.hashing_thread = true;
      } catch (const std::system_error&) {
        // No thread to be had (or no memory for the ring): hash inline.
      } catch (const std::bad_alloc&) {
      }
      std::lock_guard lock(registry_mutex);
      registry[e.id].hashing = e.hashing_thread;
      if (e.hashing_thread) ++published.hashed_on_own_thread;
    }
    e.receiver.emplace(params, in.sha256, *e.sink_holder, engine_config(), e.started, have,
                       std::move(hasher));
    e.saved_bytes = e.receiver->progress().done;
  }

  std::error_code expect_file(const IncomingTransfer& in, TransferCallbacks callbacks) {
    if (closing.load(std::memory_order_acquire)) return make_error_code(errc::invalid_argument);
    bool hashing_thread = false;
    if (!reserve(in.transfer_id, wants_hashing_thread(in), &hashing_thread))
      return make_error_code(errc::invalid_argument);
    auto e = receiving_entry(in, std::move(callbacks));
    std::vector<transfer::ByteRange> have;
    if (in.size <= options.max_receive_size) {
      e->paths = transfer::receive_paths(options.download_dir, in.sender_name, in.file_name,
                                         in.size, in.sha256);
      have = transfer::load_ranges(e->paths.record, in.size, in.sha256);
      std::error_code ec;
      const auto partial_size = std::filesystem::file_size(e->paths.partial, ec);
      if (ec) have.clear();
      std::erase_if(have, [&](const transfer::ByteRange& r) { return r.end > partial_size; });
      auto sink = transfer::FileSink::open(e->paths, !have.empty(), ec);
      if (!sink) {
        release(in.transfer_id);
        return make_error_code(errc::disk_error);
      }
      e->file_sink = sink.get();
      e->sink_holder = std::move(sink);
    }
    start_receiver(*e, in, hashing_thread, have);
    add(std::move(e), false);
    return {};
  }

  std::error_code expect_file(const IncomingTransfer& in, std::unique_ptr<transfer::ChunkSink> sink,
                              TransferCallbacks callbacks) {
    if (closing.load(std::memory_order_acquire) || !sink)
      return make_error_code(errc::invalid_argument);
    bool hashing_thread = false;
    if (!reserve(in.transfer_id, wants_hashing_thread(in), &hashing_thread))
      return make_error_code(errc::invalid_argument);
    auto e = receiving_entry(in, std::move(callbacks));
    e->sink_holder = std::move(sink);
    start_receiver(*e, in, hashing_thread);
    add(std::move(e), false);
    return {};
  }

  std::error_code decline(const IncomingTransfer& in) {
    if (closing.load(std::memory_order_acquire)) return make_error_code(errc::invalid_argument);
    if (!reserve(in.transfer_id, false)) return make_error_code(errc::invalid_argument);
    {
      std::lock_guard lock(registry_mutex);
      registry[in.transfer_id].active = false;
    }
    auto e = receiving_entry(in, {});
    e->sink_holder = std::make_unique<NullSink>();
    e->receiver.emplace(transfer::TransferParams{in.transfer_id, in.key, in.size}, in.sha256,
                        *e->sink_holder, engine_config(), e->started);
    e->receiver->decline(e->started);
    add(std::move(e), false);
    return {};
  }

  // An id for a legacy transfer, which has none from the server: any free
  // one (the server's are random 64-bit numbers, so they never meet).
  std::uint64_t reserve_legacy() {
    for (;;) {
      const auto id = next_legacy_id.fetch_add(1);
      if (reserve(id, false)) return id;
    }
  }

  std::error_code expect_legacy_file(const LegacyIncoming& in, TransferCallbacks callbacks) {
    if (closing.load(std::memory_order_acquire)) return make_error_code(errc::invalid_argument);
    const auto id = reserve_legacy();
    auto e = std::make_unique<Entry>();
    e->id = id;
    e->peer = normalise({in.sender_address, 0});
    e->peer_fixed = false;
    e->legacy_header = transfer::legacy::header(in.sender_name, in.file_name);
    e->callbacks = std::move(callbacks);
    e->started = Clock::now();
    e->paths = transfer::legacy_receive_paths(options.download_dir, in.sender_name, in.file_name);
    std::error_code ec;
    auto sink = transfer::FileSink::open(e->paths, false, ec);
    if (!sink) {
      release(id);
      return make_error_code(errc::disk_error);
    }
    e->file_sink = sink.get();
    e->sink_holder = std::move(sink);
    e->legacy_receiver.emplace(e->legacy_header, in.sender_name, *e->sink_holder,
                               options.max_receive_size, options.idle_timeout, e->started);
    add(std::move(e), false);
    return {};
  }

  std::error_code send_legacy_file(const std::filesystem::path& path, const udp::endpoint& peer,
                                   std::string_view sender_name, TransferCallbacks callbacks) {
    if (closing.load(std::memory_order_acquire)) return make_error_code(errc::invalid_argument);
    const auto name = path.filename().string();
    if (transfer::legacy::header_problem(sender_name, name))
      return make_error_code(errc::invalid_argument);
    std::error_code ec;
    auto source = transfer::FileSource::open(path, ec);
    if (!source) return make_error_code(errc::no_such_file);
    const auto id = reserve_legacy();
    auto e = std::make_unique<Entry>();
    e->id = id;
    e->peer = normalise(peer);
    e->callbacks = std::move(callbacks);
    e->source_path = path;
    e->started = Clock::now();
    e->legacy_sender.emplace(transfer::legacy::header(sender_name, name), *source, source->size(),
                             options.legacy_send_rate, e->started);
    e->source = std::move(source);
    add(std::move(e), true);
    return {};
  }

  void cancel(std::uint64_t id) {
    const auto now = Clock::now();
    bool found = false;
    for (auto* map : {&sending, &receiving}) {
      if (auto it = map->find(id); it != map->end()) {
        it->second->cancel(now);
        found = true;
      }
    }
    if (!found) {
      std::lock_guard lock(registry_mutex);
      // Accepted, and its entry still on its way to the strand.
      if (registry.contains(id)) cancelled_early.insert(id);
    }
    kick();
  }

  // The destructor's part: no callback after it returns, then stop on the
  // strand (here and now when already on it).
  void close() {
    gate.close();
    closing.store(true, std::memory_order_release);
    if (strand.running_in_this_thread()) {
      stop();
      return;
    }
    asio::post(strand, [self = shared_from_this()] { self->stop(); });
  }
};

struct FileTransfer::Runner {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
};

FileTransfer::FileTransfer(asio::any_io_executor executor, const udp::endpoint& bind,
                           TransferOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), bind, std::move(options))) {
  impl_->arm_read();
}

FileTransfer::FileTransfer(asio::io_context& io, const udp::endpoint& bind, TransferOptions options)
    : FileTransfer(io.get_executor(), bind, std::move(options)) {}

FileTransfer::FileTransfer(const udp::endpoint& bind, TransferOptions options)
    : runner_(std::make_shared<Runner>()) {
  impl_ = std::make_shared<Impl>(runner_->io.get_executor(), bind, std::move(options));
  impl_->arm_read();
  // The thread holds the Runner too, so that it can outlive a destructor
  // that runs in one of its callbacks and cannot join it.
  runner_->thread = std::thread([runner = runner_] { runner->io.run(); });
}

FileTransfer::~FileTransfer() {
  impl_->close();
  if (!runner_) return;
  runner_->work.reset();
  if (runner_->thread.get_id() == std::this_thread::get_id()) {
    runner_->thread.detach();
    return;
  }
  runner_->thread.join();
}

FileTransfer::executor_type FileTransfer::get_executor() const noexcept {
  return impl_->strand;
}

std::uint16_t FileTransfer::local_port() const noexcept {
  return impl_->bound.port();
}

udp::endpoint FileTransfer::local_endpoint() const noexcept {
  return impl_->bound;
}

// A call that starts work may see a callback of that work destroy this
// FileTransfer on another thread before the call returns: it holds the
// Impl (its strand) and the owned io_context until then.
FileTransfer::Hold FileTransfer::hold() const {
  return {impl_, runner_};
}

std::error_code FileTransfer::send_file(std::uint64_t transfer_id, const transfer::Key& key,
                                        const std::filesystem::path& path,
                                        const udp::endpoint& peer, TransferCallbacks callbacks) {
  const auto held = hold();
  return held.first->send_file(transfer_id, key, path, peer, std::move(callbacks));
}

std::error_code FileTransfer::expect_file(const IncomingTransfer& incoming,
                                          TransferCallbacks callbacks) {
  const auto held = hold();
  return held.first->expect_file(incoming, std::move(callbacks));
}

std::error_code FileTransfer::expect_file(const IncomingTransfer& incoming,
                                          std::unique_ptr<transfer::ChunkSink> sink,
                                          TransferCallbacks callbacks) {
  const auto held = hold();
  return held.first->expect_file(incoming, std::move(sink), std::move(callbacks));
}

std::error_code FileTransfer::expect_legacy_file(const LegacyIncoming& incoming,
                                                 TransferCallbacks callbacks) {
  const auto held = hold();
  return held.first->expect_legacy_file(incoming, std::move(callbacks));
}

std::error_code FileTransfer::send_legacy_file(const std::filesystem::path& path,
                                               const udp::endpoint& peer,
                                               std::string_view sender_name,
                                               TransferCallbacks callbacks) {
  const auto held = hold();
  return held.first->send_legacy_file(path, peer, sender_name, std::move(callbacks));
}

std::error_code FileTransfer::decline(const IncomingTransfer& incoming) {
  const auto held = hold();
  return held.first->decline(incoming);
}

void FileTransfer::cancel(std::uint64_t transfer_id) {
  const auto held = hold();
  held.first->on_strand([transfer_id](Impl& impl) { impl.cancel(transfer_id); });
}

std::size_t FileTransfer::active() const {
  std::lock_guard lock(impl_->registry_mutex);
  return static_cast<std::size_t>(
      std::count_if(impl_->registry.begin(), impl_->registry.end(),
                    [](const auto& entry) { return entry.second.active; }));
}

FileTransferStats FileTransfer::stats() const {
  std::lock_guard lock(impl_->registry_mutex);
  return impl_->published;
}

}  // namespace tessenger
