#pragma once

#include <system_error>

#include <tessenger/export.hpp>

namespace tessenger {

/// Every error TESSENGER reports, as a std::error_code in tessenger::category().
///
/// The numeric values are part of the wire protocol (an Error reply carries
/// one) and never change meaning: new values are only ever appended.
enum class errc : int {
  // Framing and decoding (1..99): the connection that sent the frame is closed.
  frame_too_large = 1,      ///< declared length above Limits::max_frame_size
  malformed_frame = 2,      ///< truncated body, bad field encoding or trailing bytes
  unknown_message = 3,      ///< message type this version does not define
  unsupported_version = 4,  ///< frame or Hello carries a protocol version we do not speak
  field_too_long = 5,       ///< a string or list above its limit
  invalid_utf8 = 6,         ///< a string field is not valid UTF-8
  empty_frame = 7,          ///< a zero-length frame
  unexpected_message = 8,   ///< valid message in the wrong direction or state
  bad_flags = 9,            ///< reserved header bits set
  /// A request type the peer does not implement (a newer peer's request):
  /// answered with an Error, nothing happened, the connection stays open.
  unsupported_request = 10,

  // Login (100..199), SPEC §3.
  invalid_username = 100,        ///< no such account
  invalid_password = 101,        ///< wrong password; attempts remain
  account_blocked_now = 102,     ///< wrong password that reached max_attempts
  account_blocked = 103,         ///< account still inside its block period
  already_logged_in = 104,       ///< the account has a live session elsewhere
  not_logged_in = 105,           ///< command before a successful login
  login_timeout = 106,           ///< no login within the limit
  too_many_failed_logins = 107,  ///< per-address failed-login limit

  // Commands (200..299), SPEC §4 and §6.
  user_not_online = 200,  ///< target unknown or offline (detail: the name)
  cannot_message_self = 201,
  invalid_text = 202,  ///< empty after trimming, control characters, too long
  invalid_group_name = 203,
  group_exists = 204,
  group_not_found = 205,              ///< joingroup on a missing group
  group_not_found_for_message = 206,  ///< groupmsg on a missing group
  not_invited = 207,                  ///< joingroup without an invitation
  already_joined = 208,
  not_group_member = 209,         ///< groupmsg by someone never invited
  group_not_joined = 210,         ///< groupmsg by an invited member who has not joined
  invalid_username_format = 211,  ///< a listed name that is not a valid username
  no_such_file = 212,             ///< client side: /p2pvideo of an unreadable file
  limit_reached = 213,            ///< a configured limit (groups per user, members…)
  rate_limited = 214,             ///< "You are sending messages too fast."
  invalid_argument = 215,         ///< a request field out of its range
  not_group_creator = 216,        ///< deletegroup by a member who did not create the group

  // Connection and transfer (300..399).
  peer_closed = 300,         ///< the other side closed the connection
  server_shutdown = 301,     ///< the server is stopping
  slow_consumer = 302,       ///< write queue above its bound
  transfer_timeout = 303,    ///< no progress within the transfer timeout
  transfer_checksum = 304,   ///< whole-file SHA-256 mismatch
  transfer_aborted = 305,    ///< the peer aborted (reason in the message)
  transfer_too_large = 306,  ///< above the receiver's --max-receive-size
  disk_error = 307,          ///< a local file could not be written or read
  /// No answer in time: a connect, a request, or a ping of a silent peer.
  timed_out = 308,
  host_not_found = 309,       ///< the server's name did not resolve
  tls_error = 310,            ///< TLS handshake or certificate check failed (detail: why)
  service_unavailable = 311,  ///< storage or cluster backend cannot take the request now
  internal_error = 399,
};

/// The category of every tessenger::errc value; its name is "tessenger".
TESSENGER_EXPORT const std::error_category& category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), category()};
}

}  // namespace tessenger

template <>
struct std::is_error_code_enum<tessenger::errc> : std::true_type {};
