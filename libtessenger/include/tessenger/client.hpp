#pragma once

// tessenger::Client: the chat client library, an Asio adapter around the
// protocol codec.
//
// Threading: every public call may come from any thread; it is posted onto
// the client's strand, so calls made from one thread reach the server in the
// order they were made. Completion callbacks and events run on a thread that
// runs the io_context, serialised by that strand: never two at once.
//
// Thread safety: distinct objects: safe. Shared objects: safe, except the
// destructor, which must not run concurrently with another call.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <asio/io_context.hpp>

#include <tessenger/errc.hpp>
#include <tessenger/export.hpp>
#include <tessenger/limits.hpp>
#include <tessenger/protocol.hpp>

namespace tessenger {

/// Why a request failed: a std::error_code plus the server's `detail` (the
/// user or group the error is about), empty when there is none.
///
/// Codes are tessenger::errc values for everything the protocol reports and
/// Asio's (std::system_category) codes for transport failures, e.g.
/// connection_refused while connecting.
struct Failure {
  std::error_code code;
  std::string detail;
};

/// Either the server's reply to a request or the reason it failed.
template <class T>
class Result {
 public:
  Result(T value) : state_(std::move(value)) {}
  Result(Failure failure) : state_(std::move(failure)) {}

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  /// The reply. Throws std::system_error with error() when !ok().
  const T& value() const& {
    check();
    return std::get<0>(state_);
  }
  T& value() & {
    check();
    return std::get<0>(state_);
  }
  T&& value() && {
    check();
    return std::get<0>(std::move(state_));
  }
  const T* operator->() const { return &value(); }

  /// Empty when ok().
  std::error_code error() const noexcept { return ok() ? std::error_code{} : failure().code; }
  /// The server's detail string; empty when ok() or when it sent none.
  const std::string& detail() const noexcept {
    static const std::string none;
    return ok() ? none : failure().detail;
  }

 private:
  const Failure& failure() const noexcept { return *std::get_if<1>(&state_); }
  void check() const {
    if (!ok()) throw std::system_error(failure().code, failure().detail);
  }

  std::variant<T, Failure> state_;
};

/// Unsolicited notifications. Every member is optional: unset = ignored.
///
/// Context: each runs on the client's strand, in the order the frames
/// arrived. Borrowed data: the message references are valid only during the
/// call; copy what you keep. Re-entry: calling any Client member from inside
/// is fine (it is queued); so is destroying a Client that runs on the
/// caller's io_context (one that owns its thread cannot join it from there).
struct ClientEvents {
  /// A direct message from another user.
  std::function<void(const protocol::DirectEvent&)> on_direct_message;
  /// A message to a group this user has joined.
  std::function<void(const protocol::GroupEvent&)> on_group_message;
  /// Another user created a group and invited this one.
  std::function<void(const protocol::InviteEvent&)> on_invite;
  /// Another user is about to send this one a file over UDP.
  std::function<void(const protocol::FileIncomingEvent&)> on_file_incoming;
  /// Someone tried to log in to this account while this session was online.
  std::function<void(const protocol::LoginAttemptEvent&)> on_login_attempt;
  /// The connection ended without close() or a completed logout(): the
  /// server shut down or closed it (errc::server_shutdown, login_timeout,
  /// peer_closed...), the server's bytes broke the protocol (the codec's
  /// errc), or the socket failed (an Asio code). `reason` is the server's
  /// text when it sent one. Called at most once, after every pending request
  /// has completed with the same code.
  std::function<void(std::error_code code, std::string_view reason)> on_disconnected;
};

struct ClientOptions {
  /// Field and frame limits; requests that would break them fail locally
  /// (errc::invalid_text, field_too_long...) instead of reaching the server.
  Limits limits;
  /// Sent in Hello, for the server's logs.
  std::string software = "tessenger-client";
  /// TLS: the server's certificate must chain to the system's trusted CAs,
  /// or to those in `tls_ca_file` (PEM) when it is set, and name the host
  /// given to connect(). If it does not, connect() fails with the TLS error
  /// (asio::error::get_ssl_category()); there is no fallback to plain TCP.
  bool tls = false;
  std::string tls_ca_file;
};

/// A connection to a TESSENGER server.
///
/// Every asynchronous member completes through its callback exactly once:
/// with the server's reply, or with a Failure (the server's Error, a local
/// validation error, or the error that ended the connection). Requests are
/// pipelined: any number may be outstanding; replies are matched by request
/// id. A call made before connect() completes, or after the connection has
/// ended, fails with asio::error::not_connected.
///
/// Callbacks must not throw. Once the destructor has returned, no callback
/// or event is called any more (a pending request's callback is dropped).
class TESSENGER_EXPORT Client {
 public:
  template <class T>
  using Callback = std::function<void(Result<T>)>;

  /// Runs on the caller's io_context: the caller calls io.run(), on as many
  /// threads as it likes.
  explicit Client(asio::io_context& io, ClientEvents events = {}, ClientOptions options = {});
  /// Owns an io_context and runs it on one thread of its own, joined by the
  /// destructor. The destructor must then not run on that thread (that is,
  /// not from a callback).
  explicit Client(ClientEvents events, ClientOptions options = {});
  ~Client();

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Resolves `host` (a name or an IPv4/IPv6 literal), connects, sets
  /// TCP_NODELAY and exchanges Hello. Call once per Client.
  void connect(std::string host, std::uint16_t port, Callback<protocol::HelloOk> done);

  /// Logs in. `udp_port` is where this client receives files. Failures the
  /// server reports: invalid_username, invalid_password, already_logged_in
  /// (the connection stays open; try again), account_blocked_now and
  /// account_blocked (the server then closes the connection).
  void login(std::string username, std::string password, std::uint16_t udp_port,
             Callback<protocol::LoginOk> done);

  // Every request below fails with errc::not_logged_in before a login.

  /// Errors: user_not_online (detail: `to`), cannot_message_self, invalid_text.
  void send_direct(std::string to, std::string text, Callback<protocol::DirectSent> done);
  /// Other online users, in login order.
  void active_users(Callback<protocol::ActiveUsers> done);
  /// Creates `group` with this user joined and `members` invited. Errors:
  /// invalid_group_name, group_exists (detail: the group), user_not_online
  /// (detail: the first listed user who is not online).
  void create_group(std::string group, std::vector<std::string> members,
                    Callback<protocol::GroupCreated> done);
  /// Errors (detail: the group): group_not_found, not_invited, already_joined.
  void join_group(std::string group, Callback<protocol::GroupJoined> done);
  /// Errors: group_not_found_for_message, not_group_member, group_not_joined,
  /// invalid_text.
  void send_group(std::string group, std::string text, Callback<protocol::GroupSent> done);
  /// Asks the server for `to`'s UDP address before sending it a file.
  /// Errors: user_not_online (detail: `to`), cannot_message_self.
  void offer_file(std::string to, std::string file_name, std::uint64_t size,
                  protocol::Sha256 sha256, Callback<protocol::FileOfferOk> done);
  /// Round trip through the server; also a barrier: its reply arrives after
  /// the replies and events the server sent before it.
  void ping(std::uint64_t payload, Callback<protocol::Pong> done);
  /// Ends the session. On success the connection is closed and
  /// ClientEvents::on_disconnected is not called.
  void logout(Callback<protocol::LoggedOut> done);

  /// Closes the connection now. Pending requests fail with
  /// asio::error::operation_aborted; on_disconnected is not called.
  /// Idempotent.
  void close();

 private:
  class Impl;
  struct Runner;
  std::unique_ptr<Runner> runner_;  // before impl_: the io_context outlives the connection
  std::shared_ptr<Impl> impl_;
};

}  // namespace tessenger
