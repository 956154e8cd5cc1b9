#pragma once

// The chat domain without I/O: sessions, accounts and blocks, presence,
// groups and what gets logged. The adapter feeds it decoded requests and the
// time; it answers through an Outbox. Single-threaded by design: the server
// calls it from one strand.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include <tessenger/errc.hpp>
#include <tessenger/protocol.hpp>
#include <tessenger/server_types.hpp>

#include "core/log_store.hpp"
#include "core/rate_limit.hpp"

namespace tessenger::core {

using SessionId = std::uint64_t;

/// The time, injected: steady for blocks and timeouts, wall for timestamps.
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
  /// One message to many sessions; the adapter encodes it once.
  virtual void send_to_many(std::span<const SessionId> to, const protocol::Message& message) = 0;
  /// Close the session once what is queued for it has been written.
  virtual void close(SessionId session, errc reason) = 0;
};

/// Runs slow password checks (Authenticator::slow) away from the hub's
/// thread. Implemented by the network adapter.
class PasswordChecker {
 public:
  virtual ~PasswordChecker() = default;
  /// Starts checking; the result must come back, exactly once and on the
  /// hub's thread, through Hub::password_checked. Until then the adapter
  /// feeds the hub nothing more from that session.
  virtual void check(SessionId session, std::string username, std::string password) = 0;
};

struct HubConfig {
  std::uint32_t max_attempts = 3;
  std::chrono::seconds block_duration{10};
  Limits limits;
  std::string software = "tessenger-server";
};

using RandomBytes = std::function<void(std::span<std::uint8_t>)>;

class Hub {
 public:
  /// Without a `checker`, every password is checked at once, on the caller's thread.
  Hub(HubConfig config, std::shared_ptr<const Authenticator> authenticator, LogStore& logs,
      Outbox& outbox, ServerObserver observer, LogSink log, RandomBytes random,
      PasswordChecker* checker = nullptr);

  /// A connection was accepted from `address` (textual IP). Returns false,
  /// having logged why, if a connection limit refuses it; the adapter then
  /// closes it without telling the hub again.
  bool connected(SessionId session, std::string address);
  void handle(SessionId session, const protocol::Message& message, const Instant& now);
  /// The connection is gone (closed by either side). Logs the user out.
  void disconnected(SessionId session);
  /// The result of a PasswordChecker::check; the login goes on from there.
  void password_checked(SessionId session, bool ok, const Instant& now);
  /// The login timer of a session expired; closes it if it is not logged in.
  void login_timeout(SessionId session);
  /// The session's byte stream failed to decode.
  void protocol_error(SessionId session, std::error_code error);
  /// Server stopping: every session gets a ShutdownEvent and is closed.
  void shutdown();
  /// Hands buffered log lines to the store (call after each batch of work);
  /// `done` runs once they are written (LogStore::flush).
  void flush_logs(LogStore::Done done = {}) { logs_.flush(online_, std::move(done)); }

  std::span<const OnlineRecord> online() const noexcept { return online_; }
  bool is_online(std::string_view username) const;

 private:
  enum class Stage { awaiting_hello, awaiting_login, checking_password, online };
  struct PendingLogin {
    protocol::RequestId request = 0;
    std::string username;
    std::uint16_t udp_port = 0;
  };
  struct Session {
    std::string address;
    std::string peer_key;  // address_key(address)
    Stage stage = Stage::awaiting_hello;
    std::string username;
    std::uint16_t udp_port = 0;
    TokenBucket requests;
    std::uint32_t refusals = 0;           // requests refused since the bucket was last full
    std::optional<PendingLogin> pending;  // while its password is being checked
  };
  // What is counted per address (see address_key).
  struct Peer {
    std::size_t connections = 0;
    TokenBucket failed_logins;
    std::uint64_t refused = 0;  // connections refused since one was last admitted
  };
  struct Account {
    std::uint32_t failures = 0;
    std::chrono::steady_clock::time_point blocked_until{};
  };
  struct Member {
    std::string name;
    bool joined = false;
  };
  struct Group {
    std::vector<Member> members;  // creator first, then invitees in order
    Member* find(std::string_view name);
  };

  void on_hello(SessionId id, Session& session, const protocol::Hello& hello);
  void on_login(SessionId id, Session& session, const protocol::Login& login, const Instant& now);
  void finish_login(SessionId id, Session& session, protocol::RequestId request,
                    std::string_view username, std::uint16_t udp_port, bool ok, const Instant& now);
  void on_direct(SessionId id, Session& session, const protocol::DirectSend& request,
                 const Instant& now);
  void on_active_users(SessionId id, const Session& session,
                       const protocol::ActiveUsersQuery& request);
  void on_group_create(SessionId id, Session& session, const protocol::GroupCreate& request);
  void on_group_join(SessionId id, Session& session, const protocol::GroupJoin& request);
  void on_group_send(SessionId id, Session& session, const protocol::GroupSend& request,
                     const Instant& now);
  void on_file_offer(SessionId id, Session& session, const protocol::FileOffer& request);
  void on_logout(SessionId id, Session& session, const protocol::Logout& request);

  bool within_rate(SessionId id, Session& session, protocol::RequestId request, const Instant& now);
  TokenBucket::Duration failed_login_interval() const noexcept;
  void count_failed_login(const Session& session, const Instant& now);
  void forget_idle_peers();

  void reply_error(SessionId id, protocol::RequestId request, errc code,
                   std::string_view detail = {});
  void fail_and_close(SessionId id, protocol::RequestId request, errc code);
  void go_offline(Session& session);
  SessionId online_session(std::string_view username) const;
  /// The session of `to`, the target of a one-to-one request; 0 after
  /// answering the request with the error if it is the sender or offline.
  SessionId peer_for(SessionId id, const Session& session, protocol::RequestId request,
                     const std::string& to);
  template <typename... Args>
  void info(fmt::format_string<Args...> format, Args&&... args) {
    if (log_.enabled(LogLevel::info)) {
      log_.write(LogLevel::info, fmt::format(format, std::forward<Args>(args)...));
    }
  }
  template <typename... Args>
  void warn(fmt::format_string<Args...> format, Args&&... args) {
    if (log_.enabled(LogLevel::warn)) {
      log_.write(LogLevel::warn, fmt::format(format, std::forward<Args>(args)...));
    }
  }

  HubConfig config_;
  std::shared_ptr<const Authenticator> authenticator_;
  LogStore& logs_;
  Outbox& outbox_;
  ServerObserver observer_;
  LogSink log_;
  RandomBytes random_;
  PasswordChecker* checker_;

  std::unordered_map<SessionId, Session> sessions_;
  std::unordered_map<std::string, Account> accounts_;
  std::unordered_map<std::string, SessionId> online_by_name_;
  std::vector<OnlineRecord> online_;  // login order
  std::unordered_map<std::string, Group> groups_;
  std::unordered_map<std::string, std::size_t> groups_per_user_;
  std::vector<SessionId> recipients_;  // reused for every fan-out
  // Events are built in place here, so their strings keep their memory from
  // one message to the next: no allocation per message.
  protocol::Message direct_event_{protocol::DirectEvent{}};
  protocol::Message group_event_{protocol::GroupEvent{}};
  std::unordered_map<std::string, Peer> peers_;
  std::uint64_t refused_over_total_ = 0;  // refused at max_connections since one was admitted
  std::size_t prune_peers_at_ = 1024;
  std::size_t checks_in_flight_ = 0;
  SteadyTime latest_{};  // the latest time handle() was given
};

}  // namespace tessenger::core
