#pragma once

// The chat domain without I/O: sessions and their deadlines, logins and
// blocks, presence, groups and what gets logged. The adapter feeds it
// decoded requests and the time; it answers through an Outbox, and it owns
// every deadline (login, idle ping, ping answer, duplicate-login probe): the
// adapter arms one timer for next_expiry() and calls expire() when it fires,
// as ngtcp2's get_expiry/handle_expiry do. Groups, memberships, blocks and
// messages live behind the asynchronous Store; names behind Presence.
// Single-threaded by design: the server calls it from one strand.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include <tessenger/errc.hpp>
#include <tessenger/protocol.hpp>
#include <tessenger/server_types.hpp>
#include <tessenger/store.hpp>

#include "core/completions.hpp"
#include "core/counters.hpp"
#include "core/log_limiter.hpp"
#include "core/log_store.hpp"
#include "core/presence.hpp"
#include "core/rate_limit.hpp"

namespace tessenger::core {

/// The time, injected: steady for deadlines, wall for timestamps and blocks.
struct Instant {
  std::chrono::steady_clock::time_point steady;
  protocol::Timestamp wall = 0;  ///< microseconds since the epoch
};

/// Where the hub's output goes. Implemented by the network adapter (and by an
/// in-memory recorder in tests).
class Outbox {
 public:
  virtual ~Outbox() = default;
  virtual void send(SessionId to, const protocol::Message& message) = 0;
  /// One message to many sessions; the adapter encodes it once per version.
  virtual void send_to_many(std::span<const SessionId> to, const protocol::Message& message) = 0;
  /// The session's protocol version, agreed in Hello: encode what it is sent in it.
  virtual void negotiated(SessionId session, std::uint8_t version) = 0;
  /// Close the session: write what is queued, then close the socket, and
  /// call Hub::disconnected when it is closed. The hub has already
  /// forgotten the session's user.
  virtual void close(SessionId session, errc reason) = 0;
  /// The session wants input again (see Hub::wants_input).
  virtual void resume(SessionId session) = 0;
  /// Bytes queued for the session that its socket has not taken yet.
  virtual std::size_t backlog(SessionId session) const = 0;
  /// Call Hub::drained once the session's queue has been written out.
  virtual void notify_drained(SessionId session) = 0;
};

/// Runs slow password checks (Authenticator::slow) away from the hub's
/// thread. Implemented by the network adapter.
class PasswordChecker {
 public:
  virtual ~PasswordChecker() = default;
  /// Starts checking; the result must come back, exactly once and on the
  /// hub's thread, through Hub::password_checked.
  virtual void check(SessionId session, std::string username, std::string password) = 0;
};

struct HubConfig {
  std::uint32_t max_attempts = 3;
  std::chrono::seconds block_duration{10};
  Limits limits;
  std::string software = "tessenger-server";
  /// How long a session that looks alive has to answer the probe that a
  /// second login to its account starts.
  std::chrono::milliseconds probe_timeout{2000};
  std::uint32_t history_days = 0;  ///< StorePolicy::history_days
  std::uint64_t history_max = 0;   ///< StorePolicy::history_max
};

using RandomBytes = std::function<void(std::span<std::uint8_t>)>;

/// What the hub needs from outside, besides its configuration.
struct HubParts {
  std::shared_ptr<const Authenticator> authenticator;
  LogStore& logs;
  Store& store;
  Presence& presence;
  Outbox& outbox;
  Completions::Post post;  ///< runs a task later on the hub's thread
  RandomBytes random;
  PasswordChecker* checker = nullptr;  ///< none: passwords are checked inline
  LogSink log;
  /// A cluster's: events for users on other nodes go through it, and stored
  /// messages reach users only through Hub::deliver_stored. None: one node.
  Router* router = nullptr;
};

/// A stored message for users of this node, as a cluster's store delivers it.
struct StoredDelivery {
  MessageId id = 0;
  protocol::Timestamp time = 0;
  std::string group;  ///< empty for a direct message
  std::string from;
  std::string text;
  std::vector<std::string> to;
};

class Hub {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  Hub(HubConfig config, HubParts parts);

  void set_observer(ServerObserver observer) { observer_ = std::move(observer); }

  /// A connection was accepted from `address` (textual IP). Returns false,
  /// having logged why, if a connection limit refuses it; the adapter then
  /// closes it without telling the hub again. A session counts against the
  /// limits until disconnected(), even while it is closing.
  bool connected(SessionId session, std::string address, const Instant& now);
  /// The session speaks the original client's text protocol (docs/legacy.md):
  /// its /activeuser lists its own user too, and files to and from it use
  /// the legacy datagram format.
  void set_legacy(SessionId session);
  /// Bytes arrived from the session (any bytes prove it alive).
  void input(SessionId session, const Instant& now);
  void handle(SessionId session, const protocol::Message& message, const Instant& now);
  /// The session sent a request of a type this version does not know.
  void unsupported(SessionId session, protocol::RequestId request);
  /// The session's socket is closed (by either side): it is forgotten.
  void disconnected(SessionId session);
  /// The result of a PasswordChecker::check; the login goes on from there.
  void password_checked(SessionId session, bool ok, const Instant& now);
  /// What Outbox::notify_drained asked for: the session's queue is empty.
  void drained(SessionId session);
  /// Closes the session for a reason found outside the protocol (no reply is sent).
  void close(SessionId session, errc reason);
  /// The session's byte stream failed to decode.
  void protocol_error(SessionId session, std::error_code error);
  /// A stored message to deliver to its users here (in a cluster: every
  /// stored message, in id order).
  void deliver_stored(const StoredDelivery& message);
  /// An event another node sent for `users` of this node.
  void deliver_event(std::span<const std::string> users, const protocol::Message& message) {
    deliver(users, message, false);
  }
  /// Back in touch with the cluster after losing it: every online session
  /// gets what was stored for it meanwhile (as missed messages).
  void catch_up();
  /// Server stopping: every session gets a ShutdownEvent and is closed.
  void shutdown();

  /// False while the session must not be fed (a login under way, closing):
  /// the adapter keeps its input until Outbox::resume.
  bool wants_input(SessionId session) const;
  /// Closed in the domain, its socket not yet told: the results of requests
  /// accepted before the close are awaited, for at most probe_timeout.
  bool closing(SessionId session) const;
  /// The earliest deadline of any session, if there is one.
  std::optional<SteadyTime> next_expiry() const;
  /// Acts on every deadline at or before `now`.
  void expire(const Instant& now);

  /// Writes a line of the adapter's through the hub's limiter: `kind` (its
  /// format string) gets a few lines per 10 s, then one summary.
  void log(const void* kind, LogLevel level, std::string_view text) {
    log_.write(kind, level, text, latest_.steady);
  }
  /// Hands buffered log lines to the store (call after each batch of work);
  /// `done` runs once they are written (LogStore::flush).
  void flush_logs(LogStore::Done done = {}) {
    flush_cursors();
    logs_.flush(presence_.online(), std::move(done));
  }
  std::span<const OnlineRecord> online() const { return presence_.online(); }
  bool is_online(std::string_view username) const { return presence_.find(username) != nullptr; }
  const HubCounters& counters() const noexcept { return counters_; }
  std::size_t sessions() const noexcept { return sessions_.size(); }
  /// Store and presence operations whose results have not come back yet.
  std::uint64_t pending_operations() const noexcept { return completions_.pending(); }

 private:
  enum class Stage { awaiting_hello, awaiting_login, logging_in, online, closed };
  struct PendingLogin {
    protocol::RequestId request = 0;
    std::string username;
    std::string password;
    std::uint16_t udp_port = 0;
    MessageId resume_after = 0;
    bool counted = false;  // counted against the address's failed-login budget
  };
  // Delivering what a user missed, page by page, after its login. Live
  // messages meanwhile are held back (the replay reads them too), and ids
  // never go backwards, so nothing arrives twice or out of order.
  struct Replay {
    bool running = false;
    bool waiting_for_drain = false;
    MessageId held_back = 0;  // the newest live message not sent during the replay
    std::uint32_t count = 0;
  };
  struct Session {
    std::string address;
    std::string peer_key;  // address_key(address)
    Stage stage = Stage::awaiting_hello;
    std::uint8_t version = 0;
    bool legacy = false;  // the original client's text protocol
    std::string username;
    std::uint16_t udp_port = 0;
    TokenBucket requests;
    std::uint32_t refusals = 0;  // requests refused since the bucket was last full
    PendingLogin pending;        // while logging_in
    SteadyTime connected_at{};
    SteadyTime last_input{};
    std::optional<SteadyTime> due;    // its entry in deadlines_
    std::optional<SteadyTime> ping;   // when the unanswered ping was sent
    std::optional<SteadyTime> probe;  // deadline of a duplicate-login probe
    std::vector<SessionId> waiting;   // logins to this account waiting for the probe
    std::uint32_t inflight = 0;       // store and presence operations under way
    MessageId sent_through = 0;       // the newest message id sent to it
    Replay replay;
    struct Closing {
      errc reason{};
      std::optional<protocol::Message> farewell;
    };
    std::optional<Closing> closing;  // asked for, waiting for `inflight` to reach 0
    // Transfers offered through this server with this session on one side:
    // the other side is told when this session ends. The newest only.
    struct TransferTie {
      std::uint64_t id = 0;
      std::string peer;
    };
    std::deque<TransferTie> transfers;
  };
  // What is counted per address (see address_key).
  struct Peer {
    std::size_t connections = 0;
    TokenBucket failed_logins;
    std::uint64_t refused = 0;  // connections refused since one was last admitted
  };

  Session* find(SessionId id);
  void on_hello(SessionId id, Session& session, const protocol::Hello& hello);
  void on_login(SessionId id, Session& session, const protocol::Login& login, const Instant& now);
  void check_password(SessionId id, Session& session, const Instant& now);
  void start_checks();
  void release_check(SessionId id);
  void password_result(SessionId id, bool ok, const Instant& now);
  void claim_name(SessionId id, const Instant& now);
  void name_taken(SessionId id, const PresenceEntry& holder, const Instant& now);
  void end_login(SessionId id, Session& session);
  void on_direct(SessionId id, Session& session, const protocol::DirectSend& request,
                 const Instant& now);
  void on_active_users(SessionId id, const Session& session,
                       const protocol::ActiveUsersQuery& request);
  void on_group_create(SessionId id, Session& session, const protocol::GroupCreate& request,
                       const Instant& now);
  bool within_invitation_rate(const Session& session, std::size_t invitations, const Instant& now);
  void on_group_join(SessionId id, Session& session, const protocol::GroupJoin& request);
  void on_group_leave(SessionId id, Session& session, const protocol::GroupLeave& request);
  void on_group_delete(SessionId id, Session& session, const protocol::GroupDelete& request);
  void on_group_send(SessionId id, Session& session, const protocol::GroupSend& request,
                     const Instant& now);
  void on_file_offer(SessionId id, Session& session, const protocol::FileOffer& request);
  void legacy_file_offer(SessionId id, const Session& session, const protocol::FileOffer& request,
                         const PresenceEntry& receiver, const Session* local);
  void on_file_offer_check(SessionId id, Session& session, const protocol::FileOfferCheck& request);
  // Remembers that `session` is one side of `transfer_id` with `peer`.
  static void tie(Session& session, std::uint64_t transfer_id, const std::string& peer);
  // The entry of `to` if a file may be offered to them now; else the error
  // is sent and nullptr returned.
  const PresenceEntry* file_receiver(SessionId id, const Session& session,
                                     protocol::RequestId request, const std::string& to);
  void on_logout(SessionId id, Session& session, const protocol::Logout& request);
  void on_history(SessionId id, Session& session, const protocol::HistoryQuery& request);
  void replay_missed(SessionId id, MessageId after, bool from_cursor);
  void replayed(SessionId id, MissedPage page);
  void end_replay(SessionId id, Session& session);
  /// Sends a stored message's event to the listed users' sessions that may
  /// have it now (online, not replaying, not past it).
  void deliver_message(std::span<const std::string> users, protocol::Message& event,
                       MessageId message_id);
  void flush_cursors();

  bool within_rate(SessionId id, Session& session, protocol::RequestId request, const Instant& now);
  TokenBucket::Duration failed_login_interval() const noexcept;
  void count_failed_login(const Session& session, const Instant& now);
  void forget_idle_peers();

  void reply_error(SessionId id, protocol::RequestId request, errc code,
                   std::string_view detail = {});
  void fail_and_close(SessionId id, protocol::RequestId request, errc code);
  /// Ends the session in the domain now (its user goes offline) and asks
  /// the adapter to close it.
  void close_session(SessionId id, Session& session, errc reason,
                     std::optional<protocol::Message> farewell = std::nullopt);
  void finish_close(SessionId id, Session& session);
  /// The domain's part of a close: the user goes offline, the deadlines go;
  /// returns the logins that waited for this session's probe.
  std::vector<SessionId> end_session(SessionId id, Session& session);
  void admit_waiting(const std::vector<SessionId>& waiting);
  /// An operation of the session has come back.
  void settle(SessionId id);
  void go_offline(SessionId id, Session& session);
  /// Sends `message` to every listed user wherever they are online (those
  /// of a session older than the message's type are skipped).
  /// `forward`: also to those on other nodes, through the router.
  void deliver(std::span<const std::string> users, const protocol::Message& message,
               bool forward = true);
  void deliver(const std::string& user, const protocol::Message& message);
  /// The online entry of `to`, the target of a one-to-one request; null
  /// after answering the request with the error if it is the sender or offline.
  const PresenceEntry* peer_for(SessionId id, const Session& session, protocol::RequestId request,
                                const std::string& to);
  /// `user`'s entry if it is online (a login still being decided is not).
  const PresenceEntry* online_peer(const std::string& user);

  void schedule(SessionId id, Session& session, SteadyTime at);
  void unschedule(SessionId id, Session& session);
  void check_deadlines(SessionId id, Session& session, const Instant& now);
  void resolve_probe(SessionId id, Session& session, bool alive, const Instant& now);

  /// The callback for an operation on behalf of session `id`: its result
  /// runs `continuation` on the hub's thread, in issue order.
  template <class T, class Continuation>
  std::function<void(T)> then(SessionId id, Continuation continuation) {
    if (Session* session = find(id)) ++session->inflight;
    return completions_.wrap<T>(
        [this, id, continuation = std::move(continuation)](T result) mutable {
          continuation(std::move(result));
          settle(id);
        });
  }
  template <typename... Args>
  void info(fmt::format_string<Args...> format, Args&&... args) {
    if (log_.enabled(LogLevel::info)) {
      log_.write(fmt::string_view(format).data(), LogLevel::info,
                 fmt::format(format, std::forward<Args>(args)...), latest_.steady);
    }
  }
  template <typename... Args>
  void warn(fmt::format_string<Args...> format, Args&&... args) {
    if (log_.enabled(LogLevel::warn)) {
      log_.write(fmt::string_view(format).data(), LogLevel::warn,
                 fmt::format(format, std::forward<Args>(args)...), latest_.steady);
    }
  }

  HubConfig config_;
  std::shared_ptr<const Authenticator> authenticator_;
  LogStore& logs_;
  Store& store_;
  Presence& presence_;
  Outbox& outbox_;
  Completions completions_;
  RandomBytes random_;
  PasswordChecker* checker_;
  Router* router_;
  LogLimiter log_;  // every kind of line, rate-limited and summarised
  ServerObserver observer_;
  HubCounters counters_;

  std::unordered_map<SessionId, Session> sessions_;
  std::set<std::pair<SteadyTime, SessionId>> deadlines_;
  std::vector<SessionId> recipients_;                       // reused for every fan-out
  std::map<std::string, std::vector<std::string>> remote_;  // per node, reused for every fan-out
  // Events are built in place here, so their strings keep their memory from
  // one message to the next.
  protocol::Message direct_event_{protocol::DirectEvent{}};
  protocol::Message group_event_{protocol::GroupEvent{}};
  StringMap<Peer> peers_;
  StringMap<MessageId> delivered_;  // the newest id sent to each user since the last flush
  // Invitations per creator, kept per account so that logging in again does
  // not refill them; full buckets are forgotten when the table grows.
  StringMap<TokenBucket> invitations_;
  std::size_t prune_invitations_at_ = 1024;
  std::uint64_t refused_over_total_ = 0;  // refused at max_connections since one was admitted
  std::size_t prune_peers_at_ = 1024;
  // Slow password checks: running, and waiting in one queue per account.
  struct Checks {
    std::size_t running = 0;
    std::size_t waiting = 0;
    StringMap<std::deque<SessionId>> queues;
    std::deque<std::string> turns;         // accounts with checks waiting, served in turn
    StringMap<std::uint32_t> per_account;  // running or waiting
    StringMap<std::uint32_t> per_address;
    std::unordered_map<SessionId, std::pair<std::string, std::string>> held;  // account, address
  } checks_;
  std::uint32_t next_ping_id_ = 1;
  Instant latest_{};  // the latest time the hub was given
  void seen(const Instant& now) noexcept {
    if (now.steady > latest_.steady) latest_ = now;
  }
};

}  // namespace tessenger::core
