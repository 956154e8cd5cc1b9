#pragma once

// The TESSENGER wire protocol: typed messages and a sans-I/O codec.
//
// No sockets, no Asio, no clocks: bytes in, messages out; messages in, bytes
// out. docs/protocol.md is the normative description of the format.
//
// Thread safety: distinct objects: safe. Shared objects: unsafe.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include <tessenger/errc.hpp>
#include <tessenger/export.hpp>
#include <tessenger/limits.hpp>

namespace tessenger::protocol {

/// The newest protocol version this build speaks.
inline constexpr std::uint8_t version = 3;
/// The oldest protocol version this build speaks. A frame header may carry
/// any version from min_version to version (docs/protocol.md §5).
inline constexpr std::uint8_t min_version = 1;
/// Bytes before every payload: u32 length, u8 version, u8 type, u16 flags.
inline constexpr std::size_t header_size = 8;

/// Microseconds since the Unix epoch, UTC. Clients format it in local time.
using Timestamp = std::int64_t;
using RequestId = std::uint32_t;
using Sha256 = std::array<std::uint8_t, 32>;
using TransferKey = std::array<std::uint8_t, 32>;
/// A stored message's number: unique across the server and increasing in
/// the order messages were accepted, so also within each conversation.
using MessageId = std::uint64_t;

/// Wire type codes. Requests 0x01-0x3f, replies 0x40-0x7f, events 0x80-0xbf.
enum class MessageType : std::uint8_t {
  hello = 0x01,
  login = 0x02,
  direct_send = 0x03,
  active_users_query = 0x04,
  group_create = 0x05,
  group_join = 0x06,
  group_send = 0x07,
  logout = 0x08,
  file_offer = 0x09,
  ping = 0x0a,
  group_leave = 0x0b,       ///< since version 2
  group_delete = 0x0c,      ///< since version 2
  history_query = 0x0d,     ///< since version 3
  file_offer_check = 0x10,  ///< since version 3

  hello_ok = 0x40,
  login_ok = 0x41,
  direct_sent = 0x42,
  active_users = 0x43,
  group_created = 0x44,
  group_joined = 0x45,
  group_sent = 0x46,
  logged_out = 0x47,
  file_offer_ok = 0x48,
  pong = 0x49,
  error = 0x4a,
  group_left = 0x4b,          ///< since version 2
  group_deleted = 0x4c,       ///< since version 2
  history_page = 0x4d,        ///< since version 3
  file_offer_checked = 0x50,  ///< since version 3
  file_offer_legacy = 0x53,   ///< since version 3

  direct_event = 0x80,
  group_event = 0x81,
  invite_event = 0x82,
  file_incoming_event = 0x83,
  shutdown_event = 0x84,
  login_attempt_event = 0x85,       ///< since version 2
  group_notice_event = 0x86,        ///< since version 2
  missed_end = 0x87,                ///< since version 3
  legacy_file_event = 0x8c,         ///< since version 3
  transfer_cancelled_event = 0x89,  ///< since version 3
};

// ---- Requests (client to server). Each carries an id its reply echoes. ----

/// First frame on every connection. Its layout is the same in every version,
/// and its frame header carries min_version, so any older server can read it.
struct Hello {
  RequestId request_id = 0;
  std::uint8_t min_version = protocol::min_version;
  std::uint8_t max_version = version;
  std::string software;  ///< free form, e.g. "tessenger-client/0.1.0"
  bool operator==(const Hello&) const = default;
};

struct Login {
  RequestId request_id = 0;
  std::string username;
  std::string password;
  std::uint16_t udp_port = 0;  ///< where this client receives files
  /// Since version 3: the newest message id this client has; the messages
  /// after it are delivered at login. 0: from what the server last
  /// delivered to this account.
  MessageId resume_after = 0;
  bool operator==(const Login&) const = default;
};

struct DirectSend {
  RequestId request_id = 0;
  std::string to;
  std::string text;
  bool operator==(const DirectSend&) const = default;
};

struct ActiveUsersQuery {
  RequestId request_id = 0;
  bool operator==(const ActiveUsersQuery&) const = default;
};

struct GroupCreate {
  RequestId request_id = 0;
  std::string group;
  std::vector<std::string> members;  ///< invitees, in the order given
  bool operator==(const GroupCreate&) const = default;
};

struct GroupJoin {
  RequestId request_id = 0;
  std::string group;
  bool operator==(const GroupJoin&) const = default;
};

struct GroupSend {
  RequestId request_id = 0;
  std::string group;
  std::string text;
  bool operator==(const GroupSend&) const = default;
};

struct Logout {
  RequestId request_id = 0;
  bool operator==(const Logout&) const = default;
};

/// Asks the server to introduce the sender to `to` for a file transfer.
struct FileOffer {
  RequestId request_id = 0;
  std::string to;
  std::string file_name;  ///< base name only
  std::uint64_t size = 0;
  Sha256 sha256{};
  bool operator==(const FileOffer&) const = default;
};

/// A round trip. Clients send it; since version 2 the server also sends it to
/// a silent client, which answers Pong with the same request_id and payload.
struct Ping {
  RequestId request_id = 0;
  std::uint64_t payload = 0;
  bool operator==(const Ping&) const = default;
};

// ---- Replies (server to client), echoing the request id. ----

/// `version` is the one both sides speak from now on: the lower of the two
/// maxima. This frame and every later one carry it in their headers.
struct HelloOk {
  RequestId request_id = 0;
  std::uint8_t version = protocol::version;
  std::string software;
  std::uint32_t max_frame_size = 0;
  bool operator==(const HelloOk&) const = default;
};

struct LoginOk {
  RequestId request_id = 0;
  std::string username;
  bool operator==(const LoginOk&) const = default;
};

struct DirectSent {
  RequestId request_id = 0;
  Timestamp timestamp = 0;
  MessageId id = 0;     ///< since version 3
  bool stored = false;  ///< since version 3: the recipient is offline and gets it at login
  bool operator==(const DirectSent&) const = default;
};

struct ActiveUser {
  std::string username;
  std::string address;  ///< the client's IP as the server saw it
  std::uint16_t udp_port = 0;
  Timestamp since = 0;
  bool operator==(const ActiveUser&) const = default;
};

/// Other online users, in login order.
struct ActiveUsers {
  RequestId request_id = 0;
  std::vector<ActiveUser> users;
  bool operator==(const ActiveUsers&) const = default;
};

struct GroupCreated {
  RequestId request_id = 0;
  std::string group;
  std::vector<std::string> members;  ///< creator first, then the invitees
  bool operator==(const GroupCreated&) const = default;
};

struct GroupJoined {
  RequestId request_id = 0;
  std::string group;
  bool operator==(const GroupJoined&) const = default;
};

struct GroupSent {
  RequestId request_id = 0;
  Timestamp timestamp = 0;
  MessageId id = 0;  ///< since version 3
  bool operator==(const GroupSent&) const = default;
};

struct LoggedOut {
  RequestId request_id = 0;
  std::string username;
  bool operator==(const LoggedOut&) const = default;
};

/// The peer is online: send the file to address:udp_port under transfer_id.
struct FileOfferOk {
  RequestId request_id = 0;
  std::uint64_t transfer_id = 0;
  std::string peer_address;
  std::uint16_t peer_udp_port = 0;
  TransferKey key{};  ///< per-transfer secret shared with the receiver
  bool operator==(const FileOfferOk&) const = default;
};

struct Pong {
  RequestId request_id = 0;
  std::uint64_t payload = 0;
  bool operator==(const Pong&) const = default;
};

/// A refused request. `code` is a tessenger::errc value; `detail` names the
/// subject where the text needs one (a user or group name), else empty.
struct Error {
  RequestId request_id = 0;
  std::uint16_t code = 0;
  std::string detail;
  bool operator==(const Error&) const = default;
};

// ---- Events (server to client, unsolicited). ----

struct DirectEvent {
  std::string from;
  Timestamp timestamp = 0;
  std::string text;
  MessageId id = 0;     ///< since version 3
  bool missed = false;  ///< since version 3: sent while this user was away
  bool operator==(const DirectEvent&) const = default;
};

struct GroupEvent {
  std::string group;
  std::string from;
  Timestamp timestamp = 0;
  std::string text;
  MessageId id = 0;     ///< since version 3
  bool missed = false;  ///< since version 3: sent while this user was away
  bool operator==(const GroupEvent&) const = default;
};

struct InviteEvent {
  std::string group;
  std::string from;
  bool operator==(const InviteEvent&) const = default;
};

/// `from` is about to send a file from sender_address:sender_udp_port.
struct FileIncomingEvent {
  std::uint64_t transfer_id = 0;
  std::string from;
  std::string file_name;
  std::uint64_t size = 0;
  Sha256 sha256{};
  std::string sender_address;
  std::uint16_t sender_udp_port = 0;
  TransferKey key{};
  bool operator==(const FileIncomingEvent&) const = default;
};

/// The server is closing this connection (code: a tessenger::errc value).
struct ShutdownEvent {
  std::uint16_t code = 0;
  std::string reason;
  bool operator==(const ShutdownEvent&) const = default;
};

/// Since version 2: someone tried to log in to this session's account while
/// it was online (and was refused), from `address` at `timestamp`.
struct LoginAttemptEvent {
  std::string address;
  Timestamp timestamp = 0;
  bool operator==(const LoginAttemptEvent&) const = default;
};

// ---- Since version 2: leaving and deleting groups. ----

/// Leaves `group`, or declines its invitation when not joined yet.
struct GroupLeave {
  RequestId request_id = 0;
  std::string group;
  bool operator==(const GroupLeave&) const = default;
};

/// Deletes `group`; only its creator, while a member, may.
struct GroupDelete {
  RequestId request_id = 0;
  std::string group;
  bool operator==(const GroupDelete&) const = default;
};

struct GroupLeft {
  RequestId request_id = 0;
  std::string group;
  bool declined = false;  ///< it was an invitation, not a joined membership
  bool operator==(const GroupLeft&) const = default;
};

struct GroupDeleted {
  RequestId request_id = 0;
  std::string group;
  bool operator==(const GroupDeleted&) const = default;
};

enum class GroupChange : std::uint8_t {
  left = 1,     ///< `user` left (joined members are told)
  deleted = 2,  ///< `user`, its creator, deleted the group (every member is told)
  closed = 3,   ///< `user`, its last joined member, left: the group is gone (invitees are told)
};

/// Something happened to a group this session's user is in.
struct GroupNoticeEvent {
  std::string group;
  std::string user;
  GroupChange change = GroupChange::left;
  bool operator==(const GroupNoticeEvent&) const = default;
};

// ---- Since version 3: history and what was missed. ----

enum class ConversationKind : std::uint8_t {
  any = 0,     ///< a group of that name the user is in, else the user of that name
  direct = 1,  ///< with the user of that name
  group = 2,   ///< the group of that name
};

enum class HistoryDirection : std::uint8_t {
  before = 1,  ///< the newest `limit` messages older than `anchor`
  after = 2,   ///< the oldest `limit` messages newer than `anchor`
  latest = 3,  ///< the newest `limit` messages (`anchor` ignored)
};

/// Reads a conversation's stored messages, in the spirit of IRCv3
/// CHATHISTORY: anchors are exclusive, pages come oldest first.
struct HistoryQuery {
  RequestId request_id = 0;
  ConversationKind kind = ConversationKind::any;
  std::string name;  ///< the other user, or the group
  HistoryDirection direction = HistoryDirection::latest;
  MessageId anchor = 0;
  std::uint16_t limit = 0;  ///< 1 to max_history_page
  bool operator==(const HistoryQuery&) const = default;
};

/// The most messages one HistoryPage carries.
inline constexpr std::uint16_t max_history_page = 100;

struct HistoryEntry {
  MessageId id = 0;
  std::string from;
  Timestamp timestamp = 0;
  std::string text;
  bool operator==(const HistoryEntry&) const = default;
};

struct HistoryPage {
  RequestId request_id = 0;
  ConversationKind kind = ConversationKind::direct;  ///< direct or group: what `name` was
  std::string name;
  std::vector<HistoryEntry> entries;  ///< oldest first
  bool more = false;                  ///< further messages exist in the direction asked
  bool operator==(const HistoryPage&) const = default;
};

/// After login, once every missed message (DirectEvent/GroupEvent with
/// `missed`) has been sent: `count` of them.
struct MissedEnd {
  std::uint32_t count = 0;
  bool operator==(const MissedEnd&) const = default;
};

// ---- Since version 3: files to and from users of the original (legacy) client. ----

/// The answer to a FileOffer whose receiver uses the original client: send
/// the file to peer_address:peer_udp_port in the legacy datagram format
/// (docs/legacy.md), which nothing can verify.
struct FileOfferLegacy {
  RequestId request_id = 0;
  std::string peer_address;
  std::uint16_t peer_udp_port = 0;
  bool operator==(const FileOfferLegacy&) const = default;
};

/// `from`, a user of the original client, is about to send `file_name` from
/// sender_address in the legacy datagram format: no size, no hash, no
/// transfer id (its source port is not known in advance).
struct LegacyFileEvent {
  std::string from;
  std::string file_name;
  std::string sender_address;
  std::uint16_t sender_udp_port = 0;
  bool operator==(const LegacyFileEvent&) const = default;
};

// ---- Since version 3: transfers a person can follow. ----

/// Asks whether a file could be offered to `to` now (FileOffer's checks:
/// online, not this user, takes files), so that a client learns it before
/// hashing a large file. Answered with FileOfferChecked or FileOffer's Error.
struct FileOfferCheck {
  RequestId request_id = 0;
  std::string to;
  bool operator==(const FileOfferCheck&) const = default;
};

struct FileOfferChecked {
  RequestId request_id = 0;
  std::string to;
  bool operator==(const FileOfferChecked&) const = default;
};

/// `user`, the other side of transfer `transfer_id` (offered through this
/// server), is gone: logged out, or the connection ended. Sent to the side
/// still online, so that its transfer ends at once, not after a timeout.
/// The transfer may have finished already; then there is nothing to do.
struct TransferCancelledEvent {
  std::uint64_t transfer_id = 0;
  std::string user;
  bool operator==(const TransferCancelledEvent&) const = default;
};

using Message =
    std::variant<Hello, Login, DirectSend, ActiveUsersQuery, GroupCreate, GroupJoin, GroupSend,
                 Logout, FileOffer, Ping, HelloOk, LoginOk, DirectSent, ActiveUsers, GroupCreated,
                 GroupJoined, GroupSent, LoggedOut, FileOfferOk, Pong, Error, DirectEvent,
                 GroupEvent, InviteEvent, FileIncomingEvent, ShutdownEvent, LoginAttemptEvent,
                 GroupLeave, GroupDelete, GroupLeft, GroupDeleted, GroupNoticeEvent, HistoryQuery,
                 HistoryPage, MissedEnd, FileOfferLegacy, LegacyFileEvent, FileOfferCheck,
                 FileOfferChecked, TransferCancelledEvent>;

/// The wire type code of a message.
TESSENGER_EXPORT MessageType type_of(const Message& message) noexcept;
/// True for the request range 0x01-0x3f (also for codes this build does not know).
TESSENGER_EXPORT bool is_request(MessageType type) noexcept;
/// A short lower-case name of the type, for logs ("direct_send").
TESSENGER_EXPORT std::string_view name_of(MessageType type) noexcept;
/// The version that introduced `type`; 0 for a code this build does not know.
TESSENGER_EXPORT std::uint8_t since_version(MessageType type) noexcept;

/// Appends one encoded frame to `out`, with `version` in its header and the
/// layout of that version. Send Hello with protocol::min_version and every
/// frame after Hello/HelloOk with the negotiated version. Fields are not
/// validated here: encoding what the decoder would reject (including a type
/// newer than `version`) is the caller's bug, caught by the peer. Throws
/// std::invalid_argument for a version outside [min_version, version].
TESSENGER_EXPORT void encode(const Message& message, std::vector<std::byte>& out,
                             std::uint8_t frame_version = protocol::version);
TESSENGER_EXPORT std::vector<std::byte> encode(const Message& message,
                                               std::uint8_t frame_version = protocol::version);

/// Decodes exactly one frame's payload (header already parsed) as `version`
/// lays it out. Used by the Decoder and directly by code that has whole
/// frames in hand. A type not defined in `version` is errc::unknown_message.
TESSENGER_EXPORT std::error_code decode_payload(MessageType type,
                                                std::span<const std::byte> payload,
                                                const Limits& limits, Message& out,
                                                std::uint8_t frame_version = protocol::version);

/// A well-formed frame of a type this build does not define in the frame's
/// version (a newer peer's message). The decoder consumed it; the stream goes
/// on. A server answers an unknown request with
/// Error{request_id, errc::unsupported_request}; a client ignores the rest.
struct UnknownMessage {
  std::uint8_t type = 0;
  std::uint8_t version = 0;  ///< of its frame
  /// Read from the start of the payload for a request-range type (0x01-0x3f).
  std::optional<RequestId> request_id;
  bool operator==(const UnknownMessage&) const = default;
};

/// What one Decoder::feed call produced: at most one of message, unknown, error.
struct FeedResult {
  std::size_t consumed = 0;               ///< bytes of the input used; feed the rest next
  std::optional<Message> message;         ///< a complete message, if one ended in the input
  std::optional<UnknownMessage> unknown;  ///< a complete frame of an unknown type
  std::error_code error;                  ///< set once: the stream is unusable after it
  std::uint8_t version = 0;               ///< of the frame that gave message or unknown
};

/// Incremental frame decoder. Accepts any split or coalescing of the byte
/// stream; buffers at most one frame (header + Limits::max_frame_size).
///
/// Usage: while input remains, r = feed(input); input = input.subspan(r.consumed);
/// handle r.message or r.unknown; stop on r.error.
class TESSENGER_EXPORT Decoder {
 public:
  explicit Decoder(const Limits& limits = {});

  /// Consumes bytes up to the end of the next complete frame. Never throws.
  FeedResult feed(std::span<const std::byte> input);

  /// After Hello/HelloOk: from now on only frames of `negotiated` are
  /// accepted (any other is errc::unsupported_version). Until then every
  /// version in [min_version, version] is. Returns false, changing nothing,
  /// for a version outside that range.
  bool set_version(std::uint8_t negotiated) noexcept;
  /// The negotiated version, or 0 before set_version().
  std::uint8_t negotiated_version() const noexcept { return negotiated_; }

  /// True when no partial frame is buffered.
  bool idle() const noexcept { return buffer_.empty(); }
  const Limits& limits() const noexcept { return limits_; }

 private:
  Limits limits_;
  std::vector<std::byte> buffer_;  // partial frame: header, then payload
  std::error_code failed_;
  std::uint8_t negotiated_ = 0;
};

}  // namespace tessenger::protocol

namespace tessenger {

/// What a Protocol reports while decoding. Every member is optional.
///
/// Borrowed data: the references are valid only during the call (a message
/// may be moved from). The callbacks may call Protocol::encode() on the same
/// object, not feed(), and must not destroy it.
struct ProtocolEvents {
  /// A complete message, in stream order.
  std::function<void(protocol::Message& message)> on_message;
  /// A frame of a type unknown in its version: consumed, the stream goes on.
  std::function<void(const protocol::UnknownMessage& unknown)> on_unknown;
  /// The stream broke the format (a tessenger::errc): nothing more is
  /// decoded. Called once.
  std::function<void(std::error_code error)> on_error;
};

/// The codec's entry point for embedders: bytes in, callbacks out; messages
/// in, bytes out; no I/O, no clock. It follows the version negotiation by
/// itself: a Hello is encoded in protocol::min_version, and once a HelloOk
/// has been decoded (client side) or encoded (server side), both directions
/// use the version it names. The lower-level protocol::Decoder and
/// protocol::encode remain for code that wants to drive them itself.
///
/// Thread safety: distinct objects: safe. Shared objects: unsafe.
class TESSENGER_EXPORT Protocol {
 public:
  explicit Protocol(ProtocolEvents events = {}, const Limits& limits = {});

  /// Decodes every complete frame in `bytes`, calling the events in stream
  /// order; a trailing partial frame is kept for the next call. Returns false
  /// once the stream has failed (then it consumes nothing more).
  bool feed(std::span<const std::byte> bytes);

  /// Appends `message` to `out` as one frame in the current version.
  void encode(const protocol::Message& message, std::vector<std::byte>& out);
  std::vector<std::byte> encode(const protocol::Message& message);

  /// The version frames are encoded in: protocol::version until a HelloOk
  /// went through, then the negotiated one.
  std::uint8_t version() const noexcept { return version_; }
  /// The stream error, if the input broke the format.
  std::error_code error() const noexcept { return error_; }

 private:
  void adopt(const protocol::HelloOk& ok);

  ProtocolEvents events_;
  protocol::Decoder decoder_;
  std::uint8_t version_ = protocol::version;
  std::error_code error_;
};

}  // namespace tessenger
