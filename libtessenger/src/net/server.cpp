#include <tessenger/server.hpp>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>
#include <atomic>
#include <chrono>
#include <future>
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

#include "core/credentials.hpp"
#include "core/hub.hpp"
#include "core/log_store.hpp"

namespace tessenger {
namespace {

using asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;

constexpr std::size_t read_buffer_size = 64 * 1024;
// An idle connection reads into a few hundred bytes of its own; one whose
// read filled them gets a large buffer until a read would have fitted the
// small one again. Only busy connections hold a large buffer, so a server
// full of idle sessions stays small.
constexpr std::size_t small_read_size = 512;
// How long a closing connection may keep its socket half-open so the peer
// reads our last frames before the close (an early close can turn into a RST
// that discards them).
constexpr auto linger_time = std::chrono::seconds(2);

core::Instant now() {
  using namespace std::chrono;
  return {steady_clock::now(),
          duration_cast<microseconds>(system_clock::now().time_since_epoch()).count()};
}

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

}  // namespace

class Server::Impl final : public std::enable_shared_from_this<Server::Impl>,
                           public core::Outbox,
                           public core::PasswordChecker {
 public:
  Impl(asio::io_context& io, ServerConfig config, ServerObserver observer)
      : strand_(asio::make_strand(io)),
        acceptor_(strand_),
        config_(std::move(config)),
        observer_(std::move(observer)) {}

  const std::string& bind_address() const noexcept { return config_.bind_address; }

  void start(std::error_code& ec, std::string* what);
  void stop();

  std::atomic<std::uint16_t> port{0};
  std::atomic<std::size_t> connections{0};

 private:
  struct Connection {
    Connection(Strand& strand, tcp::socket s, core::SessionId session_id, const Limits& limits)
        : socket(std::move(s)), id(session_id), decoder(limits), timer(strand) {}
    tcp::socket socket;
    core::SessionId id;
    protocol::Decoder decoder;
    asio::steady_timer timer;  // login timeout, then linger after close
    std::array<std::byte, small_read_size> small_read;
    std::unique_ptr<std::byte[]> large_read;  // while the connection is busy
    std::span<std::byte> read_space() noexcept;
    std::vector<std::byte> pending;   // frames waiting for the next write
    std::vector<std::byte> inflight;  // frames being written
    std::string address;
    bool writing = false;
    bool dirty = false;
    bool closing = false;  // write what is queued, then close
    bool half_closed = false;
    bool abort = false;                                    // drop without flushing
    bool detached = false;                                 // the hub has forgotten this session
    std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls;  // over `socket`, on a TLS server
    bool handshaking = false;
    bool any_input = false;
    bool reading = false;
    bool checking = false;  // a password check is under way: input waits in `parked`
    std::vector<std::byte> parked;
    std::shared_ptr<std::atomic<bool>> check_cancelled;
  };
  using ConnectionPtr = std::shared_ptr<Connection>;

  void accept();
  void on_accept(tcp::socket socket);
  void refuse(tcp::socket& socket);
  void handshake(const ConnectionPtr& connection);
  bool load_tls(std::error_code& ec, std::string& what);
  void read(const ConnectionPtr& connection);
  void on_read(const ConnectionPtr& connection, std::size_t length);
  void consume(const ConnectionPtr& connection, std::span<const std::byte> input);
  bool wants_read(const Connection& connection) const;
  void flush(const ConnectionPtr& connection);
  void flush_dirty();
  void schedule_log_flush();
  void drop(const ConnectionPtr& connection);
  void warn(std::string_view text);

  // core::Outbox
  void send(core::SessionId to, const protocol::Message& message) override;
  void send_to_many(std::span<const core::SessionId> to, const protocol::Message& message) override;
  void close(core::SessionId session, errc reason) override;
  bool queued(Connection& connection);
  Connection* find(core::SessionId id);

  // core::PasswordChecker
  void check(core::SessionId session, std::string username, std::string password) override;
  void on_checked(core::SessionId session, bool ok);

  Strand strand_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_{strand_};
  ServerConfig config_;
  ServerObserver observer_;
  std::unique_ptr<core::FileLogStore> logs_;
  std::shared_ptr<const Authenticator> authenticator_;
  std::optional<asio::ssl::context> tls_context_;
  std::unique_ptr<core::Hub> hub_;
  std::unordered_map<core::SessionId, ConnectionPtr> connections_;
  std::vector<ConnectionPtr> dirty_;
  std::vector<std::byte> shared_frame_;
  bool log_flush_scheduled_ = false;
  core::SessionId next_id_ = 1;
  bool stopping_ = false;
};

struct Server::OwnedContext {
  asio::io_context io{1};
  std::thread thread;

  void join() {
    if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
  }
};

void Server::Impl::start(std::error_code& ec, std::string* what) {
  auto fail = [&](std::error_code error, std::string message) {
    // Asio's system category does not compare equal to std::errc values;
    // embedders expect `ec == std::errc::address_in_use` to work.
    ec = error.category() == asio::system_category()
             ? std::error_code(error.value(), std::system_category())
             : error;
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
          fmt::format("{}: {} of {} accounts have a plain-text password; replace each line with "
                      "the one `tessenger-server --hash-password USER` prints",
                      config_.credentials_file.string(), table->plain_count(), table->size()));
    }
    logs_ = std::make_unique<core::FileLogStore>(config_.data_dir, config_.log);
    hub_ = std::make_unique<core::Hub>(
        core::HubConfig{config_.max_attempts, config_.block_duration, config_.limits,
                        config_.software},
        authenticator_, *logs_, *this, observer_, config_.log, random_bytes,
        config_.offload ? static_cast<core::PasswordChecker*>(this) : nullptr);
  } catch (const std::system_error& e) {
    return fail(e.code(), e.what());
  }

  if (std::string problem; !load_tls(ec, problem)) return fail(ec, problem);
  if (!tls_context_ && !address.is_loopback()) {
    warn(
        fmt::format("listening on {} without TLS: passwords and messages cross the network in "
                    "clear (see --tls-cert and --tls-key)",
                    config_.bind_address));
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

void Server::Impl::warn(std::string_view text) {
  if (config_.log.enabled(LogLevel::warn)) config_.log.write(LogLevel::warn, text);
}

void Server::Impl::accept() {
  acceptor_.async_accept(strand_,
                         [self = shared_from_this()](std::error_code ec, tcp::socket socket) {
                           if (ec == asio::error::operation_aborted || !self->acceptor_.is_open())
                             return;
                           if (ec) {
                             // Typically EMFILE: back off instead of spinning on a full descriptor
                             // table.
                             self->warn(fmt::format("accept failed: {}", ec.message()));
                             self->accept_retry_.expires_after(std::chrono::milliseconds(100));
                             self->accept_retry_.async_wait([self](std::error_code wait_error) {
                               if (!wait_error) self->accept();
                             });
                             return;
                           }
                           self->on_accept(std::move(socket));
                           self->accept();
                         });
}

void Server::Impl::on_accept(tcp::socket socket) {
  std::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return;
  const auto id = next_id_++;
  auto address = printable_address(peer);
  if (!hub_->connected(id, address)) {
    refuse(socket);
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  // flush() sends what it can at once and leaves only the rest to Asio.
  socket.non_blocking(true, ec);
  auto connection = std::make_shared<Connection>(strand_, std::move(socket), id, config_.limits);
  connection->address = std::move(address);
  connections_.emplace(connection->id, connection);
  ++connections;

  connection->timer.expires_after(std::chrono::seconds(config_.limits.login_timeout_seconds));
  connection->timer.async_wait([self = shared_from_this(), connection](std::error_code wait_error) {
    if (wait_error || connection->closing) return;
    // Nothing can be said to a peer that never finished its TLS handshake.
    if (connection->handshaking) return self->drop(connection);
    self->hub_->login_timeout(connection->id);
    self->flush_dirty();
  });
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
  connection->handshaking = true;
  connection->socket.async_receive(
      asio::buffer(connection->read_space().data(), 1), tcp::socket::message_peek,
      [self = shared_from_this(), connection](std::error_code ec, std::size_t length) {
        if (!self->connections_.contains(connection->id)) return;
        if (ec || length == 0) return self->drop(connection);
        // Every TLS connection opens with a handshake record (0x16); no
        // TESSENGER frame can, as its length would be far above the limit.
        if (connection->read_space()[0] != std::byte{0x16}) {
          connection->handshaking = false;
          self->warn(fmt::format("{}: a client without TLS on a TLS port; told so and closed",
                                 connection->address));
          self->send(connection->id,
                     protocol::ShutdownEvent{static_cast<std::uint16_t>(errc::unsupported_version),
                                             "the server requires TLS"});
          self->close(connection->id, errc::unsupported_version);
          self->flush_dirty();
          return self->read(connection);
        }
        connection->tls = std::make_unique<asio::ssl::stream<tcp::socket&>>(connection->socket,
                                                                            *self->tls_context_);
        connection->tls->async_handshake(
            asio::ssl::stream_base::server, [self, connection](std::error_code error) {
              connection->handshaking = false;
              if (!self->connections_.contains(connection->id)) return;
              if (error) {
                self->warn(fmt::format("{}: TLS handshake failed: {}", connection->address,
                                       error.message()));
                return self->drop(connection);
              }
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

void Server::Impl::read(const ConnectionPtr& connection) {
  const auto space = connection->read_space();
  connection->reading = true;
  auto done = [self = shared_from_this(), connection](std::error_code ec, std::size_t length) {
    connection->reading = false;
    if (ec) {
      self->drop(connection);
      return;
    }
    self->on_read(connection, length);
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
  if (!connection->any_input && !tls_context_ && looks_like_tls(received)) {
    warn(
        fmt::format("{}: a TLS handshake on a plain-TCP port: the client must connect without "
                    "TLS, or the server needs --tls-cert and --tls-key",
                    connection->address));
  }
  connection->any_input = true;
  if (connection->checking) {
    // Held back, in order, until the password check ends; reading goes on
    // so that a close is seen and the check called off.
    connection->parked.insert(connection->parked.end(), received.begin(), received.end());
  } else {
    consume(connection, received);
  }
  if (length == small_read_size && !connection->large_read) {
    connection->large_read = std::make_unique_for_overwrite<std::byte[]>(read_buffer_size);
  } else if (length < small_read_size) {
    connection->large_read.reset();
  }
  if (wants_read(*connection)) read(connection);
}

bool Server::Impl::wants_read(const Connection& connection) const {
  return !connection.reading && connection.parked.size() < read_buffer_size &&
         connections_.contains(connection.id);
}

void Server::Impl::consume(const ConnectionPtr& connection, std::span<const std::byte> input) {
  // A closing connection's input is read only to wait for the peer's close.
  if (!connection->closing) {
    const auto instant = now();
    while (!input.empty() && !connection->closing) {
      auto result = connection->decoder.feed(input);
      input = input.subspan(result.consumed);
      if (result.error) {
        warn(fmt::format("{}: protocol error: {}", connection->address, result.error.message()));
        hub_->protocol_error(connection->id, result.error);
        break;
      }
      if (result.message) {
        hub_->handle(connection->id, *result.message, instant);
        // Requests after a login are answered after it: they wait for the
        // password check.
        if (connection->checking) {
          connection->parked.assign(input.begin(), input.end());
          break;
        }
      }
    }
    flush_dirty();
    schedule_log_flush();
  }
}

void Server::Impl::check(core::SessionId id, std::string username, std::string password) {
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  if (const auto it = connections_.find(id); it != connections_.end()) {
    it->second->checking = true;
    it->second->check_cancelled = cancelled;
  }
  config_.offload([self = shared_from_this(), id, username = std::move(username),
                   password = std::move(password), cancelled]() mutable {
    // A connection that went away meanwhile is not worth the hashing.
    const bool ok = !cancelled->load() && self->authenticator_->verify(username, password);
    OPENSSL_cleanse(password.data(), password.size());
    asio::post(self->strand_, [self, id, ok] { self->on_checked(id, ok); });
  });
}

void Server::Impl::on_checked(core::SessionId id, bool ok) {
  hub_->password_checked(id, ok, now());
  flush_dirty();
  schedule_log_flush();
  const auto it = connections_.find(id);
  if (it == connections_.end()) return;
  const auto connection = it->second;
  connection->checking = false;
  connection->check_cancelled.reset();
  const auto parked = std::exchange(connection->parked, {});
  consume(connection, parked);
  if (wants_read(*connection)) read(connection);
}

Server::Impl::Connection* Server::Impl::find(core::SessionId id) {
  const auto it = connections_.find(id);
  if (it == connections_.end() || it->second->closing) return nullptr;
  return it->second.get();
}

// Queues frames already encoded at the end of `connection.pending`; a
// client whose queue passes the bound is not reading and is dropped.
bool Server::Impl::queued(Connection& connection) {
  if (connection.pending.size() > config_.limits.max_pending_write_bytes) {
    warn(fmt::format("{}: disconnecting a client that does not read ({} bytes queued)",
                     connection.address, connection.pending.size()));
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
  if (Connection* connection = find(to)) {
    protocol::encode(message, connection->pending);
    queued(*connection);
  }
}

void Server::Impl::send_to_many(std::span<const core::SessionId> to,
                                const protocol::Message& message) {
  if (to.empty()) return;
  shared_frame_.clear();
  protocol::encode(message, shared_frame_);
  for (const auto id : to) {
    if (Connection* connection = find(id)) {
      connection->pending.insert(connection->pending.end(), shared_frame_.begin(),
                                 shared_frame_.end());
      queued(*connection);
    }
  }
}

void Server::Impl::close(core::SessionId session, errc reason) {
  const auto it = connections_.find(session);
  if (it == connections_.end() || it->second->closing) return;
  auto& connection = *it->second;
  connection.closing = true;
  // A reader that fell this far behind would not read a goodbye either: its
  // connection is dropped at the next flush, outside the hub's call stack.
  connection.abort = reason == errc::slow_consumer;
  if (!connection.dirty) {
    connection.dirty = true;
    dirty_.push_back(it->second);
  }
}

void Server::Impl::flush_dirty() {
  for (auto& connection : dirty_) {
    connection->dirty = false;
    flush(connection);
  }
  dirty_.clear();
}

// Runs after the other handlers already queued, so the log lines of every
// connection read in one pass of the event loop go out in one write(2) per
// file, instead of one per read.
void Server::Impl::schedule_log_flush() {
  if (log_flush_scheduled_) return;
  log_flush_scheduled_ = true;
  asio::post(strand_, [self = shared_from_this()] {
    self->log_flush_scheduled_ = false;
    // Until replies wait for their lines, the strand waits for the writer, so
    // that a reply sent later follows every line logged before it.
    auto written = std::make_shared<std::promise<void>>();
    auto future = written->get_future();
    self->hub_->flush_logs([written] { written->set_value(); });
    future.wait();
  });
}

void Server::Impl::flush(const ConnectionPtr& connection) {
  if (connection->abort) {
    drop(connection);
    return;
  }
  if (!connections_.contains(connection->id)) return;
  if (connection->closing && !connection->detached) {
    // The session ends now, not when the peer gets round to closing: its
    // name is free and others see it offline at once.
    connection->detached = true;
    hub_->disconnected(connection->id);
  }
  if (connection->writing) return;
  // The socket usually takes everything at once: a direct send spares the
  // asynchronous write's operation and its completion for every batch.
  // (TLS records go through the stream, never straight to the socket.)
  if (!connection->pending.empty() && !connection->tls) {
    std::error_code ec;
    const auto sent = connection->socket.write_some(asio::buffer(connection->pending), ec);
    if (ec && ec != asio::error::would_block) {
      drop(connection);
      return;
    }
    connection->pending.erase(connection->pending.begin(),
                              connection->pending.begin() + static_cast<std::ptrdiff_t>(sent));
  }
  if (connection->pending.empty()) {
    if (connection->closing && !connection->half_closed) {
      connection->half_closed = true;
      std::error_code ec;
      connection->socket.shutdown(tcp::socket::shutdown_send, ec);
      connection->timer.expires_after(linger_time);
      connection->timer.async_wait(
          [self = shared_from_this(), connection](std::error_code wait_error) {
            if (!wait_error) self->drop(connection);
          });
    }
    return;
  }
  std::swap(connection->pending, connection->inflight);
  connection->writing = true;
  auto done = [self = shared_from_this(), connection](std::error_code ec, std::size_t) {
    connection->writing = false;
    connection->inflight.clear();
    if (ec) {
      self->drop(connection);
      return;
    }
    self->flush(connection);
  };
  if (connection->tls) {
    asio::async_write(*connection->tls, asio::buffer(connection->inflight), std::move(done));
  } else {
    asio::async_write(connection->socket, asio::buffer(connection->inflight), std::move(done));
  }
}

void Server::Impl::drop(const ConnectionPtr& connection) {
  const auto it = connections_.find(connection->id);
  if (it == connections_.end()) return;
  connections_.erase(it);
  --connections;
  connection->closing = true;
  if (connection->check_cancelled) connection->check_cancelled->store(true);
  std::error_code ec;
  connection->timer.cancel();
  connection->socket.close(ec);
  if (!connection->detached) {
    connection->detached = true;
    hub_->disconnected(connection->id);
  }
  // Each logout rewrites userlog.txt: when thousands of clients go at once,
  // one rewrite per pass instead of one per connection.
  schedule_log_flush();
  if (stopping_ && connections_.empty()) logs_->sync(hub_->online());
}

void Server::Impl::stop() {
  asio::post(strand_, [self = shared_from_this()] {
    if (self->stopping_) return;
    self->stopping_ = true;
    std::error_code ec;
    self->acceptor_.close(ec);
    self->accept_retry_.cancel();
    if (!self->hub_) return;
    self->hub_->shutdown();
    self->flush_dirty();
    self->logs_->sync(self->hub_->online());
  });
}

Server::Server(asio::io_context& io, ServerConfig config, ServerObserver observer)
    : impl_(std::make_shared<Impl>(io, std::move(config), std::move(observer))) {}

Server::Server(ServerConfig config, ServerObserver observer)
    : owned_(std::make_unique<OwnedContext>()),
      impl_(std::make_shared<Impl>(owned_->io, std::move(config), std::move(observer))) {}

Server::~Server() {
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

}  // namespace tessenger
