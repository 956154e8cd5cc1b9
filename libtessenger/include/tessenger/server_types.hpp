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

#include <tessenger/export.hpp>
#include <tessenger/limits.hpp>

namespace tessenger {

enum class LogLevel { debug, info, warn, error };

/// Where the library writes its diagnostics. Unset `write` = logging disabled.
/// The sink is called on the server's strand, and for problems with the log
/// files (a full disk, a file that cannot be opened) on the server's log
/// thread, possibly at the same time: it must be thread-safe. The text is
/// valid only during the call.
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
/// request is handled: keep it short, copy what you keep (string views and
/// spans are valid only during the call), and never call back into the Server
/// from inside except Server::stop().
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
  Limits limits;
  LogSink log;
  std::string software = "tessenger-server";
  /// Runs a slow password check (Authenticator::slow) away from the server's
  /// strand: it must call the task exactly once, on any thread, e.g. by
  /// posting it to a thread pool the caller owns and keeps alive while the
  /// server runs. Empty: checks run on the strand and stall every connection
  /// while they last (about 0.1-0.5 s for each Argon2id hash).
  std::function<void(std::function<void()>)> offload;
};

}  // namespace tessenger
