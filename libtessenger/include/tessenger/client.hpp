#pragma once

// tessenger::Client: the chat client library, an Asio adapter around the
// protocol codec.
//
// Threading: every public member may be called from any thread, including
// from inside a callback; calls are posted onto the client's strand, so calls
// made from one thread reach the server in the order they were made.
// Callbacks and events run on a thread that runs the io_context, serialised by
// that strand (never two at once) and never while the library holds a lock.
//
// Lifetime: once ~Client has returned, no callback or event of it runs any
// more, also with a caller-owned io_context run by other threads (~Client
// waits for a callback running on another thread to return). A callback may
// destroy the Client it is called from. Completion handlers of requests still
// pending at destruction are dropped without being called.
//
// Errors (Result::error(), on_disconnected): tessenger::errc for everything
// the protocol, the server or the client itself reports (including
// errc::timed_out, errc::host_not_found, errc::tls_error); std::system_category
// for transport failures, so that `code == std::errc::connection_refused`
// holds. Nothing else.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/dispatch.hpp>
#include <asio/io_context.hpp>

#include <tessenger/errc.hpp>
#include <tessenger/export.hpp>
#include <tessenger/limits.hpp>
#include <tessenger/protocol.hpp>

namespace tessenger {

/// Why a request failed: a std::error_code (tessenger::errc or
/// std::system_category, see the top of this header) plus the server's
/// `detail` (the user or group the error is about, or why TLS failed), empty
/// when there is none.
struct Failure {
  std::error_code code;
  std::string detail;
};

/// Either what a request achieved (ServerInfo, LoggedIn... below) or the
/// reason it failed.
template <class T>
class Result {
 public:
  Result(T value) : state_(std::move(value)) {}
  Result(Failure failure) : state_(std::move(failure)) {}

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  /// The outcome. Throws std::system_error with error() when !ok().
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

// What each request completes with on success: what the caller asked for
// and what the server answered, without the wire's plumbing (request ids).
// Named apart from the wire replies in tessenger::protocol, so that code
// using both namespaces sees no ambiguity.

/// connect(): the server the connection reached.
struct ServerInfo {
  std::uint8_t version = 0;  ///< negotiated protocol version, used from now on
  std::string software;      ///< the server's own description, free form
  std::uint32_t max_frame_size = 0;
  bool operator==(const ServerInfo&) const = default;
};

/// login(): the account this connection is now logged in to.
struct LoggedIn {
  std::string username;
  bool operator==(const LoggedIn&) const = default;
};

/// send_direct(): the server accepted the message for `to`.
struct DirectMessageSent {
  std::string to;
  protocol::Timestamp timestamp = 0;  ///< when the server delivered it
  protocol::MessageId id = 0;         ///< its stored id (protocol version 3 and later)
  /// `to` is offline: the message is stored and delivered at its next login.
  bool stored = false;
  bool operator==(const DirectMessageSent&) const = default;
};

/// active_users(): the other online users, in login order.
struct OnlineUsers {
  std::vector<protocol::ActiveUser> users;
  bool operator==(const OnlineUsers&) const = default;
};

/// create_group(): the group now exists.
struct NewGroup {
  std::string group;
  std::vector<std::string> members;  ///< this user first, then the invitees
  bool operator==(const NewGroup&) const = default;
};

/// join_group(): this user is now a member of `group`.
struct JoinedGroup {
  std::string group;
  bool operator==(const JoinedGroup&) const = default;
};

/// leave_group(): this user is no longer in `group`.
struct LeftGroup {
  std::string group;
  bool declined = false;  ///< it was an invitation this user had not accepted
  bool operator==(const LeftGroup&) const = default;
};

/// delete_group(): `group` is gone.
struct DeletedGroup {
  std::string group;
  bool operator==(const DeletedGroup&) const = default;
};

/// send_group(): the server accepted the message for `group`.
struct GroupMessageSent {
  std::string group;
  protocol::Timestamp timestamp = 0;  ///< when the server delivered it
  protocol::MessageId id = 0;         ///< its stored id (protocol version 3 and later)
  bool operator==(const GroupMessageSent&) const = default;
};

/// offer_file(): `to` is online; hand the rest to FileTransfer::send_file,
/// or, when `legacy`, to FileTransfer::send_legacy_file.
struct FileOfferAccepted {
  std::string to;
  std::uint64_t transfer_id = 0;
  std::string peer_address;  ///< `to`'s IP as the server saw it
  std::uint16_t peer_udp_port = 0;
  protocol::TransferKey key{};  ///< per-transfer secret shared with the receiver
  /// `to` uses the original client (protocol version 3, FileOfferLegacy):
  /// the file goes in its datagram format, unverified; no id, no key.
  bool legacy = false;
  bool operator==(const FileOfferAccepted&) const = default;
};

/// history(): a page of one conversation, oldest first.
struct ConversationHistory {
  std::string name;
  protocol::ConversationKind kind = protocol::ConversationKind::direct;  ///< what `name` was
  std::vector<protocol::HistoryEntry> entries;
  bool more = false;  ///< further messages exist in the direction asked
  bool operator==(const ConversationHistory&) const = default;
};

/// check_file_receiver(): a file may be offered to `to` now.
struct FileReceiverReady {
  std::string to;
  bool operator==(const FileReceiverReady&) const = default;
};

/// ping(): the server echoed `payload`.
struct PingReply {
  std::uint64_t payload = 0;
  /// From handing the request to the connection to reading the reply, on
  /// the client's steady clock.
  std::chrono::microseconds round_trip{0};
  bool operator==(const PingReply&) const = default;
};

/// logout(): the session of `username` has ended and the connection closed.
struct SessionEnded {
  std::string username;
  bool operator==(const SessionEnded&) const = default;
};

/// Unsolicited notifications. Every member is optional: unset = ignored.
///
/// Context: each runs on the client's strand, in the order the frames
/// arrived. Borrowed data: the message references are valid only during the
/// call; copy what you keep. Re-entry: calling any Client member from inside
/// is fine (it is queued), and so is destroying the Client.
struct ClientEvents {
  /// A direct message from another user.
  std::function<void(const protocol::DirectEvent&)> on_direct_message;
  /// A message to a group this user has joined.
  std::function<void(const protocol::GroupEvent&)> on_group_message;
  /// Another user created a group and invited this one.
  std::function<void(const protocol::InviteEvent&)> on_invite;
  /// A member left a group this user has joined, or a group this user is
  /// in (or invited to) was deleted (protocol version 2 and later).
  std::function<void(const protocol::GroupNoticeEvent&)> on_group_notice;
  /// Another user is about to send this one a file over UDP.
  std::function<void(const protocol::FileIncomingEvent&)> on_file_incoming;
  /// After login (protocol version 3 and later): every message sent while
  /// this user was away has been delivered (with `missed` set), `count` of them.
  std::function<void(const protocol::MissedEnd&)> on_missed_end;
  /// A user of the original client is about to send this one a file in its
  /// datagram format (protocol version 3): see FileTransfer::expect_legacy_file.
  std::function<void(const protocol::LegacyFileEvent&)> on_legacy_file;
  /// Someone tried to log in to this account while this session was online.
  std::function<void(const protocol::LoginAttemptEvent&)> on_login_attempt;
  /// The other side of a transfer offered through the server logged out or
  /// lost its connection (protocol version 3 and later): cancel it
  /// (FileTransfer::cancel) rather than wait for its timeout. The transfer
  /// may have ended already.
  std::function<void(const protocol::TransferCancelledEvent&)> on_transfer_cancelled;
  /// The connection ended without close() or a completed logout(): the
  /// server shut down or closed it (errc::server_shutdown, login_timeout,
  /// peer_closed...), stopped answering (errc::timed_out), the server's bytes
  /// broke the protocol (the codec's errc), or the socket failed
  /// (std::system_category). `reason` is the server's
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
  /// given to connect(). If it does not, connect() fails with errc::tls_error
  /// and the reason in the detail; there is no fallback to plain TCP.
  bool tls = false;
  std::string tls_ca_file;
  /// connect() as a whole (resolve, TCP, TLS, Hello) fails with
  /// errc::timed_out after this long. Zero: no limit.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
  /// A request without its reply after this long fails with errc::timed_out
  /// (the connection stays; a late reply is dropped). Zero: no limit.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(30);
  /// When the server has sent nothing for this long the client pings it;
  /// with no byte from it within `ping_timeout` more, the connection ends:
  /// every pending request fails and on_disconnected reports
  /// errc::timed_out. Zero idle_time: never probe.
  std::chrono::milliseconds idle_time = std::chrono::seconds(30);
  std::chrono::milliseconds ping_timeout = std::chrono::seconds(15);
};

/// A connection to a TESSENGER server.
///
/// Every asynchronous member completes through its callback exactly once:
/// with its outcome (built from the server's reply and what was asked), or
/// with a Failure (the server's Error, a local validation error, or the
/// error that ended the connection). Requests are pipelined: any number may
/// be outstanding. A call made before connect() completes, or after the
/// connection has ended, fails with std::errc::not_connected.
///
/// Each request takes an Asio completion token whose signature is
/// void(Result<T>), T being the outcome type named at the request: a plain
/// handler, asio::use_future (a
/// std::future<Result<T>>), asio::use_awaitable (co_await yields the
/// Result<T>), or any other token. Results never throw on delivery and keep
/// the server's detail string. A handler runs through its associated
/// executor if it has one, else on the client's strand. Handlers must not
/// throw.
class TESSENGER_EXPORT Client {
 public:
  template <class T>
  using Callback = std::function<void(Result<T>)>;

  /// Runs on the caller's io_context: the caller calls io.run(), on as many
  /// threads as it likes.
  explicit Client(asio::io_context& io, ClientEvents events = {}, ClientOptions options = {});
  /// Owns an io_context and runs it on one thread of its own, joined by the
  /// destructor (from a callback, that thread is detached instead).
  explicit Client(ClientEvents events, ClientOptions options = {});
  ~Client();

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Replaces the event handlers; events from now on go to the new ones.
  void set_events(ClientEvents events);

  /// Resolves `host` (a name or an IPv4/IPv6 literal), connects, sets
  /// TCP_NODELAY and exchanges Hello. Call once per Client. Completes with
  /// ServerInfo. Errors: errc::host_not_found, errc::tls_error,
  /// errc::timed_out, errc::unsupported_version, or a transport error
  /// (connection_refused...).
  template <class Token>
  auto connect(std::string host, std::uint16_t port, Token&& token) {
    return asio::async_initiate<Token, void(Result<ServerInfo>)>(
        [this](auto handler, std::string name, std::uint16_t number) {
          start_connect(std::move(name), number, wrap<ServerInfo>(std::move(handler)));
        },
        token, std::move(host), port);
  }

  /// Logs in; completes with LoggedIn. `udp_port` is where this client
  /// receives files. Failures the server reports: invalid_username,
  /// invalid_password, already_logged_in (the connection stays open; try
  /// again), account_blocked_now and account_blocked (the server then
  /// closes the connection).
  template <class Token>
  auto login(std::string username, std::string password, std::uint16_t udp_port, Token&& token) {
    protocol::Login request;
    request.username = std::move(username);
    request.password = std::move(password);
    request.udp_port = udp_port;
    return request_with<LoggedIn>(std::move(request), std::forward<Token>(token));
  }
  /// As login(), after a lost connection: `resume_after` is the newest
  /// message id the previous connection received (its last_message_id()),
  /// and every message after it is delivered again as missed, with no gap
  /// and no duplicate (protocol version 3; older servers ignore it).
  template <class Token>
  auto login(std::string username, std::string password, std::uint16_t udp_port,
             protocol::MessageId resume_after, Token&& token) {
    protocol::Login request;
    request.username = std::move(username);
    request.password = std::move(password);
    request.udp_port = udp_port;
    request.resume_after = resume_after;
    return request_with<LoggedIn>(std::move(request), std::forward<Token>(token));
  }
  /// The newest message id of the direct and group messages received so far
  /// (0 before any, or from a server older than protocol version 3).
  protocol::MessageId last_message_id() const noexcept;

  // Every request below fails with errc::not_logged_in before a login.

  /// Sends `text` to `to`; completes with DirectMessageSent. Errors:
  /// user_not_online (detail: `to`), cannot_message_self, invalid_text.
  template <class Token>
  auto send_direct(std::string to, std::string text, Token&& token) {
    return request_with<DirectMessageSent>(protocol::DirectSend{0, std::move(to), std::move(text)},
                                           std::forward<Token>(token));
  }
  /// Completes with OnlineUsers: the other online users, in login order.
  template <class Token>
  auto active_users(Token&& token) {
    return request_with<OnlineUsers>(protocol::ActiveUsersQuery{}, std::forward<Token>(token));
  }
  /// Creates `group` with this user joined and `members` invited; completes
  /// with NewGroup. Errors: invalid_group_name, group_exists (detail: the
  /// group), user_not_online (detail: the first listed user who is not
  /// online).
  template <class Token>
  auto create_group(std::string group, std::vector<std::string> members, Token&& token) {
    return request_with<NewGroup>(protocol::GroupCreate{0, std::move(group), std::move(members)},
                                  std::forward<Token>(token));
  }
  /// Joins a group this user was invited to; completes with JoinedGroup.
  /// Errors (detail: the group): group_not_found, not_invited, already_joined.
  template <class Token>
  auto join_group(std::string group, Token&& token) {
    return request_with<JoinedGroup>(protocol::GroupJoin{0, std::move(group)},
                                     std::forward<Token>(token));
  }
  /// Leaves `group`, or declines its invitation; completes with LeftGroup.
  /// Errors (detail: the group): group_not_found, not_group_member;
  /// unsupported_request from a server of protocol version 1.
  template <class Token>
  auto leave_group(std::string group, Token&& token) {
    return request_with<LeftGroup>(protocol::GroupLeave{0, std::move(group)},
                                   std::forward<Token>(token));
  }
  /// Deletes `group`, which this user created; completes with DeletedGroup.
  /// Errors (detail: the group): group_not_found, not_group_member,
  /// not_group_creator; unsupported_request from a version 1 server.
  template <class Token>
  auto delete_group(std::string group, Token&& token) {
    return request_with<DeletedGroup>(protocol::GroupDelete{0, std::move(group)},
                                      std::forward<Token>(token));
  }
  /// Sends `text` to `group`; completes with GroupMessageSent. Errors:
  /// group_not_found_for_message, not_group_member, group_not_joined,
  /// invalid_text.
  template <class Token>
  auto send_group(std::string group, std::string text, Token&& token) {
    return request_with<GroupMessageSent>(protocol::GroupSend{0, std::move(group), std::move(text)},
                                          std::forward<Token>(token));
  }
  /// Asks the server for `to`'s UDP address before sending it a file;
  /// completes with FileOfferAccepted. Errors: user_not_online (detail:
  /// `to`), cannot_message_self.
  template <class Token>
  auto offer_file(std::string to, std::string file_name, std::uint64_t size,
                  protocol::Sha256 sha256, Token&& token) {
    return request_with<FileOfferAccepted>(
        protocol::FileOffer{0, std::move(to), std::move(file_name), size, sha256},
        std::forward<Token>(token));
  }
  /// Reads a page of a conversation this user is in (query.request_id is
  /// ignored); completes with ConversationHistory. Errors: not_group_member
  /// (detail: the group), unsupported_request (a server older than version 3).
  template <class Token>
  auto history(protocol::HistoryQuery query, Token&& token) {
    return request_with<ConversationHistory>(std::move(query), std::forward<Token>(token));
  }
  /// Asks whether a file may be offered to `to` now, before the work of
  /// hashing it; completes with FileReceiverReady. Errors: those of
  /// offer_file(); unsupported_request from a server older than protocol
  /// version 3 (then offer_file() alone tells).
  template <class Token>
  auto check_file_receiver(std::string to, Token&& token) {
    return request_with<FileReceiverReady>(protocol::FileOfferCheck{0, std::move(to)},
                                           std::forward<Token>(token));
  }
  /// Round trip through the server; completes with PingReply. Also a
  /// barrier: it completes after the replies and events the server sent
  /// before its reply.
  template <class Token>
  auto ping(std::uint64_t payload, Token&& token) {
    return request_with<PingReply>(protocol::Ping{0, payload}, std::forward<Token>(token));
  }
  /// Ends the session; completes with SessionEnded. On success the
  /// connection is closed and
  /// ClientEvents::on_disconnected is not called.
  template <class Token>
  auto logout(Token&& token) {
    return request_with<SessionEnded>(protocol::Logout{}, std::forward<Token>(token));
  }

  /// Closes the connection now. Pending requests fail with
  /// std::errc::operation_canceled; on_disconnected is not called.
  /// Idempotent.
  void close();

 private:
  class Impl;
  struct Runner;
  using Request = std::variant<protocol::Login, protocol::DirectSend, protocol::ActiveUsersQuery,
                               protocol::GroupCreate, protocol::GroupJoin, protocol::GroupLeave,
                               protocol::GroupDelete, protocol::GroupSend, protocol::FileOffer,
                               protocol::FileOfferCheck, protocol::Ping, protocol::Logout,
                               protocol::HistoryQuery>;

  using Outcome = std::variant<LoggedIn, DirectMessageSent, OnlineUsers, NewGroup, JoinedGroup,
                               LeftGroup, DeletedGroup, GroupMessageSent, FileOfferAccepted,
                               FileReceiverReady, PingReply, SessionEnded, ConversationHistory>;
  // A request's completion: its outcome, or nullptr and the failure.
  using Completion = std::function<void(Outcome*, Failure)>;

  template <class T, class Token>
  auto request_with(Request request, Token&& token) {
    return asio::async_initiate<Token, void(Result<T>)>(
        [this](auto handler, Request r) {
          submit(std::move(r), erase<T>(wrap<T>(std::move(handler))));
        },
        token, std::move(request));
  }

  // The completion handler of any token as a copyable callback. It runs the
  // handler through the handler's associated executor (the strand when it
  // has none), and not at all once ~Client has begun.
  template <class T, class Handler>
  Callback<T> wrap(Handler handler) {
    auto shared = std::make_shared<Handler>(std::move(handler));
    return [shared, fallback = executor(), gate = gate()](Result<T> result) {
      auto target = asio::get_associated_executor(*shared, fallback);
      asio::dispatch(target, [shared, gate, result = std::move(result)]() mutable {
        run_gated(gate, [&] { std::move (*shared)(std::move(result)); });
      });
    };
  }

  // Outcome-type erasure: the pending table holds one callback type.
  template <class T>
  static Completion erase(Callback<T> done) {
    return [done = std::move(done)](Outcome* outcome, Failure failure) {
      if (outcome) {
        done(Result<T>(std::get<T>(std::move(*outcome))));
      } else {
        done(Result<T>(std::move(failure)));
      }
    };
  }

  static void run_gated(const std::shared_ptr<void>& gate, const std::function<void()>& work);
  std::shared_ptr<void> gate() const;
  asio::any_io_executor executor() const;
  void start_connect(std::string host, std::uint16_t port, Callback<ServerInfo> done);
  void submit(Request request, Completion done);

  std::shared_ptr<Runner> runner_;  // before impl_: the io_context outlives the connection
  std::shared_ptr<Impl> impl_;
};

}  // namespace tessenger
