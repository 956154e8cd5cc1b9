#pragma once

// The text protocol of the original Python TESSENGER client (docs/legacy.md),
// translated to and from the native messages the hub speaks. No I/O, no
// clock: the server adapter feeds it what one read returned and sends what
// it renders, one write per string.
//
// Each read of a legacy peer becomes exactly one request for the hub, so
// that rate limits and reply order hold as for native sessions. What the
// translator decides by itself (an unknown command, a creator missing from
// its own group) travels as a Ping whose Pong renders the canned text.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <tessenger/protocol.hpp>

namespace tessenger::legacy {

/// The original client reads with recv(2048): one command per read, and
/// no reply may be longer.
inline constexpr std::size_t max_read = 2048;
/// Longer texts go out in parts of at most this many bytes, each its own write.
inline constexpr std::size_t max_write = 2000;

/// True for the first byte of a legacy login (a printable ASCII character):
/// a native frame starts with 0x00, a TLS ClientHello with 0x16.
bool starts_legacy(std::byte first) noexcept;

/// Breaks every occurrence of the words the original client acts on
/// (`blocked`, `error`, `Bye`, `p2pvideo`) with an invisible U+2060 WORD
/// JOINER after its first letter, so that relayed text reads the same and
/// triggers nothing.
std::string neutralise(std::string_view text);
/// True if `text` holds a word on which the original client disconnects.
bool has_disconnect_word(std::string_view text) noexcept;
/// Cuts `text` into parts of at most `limit` bytes, never inside a UTF-8 sequence.
std::vector<std::string> split(std::string_view text, std::size_t limit = max_write);

/// `%d %B %Y %H:%M:%S` in local time, as the original printed dates.
std::string date(protocol::Timestamp timestamp);

/// What a reply or event becomes: the writes, in order, and whether the
/// connection is to be closed after them (the hub does not close it itself).
struct Output {
  std::vector<std::string> writes;
  bool close = false;
};

class Translator {
 public:
  /// `max_attempts`: failures with unknown user names on one connection
  /// before it is closed, as the original did.
  explicit Translator(std::uint32_t max_attempts);

  /// The Hello to hand the hub first: version 1, which is never pinged (the
  /// original answers nothing it does not know).
  protocol::Message hello();
  /// One read of the peer: the request it becomes.
  protocol::Message on_text(std::string_view bytes);
  /// A reply or event for this peer, as legacy text.
  Output render(const protocol::Message& message);

  bool logged_in() const noexcept { return !username_.empty(); }
  const std::string& username() const noexcept { return username_; }

 private:
  enum class Kind { login, msgto, activeuser, creategroup, joingroup, groupmsg, logout, p2pvideo };
  struct Pending {
    Kind kind;
    std::string subject;  // the user, group or file the texts name
    std::string file;     // p2pvideo: the file
  };

  protocol::RequestId next() noexcept { return next_id_++; }
  protocol::Message canned(std::string text);
  protocol::Message login(std::string_view text);
  protocol::Message command(std::string_view text);
  Output error(const Pending& pending, const protocol::Error& error);
  Output login_error(const protocol::Error& error);

  std::uint32_t max_attempts_;
  std::uint32_t unknown_users_ = 0;
  std::string username_;
  protocol::RequestId next_id_ = 1;
  std::unordered_map<protocol::RequestId, Pending> pending_;
  std::unordered_map<protocol::RequestId, std::string> canned_;
};

}  // namespace tessenger::legacy
