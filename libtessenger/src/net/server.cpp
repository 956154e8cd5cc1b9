#include <tessenger/server.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <asio/bind_executor.hpp>
#include <asio/post.hpp>
#include <asio/ssl.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include "cluster/node.hpp"
#include "cluster/redis_store.hpp"
#include "core/counters.hpp"
#include "core/credentials.hpp"
#include "core/hub.hpp"
#include "core/log_store.hpp"
#include "core/presence.hpp"
#include "legacy/translator.hpp"
#include "net/callback_gate.hpp"

namespace tessenger {
namespace {

using asio::ip::tcp;
using Strand = asio::strand<asio::any_io_executor>;

constexpr std::size_t read_buffer_size = 64 * 1024;
// An idle connection reads into a few hundred bytes of its own; one whose
// read filled them gets a large buffer until a read would have fitted the
// small one again. Only busy connections hold a large buffer, so a server
// full of idle sessions stays small.
constexpr std::size_t small_read_size = 512;
// How long a closing connection may live, whatever its peer does: the time
// to write what is queued and to wait for the peer's close, so that a last
// reply is not lost to a reset. A peer that never reads cannot hold it open.
constexpr auto linger_time = std::chrono::seconds(2);
// glibc keeps freed memory in its arenas, where the buffers of thousands of
// connections gone at once stay resident: it is handed back (malloc_trim)
// after this many closes or this many bytes of their buffers, at most once
// a second, since a trim walks the whole heap on the strand.
constexpr std::size_t trim_after_closes = 256;
constexpr std::uint64_t trim_after_bytes = 16 * 1024 * 1024;
constexpr auto trim_interval = std::chrono::seconds(1);
// TCP keepalive for sessions that cannot be pinged (protocol version 1):
// probes every 5 s after the idle time, 3 unanswered ones close.
constexpr int keepalive_interval_seconds = 5;
constexpr int keepalive_probes = 3;
// The original client prints each read as one reply: two replies to it
// leave this far apart, so that its reads do not join them.
constexpr auto legacy_reply_gap = std::chrono::milliseconds(20);
// Reads of a legacy peer held while its login is decided (each is a command).
constexpr std::size_t max_legacy_parked = 32;

std::string printable_address(const tcp::endpoint& endpoint) {
  auto address = endpoint.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return address.to_string();
}

// The first bytes of a TLS ClientHello: a handshake record of TLS 1.x.
bool looks_like_tls(std::span<const std::byte> input) {
  return input.size() >= 2 && input[0] == std::byte{0x16} && input[1] == std::byte{0x03};
}

void random_bytes(std::span<std::uint8_t> out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    throw std::runtime_error("the system random generator failed");
  }
}

void set_keepalive(tcp::socket& socket, std::uint32_t idle_seconds) {
  std::error_code ec;
  socket.set_option(asio::socket_base::keep_alive(true), ec);
  const int fd = socket.native_handle();
  const int idle = static_cast<int>(std::max<std::uint32_t>(idle_seconds, 1));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &keepalive_interval_seconds,
               sizeof keepalive_interval_seconds);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &keepalive_probes, sizeof keepalive_probes);
}

// Repeated warnings are logged at the 1st, 10th, 100th... occurrence.
bool worth_logging(std::uint64_t count) noexcept {
  while (count % 10 == 0)
    count /= 10;
  return count == 1;
}

// The payload length a frame header declares (docs/protocol.md §1: the
// first four bytes, big-endian).
std::size_t declared_length(std::span<const std::byte, protocol::header_size> header) {
  std::size_t length = 0;
  for (std::size_t i = 0; i < 4; ++i)
    length = (length << 8) | std::to_integer<std::size_t>(header[i]);
  return length;
}

// Asio's system category does not compare equal to std::errc values;
// embedders expect `ec == std::errc::address_in_use` to work.
std::error_code portable(std::error_code error) {
  return error.category() == asio::system_category()
             ? std::error_code(error.value(), std::system_category())
             : error;
}

}  // namespace

class Server::Impl final : public std::enable_shared_from_this<Server::Impl>,
                           public core::Outbox,
                           public core::PasswordChecker {
 public:
  Impl(const asio::any_io_executor& executor, ServerConfig config, ServerObserver observer)
      : strand_(asio::make_strand(executor)),
        acceptor_(strand_),
        expiry_(strand_),
        accept_retry_(strand_),
        trim_(strand_),
        config_(std::move(config)),
        observer_(std::move(observer)),
        clock_(config_.clock ? config_.clock : system_clock()),
        store_(config_.store ? config_.store : make_memory_store()) {
    // Every call into the embedder's code goes through the gate.
    if (config_.log.write) {
      config_.log.write = [gate = gate_, write = std::move(config_.log.write)](
                              LogLevel level, std::string_view text) {
        gate->run(write, level, text);
      };
    }
  }

  void start(std::error_code& ec, std::string* what);
  void stop();
  /// From the destructor: no user callback runs once this returns.
  void detach() { gate_->close(); }
  void set_observer(ServerObserver observer);
  ServerStats stats() const;

  std::atomic<std::uint16_t> port{0};
  std::atomic<std::size_t> connections{0};
  const std::string& bind_address() const noexcept { return config_.bind_address; }

 private:
  // A connection's life: handshaking (TLS only) -> open -> closing (writes
  // what is queued) -> lingering (sent FIN, waits for the peer's) -> closed.
  // Closing and lingering together last at most linger_time.
  enum class State { handshaking, open, closing, lingering, closed };

  struct Connection {
    Connection(Strand& strand, tcp::socket s, core::SessionId session_id, const Limits& limits)
        : socket(std::move(s)), id(session_id), decoder(limits), linger(strand) {}
    tcp::socket socket;
    core::SessionId id;
    State state = State::open;
    std::uint8_t version = protocol::version;
    protocol::Decoder decoder;
    asio::steady_timer linger;
    std::array<std::byte, small_read_size> small_read;
    std::unique_ptr<std::byte[]> large_read;  // while the connection is busy
    std::span<std::byte> read_space() noexcept;
    std::vector<std::byte> pending;   // frames waiting for the next write
    std::vector<std::byte> inflight;  // frames being written
    // Byte counts since the connection opened: pending holds
    // [moved, queued); bytes below `released` may leave, the rest wait for
    // the log lines written with them (a reply is sent once it is logged).
    std::uint64_t queued = 0;
    std::uint64_t moved = 0;
    std::uint64_t released = 0;
    std::vector<std::byte> parked;  // input held while the hub wants none
    // The frame the decoder holds unfinished: bytes fed into it, its header,
    // and what it costs (the decoder reserves the whole frame once it has the
    // header); `partial_order` is its key in partials_ while that is not 0.
    std::size_t partial_fed = 0;
    std::array<std::byte, protocol::header_size> partial_header{};
    std::size_t partial_held = 0;
    std::uint64_t partial_order = 0;
    Clock::Steady linger_deadline;  // on the server's clock, once closing
    std::string address;
    std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls;  // over `socket`, on a TLS server
    std::shared_ptr<std::atomic<bool>> check_cancelled;    // while a password check runs
    // Operations in flight and batching, not states.
    bool reading = false;
    bool writing = false;
    bool dirty = false;
    bool drain_wanted = false;  // the hub waits for `pending` to be written out
    bool abort = false;         // drop at the next flush without writing
    bool any_input = false;
    // The original client's text protocol (docs/legacy.md), once its first
    // byte said so.
    std::unique_ptr<legacy::Translator> legacy;
    std::deque<std::size_t> legacy_cuts;    // sizes of the replies in `pending`, in order
    std::deque<std::string> legacy_parked;  // reads held while the hub wants none
    std::unique_ptr<asio::steady_timer> legacy_gap;
    bool legacy_pausing = false;
    bool legacy_closing = false;  // its close is asked for: input is ignored
  };
  using ConnectionPtr = std::shared_ptr<Connection>;

  core::Instant now() const;
  void accept();
  void on_accept(tcp::socket socket);
  void refuse(tcp::socket& socket);
  void handshake(const ConnectionPtr& connection);
  bool load_tls(std::error_code& ec, std::string& what);
  void read(const ConnectionPtr& connection);
  void on_read(const ConnectionPtr& connection, std::size_t length);
  void consume(const ConnectionPtr& connection, std::span<const std::byte> input);
  void start_legacy(const ConnectionPtr& connection);
  void refuse_legacy(const ConnectionPtr& connection, std::string_view line);
  void consume_legacy(const ConnectionPtr& connection, std::string text);
  void queue_legacy(Connection& connection, legacy::Output out);
  void legacy_sent(Connection& connection, std::size_t bytes);
  void pause_legacy(const ConnectionPtr& connection);
  bool wants_read(const Connection& connection) const;
  void flush(const ConnectionPtr& connection);
  void after_work();
  // Joins the cluster, handing what other nodes send to the hub.
  void start_node(std::string name);
  void arm_expiry();
  void on_expiry();
  void schedule_after_work();
  void release(const std::vector<std::pair<ConnectionPtr, std::uint64_t>>& batch);
  void drop(const ConnectionPtr& connection);
  void wait_linger(const ConnectionPtr& connection);
  void end_lingers();
  void note_partial(Connection& connection, std::span<const std::byte> fed);
  void set_partial(Connection& connection, std::size_t held);
  void forget_partial(Connection& connection);
  void bound_incomplete_frames();
  void give_memory_back(const Connection& connection);
  void trim_later();
  // The adapter's warnings go through the hub's limiter, keyed by their
  // format, so a flood of one kind is summarised like the hub's own.
  template <typename... Args>
  void warn(fmt::format_string<Args...> format, Args&&... args) {
    if (!config_.log.enabled(LogLevel::warn)) return;
    const auto text = fmt::format(format, std::forward<Args>(args)...);
    if (hub_) {
      hub_->log(fmt::string_view(format).data(), LogLevel::warn, text);
    } else {
      config_.log.write(LogLevel::warn, text);
    }
  }
  core::Completions::Post poster();
  ServerObserver gated(ServerObserver observer) const;

  // core::Outbox
  void send(core::SessionId to, const protocol::Message& message) override;
  void send_to_many(std::span<const core::SessionId> to, const protocol::Message& message) override;
  void negotiated(core::SessionId session, std::uint8_t version) override;
  void close(core::SessionId session, errc reason) override;
  void resume(core::SessionId session) override;
  std::size_t backlog(core::SessionId session) const override;
  void notify_drained(core::SessionId session) override;
  bool queued(Connection& connection);
  Connection* writable(core::SessionId id);

  // core::PasswordChecker
  void check(core::SessionId session, std::string username, std::string password) override;
  void on_checked(core::SessionId session, bool ok);

  Strand strand_;
  tcp::acceptor acceptor_;
  asio::steady_timer expiry_;
  std::optional<std::chrono::steady_clock::time_point> expiry_armed_;
  asio::steady_timer accept_retry_;
  asio::steady_timer trim_;
  bool trim_armed_ = false;
  std::chrono::steady_clock::time_point last_trim_{};
  std::size_t closed_since_trim_ = 0;
  std::uint64_t freed_since_trim_ = 0;
  ServerConfig config_;
  ServerObserver observer_;
  std::shared_ptr<net::CallbackGate> gate_ = std::make_shared<net::CallbackGate>();
  std::shared_ptr<Clock> clock_;
  Clock::Subscription clock_jumps_;
  std::shared_ptr<Store> store_;
  core::LocalPresence presence_;
  std::unique_ptr<cluster::Node> node_;               // in a cluster: presence and routing
  std::shared_ptr<cluster::RedisStore> redis_store_;  // in a cluster: store_
  std::unique_ptr<core::FileLogStore> logs_;
  std::shared_ptr<const Authenticator> authenticator_;
  std::optional<asio::ssl::context> tls_context_;
  std::unique_ptr<core::Hub> hub_;
  std::unordered_map<core::SessionId, ConnectionPtr> connections_;
  std::vector<ConnectionPtr> dirty_;
  std::vector<ConnectionPtr> paused_;  // not reading while the log writer is behind
  std::array<std::vector<std::byte>, protocol::version + 1> shared_frames_;  // by version
  bool after_work_scheduled_ = false;
  std::uint64_t pending_total_ = 0;  // bytes queued or being written, all connections
  // Unfinished frames, the one unfinished longest first.
  std::map<std::uint64_t, core::SessionId> partials_;
  std::uint64_t next_partial_order_ = 1;
  std::uint64_t incomplete_total_ = 0;  // bytes they hold
  core::SessionId next_id_ = 1;
  bool stopping_ = false;

  struct Counters {
    core::Counter accepted;
    core::Counter closing;
    core::Counter bytes_received;
    core::Counter bytes_sent;
    core::Counter pending_write_bytes;
    core::Counter parked_input_bytes;
    core::Counter incomplete_frame_bytes;
    core::Counter incomplete_frame_drops;
    core::Counter store_operations;
    core::Counter protocol_errors;
    core::Counter slow_consumers;
  } counters_;
};

struct Server::OwnedContext {
  asio::io_context io{1};
  std::thread thread;

  void join() {
    if (!thread.joinable()) return;
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();
    } else {
      thread.join();
    }
  }
};

core::Instant Server::Impl::now() const {
  using namespace std::chrono;
  return {clock_->steady(), duration_cast<microseconds>(clock_->wall().time_since_epoch()).count()};
}

core::Completions::Post Server::Impl::poster() {
  // Results of the store come back here: each batch is followed by the
  // writes and the timer it caused, like any other work on the strand.
  return [weak = weak_from_this(), strand = strand_](std::function<void()> task) {
    asio::post(strand, [weak, task = std::move(task)] {
      const auto self = weak.lock();
      if (!self) return;
      task();
      self->after_work();
    });
  };
}

ServerObserver Server::Impl::gated(ServerObserver observer) const {
  auto wrap = [this](auto& callback) {
    if (!callback) return;
    callback = [gate = gate_, inner = std::move(callback)](auto&&... args) {
      gate->run(inner, std::forward<decltype(args)>(args)...);
    };
  };
  wrap(observer.on_login);
  wrap(observer.on_logout);
  wrap(observer.on_direct_message);
  wrap(observer.on_group_created);
  wrap(observer.on_group_joined);
  wrap(observer.on_group_message);
  return observer;
}

void Server::Impl::start(std::error_code& ec, std::string* what) {
  auto fail = [&](std::error_code error, std::string message) {
    ec = portable(error);
    if (what) *what = std::move(message);
  };
  if (config_.max_attempts < 1 || config_.max_attempts > 1000) {
    return fail(make_error_code(errc::invalid_argument),
                fmt::format("max_attempts {} is out of range (1-1000)", config_.max_attempts));
  }
  const auto address = asio::ip::make_address(config_.bind_address, ec);
  if (ec) return fail(ec, fmt::format("invalid address '{}'", config_.bind_address));

  try {
    authenticator_ = config_.authenticator
                         ? config_.authenticator
                         : load_credentials_file(config_.credentials_file, config_.log);
    const auto* table = dynamic_cast<const core::TableAuthenticator*>(authenticator_.get());
    if (!config_.authenticator && table != nullptr && table->plain_count() != 0) {
      warn(
          "{}: {} of {} accounts have a plain-text password; replace each line with "
          "the one `tessenger-server --hash-password USER` prints",
          config_.credentials_file.string(), table->plain_count(), table->size());
    }
    logs_ = std::make_unique<core::FileLogStore>(config_.data_dir, config_.log);
    if (!config_.cluster.empty()) {
      std::string problem;
      auto redis = cluster::parse_redis_url(config_.cluster, problem);
      if (!redis) return fail(make_error_code(errc::invalid_argument), problem);
      if (!cluster::Node::reachable(*redis, std::chrono::seconds(2), problem))
        return fail(make_error_code(errc::service_unavailable), problem);
      cluster::NodeOptions options;
      options.endpoint = std::move(*redis);
      options.name = config_.node_name;
      options.log = config_.log;
      node_ = std::make_unique<cluster::Node>(strand_, std::move(options));
      // No node named: every node with a recipient online, this one too, is
      // told through Redis, so that each hears of stored messages in id order.
      redis_store_ = std::make_shared<cluster::RedisStore>(
          node_->commands(), strand_, cluster::RedisStoreOptions{node_->prefix(), {}});
      store_ = redis_store_;
    }
    core::Presence& presence = node_ ? static_cast<core::Presence&>(*node_) : presence_;
    hub_ = std::make_unique<core::Hub>(
        core::HubConfig{config_.max_attempts, config_.block_duration, config_.limits,
                        config_.software, std::chrono::milliseconds(2000), config_.history_days,
                        config_.history_max},
        core::HubParts{authenticator_, *logs_, *store_, presence, *this, poster(), random_bytes,
                       config_.offload ? static_cast<core::PasswordChecker*>(this) : nullptr,
                       config_.log, node_.get()});
    hub_->set_observer(gated(std::move(observer_)));
  } catch (const std::system_error& e) {
    return fail(e.code(), e.what());
  }

  if (std::string problem; !load_tls(ec, problem)) return fail(ec, problem);
  if (!tls_context_ && !address.is_loopback()) {
    warn(
        "listening on {} without TLS: passwords and messages cross the network in "
        "clear (see --tls-cert and --tls-key)",
        config_.bind_address);
  }

  const tcp::endpoint endpoint(address, config_.port);
  const auto where = endpoint.address().is_v6()
                         ? fmt::format("[{}]:{}", config_.bind_address, config_.port)
                         : fmt::format("{}:{}", config_.bind_address, config_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor_.close();
    return fail(ec, fmt::format("cannot listen on {}: {}", where, ec.message()));
  }
  port = acceptor_.local_endpoint().port();
  if (node_) start_node(fmt::format("{}:{}", config_.bind_address, port));
  clock_jumps_ = clock_->on_jump([weak = weak_from_this(), strand = strand_] {
    asio::post(strand, [weak] {
      const auto self = weak.lock();
      if (!self) return;
      self->end_lingers();
      self->on_expiry();
    });
  });
  asio::post(strand_, [self = shared_from_this()] { self->accept(); });
}

bool Server::Impl::load_tls(std::error_code& ec, std::string& what) {
  const auto& certificate = config_.tls_certificate;
  const auto& key = config_.tls_private_key;
  if (certificate.empty() && key.empty()) return true;
  if (certificate.empty() || key.empty()) {
    ec = make_error_code(errc::invalid_argument);
    what = "TLS needs both a certificate and a private key";
    return false;
  }
  auto& context = tls_context_.emplace(asio::ssl::context::tls_server);
  context.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1);
  context.use_certificate_chain_file(certificate.string(), ec);
  if (ec) {
    what =
        fmt::format("cannot load the TLS certificate '{}': {}", certificate.string(), ec.message());
    return false;
  }
  // OpenSSL also checks here that the key belongs to the certificate.
  context.use_private_key_file(key.string(), asio::ssl::context::pem, ec);
  if (ec) {
    what = fmt::format("cannot load the TLS private key '{}': {}", key.string(), ec.message());
    return false;
  }
  return true;
}

void Server::Impl::set_observer(ServerObserver observer) {
  asio::post(strand_, [self = shared_from_this(), observer = std::move(observer)]() mutable {
    if (self->hub_) {
      self->hub_->set_observer(self->gated(std::move(observer)));
    } else {
      self->observer_ = std::move(observer);
    }
  });
}

ServerStats Server::Impl::stats() const {
  ServerStats s;
  s.connections = connections.load(std::memory_order_relaxed);
  s.closing = counters_.closing.get();
  s.pending_write_bytes = counters_.pending_write_bytes.get();
  s.parked_input_bytes = counters_.parked_input_bytes.get();
  s.incomplete_frame_bytes = counters_.incomplete_frame_bytes.get();
  s.incomplete_frame_drops = counters_.incomplete_frame_drops.get();
  s.store_operations = counters_.store_operations.get();
  s.connections_accepted = counters_.accepted.get();
  s.bytes_received = counters_.bytes_received.get();
  s.bytes_sent = counters_.bytes_sent.get();
  s.protocol_errors = counters_.protocol_errors.get();
  s.slow_consumers = counters_.slow_consumers.get();
  // The hub exists from start() on; before it every total is 0.
  if (!port.load()) return s;
  const auto& hub = hub_->counters();
  s.sessions_online = hub.online.get();
  s.connections_refused = hub.connections_refused.get();
  s.logins = hub.logins.get();
  s.failed_logins = hub.failed_logins.get();
  s.blocks = hub.blocks.get();
  s.direct_messages = hub.direct_messages.get();
  s.group_messages = hub.group_messages.get();
  s.group_deliveries = hub.group_deliveries.get();
  s.rate_limited = hub.rate_limited.get();
  s.login_timeouts = hub.login_timeouts.get();
  s.pings_sent = hub.pings_sent.get();
  s.ping_timeouts = hub.ping_timeouts.get();
  s.login_probes = hub.login_probes.get();
  s.unsupported_requests = hub.unsupported_requests.get();
  s.store_failures = hub.store_failures.get();
  return s;
}

void Server::Impl::accept() {
  acceptor_.async_accept(strand_,
                         [self = shared_from_this()](std::error_code ec, tcp::socket socket) {
                           if (ec == asio::error::operation_aborted || !self->acceptor_.is_open())
                             return;
                           if (ec) {
                             // Typically EMFILE: back off instead of spinning on a full descriptor
                             // table.
                             self->warn("accept failed: {}", ec.message());
                             self->accept_retry_.expires_after(std::chrono::milliseconds(100));
                             self->accept_retry_.async_wait([self](std::error_code wait_error) {
                               if (!wait_error) self->accept();
                             });
                             return;
                           }
                           self->on_accept(std::move(socket));
                           self->after_work();
                           self->accept();
                         });
}

void Server::Impl::on_accept(tcp::socket socket) {
  std::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return;
  const auto id = next_id_++;
  auto address = printable_address(peer);
  if (!hub_->connected(id, address, now())) {
    refuse(socket);
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  set_keepalive(socket, config_.limits.idle_ping_seconds ? config_.limits.idle_ping_seconds : 30);
  // flush() sends what it can at once and leaves only the rest to Asio.
  socket.non_blocking(true, ec);
  auto connection = std::make_shared<Connection>(strand_, std::move(socket), id, config_.limits);
  connection->address = std::move(address);
  connections_.emplace(connection->id, connection);
  ++connections;
  counters_.accepted.add();
  if (tls_context_) {
    handshake(connection);
  } else {
    read(connection);
  }
}

// Looks at the first byte before the handshake: a client that speaks plain
// TESSENGER to a TLS port is told so in its own protocol, as web servers
// answer plain HTTP sent to an HTTPS port, instead of a TLS alert it cannot
// read.
void Server::Impl::handshake(const ConnectionPtr& connection) {
  connection->state = State::handshaking;
  connection->socket.async_receive(
      asio::buffer(connection->read_space().data(), 1), tcp::socket::message_peek,
      [self = shared_from_this(), connection](std::error_code ec, std::size_t length) {
        if (connection->state != State::handshaking) return;
        if (ec || length == 0) return self->drop(connection);
        // Every TLS connection opens with a handshake record (0x16); no
        // TESSENGER frame can, as its length would be far above the limit.
        const auto first = connection->read_space()[0];
        if (first != std::byte{0x16} && legacy::starts_legacy(first)) {
          connection->state = State::open;
          if (!self->config_.legacy || !self->config_.allow_legacy_plaintext) {
            self->refuse_legacy(connection,
                                self->config_.legacy
                                    ? "error: this server requires TLS, which this client cannot "
                                      "speak. Closing connection."
                                    : "error: this server does not serve the original client. "
                                      "Closing connection.");
          }
          return self->read(connection);
        }
        if (first != std::byte{0x16}) {
          connection->state = State::open;
          self->warn("{}: a client without TLS on a TLS port; told so and closed",
                     connection->address);
          self->send(connection->id,
                     protocol::ShutdownEvent{static_cast<std::uint16_t>(errc::unsupported_version),
                                             "the server requires TLS"});
          self->hub_->close(connection->id, errc::unsupported_version);
          self->after_work();
          return self->read(connection);
        }
        connection->tls = std::make_unique<asio::ssl::stream<tcp::socket&>>(connection->socket,
                                                                            *self->tls_context_);
        connection->tls->async_handshake(
            asio::ssl::stream_base::server, [self, connection](std::error_code error) {
              if (connection->state != State::handshaking) return;
              if (error) {
                self->warn("{}: TLS handshake failed: {}", connection->address, error.message());
                return self->drop(connection);
              }
              connection->state = State::open;
              self->read(connection);
            });
      });
}

// A connection over a limit costs no buffers and no timer: one attempt to
// say why, then the descriptor is released at once.
void Server::Impl::refuse(tcp::socket& socket) {
  const auto notice = protocol::encode(protocol::ShutdownEvent{
      static_cast<std::uint16_t>(errc::limit_reached), "too many connections"});
  std::error_code ec;
  socket.non_blocking(true, ec);
  // A TLS client could not read a notice sent in clear.
  if (!ec && !tls_context_) socket.write_some(asio::buffer(notice), ec);
  socket.close(ec);
}

std::span<std::byte> Server::Impl::Connection::read_space() noexcept {
  if (large_read) return {large_read.get(), read_buffer_size};
  return small_read;
}

bool Server::Impl::wants_read(const Connection& connection) const {
  return !connection.reading && connection.parked.size() < read_buffer_size &&
         connection.legacy_parked.size() < max_legacy_parked &&
         logs_->queued_bytes() < core::FileLogStore::recommended_max_queued_bytes &&
         (connection.state == State::open || connection.state == State::closing ||
          connection.state == State::lingering);
}

void Server::Impl::read(const ConnectionPtr& connection) {
  if (!wants_read(*connection)) {
    // The log writer is behind: read again once it has caught up.
    if (!connection->reading && connection->state != State::closed &&
        logs_->queued_bytes() >= core::FileLogStore::recommended_max_queued_bytes) {
      paused_.push_back(connection);
    }
    return;
  }
  auto space = connection->read_space();
  // The original server took each recv(2048) for one command.
  if (connection->legacy) space = space.first(std::min(space.size(), legacy::max_read));
  connection->reading = true;
  auto done = [self = shared_from_this(), connection](std::error_code ec, std::size_t length) {
    connection->reading = false;
    if (connection->state == State::closed) return;
    if (ec) return self->drop(connection);
    self->on_read(connection, length);
    self->after_work();
    self->read(connection);
  };
  const auto buffer = asio::buffer(space.data(), space.size());
  if (connection->tls) {
    connection->tls->async_read_some(buffer, std::move(done));
  } else {
    connection->socket.async_read_some(buffer, std::move(done));
  }
}

void Server::Impl::on_read(const ConnectionPtr& connection, std::size_t length) {
  const std::span<const std::byte> received(connection->read_space().data(), length);
  counters_.bytes_received.add(length);
  // A closing connection's input is read only to see the peer's close.
  if (connection->state != State::open) return;
  if (!connection->any_input && !tls_context_ && looks_like_tls(received)) {
    warn(
        "{}: a TLS handshake on a plain-TCP port: the client must connect without "
        "TLS, or the server needs --tls-cert and --tls-key",
        connection->address);
  }
  const bool first = !connection->any_input;
  connection->any_input = true;
  hub_->input(connection->id, now());
  if (first && legacy::starts_legacy(received.front())) {
    if (!config_.legacy) {
      return refuse_legacy(connection,
                           "error: this server does not serve the original client. Closing "
                           "connection.");
    }
    start_legacy(connection);
    std::string text(reinterpret_cast<const char*>(received.data()), length);
    // The first read went into the small buffer: the rest of that command,
    // if it has arrived, belongs to it (the original sent it in one piece).
    if (length == small_read_size) {
      std::array<char, legacy::max_read - small_read_size> more;
      std::error_code ec;
      const auto n = connection->socket.read_some(asio::buffer(more), ec);
      if (!ec) text.append(more.data(), n);
    }
    return consume_legacy(connection, std::move(text));
  }
  if (connection->legacy) {
    return consume_legacy(connection,
                          std::string(reinterpret_cast<const char*>(received.data()), length));
  }
  if (!connection->parked.empty() || !hub_->wants_input(connection->id)) {
    // Held back, in order, until the hub wants input again; reading goes on
    // (up to a bound) so that a close is seen.
    connection->parked.insert(connection->parked.end(), received.begin(), received.end());
    counters_.parked_input_bytes.add(length);
  } else {
    consume(connection, received);
  }
  if (length == small_read_size && !connection->large_read) {
    connection->large_read = std::make_unique_for_overwrite<std::byte[]>(read_buffer_size);
  } else if (length < small_read_size ||
             (length < read_buffer_size && !connection->decoder.idle())) {
    // Drained, or the peer stopped inside a frame, whose bytes the decoder
    // keeps: waiting for the rest needs no large buffer as well.
    connection->large_read.reset();
  }
}

void Server::Impl::consume(const ConnectionPtr& connection, std::span<const std::byte> input) {
  const auto instant = now();
  while (!input.empty() && connection->state == State::open) {
    if (!hub_->wants_input(connection->id)) {
      connection->parked.insert(connection->parked.begin(), input.begin(), input.end());
      counters_.parked_input_bytes.add(input.size());
      return;
    }
    auto result = connection->decoder.feed(input);
    note_partial(*connection, input.first(result.consumed));
    input = input.subspan(result.consumed);
    if (result.error) {
      warn("{}: protocol error: {}", connection->address, result.error.message());
      counters_.protocol_errors.add();
      hub_->protocol_error(connection->id, result.error);
      return;
    }
    if (result.message) hub_->handle(connection->id, *result.message, instant);
    if (result.unknown && result.unknown->request_id) {
      hub_->unsupported(connection->id, *result.unknown->request_id);
    }
  }
  bound_incomplete_frames();
}

void Server::Impl::note_partial(Connection& connection, std::span<const std::byte> fed) {
  if (connection.decoder.idle()) {
    connection.partial_fed = 0;
    return set_partial(connection, 0);
  }
  // Bytes fed without completing a frame are all in the decoder's buffer.
  auto& header = connection.partial_header;
  if (connection.partial_fed < header.size()) {
    const auto take = std::min(fed.size(), header.size() - connection.partial_fed);
    std::copy_n(fed.begin(), take,
                header.begin() + static_cast<std::ptrdiff_t>(connection.partial_fed));
  }
  connection.partial_fed += fed.size();
  set_partial(connection, connection.partial_fed < header.size()
                              ? connection.partial_fed
                              : header.size() + declared_length(header));
}

void Server::Impl::set_partial(Connection& connection, std::size_t held) {
  if (held == connection.partial_held) return;
  if (connection.partial_held == 0) {
    connection.partial_order = next_partial_order_++;
    partials_.emplace(connection.partial_order, connection.id);
  } else if (held == 0) {
    partials_.erase(connection.partial_order);
  }
  incomplete_total_ = incomplete_total_ - connection.partial_held + held;
  connection.partial_held = held;
  // Published once the budget is enforced: during one read it may exceed it
  // by the frame being read.
  if (incomplete_total_ < counters_.incomplete_frame_bytes.get()) {
    counters_.incomplete_frame_bytes.set(incomplete_total_);
  }
}

// A closing connection decodes nothing more: its unfinished frame goes.
void Server::Impl::forget_partial(Connection& connection) {
  if (connection.partial_held == 0) return;
  set_partial(connection, 0);
  connection.partial_fed = 0;
  connection.decoder = protocol::Decoder(config_.limits);
}

// Unfinished frames of all connections share one budget. Past it, the
// connection whose frame has been unfinished longest goes first: an honest
// frame is usually whole within a round trip, so the oldest are the slowest
// senders, which is what a slowloris attack is made of.
void Server::Impl::bound_incomplete_frames() {
  const auto budget = config_.limits.max_incomplete_frame_bytes;
  while (budget != 0 && incomplete_total_ > budget && !partials_.empty()) {
    const auto connection = connections_.at(partials_.begin()->second);
    counters_.incomplete_frame_drops.add();
    if (worth_logging(counters_.incomplete_frame_drops.get())) {
      warn(
          "{}: dropped with an unfinished frame of {} bytes: unfinished frames passed {} bytes "
          "in all ({} connections dropped so far)",
          connection->address, connection->partial_held, budget,
          counters_.incomplete_frame_drops.get());
    }
    close(connection->id, errc::limit_reached);
    connection->abort = true;  // nothing to say to a peer busy sending
  }
  counters_.incomplete_frame_bytes.set(incomplete_total_);
}

std::size_t Server::Impl::backlog(core::SessionId id) const {
  const auto it = connections_.find(id);
  return it == connections_.end() ? 0 : it->second->pending.size() + it->second->inflight.size();
}

void Server::Impl::notify_drained(core::SessionId id) {
  if (const auto it = connections_.find(id); it != connections_.end()) {
    it->second->drain_wanted = true;
  }
}

void Server::Impl::resume(core::SessionId id) {
  // Later, not inside the hub's call that asked for it.
  asio::post(strand_, [self = shared_from_this(), id] {
    const auto it = self->connections_.find(id);
    if (it == self->connections_.end()) return;
    const auto connection = it->second;
    const auto parked = std::exchange(connection->parked, {});
    self->counters_.parked_input_bytes.set(self->counters_.parked_input_bytes.get() -
                                           parked.size());
    self->consume(connection, parked);
    while (!connection->legacy_parked.empty() && connection->state == State::open &&
           !connection->legacy_closing && self->hub_->wants_input(id)) {
      auto text = std::move(connection->legacy_parked.front());
      connection->legacy_parked.pop_front();
      self->hub_->handle(id, connection->legacy->on_text(text), self->now());
    }
    self->after_work();
    self->read(connection);
  });
}

// The first byte was printable: the original client's login. Its session
// negotiates version 1, which is never pinged (TCP keepalive watches it).
void Server::Impl::start_legacy(const ConnectionPtr& connection) {
  connection->legacy = std::make_unique<legacy::Translator>(config_.max_attempts);
  if (!connection->large_read) {
    connection->large_read = std::make_unique_for_overwrite<std::byte[]>(read_buffer_size);
  }
  hub_->set_legacy(connection->id);
  hub_->handle(connection->id, connection->legacy->hello(), now());
}

// One line the original client shows (and on which it disconnects), then close.
void Server::Impl::refuse_legacy(const ConnectionPtr& connection, std::string_view line) {
  warn("{}: the original client refused: {}", connection->address, line);
  queue_legacy(*connection, legacy::Output{{std::string(line)}, false});
  hub_->close(connection->id, errc::unsupported_version);
  after_work();
}

void Server::Impl::consume_legacy(const ConnectionPtr& connection, std::string text) {
  if (connection->legacy_closing) return;
  if (!connection->legacy_parked.empty() || !hub_->wants_input(connection->id)) {
    connection->legacy_parked.push_back(std::move(text));
    return;
  }
  hub_->handle(connection->id, connection->legacy->on_text(text), now());
}

// Each reply is its own write (legacy_cuts); a reply after which the
// original would close is followed by the close, asked of the hub later,
// outside the hub call that produced the reply.
void Server::Impl::queue_legacy(Connection& connection, legacy::Output out) {
  bool any = false;
  for (const auto& text : out.writes) {
    if (text.empty()) continue;
    const auto* bytes = reinterpret_cast<const std::byte*>(text.data());
    connection.pending.insert(connection.pending.end(), bytes, bytes + text.size());
    connection.legacy_cuts.push_back(text.size());
    connection.queued += text.size();
    pending_total_ += text.size();
    any = true;
  }
  if (any && !queued(connection)) return;
  if (out.close && !connection.legacy_closing) {
    connection.legacy_closing = true;
    asio::post(strand_, [self = shared_from_this(), id = connection.id] {
      self->hub_->close(id, errc::peer_closed);
      self->after_work();
    });
  }
}

void Server::Impl::legacy_sent(Connection& connection, std::size_t bytes) {
  while (bytes != 0 && !connection.legacy_cuts.empty()) {
    auto& front = connection.legacy_cuts.front();
    const auto take = std::min(front, bytes);
    front -= take;
    bytes -= take;
    if (front == 0) connection.legacy_cuts.pop_front();
  }
}

// After a reply to a legacy peer, the next one waits a moment.
void Server::Impl::pause_legacy(const ConnectionPtr& connection) {
  if (!connection->legacy_gap)
    connection->legacy_gap = std::make_unique<asio::steady_timer>(strand_);
  connection->legacy_pausing = true;
  connection->legacy_gap->expires_after(legacy_reply_gap);
  connection->legacy_gap->async_wait([self = shared_from_this(), connection](std::error_code ec) {
    connection->legacy_pausing = false;
    if (ec || connection->state == State::closed) return;
    self->flush(connection);
  });
}

void Server::Impl::check(core::SessionId id, std::string username, std::string password) {
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  if (const auto it = connections_.find(id); it != connections_.end()) {
    it->second->check_cancelled = cancelled;
  }
  auto task = [self = shared_from_this(), id, username = std::move(username),
               password = std::move(password), cancelled]() mutable {
    // A connection that went away meanwhile is not worth the hashing.
    const bool ok = !cancelled->load() && self->authenticator_->verify(username, password);
    OPENSSL_cleanse(password.data(), password.size());
    asio::post(self->strand_, [self, id, ok] { self->on_checked(id, ok); });
  };
  // The offload function is the embedder's: not called once the Server is gone.
  if (!gate_->run(config_.offload, std::move(task))) on_checked(id, false);
}

void Server::Impl::on_checked(core::SessionId id, bool ok) {
  if (const auto it = connections_.find(id); it != connections_.end()) {
    it->second->check_cancelled.reset();
  }
  hub_->password_checked(id, ok, now());
  after_work();
}

Server::Impl::Connection* Server::Impl::writable(core::SessionId id) {
  const auto it = connections_.find(id);
  if (it == connections_.end()) return nullptr;
  const auto state = it->second->state;
  return state == State::open || state == State::handshaking ? it->second.get() : nullptr;
}

// Queues frames already encoded at the end of `connection.pending`; a
// client whose queue passes the bound is not reading and is dropped.
bool Server::Impl::queued(Connection& connection) {
  if (connection.pending.size() > config_.limits.max_pending_write_bytes) {
    warn("{}: disconnecting a client that does not read ({} bytes queued)", connection.address,
         connection.pending.size());
    counters_.slow_consumers.add();
    close(connection.id, errc::slow_consumer);
    return false;
  }
  if (!connection.dirty) {
    connection.dirty = true;
    dirty_.push_back(connections_.at(connection.id));
  }
  return true;
}

void Server::Impl::send(core::SessionId to, const protocol::Message& message) {
  if (Connection* connection = writable(to)) {
    if (connection->legacy) {
      if (const auto* ok = std::get_if<protocol::LoginOk>(&message)) {
        warn("{}: {} logged in with the original client: its password crossed the network in clear",
             connection->address, ok->username);
      }
      return queue_legacy(*connection, connection->legacy->render(message));
    }
    // A connection that has said nothing is most likely the original
    // client waiting for its user: a native client sends Hello at once.
    const auto* notice = std::get_if<protocol::ShutdownEvent>(&message);
    if (!connection->any_input && notice != nullptr &&
        notice->code == static_cast<std::uint16_t>(errc::login_timeout)) {
      return queue_legacy(*connection, legacy::Translator(1).render(message));
    }
    const auto before = connection->pending.size();
    protocol::encode(message, connection->pending, connection->version);
    const auto added = connection->pending.size() - before;
    connection->queued += added;
    pending_total_ += added;
    queued(*connection);
  }
}

void Server::Impl::send_to_many(std::span<const core::SessionId> to,
                                const protocol::Message& message) {
  if (to.empty()) return;
  for (auto& frame : shared_frames_)
    frame.clear();
  for (const auto id : to) {
    if (Connection* connection = writable(id)) {
      if (connection->legacy) {
        send(id, message);
        continue;
      }
      auto& frame = shared_frames_[connection->version];
      if (frame.empty()) protocol::encode(message, frame, connection->version);
      connection->pending.insert(connection->pending.end(), frame.begin(), frame.end());
      connection->queued += frame.size();
      pending_total_ += frame.size();
      queued(*connection);
    }
  }
}

void Server::Impl::negotiated(core::SessionId id, std::uint8_t version) {
  if (const auto it = connections_.find(id); it != connections_.end()) {
    it->second->version = version;
  }
}

void Server::Impl::close(core::SessionId id, errc reason) {
  const auto it = connections_.find(id);
  if (it == connections_.end()) return;
  const auto& connection = it->second;
  if (connection->state != State::open && connection->state != State::handshaking) return;
  // Nothing can be said to a peer that never finished its TLS handshake, and
  // a reader that fell this far behind would not read a goodbye either: they
  // are dropped at the next flush, outside the hub's call stack.
  connection->abort = reason == errc::slow_consumer || connection->state == State::handshaking;
  connection->state = State::closing;
  counters_.closing.add();
  forget_partial(*connection);
  connection->linger_deadline = clock_->steady() + linger_time;
  wait_linger(connection);
  if (!connection->dirty) {
    connection->dirty = true;
    dirty_.push_back(connection);
  }
}

// After every piece of work on the strand: the log lines it recorded go to
// the log thread, and the writes it queued leave once those lines are
// written (at once when it logged nothing); then the timer for the hub's
// next deadline.
void Server::Impl::after_work() {
  if (!hub_) return;
  std::vector<std::pair<ConnectionPtr, std::uint64_t>> batch;
  batch.reserve(dirty_.size());
  for (const auto& connection : dirty_) {
    connection->dirty = false;
    const auto mark = connection->queued;
    batch.emplace_back(connection, mark);
  }
  dirty_.clear();
  // 0: flush() has not returned; 1: it has; 2: the lines are written.
  auto progress = std::make_shared<std::atomic<int>>(0);
  auto shared = std::make_shared<decltype(batch)>(std::move(batch));
  // The connections travel on to the strand, so the last reference to one
  // is never dropped on the log thread.
  hub_->flush_logs([weak = weak_from_this(), strand = strand_, progress, shared]() mutable {
    if (progress->exchange(2) == 0) return;  // written inside flush: released below
    asio::post(strand, [weak, shared = std::move(shared)] {
      if (const auto self = weak.lock()) self->release(*shared);
    });
  });
  if (progress->exchange(1) == 2) release(*shared);
  arm_expiry();
  counters_.store_operations.set(hub_->pending_operations());
  counters_.pending_write_bytes.set(pending_total_);
}

void Server::Impl::release(const std::vector<std::pair<ConnectionPtr, std::uint64_t>>& batch) {
  for (const auto& [connection, mark] : batch) {
    connection->released = std::max(connection->released, mark);
    flush(connection);
  }
  counters_.pending_write_bytes.set(pending_total_);
  if (!paused_.empty() &&
      logs_->queued_bytes() < core::FileLogStore::recommended_max_queued_bytes) {
    for (const auto& connection : std::exchange(paused_, {}))
      read(connection);
  }
}

void Server::Impl::arm_expiry() {
  const auto next = hub_->next_expiry();
  if (next == expiry_armed_) return;
  expiry_armed_ = next;
  if (!next) {
    expiry_.cancel();
    return;
  }
  // The clock may be a manual one: wait for the distance it reports; a jump
  // of that clock re-checks through on_jump.
  expiry_.expires_after(*next - clock_->steady());
  expiry_.async_wait([self = shared_from_this()](std::error_code error) {
    if (!error) self->on_expiry();
  });
}

void Server::Impl::on_expiry() {
  if (!hub_) return;
  // Also reached from a jump of the clock: the wait armed before is stale.
  expiry_armed_.reset();
  expiry_.cancel();
  hub_->expire(now());
  after_work();
}

// Once per pass of the event loop, for work that happened outside a handler
// that ends in after_work() (a dropped connection rewrites userlog.txt).
void Server::Impl::schedule_after_work() {
  if (after_work_scheduled_) return;
  after_work_scheduled_ = true;
  asio::post(strand_, [self = shared_from_this()] {
    self->after_work_scheduled_ = false;
    self->after_work();
  });
}

void Server::Impl::flush(const ConnectionPtr& connection) {
  if (connection->state == State::closed) return;
  if (connection->abort) return drop(connection);
  if (connection->writing || connection->legacy_pausing) return;
  auto releasable = static_cast<std::size_t>(std::min<std::uint64_t>(
      connection->pending.size(), connection->released - connection->moved));
  // The original client takes each read for one reply: one reply per write.
  const bool one_reply = !connection->legacy_cuts.empty();
  if (one_reply) releasable = std::min(releasable, connection->legacy_cuts.front());
  // The socket usually takes everything at once: a direct send spares the
  // asynchronous write's operation and its completion for every batch.
  // (TLS records go through the stream, never straight to the socket.)
  std::size_t sent = 0;
  if (releasable != 0 && !connection->tls) {
    std::error_code ec;
    sent = connection->socket.write_some(asio::buffer(connection->pending.data(), releasable), ec);
    if (ec && ec != asio::error::would_block) return drop(connection);
    counters_.bytes_sent.add(sent);
    pending_total_ -= sent;
    connection->moved += sent;
    connection->pending.erase(connection->pending.begin(),
                              connection->pending.begin() + static_cast<std::ptrdiff_t>(sent));
    legacy_sent(*connection, sent);
  }
  const auto rest = releasable - sent;
  if (rest == 0) {
    if (connection->drain_wanted && connection->pending.empty()) {
      connection->drain_wanted = false;
      asio::post(strand_, [self = shared_from_this(), id = connection->id] {
        self->hub_->drained(id);
        self->after_work();
      });
    }
    if (one_reply && sent != 0 && !connection->pending.empty()) return pause_legacy(connection);
    if (connection->state == State::closing && connection->pending.empty()) {
      connection->state = State::lingering;
      std::error_code ec;
      connection->socket.shutdown(tcp::socket::shutdown_send, ec);
    }
    return;
  }
  if (rest == connection->pending.size()) {
    std::swap(connection->pending, connection->inflight);
  } else {
    const auto end = connection->pending.begin() + static_cast<std::ptrdiff_t>(rest);
    connection->inflight.assign(connection->pending.begin(), end);
    connection->pending.erase(connection->pending.begin(), end);
  }
  connection->moved += rest;
  connection->writing = true;
  auto done = [self = shared_from_this(), connection](std::error_code ec, std::size_t length) {
    connection->writing = false;
    // A dropped connection's bytes left the count when it was dropped.
    if (connection->state != State::closed) self->pending_total_ -= connection->inflight.size();
    connection->inflight.clear();
    self->counters_.bytes_sent.add(length);
    self->counters_.pending_write_bytes.set(self->pending_total_);
    if (connection->state == State::closed) return;
    if (ec) return self->drop(connection);
    self->legacy_sent(*connection, length);
    if (connection->legacy && !connection->pending.empty()) return self->pause_legacy(connection);
    self->flush(connection);
  };
  if (connection->tls) {
    asio::async_write(*connection->tls, asio::buffer(connection->inflight), std::move(done));
  } else {
    asio::async_write(connection->socket, asio::buffer(connection->inflight), std::move(done));
  }
}

// The linger is timed by the server's clock (a ManualClock ends it when moved
// on), by real time once the server stops, so that stopping never waits for
// a clock that stands still.
void Server::Impl::wait_linger(const ConnectionPtr& connection) {
  connection->linger.expires_after(connection->linger_deadline - clock_->steady());
  connection->linger.async_wait([self = shared_from_this(), connection](std::error_code error) {
    if (error || connection->state == State::closed) return;
    if (self->stopping_ || self->clock_->steady() >= connection->linger_deadline) {
      return self->drop(connection);
    }
    self->wait_linger(connection);
  });
}

// After a jump of the clock: lingers it ended.
void Server::Impl::end_lingers() {
  const auto now = clock_->steady();
  std::vector<ConnectionPtr> ended;
  for (const auto& [id, connection] : connections_) {
    if ((connection->state == State::closing || connection->state == State::lingering) &&
        now >= connection->linger_deadline) {
      ended.push_back(connection);
    }
  }
  for (const auto& connection : ended)
    drop(connection);
}

void Server::Impl::give_memory_back(const Connection& connection) {
#if defined(__GLIBC__)
  ++closed_since_trim_;
  freed_since_trim_ += connection.pending.capacity() + connection.inflight.capacity() +
                       connection.parked.capacity() + connection.partial_held +
                       (connection.large_read ? read_buffer_size : 0);
  if (!trim_armed_ &&
      (closed_since_trim_ >= trim_after_closes || freed_since_trim_ >= trim_after_bytes)) {
    trim_later();
  }
#else
  (void)connection;
#endif
}

// Later, once the closed connections' last references are gone too; then
// once more a second after each trim while connections go on closing, so
// that the tail of a wave of closes, below the thresholds, is given back too.
void Server::Impl::trim_later() {
#if defined(__GLIBC__)
  if (stopping_) return;
  trim_armed_ = true;
  trim_.expires_at(std::max(last_trim_ + trim_interval, std::chrono::steady_clock::now()));
  trim_.async_wait([self = shared_from_this()](std::error_code error) {
    self->trim_armed_ = false;
    if (error || self->stopping_ || self->closed_since_trim_ == 0) return;
    self->last_trim_ = std::chrono::steady_clock::now();
    self->closed_since_trim_ = 0;
    self->freed_since_trim_ = 0;
    ::malloc_trim(0);
    self->trim_later();
  });
#endif
}

void Server::Impl::drop(const ConnectionPtr& connection) {
  if (connection->state == State::closed) return;
  give_memory_back(*connection);
  forget_partial(*connection);
  if (connection->state == State::closing || connection->state == State::lingering) {
    counters_.closing.set(counters_.closing.get() - 1);
  }
  connection->state = State::closed;
  pending_total_ -=
      connection->pending.size() + (connection->writing ? connection->inflight.size() : 0);
  counters_.pending_write_bytes.set(pending_total_);
  connections_.erase(connection->id);
  --connections;
  if (connection->check_cancelled) connection->check_cancelled->store(true);
  counters_.parked_input_bytes.set(counters_.parked_input_bytes.get() - connection->parked.size());
  connection->parked.clear();
  std::error_code ec;
  connection->linger.cancel();
  if (connection->legacy_gap) connection->legacy_gap->cancel();
  connection->legacy_parked.clear();
  connection->socket.close(ec);
  hub_->disconnected(connection->id);
  // Each logout rewrites userlog.txt: when thousands of clients go at once,
  // one rewrite per pass instead of one per connection.
  schedule_after_work();
  if (stopping_ && connections_.empty()) logs_->sync(hub_->online());
}

void Server::Impl::start_node(std::string name) {
  const auto in_strand = [weak = weak_from_this()](auto work) {
    return [weak, work](auto&&... args) {
      const auto self = weak.lock();
      if (!self || !self->hub_) return;
      work(*self, args...);
      self->schedule_after_work();
    };
  };
  node_->set_handlers(cluster::NodeHandlers{
      in_strand([](Impl& self, const core::StoredDelivery& message) {
        self.hub_->deliver_stored(message);
      }),
      in_strand([](Impl& self, std::span<const std::string> users,
                   const protocol::Message& message) { self.hub_->deliver_event(users, message); }),
      in_strand([](Impl& self, std::vector<core::SessionId> sessions) {
        for (const auto session : sessions)
          self.hub_->close(session, errc::already_logged_in);
      }),
      in_strand([](Impl& self) { self.hub_->catch_up(); }), [weak = weak_from_this()] {
        // Loads the scripts again: a restarted Redis has forgotten them.
        if (const auto self = weak.lock()) self->redis_store_->start([](std::error_code) {});
      }});
  node_->start(std::move(name));
}

void Server::Impl::stop() {
  asio::post(strand_, [self = shared_from_this()] {
    if (self->stopping_) return;
    self->stopping_ = true;
    std::error_code ec;
    self->acceptor_.close(ec);
    self->accept_retry_.cancel();
    self->trim_.cancel();
    self->clock_jumps_.reset();
    if (!self->hub_) return;
    self->hub_->shutdown();
    self->after_work();
    self->logs_->sync(self->hub_->online());
    if (self->node_) self->node_->stop();
  });
}

Server::Server(const asio::any_io_executor& executor, ServerConfig config, ServerObserver observer)
    : impl_(std::make_shared<Impl>(executor, std::move(config), std::move(observer))) {}

Server::Server(asio::io_context& io, ServerConfig config, ServerObserver observer)
    : Server(io.get_executor(), std::move(config), std::move(observer)) {}

Server::Server(ServerConfig config, ServerObserver observer)
    : owned_(std::make_unique<OwnedContext>()),
      impl_(std::make_shared<Impl>(owned_->io.get_executor(), std::move(config),
                                   std::move(observer))) {}

Server::~Server() {
  impl_->detach();
  impl_->stop();
  if (owned_) owned_->join();
  impl_.reset();
}

void Server::start() {
  std::error_code ec;
  std::string what;
  start(ec, &what);
  if (ec) throw std::system_error(ec, what);
}

void Server::start(std::error_code& ec, std::string* what) {
  ec.clear();
  impl_->start(ec, what);
  if (!ec && owned_) owned_->thread = std::thread([this] { owned_->io.run(); });
}

std::uint16_t Server::local_port() const noexcept {
  return impl_->port;
}

asio::ip::tcp::endpoint Server::local_endpoint() const {
  return {asio::ip::make_address(impl_->bind_address()), impl_->port};
}

void Server::stop() {
  impl_->stop();
  if (owned_) owned_->join();
}

std::size_t Server::connection_count() const noexcept {
  return impl_->connections;
}

void Server::set_observer(ServerObserver observer) {
  impl_->set_observer(std::move(observer));
}

ServerStats Server::stats() const {
  return impl_->stats();
}

}  // namespace tessenger
