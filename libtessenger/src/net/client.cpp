#include <tessenger/client.hpp>

#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <asio/bind_executor.hpp>
#include <asio/connect.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/ssl.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include "net/client_checks.hpp"

namespace tessenger {
namespace {

constexpr std::size_t read_chunk = 64 * 1024;

Failure fail(std::error_code code, std::string detail = {}) {
  return Failure{code, std::move(detail)};
}

}  // namespace

class Client::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor executor, ClientEvents events, ClientOptions options)
      : strand_(asio::make_strand(executor)),
        resolver_(strand_),
        socket_(strand_),
        events_(std::move(events)),
        options_(std::move(options)),
        decoder_(options_.limits),
        read_buffer_(read_chunk) {}

  // Called by ~Client: from now on no user callback runs. The gate is
  // recursive because the destructor may run inside a callback.
  void detach() {
    std::lock_guard lock(gate_);
    detached_ = true;
  }

  template <class F>
  void on_strand(F&& work) {
    asio::post(strand_, [self = shared_from_this(), work = std::forward<F>(work)]() mutable {
      work(*self);
    });
  }

  void connect(std::string host, std::uint16_t port, Callback<protocol::HelloOk> done) {
    if (state_ != State::idle) {
      return deliver(done, fail(make_error_code(asio::error::already_started)));
    }
    state_ = State::connecting;
    hello_done_ = std::move(done);
    host_ = host;
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
        return shutdown(ec, "cannot read the CA certificates " + options_.tls_ca_file, false);
      }
    }
    resolver_.async_resolve(
        host, std::to_string(port),
        asio::bind_executor(
            strand_, [self = shared_from_this()](std::error_code ec,
                                                 asio::ip::tcp::resolver::results_type endpoints) {
              self->on_resolved(ec, std::move(endpoints));
            }));
  }

  template <class Reply, class Request>
  void submit(Request request, Callback<Reply> done) {
    if (state_ != State::open) {
      return deliver(done, fail(make_error_code(asio::error::not_connected)));
    }
    if (auto problem = client_detail::check(request, options_.limits); problem.code) {
      return deliver(done, std::move(problem));
    }
    request.request_id = next_id_++;
    expect<Reply>(request.request_id, [this, done = std::move(done)](Result<Reply> result) {
      deliver(done, std::move(result));
    });
    send(request);
  }

  void close() { shutdown(make_error_code(asio::error::operation_aborted), {}, false); }

 private:
  enum class State { idle, connecting, hello, open, closed };

  // A request waiting for its reply: `complete` gets the reply, or nullptr
  // and the failure.
  struct Pending {
    protocol::MessageType reply_type;
    std::function<void(protocol::Message*, Failure)> complete;
  };

  template <class T>
  void deliver(const Callback<T>& done, std::type_identity_t<Result<T>> result) {
    std::lock_guard lock(gate_);
    if (!detached_ && done) done(std::move(result));
  }

  template <class Event, class Handler>
  void notify(const Handler& handler, const Event& event) {
    std::lock_guard lock(gate_);
    if (!detached_ && handler) handler(event);
  }

  // `handler` runs on the strand, outside the gate.
  template <class Reply>
  void expect(protocol::RequestId id, std::function<void(Result<Reply>)> handler) {
    pending_.emplace(
        id, Pending{protocol::type_of(Reply{}),
                    [handler = std::move(handler)](protocol::Message* reply, Failure failure) {
                      if (reply) {
                        handler(Result<Reply>(std::get<Reply>(std::move(*reply))));
                      } else {
                        handler(Result<Reply>(std::move(failure)));
                      }
                    }});
  }

  void on_resolved(std::error_code ec, asio::ip::tcp::resolver::results_type endpoints) {
    if (state_ == State::closed) return;
    if (ec) return shutdown(ec, {}, false);
    asio::async_connect(
        socket_, endpoints,
        asio::bind_executor(strand_, [self = shared_from_this()](std::error_code error,
                                                                 const asio::ip::tcp::endpoint&) {
          self->on_connected(error);
        }));
  }

  void on_connected(std::error_code ec) {
    if (state_ == State::closed) return;
    if (ec) return shutdown(ec, {}, false);
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
        asio::ssl::stream_base::client,
        asio::bind_executor(strand_, [self = shared_from_this()](std::error_code error) {
          if (self->state_ == State::closed) return;
          if (error) return self->shutdown(error, "TLS handshake failed", false);
          self->start_hello();
        }));
  }

  void start_hello() {
    state_ = State::hello;
    read();
    protocol::Hello hello;
    hello.request_id = next_id_++;
    hello.software = options_.software;
    expect<protocol::HelloOk>(hello.request_id, [this](Result<protocol::HelloOk> result) {
      on_hello(std::move(result));
    });
    send(hello, protocol::min_version);
  }

  void on_hello(Result<protocol::HelloOk> result) {
    if (!result) return shutdown(result.error(), result.detail(), false);
    if (!decoder_.set_version(result->version)) {
      return shutdown(make_error_code(errc::unsupported_version), {}, false);
    }
    version_ = result->version;
    state_ = State::open;
    auto done = std::move(hello_done_);
    deliver(done, std::move(result));
  }

  void read() {
    auto done = asio::bind_executor(
        strand_,
        [self = shared_from_this()](std::error_code ec, std::size_t n) { self->on_read(ec, n); });
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
      return shutdown(ec, {}, true);
    }
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
            notify(events_.on_direct_message, m);
          } else if constexpr (std::is_same_v<M, protocol::GroupEvent>) {
            notify(events_.on_group_message, m);
          } else if constexpr (std::is_same_v<M, protocol::InviteEvent>) {
            notify(events_.on_invite, m);
          } else if constexpr (std::is_same_v<M, protocol::FileIncomingEvent>) {
            notify(events_.on_file_incoming, m);
          } else if constexpr (std::is_same_v<M, protocol::LoginAttemptEvent>) {
            notify(events_.on_login_attempt, m);
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

  void complete(protocol::RequestId id, protocol::Message& reply) {
    auto found = pending_.find(id);
    if (found == pending_.end()) {
      return shutdown(make_error_code(errc::unexpected_message), {}, true);
    }
    auto pending = std::move(found->second);
    pending_.erase(found);
    if (auto* error = std::get_if<protocol::Error>(&reply)) {
      return pending.complete(
          nullptr, fail(std::error_code(error->code, category()), std::move(error->detail)));
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
  void send(const Message& message, std::uint8_t version) {
    protocol::encode(message, queued_, version);
    if (queued_.size() + writing_.size() > options_.limits.max_pending_write_bytes) {
      return shutdown(make_error_code(errc::slow_consumer), {}, true);
    }
    if (!writing_.empty()) return;
    write();
  }

  // Everything queued since the last write goes out in one call.
  void write() {
    std::swap(queued_, writing_);
    auto done = asio::bind_executor(
        strand_,
        [self = shared_from_this()](std::error_code ec, std::size_t) { self->on_written(ec); });
    if (tls_) {
      asio::async_write(*tls_, asio::buffer(writing_), std::move(done));
    } else {
      asio::async_write(socket_, asio::buffer(writing_), std::move(done));
    }
  }

  void on_written(std::error_code ec) {
    writing_.clear();
    if (state_ == State::closed) return;
    if (ec) return shutdown(ec, {}, true);
    if (!queued_.empty()) write();
  }

  // Ends the connection once: every pending request (and a connect in
  // progress) fails with `code`, in request order, then on_disconnected runs if `report` and the
  // connection had been established.
  void shutdown(std::error_code code, std::string reason, bool report) {
    if (state_ == State::closed) return;
    const bool was_open = state_ == State::open;
    state_ = State::closed;
    std::error_code ignored;
    resolver_.cancel();
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    queued_.clear();
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& [id, request] : pending)
      request.complete(nullptr, fail(code, reason));
    if (hello_done_) {
      auto done = std::move(hello_done_);
      deliver(done, Result<protocol::HelloOk>(fail(code, reason)));
    }
    if (report && was_open) {
      std::lock_guard lock(gate_);
      if (!detached_ && events_.on_disconnected) events_.on_disconnected(code, reason);
    }
  }

  asio::strand<asio::any_io_executor> strand_;
  asio::ip::tcp::resolver resolver_;
  asio::ip::tcp::socket socket_;
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
  Callback<protocol::HelloOk> hello_done_;
  std::recursive_mutex gate_;
  bool detached_ = false;
};

struct Client::Runner {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
};

Client::Client(asio::io_context& io, ClientEvents events, ClientOptions options)
    : impl_(std::make_shared<Impl>(io.get_executor(), std::move(events), std::move(options))) {}

Client::Client(ClientEvents events, ClientOptions options) : runner_(std::make_unique<Runner>()) {
  impl_ = std::make_shared<Impl>(runner_->io.get_executor(), std::move(events), std::move(options));
  runner_->thread = std::thread([runner = runner_.get()] { runner->io.run(); });
}

Client::~Client() {
  impl_->detach();
  impl_->on_strand([](Impl& impl) { impl.close(); });
  impl_.reset();
  if (runner_) {
    runner_->work.reset();
    runner_->thread.join();
  }
}

void Client::connect(std::string host, std::uint16_t port, Callback<protocol::HelloOk> done) {
  impl_->on_strand([host = std::move(host), port, done = std::move(done)](Impl& impl) mutable {
    impl.connect(std::move(host), port, std::move(done));
  });
}

void Client::login(std::string username, std::string password, std::uint16_t udp_port,
                   Callback<protocol::LoginOk> done) {
  protocol::Login request;
  request.username = std::move(username);
  request.password = std::move(password);
  request.udp_port = udp_port;
  impl_->on_strand([request = std::move(request), done = std::move(done)](Impl& impl) mutable {
    impl.submit<protocol::LoginOk>(std::move(request), std::move(done));
  });
}

void Client::send_direct(std::string to, std::string text, Callback<protocol::DirectSent> done) {
  protocol::DirectSend request;
  request.to = std::move(to);
  request.text = std::move(text);
  impl_->on_strand([request = std::move(request), done = std::move(done)](Impl& impl) mutable {
    impl.submit<protocol::DirectSent>(std::move(request), std::move(done));
  });
}

void Client::active_users(Callback<protocol::ActiveUsers> done) {
  impl_->on_strand([done = std::move(done)](Impl& impl) mutable {
    impl.submit<protocol::ActiveUsers>(protocol::ActiveUsersQuery{}, std::move(done));
  });
}

void Client::create_group(std::string group, std::vector<std::string> members,
                          Callback<protocol::GroupCreated> done) {
  protocol::GroupCreate request;
  request.group = std::move(group);
  request.members = std::move(members);
  impl_->on_strand([request = std::move(request), done = std::move(done)](Impl& impl) mutable {
    impl.submit<protocol::GroupCreated>(std::move(request), std::move(done));
  });
}

void Client::join_group(std::string group, Callback<protocol::GroupJoined> done) {
  protocol::GroupJoin request;
  request.group = std::move(group);
  impl_->on_strand([request = std::move(request), done = std::move(done)](Impl& impl) mutable {
    impl.submit<protocol::GroupJoined>(std::move(request), std::move(done));
  });
}

void Client::send_group(std::string group, std::string text, Callback<protocol::GroupSent> done) {
  protocol::GroupSend request;
  request.group = std::move(group);
  request.text = std::move(text);
  impl_->on_strand([request = std::move(request), done = std::move(done)](Impl& impl) mutable {
    impl.submit<protocol::GroupSent>(std::move(request), std::move(done));
  });
}

void Client::offer_file(std::string to, std::string file_name, std::uint64_t size,
                        protocol::Sha256 sha256, Callback<protocol::FileOfferOk> done) {
  protocol::FileOffer request;
  request.to = std::move(to);
  request.file_name = std::move(file_name);
  request.size = size;
  request.sha256 = sha256;
  impl_->on_strand([request = std::move(request), done = std::move(done)](Impl& impl) mutable {
    impl.submit<protocol::FileOfferOk>(std::move(request), std::move(done));
  });
}

void Client::ping(std::uint64_t payload, Callback<protocol::Pong> done) {
  protocol::Ping request;
  request.payload = payload;
  impl_->on_strand([request, done = std::move(done)](Impl& impl) mutable {
    impl.submit<protocol::Pong>(request, std::move(done));
  });
}

void Client::logout(Callback<protocol::LoggedOut> done) {
  impl_->on_strand([done = std::move(done)](Impl& impl) mutable {
    impl.submit<protocol::LoggedOut>(protocol::Logout{}, std::move(done));
  });
}

void Client::close() {
  impl_->on_strand([](Impl& impl) { impl.close(); });
}

}  // namespace tessenger
