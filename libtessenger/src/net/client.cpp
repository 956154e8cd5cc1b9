#include <tessenger/client.hpp>

#include <atomic>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <asio/bind_executor.hpp>
#include <asio/connect.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/ssl.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include "net/callback_gate.hpp"
#include "net/client_checks.hpp"

namespace tessenger {
namespace {

constexpr std::size_t read_chunk = 64 * 1024;
using Clock = std::chrono::steady_clock;

Failure fail(std::error_code code, std::string detail = {}) {
  return Failure{code, std::move(detail)};
}

// Transport errors in std::system_category, the one category the header
// promises besides tessenger's.
std::error_code transport(std::error_code ec) {
  if (ec.category() == asio::system_category()) {
    return {ec.value(), std::system_category()};
  }
  if (ec == asio::error::eof) return make_error_code(errc::peer_closed);
  return ec;
}

std::error_code sys_error(std::errc e) {
  return {static_cast<int>(e), std::system_category()};
}

// The reason OpenSSL gives, for the detail of errc::tls_error.
std::string tls_reason(std::error_code ec) {
  if (ec.category() == asio::error::get_ssl_category()) return ec.message();
  return transport(ec).message();
}

}  // namespace

class Client::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor executor, ClientEvents events, ClientOptions options)
      : strand_(asio::make_strand(executor)),
        resolver_(strand_),
        socket_(strand_),
        connect_timer_(strand_),
        request_timer_(strand_),
        idle_timer_(strand_),
        gate_(std::make_shared<net::CallbackGate>()),
        events_(std::move(events)),
        options_(std::move(options)),
        decoder_(options_.limits),
        read_buffer_(read_chunk) {}

  const std::shared_ptr<net::CallbackGate>& gate() const { return gate_; }
  asio::any_io_executor executor() const { return strand_; }

  template <class F>
  void on_strand(F&& work) {
    asio::post(strand_, [self = shared_from_this(), work = std::forward<F>(work)]() mutable {
      work(*self);
    });
  }

  void set_events(ClientEvents events) { events_ = std::move(events); }

  void connect(std::string host, std::uint16_t port, Callback<ServerInfo> done) {
    if (state_ != State::idle) {
      return done(fail(sys_error(std::errc::connection_already_in_progress)));
    }
    state_ = State::connecting;
    hello_done_ = std::move(done);
    host_ = host;
    if (options_.connect_timeout.count() > 0) {
      connect_timer_.expires_after(options_.connect_timeout);
      connect_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
        if (!ec && self->state_ != State::open) {
          self->shutdown(make_error_code(errc::timed_out), "no answer while connecting", false);
        }
      });
    }
    if (options_.tls) {
      std::error_code ec;
      auto& context = tls_context_.emplace(asio::ssl::context::tls_client);
      context.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                          asio::ssl::context::no_tlsv1_1);
      if (options_.tls_ca_file.empty()) {
        context.set_default_verify_paths(ec);
      } else {
        context.load_verify_file(options_.tls_ca_file, ec);
      }
      if (ec) {
        return shutdown(
            make_error_code(errc::tls_error),
            "cannot read the CA certificates " + options_.tls_ca_file + ": " + tls_reason(ec),
            false);
      }
    }
    resolver_.async_resolve(
        host, std::to_string(port),
        [self = shared_from_this()](std::error_code ec,
                                    asio::ip::tcp::resolver::results_type endpoints) {
          self->on_resolved(ec, std::move(endpoints));
        });
  }

  void submit(Request request, Completion done) {
    if (state_ != State::open) return done(nullptr, fail(sys_error(std::errc::not_connected)));
    std::visit(
        [&](auto& r) {
          if (auto problem = client_detail::check(r, options_.limits); problem.code) {
            return done(nullptr, std::move(problem));
          }
          // What the server's version does not have is never sent.
          if (protocol::since_version(protocol::type_of(r)) > version_) {
            return done(nullptr, fail(make_error_code(errc::unsupported_request)));
          }
          r.request_id = next_id_++;
          auto expected = expectation(r);
          expect(
              r.request_id, expected.reply_type,
              [outcome = std::move(expected.outcome), done = std::move(done)](
                  protocol::Message* reply, Failure failure) {
                if (!reply) return done(nullptr, std::move(failure));
                auto result = outcome(*reply);
                done(&result, {});
              },
              true);
          send(r);
        },
        request);
  }

  void close() { shutdown(sys_error(std::errc::operation_canceled), {}, false); }

 private:
  enum class State { idle, connecting, hello, open, closed };

  // A request waiting for its reply: `complete` gets the reply, or nullptr
  // and the failure.
  struct Pending {
    protocol::MessageType reply_type;
    std::function<void(protocol::Message*, Failure)> complete;
    Clock::time_point deadline;  // max() when the request has no timeout
  };

  // The reply a request expects, and how that reply becomes the request's
  // outcome; it keeps only what the outcome repeats from the request.
  struct Expectation {
    protocol::MessageType reply_type;
    std::function<Outcome(protocol::Message&)> outcome;
  };

  template <class Reply, class Make>
  static Expectation expecting(Make make) {
    return {protocol::type_of(Reply{}), [make = std::move(make)](protocol::Message& reply) {
              return Outcome(make(std::get<Reply>(std::move(reply))));
            }};
  }

  static Expectation expectation(const protocol::Login&) {
    return expecting<protocol::LoginOk>(
        [](protocol::LoginOk ok) { return LoggedIn{std::move(ok.username)}; });
  }
  static Expectation expectation(const protocol::DirectSend& request) {
    return expecting<protocol::DirectSent>([to = request.to](protocol::DirectSent ok) {
      return DirectMessageSent{to, ok.timestamp, ok.id, ok.stored};
    });
  }
  static Expectation expectation(const protocol::ActiveUsersQuery&) {
    return expecting<protocol::ActiveUsers>(
        [](protocol::ActiveUsers online) { return OnlineUsers{std::move(online.users)}; });
  }
  static Expectation expectation(const protocol::GroupCreate&) {
    return expecting<protocol::GroupCreated>([](protocol::GroupCreated created) {
      return NewGroup{std::move(created.group), std::move(created.members)};
    });
  }
  static Expectation expectation(const protocol::GroupJoin&) {
    return expecting<protocol::GroupJoined>(
        [](protocol::GroupJoined joined) { return JoinedGroup{std::move(joined.group)}; });
  }
  static Expectation expectation(const protocol::GroupLeave&) {
    return expecting<protocol::GroupLeft>([](protocol::GroupLeft left) {
      return LeftGroup{std::move(left.group), left.declined};
    });
  }
  static Expectation expectation(const protocol::GroupDelete&) {
    return expecting<protocol::GroupDeleted>(
        [](protocol::GroupDeleted deleted) { return DeletedGroup{std::move(deleted.group)}; });
  }
  static Expectation expectation(const protocol::GroupSend& request) {
    return expecting<protocol::GroupSent>([group = request.group](protocol::GroupSent ok) {
      return GroupMessageSent{group, ok.timestamp, ok.id};
    });
  }
  static Expectation expectation(const protocol::FileOffer& request) {
    return expecting<protocol::FileOfferOk>([to = request.to](protocol::FileOfferOk ok) {
      // Transfer id 0, which the server never issues, stands for FileOfferLegacy (complete()).
      return FileOfferAccepted{
          to,     ok.transfer_id,     std::move(ok.peer_address), ok.peer_udp_port,
          ok.key, ok.transfer_id == 0};
    });
  }
  static Expectation expectation(const protocol::FileOfferCheck&) {
    return expecting<protocol::FileOfferChecked>(
        [](protocol::FileOfferChecked ok) { return FileReceiverReady{std::move(ok.to)}; });
  }
  // Called just before the Ping is queued, so the round trip starts there.
  static Expectation expectation(const protocol::Ping&) {
    return expecting<protocol::Pong>([sent = Clock::now()](protocol::Pong pong) {
      return PingReply{pong.payload,
                       std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent)};
    });
  }
  static Expectation expectation(const protocol::HistoryQuery& request) {
    return expecting<protocol::HistoryPage>([name = request.name](protocol::HistoryPage page) {
      return ConversationHistory{name, page.kind, std::move(page.entries), page.more};
    });
  }
  static Expectation expectation(const protocol::Logout&) {
    return expecting<protocol::LoggedOut>(
        [](protocol::LoggedOut bye) { return SessionEnded{std::move(bye.username)}; });
  }

  template <class Event, class Handler>
  void notify(const Handler& handler, const Event& event) {
    if (!handler) return;
    // A copy: the handler may replace the events (or destroy the client).
    auto call = handler;
    gate_->run(call, event);
  }

  void expect(protocol::RequestId id, protocol::MessageType reply_type,
              std::function<void(protocol::Message*, Failure)> complete, bool timed) {
    const bool limit = timed && options_.request_timeout.count() > 0;
    const auto deadline =
        limit ? Clock::now() + options_.request_timeout : Clock::time_point::max();
    pending_.emplace(id, Pending{reply_type, std::move(complete), deadline});
    if (limit && pending_.size() == 1) arm_request_timer();
  }

  // Deadlines grow with the request id, so the first timed entry is the next to expire.
  void arm_request_timer() {
    for (const auto& [id, pending] : pending_) {
      if (pending.deadline == Clock::time_point::max()) continue;
      request_timer_.expires_at(pending.deadline);
      request_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
        if (!ec) self->on_request_timer();
      });
      return;
    }
  }

  void on_request_timer() {
    if (state_ == State::closed) return;
    const auto now = Clock::now();
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      auto pending = std::move(it->second);
      abandoned_.insert(it->first);
      it = pending_.erase(it);
      pending.complete(nullptr, fail(make_error_code(errc::timed_out)));
      if (state_ == State::closed) return;
    }
    arm_request_timer();
  }

  void on_resolved(std::error_code ec, asio::ip::tcp::resolver::results_type endpoints) {
    if (state_ == State::closed) return;
    if (ec) {
      const bool unknown = ec == asio::error::host_not_found ||
                           ec == asio::error::host_not_found_try_again ||
                           ec == asio::error::no_data || ec == asio::error::service_not_found;
      return shutdown(unknown ? make_error_code(errc::host_not_found) : transport(ec), {}, false);
    }
    asio::async_connect(
        socket_, endpoints,
        [self = shared_from_this()](std::error_code error, const asio::ip::tcp::endpoint&) {
          self->on_connected(error);
        });
  }

  void on_connected(std::error_code ec) {
    if (state_ == State::closed) return;
    if (ec) return shutdown(transport(ec), {}, false);
    std::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    if (tls_context_) return handshake();
    start_hello();
  }

  void handshake() {
    tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, *tls_context_);
    std::error_code ec;
    asio::ip::make_address(host_, ec);
    // Server Name Indication is for names; an address is checked as it is.
    if (ec) SSL_set_tlsext_host_name(tls_->native_handle(), host_.c_str());
    tls_->set_verify_mode(asio::ssl::verify_peer);
    tls_->set_verify_callback(asio::ssl::host_name_verification(host_));
    tls_->async_handshake(
        asio::ssl::stream_base::client, [self = shared_from_this()](std::error_code error) {
          if (self->state_ == State::closed) return;
          if (error) {
            return self->shutdown(make_error_code(errc::tls_error),
                                  "TLS handshake failed: " + tls_reason(error), false);
          }
          self->start_hello();
        });
  }

  void start_hello() {
    state_ = State::hello;
    last_input_ = Clock::now();
    read();
    protocol::Hello hello;
    hello.request_id = next_id_++;
    hello.software = options_.software;
    expect(
        hello.request_id, protocol::MessageType::hello_ok,
        [this](protocol::Message* reply, Failure failure) {
          if (!reply) return shutdown(failure.code, failure.detail, false);
          on_hello(std::get<protocol::HelloOk>(std::move(*reply)));
        },
        false);
    send(hello, protocol::min_version);
  }

  void on_hello(protocol::HelloOk ok) {
    if (!decoder_.set_version(ok.version)) {
      return shutdown(make_error_code(errc::unsupported_version), {}, false);
    }
    version_ = ok.version;
    state_ = State::open;
    connect_timer_.cancel();
    arm_idle_timer();
    auto done = std::move(hello_done_);
    hello_done_ = nullptr;
    done(Result<ServerInfo>(ServerInfo{ok.version, std::move(ok.software), ok.max_frame_size}));
  }

  // Liveness: after idle_time without input, one ping; after ping_timeout
  // more without input, the server is gone.
  void arm_idle_timer() {
    if (options_.idle_time.count() <= 0 || state_ == State::closed) return;
    const auto wait = probing_ ? options_.ping_timeout : options_.idle_time;
    idle_timer_.expires_at(std::max(last_input_, probe_sent_) + wait);
    idle_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (!ec) self->on_idle_timer();
    });
  }

  void on_idle_timer() {
    if (state_ != State::open) return;
    const auto now = Clock::now();
    if (probing_ && last_input_ < probe_sent_) {
      return shutdown(make_error_code(errc::timed_out), "the server stopped answering", true);
    }
    probing_ = false;
    if (now - last_input_ >= options_.idle_time) {
      protocol::Ping probe{next_id_++, 0};
      expect(
          probe.request_id, protocol::MessageType::pong, [](protocol::Message*, Failure) {}, false);
      send(probe);
      probing_ = true;
      probe_sent_ = now;
    }
    arm_idle_timer();
  }

  void read() {
    auto done = [self = shared_from_this()](std::error_code ec, std::size_t n) {
      self->on_read(ec, n);
    };
    if (tls_) {
      tls_->async_read_some(asio::buffer(read_buffer_), std::move(done));
    } else {
      socket_.async_read_some(asio::buffer(read_buffer_), std::move(done));
    }
  }

  void on_read(std::error_code ec, std::size_t size) {
    if (state_ == State::closed) return;
    if (ec) {
      // A TLS server may close without a close_notify: its last frame
      // (LoggedOut, ShutdownEvent) already said why.
      if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
        ec = make_error_code(errc::peer_closed);
      }
      return shutdown(transport(ec), {}, true);
    }
    last_input_ = Clock::now();
    std::span<const std::byte> input(read_buffer_.data(), size);
    while (!input.empty() && state_ != State::closed) {
      auto result = decoder_.feed(input);
      input = input.subspan(result.consumed);
      if (result.error) return shutdown(result.error, {}, true);
      if (result.message) handle(*result.message);
      // A newer server's reply or event is ignored; its request refused.
      if (result.unknown && result.unknown->request_id) {
        send(protocol::Error{*result.unknown->request_id,
                             static_cast<std::uint16_t>(errc::unsupported_request),
                             {}});
      }
    }
    if (state_ != State::closed) read();
  }

  void handle(protocol::Message& message) {
    std::visit(
        [&](auto& m) {
          using M = std::decay_t<decltype(m)>;
          if constexpr (std::is_same_v<M, protocol::DirectEvent>) {
            received(m.id);
            notify(events_.on_direct_message, m);
          } else if constexpr (std::is_same_v<M, protocol::GroupEvent>) {
            received(m.id);
            notify(events_.on_group_message, m);
          } else if constexpr (std::is_same_v<M, protocol::MissedEnd>) {
            notify(events_.on_missed_end, m);
          } else if constexpr (std::is_same_v<M, protocol::InviteEvent>) {
            notify(events_.on_invite, m);
          } else if constexpr (std::is_same_v<M, protocol::FileIncomingEvent>) {
            notify(events_.on_file_incoming, m);
          } else if constexpr (std::is_same_v<M, protocol::LegacyFileEvent>) {
            notify(events_.on_legacy_file, m);
          } else if constexpr (std::is_same_v<M, protocol::LoginAttemptEvent>) {
            notify(events_.on_login_attempt, m);
          } else if constexpr (std::is_same_v<M, protocol::GroupNoticeEvent>) {
            notify(events_.on_group_notice, m);
          } else if constexpr (std::is_same_v<M, protocol::TransferCancelledEvent>) {
            notify(events_.on_transfer_cancelled, m);
          } else if constexpr (std::is_same_v<M, protocol::ShutdownEvent>) {
            shutdown(std::error_code(m.code, category()), m.reason, true);
          } else if constexpr (std::is_same_v<M, protocol::Error>) {
            if (m.request_id == 0) {
              shutdown(std::error_code(m.code, category()), m.detail, true);
            } else {
              complete(m.request_id, message);
            }
          } else if constexpr (std::is_same_v<M, protocol::Ping>) {
            send(protocol::Pong{m.request_id, m.payload});
          } else if (protocol::is_request(protocol::type_of(message))) {
            shutdown(make_error_code(errc::unexpected_message), {}, true);
          } else {
            complete(m.request_id, message);
          }
        },
        message);
  }

  void received(protocol::MessageId id) {
    if (id > last_message_id_.load(std::memory_order_relaxed)) {
      last_message_id_.store(id, std::memory_order_relaxed);
    }
  }

 public:
  protocol::MessageId last_message_id() const noexcept {
    return last_message_id_.load(std::memory_order_relaxed);
  }

 private:
  void complete(protocol::RequestId id, protocol::Message& reply) {
    auto found = pending_.find(id);
    if (found == pending_.end()) {
      // The reply to a request that already timed out.
      if (abandoned_.erase(id) != 0) return;
      return shutdown(make_error_code(errc::unexpected_message), {}, true);
    }
    auto pending = std::move(found->second);
    pending_.erase(found);
    if (auto* error = std::get_if<protocol::Error>(&reply)) {
      return pending.complete(
          nullptr, fail(std::error_code(error->code, category()), std::move(error->detail)));
    }
    // A file offer to a user of the original client has a reply of its own.
    if (auto* legacy = std::get_if<protocol::FileOfferLegacy>(&reply);
        legacy && pending.reply_type == protocol::MessageType::file_offer_ok) {
      reply =
          protocol::FileOfferOk{id, 0, std::move(legacy->peer_address), legacy->peer_udp_port, {}};
    }
    if (protocol::type_of(reply) != pending.reply_type) {
      pending.complete(nullptr, fail(make_error_code(errc::unexpected_message)));
      return shutdown(make_error_code(errc::unexpected_message), {}, true);
    }
    if (std::holds_alternative<protocol::LoggedOut>(reply)) {
      // The server closes the connection next; that is the expected end.
      pending.complete(&reply, {});
      return shutdown(make_error_code(errc::peer_closed), {}, false);
    }
    pending.complete(&reply, {});
  }

  template <class Message>
  void send(const Message& message) {
    send(message, version_);
  }
  template <class Message>
  void send(const Message& message, std::uint8_t frame_version) {
    protocol::encode(message, queued_, frame_version);
    if (queued_.size() + writing_.size() > options_.limits.max_pending_write_bytes) {
      return shutdown(make_error_code(errc::slow_consumer), {}, true);
    }
    if (!writing_.empty()) return;
    write();
  }

  // Everything queued since the last write goes out in one call.
  void write() {
    std::swap(queued_, writing_);
    auto done = [self = shared_from_this()](std::error_code ec, std::size_t) {
      self->on_written(ec);
    };
    if (tls_) {
      asio::async_write(*tls_, asio::buffer(writing_), std::move(done));
    } else {
      asio::async_write(socket_, asio::buffer(writing_), std::move(done));
    }
  }

  void on_written(std::error_code ec) {
    writing_.clear();
    if (state_ == State::closed) return;
    if (ec) return shutdown(transport(ec), {}, true);
    if (!queued_.empty()) write();
  }

  // Ends the connection once: every pending request (and a connect in
  // progress) fails with `code`, in request order, then on_disconnected runs
  // if `report` and the connection had been established.
  void shutdown(std::error_code code, std::string reason, bool report) {
    if (state_ == State::closed) return;
    const bool was_open = state_ == State::open;
    state_ = State::closed;
    std::error_code ignored;
    resolver_.cancel();
    connect_timer_.cancel();
    request_timer_.cancel();
    idle_timer_.cancel();
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    queued_.clear();
    auto pending = std::move(pending_);
    pending_.clear();
    abandoned_.clear();
    for (auto& [id, request] : pending)
      request.complete(nullptr, fail(code, reason));
    if (hello_done_) {
      auto done = std::move(hello_done_);
      hello_done_ = nullptr;
      done(Result<ServerInfo>(fail(code, reason)));
    }
    if (report && was_open) notify(events_.on_disconnected, code, reason);
  }

  template <class Handler>
  void notify(const Handler& handler, std::error_code code, const std::string& reason) {
    if (!handler) return;
    auto call = handler;
    gate_->run(call, code, std::string_view(reason));
  }

  asio::strand<asio::any_io_executor> strand_;
  asio::ip::tcp::resolver resolver_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer connect_timer_;
  asio::steady_timer request_timer_;
  asio::steady_timer idle_timer_;
  std::shared_ptr<net::CallbackGate> gate_;  // shared with the completion wrappers
  std::string host_;
  std::optional<asio::ssl::context> tls_context_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;  // over socket_, with TLS
  ClientEvents events_;
  ClientOptions options_;
  protocol::Decoder decoder_;
  std::uint8_t version_ = protocol::min_version;  // of the frames sent; negotiated by Hello
  std::vector<std::byte> read_buffer_;
  std::vector<std::byte> queued_;   // frames waiting for the next write
  std::vector<std::byte> writing_;  // the write in flight; empty when none
  State state_ = State::idle;
  protocol::RequestId next_id_ = 1;
  std::map<protocol::RequestId, Pending> pending_;  // ordered: failures go out in request order
  std::set<protocol::RequestId> abandoned_;         // timed out; their replies are dropped
  Callback<ServerInfo> hello_done_;
  Clock::time_point last_input_{};
  Clock::time_point probe_sent_{};
  bool probing_ = false;
  std::atomic<protocol::MessageId> last_message_id_{0};  // written on the strand, read anywhere
};

struct Client::Runner {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
};

Client::Client(asio::io_context& io, ClientEvents events, ClientOptions options)
    : impl_(std::make_shared<Impl>(io.get_executor(), std::move(events), std::move(options))) {}

Client::Client(ClientEvents events, ClientOptions options) : runner_(std::make_shared<Runner>()) {
  impl_ = std::make_shared<Impl>(runner_->io.get_executor(), std::move(events), std::move(options));
  // The thread shares the runner, so that a Client destroyed on that thread
  // leaves the io_context to be destroyed once run() has returned.
  runner_->thread = std::thread([runner = runner_] { runner->io.run(); });
}

Client::~Client() {
  impl_->gate()->close();
  impl_->on_strand([](Impl& impl) { impl.close(); });
  impl_.reset();
  if (runner_) {
    runner_->work.reset();
    if (runner_->thread.get_id() == std::this_thread::get_id()) {
      runner_->thread.detach();
    } else {
      runner_->thread.join();
    }
  }
}

void Client::set_events(ClientEvents events) {
  impl_->on_strand(
      [events = std::move(events)](Impl& impl) mutable { impl.set_events(std::move(events)); });
}

asio::any_io_executor Client::executor() const {
  return impl_->executor();
}

std::shared_ptr<void> Client::gate() const {
  return impl_->gate();
}

void Client::run_gated(const std::shared_ptr<void>& gate, const std::function<void()>& work) {
  static_cast<net::CallbackGate*>(gate.get())->run(work);
}

void Client::start_connect(std::string host, std::uint16_t port, Callback<ServerInfo> done) {
  impl_->on_strand([host = std::move(host), port, done = std::move(done)](Impl& impl) mutable {
    impl.connect(std::move(host), port, std::move(done));
  });
}

void Client::submit(Request request, Completion done) {
  impl_->on_strand([request = std::move(request), done = std::move(done)](Impl& impl) mutable {
    impl.submit(std::move(request), std::move(done));
  });
}

protocol::MessageId Client::last_message_id() const noexcept {
  return impl_->last_message_id();
}

void Client::close() {
  impl_->on_strand([](Impl& impl) { impl.close(); });
}

}  // namespace tessenger
