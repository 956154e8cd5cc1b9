#pragma once

#include <cstddef>
#include <cstdint>

namespace tessenger {

/// Every hard limit in one place. Every default is finite; a limit that trips
/// is an error value, never unbounded memory or a crash.
struct Limits {
  // Codec (SPEC §7).
  std::size_t max_frame_size = 64 * 1024;  ///< payload bytes after the 8-byte header
  std::size_t max_username = 32;           ///< bytes
  std::size_t max_password = 256;          ///< bytes
  std::size_t max_group_name = 32;         ///< bytes
  std::size_t max_text = 4096;             ///< message text, bytes
  std::size_t max_file_name = 255;         ///< bytes
  std::size_t max_list_entries = 1024;     ///< names in one request or reply
  std::size_t max_software_name = 64;      ///< Hello's free-form software field

  // Server (SPEC §3-§5).
  std::size_t max_group_members = 1024;
  /// Groups a user has joined (created ones included); invitations not
  /// accepted do not count.
  std::size_t max_groups_per_user = 256;
  /// Groups on the server in total; a creation beyond gets
  /// Error{limit_reached}. Each group costs its members and a few dozen bytes
  /// plus its name for its log's numbering; its log file is open only while
  /// written (at most 32 are).
  std::size_t max_groups = 100'000;
  std::size_t max_pending_write_bytes = 4 * 1024 * 1024;  ///< per connection
  /// Memory that frames not yet received whole may hold, all connections
  /// together (a frame holds its declared size once its header is in). Past
  /// it, the connections whose frames have been unfinished longest are
  /// dropped until the rest fit. 0: no bound.
  std::size_t max_incomplete_frame_bytes = 64 * 1024 * 1024;
  std::uint32_t login_timeout_seconds = 60;
  /// A session silent this long is pinged (protocol version 2 and later;
  /// older sessions rely on TCP keepalive)...
  std::uint32_t idle_ping_seconds = 30;
  /// ...and closed when nothing comes back within this many seconds more.
  std::uint32_t ping_timeout_seconds = 15;

  // Abuse limits (docs/security.md). 0 switches one off, for a trusted load
  // generator; no default is 0.
  std::size_t max_connections = 16'384;      ///< live connections in total
  std::size_t max_connections_per_ip = 256;  ///< per IPv4 address or IPv6 /64
  /// Failed logins (unknown name or wrong password) one address may make in a
  /// burst, on any accounts; then one more per window / this many seconds.
  std::uint32_t max_failed_logins_per_ip = 30;
  std::uint32_t failed_login_window_seconds = 60;
  /// Failed logins against one account from all addresses within a block
  /// period; past it the account is blocked for every address that has not
  /// logged in to it before (SPEC §3), so no single address can lock a user
  /// out and many addresses cannot guess without bound.
  std::uint32_t max_account_failures = 30;
  /// Requests per second one connection may keep up, and the burst it may
  /// send at once; requests above the rate get Error{rate_limited}.
  std::uint32_t message_rate = 100;
  std::uint32_t message_burst = 200;
  /// Refused requests after which a connection that keeps flooding is closed
  /// (counted until its bucket has refilled).
  std::uint32_t max_rate_refusals = 100;
  /// Users one account may invite per minute, in bursts of as many; a
  /// creation that finds none left gets Error{rate_limited}, one that
  /// finds some may invite more and the account then waits the debt out.
  std::uint32_t max_invitations_per_minute = 60;
  /// Slow (hashed) password checks running at once, with ServerConfig::offload;
  /// more wait in turn, one queue per account, at most 4 times as many in all.
  std::size_t max_pending_password_checks = 32;
  /// Checks running or waiting for one account, and from one address; more
  /// are refused with rate_limited, so that guesses against one account never
  /// starve another account's login.
  std::size_t max_password_checks_per_account = 4;
  std::size_t max_password_checks_per_address = 4;

  // File transfer (SPEC §6).
  std::size_t max_udp_chunk = 65'507 - 64;                   ///< payload bytes per datagram
  std::uint64_t max_file_size = 16ull * 1024 * 1024 * 1024;  ///< receiver's default cap
  std::size_t max_inflight_chunks = 4096;
};

}  // namespace tessenger
