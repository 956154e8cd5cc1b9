#pragma once

// Server-side types that do not depend on Asio: the authenticator, the
// observer callbacks and the log sink. server.hpp adds the Asio adapter.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <tessenger/clock.hpp>
#include <tessenger/export.hpp>
#include <tessenger/limits.hpp>
#include <tessenger/store.hpp>

namespace tessenger {

enum class LogLevel { debug, info, warn, error };

/// Where the library writes its diagnostics. Unset `write` = logging disabled.
/// The sink is called on the server's strand, and for problems with the log
/// files (a full disk, a file that cannot be opened) on the server's log
/// thread, possibly at the same time: it must be thread-safe. It is never
/// called after the Server's destructor returned. The text is valid only
/// during the call.
struct LogSink {
  LogLevel min_level = LogLevel::info;
  std::function<void(LogLevel, std::string_view)> write;

  bool enabled(LogLevel level) const noexcept { return write && level >= min_level; }
};

/// Decides who may log in. Called on the server's strand, so an implementation
/// must be quick, except verify() for an account where slow() is true: with
/// ServerConfig::offload set, that call runs on the offload thread instead,
/// concurrently with the other calls, so it must be thread-safe.
class TESSENGER_EXPORT Authenticator {
 public:
  virtual ~Authenticator();
  /// True if the account exists (an unknown name is reported differently from
  /// a wrong password, as SPEC §3 requires).
  virtual bool exists(std::string_view username) const = 0;
  /// True if the password is right for an existing account.
  virtual bool verify(std::string_view username, std::string_view password) const = 0;
  /// True if verify() is costly for this account (a password hash).
  virtual bool slow(std::string_view username) const;
};

/// The default authenticator: a credentials file of `username password` or
/// `username HASH` lines (SPEC §3), HASH being an Argon2id string as
/// hash_password() makes. Blank lines and `#` comments are ignored; each
/// malformed line is reported through `sink` with its line number and
/// skipped. (Server::start warns once if any password is in plain text.)
/// Throws std::system_error if the file cannot be read.
TESSENGER_EXPORT std::shared_ptr<const Authenticator> load_credentials_file(
    const std::filesystem::path& path, const LogSink& sink = {});

/// An Argon2id hash of `password` (libsodium's crypto_pwhash_str with its
/// interactive limits: 64 MiB and a fraction of a second), for a credentials
/// line `username HASH`. Throws std::runtime_error if memory runs out.
TESSENGER_EXPORT std::string hash_password(std::string_view password);

/// Optional notifications of what happens on the server. Every member may be
/// left empty. Each runs on the server's strand, synchronously while the
/// request is handled, never under a lock of the library and never after the
/// Server's destructor returned: keep it short, copy what you keep (string
/// views and spans are valid only during the call). Calling back into the
/// Server from inside is fine, destroying it too (see server.hpp).
struct ServerObserver {
  std::function<void(std::string_view user, std::string_view address, std::uint16_t udp_port)>
      on_login;
  std::function<void(std::string_view user)> on_logout;
  std::function<void(std::string_view from, std::string_view to, std::string_view text)>
      on_direct_message;
  std::function<void(std::string_view group, std::string_view creator,
                     std::span<const std::string> invited)>
      on_group_created;
  std::function<void(std::string_view group, std::string_view user)> on_group_joined;
  std::function<void(std::string_view group, std::string_view from, std::string_view text)>
      on_group_message;
};

/// Everything a Server needs to know. Plain data; copy freely.
struct ServerConfig {
  std::string bind_address = "127.0.0.1";  ///< IPv4 or IPv6 literal
  std::uint16_t port = 0;                  ///< 0 picks a free port; see local_port()
  std::uint32_t max_attempts = 3;          ///< failed logins before a block (1..1000)
  std::chrono::seconds block_duration{10};
  /// Stored messages older than this many days are removed; 0: kept.
  std::uint32_t history_days = 0;
  /// Each conversation keeps at most its newest this many messages; 0: all.
  std::uint64_t history_max = 0;
  /// Read when `authenticator` is empty.
  std::filesystem::path credentials_file = "credentials.txt";
  std::shared_ptr<const Authenticator> authenticator;
  /// userlog.txt, messagelog.txt and GROUP_messagelog.txt go here.
  std::filesystem::path data_dir = ".";
  /// TLS on the chat channel: a PEM certificate (or chain, leaf first) and
  /// its private key. Both empty: plain TCP, about which start() warns when
  /// the address is not a loopback one, since passwords then cross the
  /// network in clear.
  std::filesystem::path tls_certificate;
  std::filesystem::path tls_private_key;
  /// Also serve the original Python client's text protocol on the same
  /// port, told apart by the first byte (docs/legacy.md).
  bool legacy = true;
  /// With TLS on, a legacy client (which cannot speak TLS) is refused with
  /// one line unless this is set: its password then crosses in clear.
  bool allow_legacy_plaintext = false;
  Limits limits;
  LogSink log;
  std::string software = "tessenger-server";
  /// Runs a slow password check (Authenticator::slow) away from the server's
  /// strand: it must call the task exactly once, on any thread, e.g. by
  /// posting it to a thread pool the caller owns and keeps alive while the
  /// server runs. Empty: checks run on the strand and stall every connection
  /// while they last (about 0.1-0.5 s for each Argon2id hash).
  std::function<void(std::function<void()>)> offload;
  /// Where groups, memberships, blocks and messages are kept. Empty: in
  /// memory (make_memory_store()), lost at exit.
  std::shared_ptr<Store> store;
  /// The Redis of a cluster (redis://HOST:PORT[/DB] or unix:///PATH): who is
  /// online, groups, blocks and messages are shared with every node on it,
  /// and `store` is not used (docs/cluster.md). Empty: one node on its own.
  std::string cluster;
  /// This node's name in the cluster, unique in it. Empty: ADDRESS:PORT.
  std::string node_name;
  /// Where the server reads the time. Empty: the system's clocks. A
  /// ManualClock makes every timeout and block testable without waiting.
  std::shared_ptr<Clock> clock;
};

/// A snapshot of what a Server is doing and has done (Server::stats()).
/// Gauges describe now; totals count since start().
struct ServerStats {
  // Gauges.
  std::uint64_t connections = 0;          ///< sockets open, closing ones included
  std::uint64_t closing = 0;              ///< closing, still counted against the limits
  std::uint64_t sessions_online = 0;      ///< users logged in
  std::uint64_t pending_write_bytes = 0;  ///< queued for clients, all connections
  std::uint64_t parked_input_bytes = 0;   ///< read but held while a login is decided
  /// Held by frames not yet received whole, all connections (their declared
  /// sizes); at most Limits::max_incomplete_frame_bytes.
  std::uint64_t incomplete_frame_bytes = 0;
  std::uint64_t store_operations = 0;  ///< store/presence operations awaiting results
  // Totals.
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_refused = 0;  ///< over max_connections or the per-address limit
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t logins = 0;
  std::uint64_t failed_logins = 0;  ///< unknown names and wrong passwords
  std::uint64_t blocks = 0;         ///< accounts blocked after max_attempts failures
  std::uint64_t direct_messages = 0;
  std::uint64_t group_messages = 0;
  std::uint64_t group_deliveries = 0;  ///< group messages times their online recipients
  std::uint64_t rate_limited = 0;      ///< requests refused for their rate
  std::uint64_t protocol_errors = 0;   ///< connections closed for a malformed stream
  std::uint64_t slow_consumers = 0;    ///< connections dropped for not reading
  /// Connections dropped with an unfinished frame, when unfinished frames
  /// passed Limits::max_incomplete_frame_bytes.
  std::uint64_t incomplete_frame_drops = 0;
  std::uint64_t login_timeouts = 0;
  std::uint64_t pings_sent = 0;     ///< to sessions silent for Limits::idle_ping_seconds
  std::uint64_t ping_timeouts = 0;  ///< sessions closed for not answering
  std::uint64_t login_probes = 0;   ///< second logins that probed the live session
  std::uint64_t unsupported_requests = 0;
  std::uint64_t store_failures = 0;
};

}  // namespace tessenger
