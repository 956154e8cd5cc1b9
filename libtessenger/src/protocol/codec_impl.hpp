#pragma once

// The codec's machinery, generic over a schema: the list of message types a
// protocol version set defines. codec.cpp instantiates it for the real
// protocol; tests instantiate it for a made-up next version, so that two
// codecs of different versions can be made to talk to each other.
//
// A schema S provides:
//   using Message = std::variant<...>;       // every message, in table order
//   static constexpr std::uint8_t min_version, version;
//   static constexpr std::array<std::uint8_t, N> types;  // wire code of each alternative
//   static constexpr std::array<std::uint8_t, N> since;  // version that introduced it
// and a `fields(visitor, message)` overload for each alternative (found by
// ordinary lookup here or by argument-dependent lookup in the schema's
// namespace).

#include <algorithm>
#include <array>
#include <concepts>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include <tessenger/protocol.hpp>

#include "protocol/utf8.hpp"

namespace tessenger::protocol::detail {

// Limits that are part of the wire format rather than deployment choices.
inline constexpr std::size_t max_address = 64;
inline constexpr std::size_t max_detail = 256;  // Error.detail and ShutdownEvent.reason

// Smallest encodings, used to refuse a list count the payload cannot hold
// before reserving memory for it.
inline constexpr std::size_t min_string_size = 2;
template <class T>
inline constexpr std::size_t min_record_size = 0;
template <>
inline constexpr std::size_t min_record_size<ActiveUser> = 2 + 2 + 2 + 8;
template <>
inline constexpr std::size_t min_record_size<HistoryEntry> = 8 + 2 + 8 + 2;

// A buffered frame larger than this gives its memory back once decoded, so an
// idle connection does not keep a maximum-size buffer.
inline constexpr std::size_t retained_buffer_capacity = 4096;

enum class Field {
  username,
  group,
  group_or_user,
  text,
  file_name,
  password,
  software,
  address,
  detail
};

inline std::size_t limit_of(Field field, const Limits& limits) noexcept {
  switch (field) {
    case Field::username:
      return limits.max_username;
    case Field::group:
      return limits.max_group_name;
    case Field::group_or_user:
      return std::max(limits.max_group_name, limits.max_username);
    case Field::text:
      return limits.max_text;
    case Field::file_name:
      return limits.max_file_name;
    case Field::password:
      return limits.max_password;
    case Field::software:
      return limits.max_software_name;
    case Field::address:
      return max_address;
    case Field::detail:
      return max_detail;
  }
  return 0;
}

template <class M, class T>
concept Is = std::same_as<std::remove_const_t<M>, T>;
template <class M, class... T>
concept OneOf = (Is<M, T> || ...);

// The single description of every message: its fields in wire order. The
// sizer, the writer and the reader all walk it, so the three cannot disagree.
// A field added in a later version is appended, guarded by
// `if (v.version >= N)`: the visitors carry the version of the frame.
template <class V, Is<ActiveUser> M>
void fields(V& v, M& m) {
  v.str(m.username, Field::username);
  v.str(m.address, Field::address);
  v.u16(m.udp_port);
  v.i64(m.since);
}
template <class V, Is<Hello> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.u8(m.min_version);
  v.u8(m.max_version);
  v.str(m.software, Field::software);
}
template <class V, Is<Login> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.username, Field::username);
  v.str(m.password, Field::password);
  v.u16(m.udp_port);
  if (v.version >= 3) v.u64(m.resume_after);
}
template <class V, Is<DirectSend> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.to, Field::username);
  v.str(m.text, Field::text);
}
template <class V, Is<ActiveUsersQuery> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
}
template <class V, Is<GroupCreate> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.group, Field::group);
  v.str_list(m.members, Field::username);
}
template <class V, Is<GroupJoin> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.group, Field::group);
}
template <class V, Is<GroupSend> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.group, Field::group);
  v.str(m.text, Field::text);
}
template <class V, Is<Logout> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
}
template <class V, Is<FileOffer> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.to, Field::username);
  v.str(m.file_name, Field::file_name);
  v.u64(m.size);
  v.raw(m.sha256);
}
template <class V, Is<Ping> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.u64(m.payload);
}
template <class V, Is<HelloOk> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.u8(m.version);
  v.str(m.software, Field::software);
  v.u32(m.max_frame_size);
}
template <class V, Is<LoginOk> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.username, Field::username);
}
template <class V, Is<DirectSent> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.i64(m.timestamp);
  if (v.version >= 3) {
    v.u64(m.id);
    v.flag(m.stored);
  }
}
template <class V, Is<ActiveUsers> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.records(m.users);
}
template <class V, Is<GroupCreated> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.group, Field::group);
  v.str_list(m.members, Field::username);
}
template <class V, Is<GroupJoined> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.group, Field::group);
}
template <class V, Is<GroupSent> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.i64(m.timestamp);
  if (v.version >= 3) v.u64(m.id);
}
template <class V, Is<LoggedOut> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.username, Field::username);
}
template <class V, Is<FileOfferOk> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.u64(m.transfer_id);
  v.str(m.peer_address, Field::address);
  v.u16(m.peer_udp_port);
  v.raw(m.key);
}
template <class V, Is<Pong> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.u64(m.payload);
}
template <class V, Is<Error> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.u16(m.code);
  v.str(m.detail, Field::detail);
}
template <class V, Is<DirectEvent> M>
void fields(V& v, M& m) {
  v.str(m.from, Field::username);
  v.i64(m.timestamp);
  v.str(m.text, Field::text);
  if (v.version >= 3) {
    v.u64(m.id);
    v.flag(m.missed);
  }
}
template <class V, Is<GroupEvent> M>
void fields(V& v, M& m) {
  v.str(m.group, Field::group);
  v.str(m.from, Field::username);
  v.i64(m.timestamp);
  v.str(m.text, Field::text);
  if (v.version >= 3) {
    v.u64(m.id);
    v.flag(m.missed);
  }
}
template <class V, Is<InviteEvent> M>
void fields(V& v, M& m) {
  v.str(m.group, Field::group);
  v.str(m.from, Field::username);
}
template <class V, Is<FileIncomingEvent> M>
void fields(V& v, M& m) {
  v.u64(m.transfer_id);
  v.str(m.from, Field::username);
  v.str(m.file_name, Field::file_name);
  v.u64(m.size);
  v.raw(m.sha256);
  v.str(m.sender_address, Field::address);
  v.u16(m.sender_udp_port);
  v.raw(m.key);
}
template <class V, Is<ShutdownEvent> M>
void fields(V& v, M& m) {
  v.u16(m.code);
  v.str(m.reason, Field::detail);
}
template <class V, Is<LoginAttemptEvent> M>
void fields(V& v, M& m) {
  v.str(m.address, Field::address);
  v.i64(m.timestamp);
}
template <class V, OneOf<GroupLeave, GroupDelete, GroupDeleted> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.group, Field::group);
}
template <class V, Is<GroupLeft> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.group, Field::group);
  v.flag(m.declined);
}
template <class V, Is<GroupNoticeEvent> M>
void fields(V& v, M& m) {
  v.str(m.group, Field::group);
  v.str(m.user, Field::username);
  v.group_change(m.change);
}
template <class V, Is<HistoryQuery> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.conversation_kind(m.kind);
  v.str(m.name, Field::group_or_user);
  v.history_direction(m.direction);
  v.u64(m.anchor);
  v.u16(m.limit);
}
template <class V, Is<HistoryEntry> M>
void fields(V& v, M& m) {
  v.u64(m.id);
  v.str(m.from, Field::username);
  v.i64(m.timestamp);
  v.str(m.text, Field::text);
}
template <class V, Is<HistoryPage> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.conversation_kind(m.kind);
  v.str(m.name, Field::group_or_user);
  v.records(m.entries);
  v.flag(m.more);
}
template <class V, Is<MissedEnd> M>
void fields(V& v, M& m) {
  v.u32(m.count);
}
template <class V, Is<FileOfferLegacy> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.peer_address, Field::address);
  v.u16(m.peer_udp_port);
}
template <class V, Is<LegacyFileEvent> M>
void fields(V& v, M& m) {
  v.str(m.from, Field::username);
  v.str(m.file_name, Field::file_name);
  v.str(m.sender_address, Field::address);
  v.u16(m.sender_udp_port);
}
template <class V, OneOf<FileOfferCheck, FileOfferChecked> M>
void fields(V& v, M& m) {
  v.u32(m.request_id);
  v.str(m.to, Field::username);
}
template <class V, Is<TransferCancelledEvent> M>
void fields(V& v, M& m) {
  v.u64(m.transfer_id);
  v.str(m.user, Field::username);
}

// Counts the payload bytes. Refuses what the format cannot represent at all,
// because a wrapped length prefix would make the peer read a different message.
struct Sizer {
  std::uint8_t version;
  std::size_t size = 0;

  static void check_u16(std::size_t n) {
    if (n > std::numeric_limits<std::uint16_t>::max()) {
      throw std::length_error("tessenger::protocol::encode: field longer than 65535");
    }
  }
  void u8(std::uint8_t) { size += 1; }
  void flag(bool) { size += 1; }
  void group_change(GroupChange) { size += 1; }
  void conversation_kind(ConversationKind) { size += 1; }
  void history_direction(HistoryDirection) { size += 1; }
  void u16(std::uint16_t) { size += 2; }
  void u32(std::uint32_t) { size += 4; }
  void u64(std::uint64_t) { size += 8; }
  void i64(std::int64_t) { size += 8; }
  void raw(const std::array<std::uint8_t, 32>&) { size += 32; }
  void str(const std::string& s, Field) {
    check_u16(s.size());
    size += 2 + s.size();
  }
  void str_list(const std::vector<std::string>& list, Field field) {
    check_u16(list.size());
    size += 2;
    for (const auto& s : list)
      str(s, field);
  }
  template <class T>
  void records(const std::vector<T>& list) {
    check_u16(list.size());
    size += 2;
    for (const auto& record : list)
      fields(*this, record);
  }
};

struct Writer {
  std::uint8_t version;
  std::byte* p;

  void u8(std::uint8_t v) { *p++ = static_cast<std::byte>(v); }
  void flag(bool v) { u8(v ? 1 : 0); }
  void group_change(GroupChange v) { u8(static_cast<std::uint8_t>(v)); }
  void conversation_kind(ConversationKind v) { u8(static_cast<std::uint8_t>(v)); }
  void history_direction(HistoryDirection v) { u8(static_cast<std::uint8_t>(v)); }
  void u16(std::uint16_t v) {
    u8(static_cast<std::uint8_t>(v >> 8));
    u8(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v));
  }
  void u64(std::uint64_t v) {
    u32(static_cast<std::uint32_t>(v >> 32));
    u32(static_cast<std::uint32_t>(v));
  }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void bytes(const void* data, std::size_t n) {
    if (n != 0) std::memcpy(p, data, n);
    p += n;
  }
  void raw(const std::array<std::uint8_t, 32>& a) { bytes(a.data(), a.size()); }
  void str(const std::string& s, Field) {
    u16(static_cast<std::uint16_t>(s.size()));
    bytes(s.data(), s.size());
  }
  void str_list(const std::vector<std::string>& list, Field field) {
    u16(static_cast<std::uint16_t>(list.size()));
    for (const auto& s : list)
      str(s, field);
  }
  template <class T>
  void records(const std::vector<T>& list) {
    u16(static_cast<std::uint16_t>(list.size()));
    for (const auto& record : list)
      fields(*this, record);
  }
};

// Reads fields from a payload. The first failure sticks and turns every later
// read into a no-op, so a message's description needs no error plumbing.
struct Reader {
  std::uint8_t version;
  std::span<const std::byte> in;
  const Limits& limits;
  std::size_t pos = 0;
  errc error{};

  bool ok() const noexcept { return error == errc{}; }
  std::size_t remaining() const noexcept { return in.size() - pos; }
  void fail(errc e) noexcept {
    if (ok()) error = e;
  }
  bool need(std::size_t n) noexcept {
    if (!ok()) return false;
    if (remaining() < n) {
      fail(errc::malformed_frame);
      return false;
    }
    return true;
  }
  std::uint64_t be(std::size_t n) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i)
      v = (v << 8) | std::to_integer<std::uint64_t>(in[pos + i]);
    pos += n;
    return v;
  }

  void u8(std::uint8_t& v) {
    if (need(1)) v = static_cast<std::uint8_t>(be(1));
  }
  // A value outside the field's range is malformed, not guessed at.
  void flag(bool& v) {
    std::uint8_t byte = 0;
    u8(byte);
    if (byte > 1) fail(errc::malformed_frame);
    v = byte == 1;
  }
  void group_change(GroupChange& v) { enumerated(v, GroupChange::left, GroupChange::closed); }
  void conversation_kind(ConversationKind& v) {
    enumerated(v, ConversationKind::any, ConversationKind::group);
  }
  void history_direction(HistoryDirection& v) {
    enumerated(v, HistoryDirection::before, HistoryDirection::latest);
  }
  template <class E>
  void enumerated(E& v, E first, E last) {
    std::uint8_t byte = 0;
    u8(byte);
    if (!ok()) return;
    if (byte < static_cast<std::uint8_t>(first) || byte > static_cast<std::uint8_t>(last)) {
      return fail(errc::malformed_frame);
    }
    v = static_cast<E>(byte);
  }
  void u16(std::uint16_t& v) {
    if (need(2)) v = static_cast<std::uint16_t>(be(2));
  }
  void u32(std::uint32_t& v) {
    if (need(4)) v = static_cast<std::uint32_t>(be(4));
  }
  void u64(std::uint64_t& v) {
    if (need(8)) v = be(8);
  }
  void i64(std::int64_t& v) {
    if (need(8)) v = static_cast<std::int64_t>(be(8));
  }
  void raw(std::array<std::uint8_t, 32>& a) {
    if (!need(a.size())) return;
    std::memcpy(a.data(), in.data() + pos, a.size());
    pos += a.size();
  }
  void str(std::string& s, Field field) {
    std::uint16_t length = 0;
    u16(length);
    if (!ok()) return;
    // The declared length is judged before the bytes, like a frame header.
    if (length > limit_of(field, limits)) return fail(errc::field_too_long);
    if (!need(length)) return;
    const std::string_view view(reinterpret_cast<const char*>(in.data() + pos), length);
    if (!valid_utf8(view)) return fail(errc::invalid_utf8);
    s.assign(view);
    pos += length;
  }
  void str_list(std::vector<std::string>& list, Field field) {
    std::uint16_t count = 0;
    u16(count);
    if (!ok()) return;
    if (count > limits.max_list_entries) return fail(errc::field_too_long);
    if (count * min_string_size > remaining()) return fail(errc::malformed_frame);
    list.reserve(count);
    for (std::size_t i = 0; i < count && ok(); ++i)
      str(list.emplace_back(), field);
  }
  template <class T>
  void records(std::vector<T>& list) {
    std::uint16_t count = 0;
    u16(count);
    if (!ok()) return;
    if (count * min_record_size < T >> remaining()) return fail(errc::malformed_frame);
    list.reserve(count);
    for (std::size_t i = 0; i < count && ok(); ++i)
      fields(*this, list.emplace_back());
  }
};

// Variant index of each wire type code, -1 where the code is undefined.
template <class S>
inline constexpr auto indices = [] {
  std::array<int, 256> table{};
  table.fill(-1);
  for (std::size_t i = 0; i < S::types.size(); ++i) {
    table[S::types[i]] = static_cast<int>(i);
  }
  return table;
}();

// Variant index of `type` in a frame of `version`: a type exists only from
// the version that introduced it on.
template <class S>
int index_in(std::uint8_t type, std::uint8_t frame_version) noexcept {
  const int index = indices<S>[type];
  return index >= 0 && S::since[static_cast<std::size_t>(index)] <= frame_version ? index : -1;
}

template <class S, std::size_t I>
std::error_code decode_as(std::uint8_t frame_version, std::span<const std::byte> payload,
                          const Limits& limits, typename S::Message& out) {
  std::variant_alternative_t<I, typename S::Message> message;
  Reader reader{frame_version, payload, limits};
  fields(reader, message);
  if (!reader.ok()) return reader.error;
  if (reader.remaining() != 0) return errc::malformed_frame;
  out.template emplace<I>(std::move(message));
  return {};
}

template <class S>
using DecodeFn = std::error_code (*)(std::uint8_t, std::span<const std::byte>, const Limits&,
                                     typename S::Message&);

template <class S, std::size_t... I>
constexpr std::array<DecodeFn<S>, sizeof...(I)> make_decoders(std::index_sequence<I...>) {
  return {&decode_as<S, I>...};
}

template <class S>
inline constexpr auto decoders =
    make_decoders<S>(std::make_index_sequence<std::variant_size_v<typename S::Message>>{});

struct Header {
  std::uint32_t length;
  std::uint8_t version;
  std::uint8_t type;
  std::uint16_t flags;
};

inline Header parse_header(const std::byte* p) noexcept {
  const auto b = [p](int i) { return std::to_integer<std::uint32_t>(p[i]); };
  return {(b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3), static_cast<std::uint8_t>(b(4)),
          static_cast<std::uint8_t>(b(5)), static_cast<std::uint16_t>((b(6) << 8) | b(7))};
}

/// The versions a decoder accepts in frame headers.
struct VersionRange {
  std::uint8_t low;
  std::uint8_t high;
};

// Everything a header alone can prove wrong, in the documented order, so a
// bad frame is refused before any of its payload is buffered. An unknown type
// is not among them: such a frame is skipped, not fatal.
inline std::error_code check_header(const Header& h, VersionRange accepted,
                                    const Limits& limits) noexcept {
  if (h.version < accepted.low || h.version > accepted.high) return errc::unsupported_version;
  if (h.flags != 0) return errc::bad_flags;
  if (h.length == 0) return errc::empty_frame;
  if (h.length > limits.max_frame_size) return errc::frame_too_large;
  return {};
}

// Decodes one whole frame into `result` (a FeedResult-like aggregate of the
// schema's Message).
template <class S, class R>
void decode_frame(const Header& h, std::span<const std::byte> payload, const Limits& limits,
                  R& result) {
  result.version = h.version;
  const int index = index_in<S>(h.type, h.version);
  if (index < 0) {
    UnknownMessage unknown{h.type, h.version, std::nullopt};
    // Every request starts with its id, in every version: that is what lets
    // the receiver refuse a request it does not know.
    if (is_request(static_cast<MessageType>(h.type))) {
      Reader reader{h.version, payload, limits};
      RequestId id = 0;
      reader.u32(id);
      if (!reader.ok()) {
        result.error = reader.error;
        return;
      }
      unknown.request_id = id;
    }
    result.unknown = unknown;
    return;
  }
  typename S::Message message;
  result.error = decoders<S>[static_cast<std::size_t>(index)](h.version, payload, limits, message);
  if (!result.error) result.message.emplace(std::move(message));
}

inline void append(std::vector<std::byte>& buffer, std::span<const std::byte> bytes) {
  buffer.insert(buffer.end(), bytes.begin(), bytes.end());
}

template <class S, class R>
R feed_frame(std::span<const std::byte> input, const Limits& limits, VersionRange accepted,
             std::vector<std::byte>& buffer) {
  R result;
  if (buffer.empty()) {
    if (input.size() < header_size) {
      append(buffer, input);
      result.consumed = input.size();
      return result;
    }
    const Header h = parse_header(input.data());
    result.consumed = header_size;
    if ((result.error = check_header(h, accepted, limits))) return result;
    const std::size_t total = header_size + h.length;
    if (input.size() >= total) {
      result.consumed = total;
      decode_frame<S>(h, input.subspan(header_size, h.length), limits, result);
      return result;
    }
    buffer.reserve(total);
    append(buffer, input);
    result.consumed = input.size();
    return result;
  }

  if (buffer.size() < header_size) {
    const std::size_t take = std::min(header_size - buffer.size(), input.size());
    append(buffer, input.first(take));
    result.consumed = take;
    if (buffer.size() < header_size) return result;
    const Header h = parse_header(buffer.data());
    if ((result.error = check_header(h, accepted, limits))) return result;
    buffer.reserve(header_size + h.length);
  }

  const Header h = parse_header(buffer.data());
  const std::size_t total = header_size + h.length;
  const std::size_t take = std::min(total - buffer.size(), input.size() - result.consumed);
  append(buffer, input.subspan(result.consumed, take));
  result.consumed += take;
  if (buffer.size() < total) return result;

  decode_frame<S>(h, std::span(buffer).subspan(header_size), limits, result);
  if (buffer.capacity() > retained_buffer_capacity) {
    buffer = {};
  } else {
    buffer.clear();
  }
  return result;
}

template <class S>
void encode_frame(const typename S::Message& message, std::vector<std::byte>& out,
                  std::uint8_t frame_version) {
  if (frame_version < S::min_version || frame_version > S::version) {
    throw std::invalid_argument("tessenger::protocol::encode: version outside the spoken range");
  }
  std::visit(
      [&out, frame_version, type = S::types[message.index()]](const auto& m) {
        Sizer sizer{frame_version};
        fields(sizer, m);
        if (sizer.size > std::numeric_limits<std::uint32_t>::max()) {
          throw std::length_error("tessenger::protocol::encode: payload longer than 2^32-1");
        }
        const std::size_t old_size = out.size();
        const std::size_t frame_size = header_size + sizer.size;
        // Exact for a fresh buffer; geometric when appending, so a batch of
        // frames encoded into one buffer is not quadratic.
        if (out.capacity() - old_size < frame_size) {
          out.reserve(std::max(old_size + frame_size, old_size == 0 ? 0 : 2 * out.capacity()));
        }
        out.resize(old_size + frame_size);
        Writer writer{frame_version, out.data() + old_size};
        writer.u32(static_cast<std::uint32_t>(sizer.size));
        writer.u8(frame_version);
        writer.u8(type);
        writer.u16(0);
        fields(writer, m);
      },
      message);
}

template <class S>
std::error_code decode_payload_as(std::uint8_t type, std::uint8_t frame_version,
                                  std::span<const std::byte> payload, const Limits& limits,
                                  typename S::Message& out) {
  if (frame_version < S::min_version || frame_version > S::version)
    return errc::unsupported_version;
  const int index = index_in<S>(type, frame_version);
  if (index < 0) return errc::unknown_message;
  if (payload.empty()) return errc::empty_frame;
  if (payload.size() > limits.max_frame_size) return errc::frame_too_large;
  try {
    return decoders<S>[static_cast<std::size_t>(index)](frame_version, payload, limits, out);
  } catch (const std::bad_alloc&) {
    return errc::internal_error;
  }
}

// The position of T among a variant's alternatives.
template <class T, class Variant, std::size_t I = 0>
constexpr std::size_t alternative_index() {
  static_assert(I < std::variant_size_v<Variant>, "not an alternative");
  if constexpr (std::is_same_v<std::variant_alternative_t<I, Variant>, T>) {
    return I;
  } else {
    return alternative_index<T, Variant, I + 1>();
  }
}

// The real protocol as a schema of the generic codec (codec_impl.hpp).
struct Schema {
  using Message = protocol::Message;
  static constexpr std::uint8_t min_version = protocol::min_version;
  static constexpr std::uint8_t version = protocol::version;

  // Wire type and introducing version of each Message alternative, in variant order.
  static constexpr std::array<std::uint8_t, std::variant_size_v<Message>> types = [] {
    constexpr std::array<MessageType, std::variant_size_v<Message>> codes{
        MessageType::hello,
        MessageType::login,
        MessageType::direct_send,
        MessageType::active_users_query,
        MessageType::group_create,
        MessageType::group_join,
        MessageType::group_send,
        MessageType::logout,
        MessageType::file_offer,
        MessageType::ping,
        MessageType::hello_ok,
        MessageType::login_ok,
        MessageType::direct_sent,
        MessageType::active_users,
        MessageType::group_created,
        MessageType::group_joined,
        MessageType::group_sent,
        MessageType::logged_out,
        MessageType::file_offer_ok,
        MessageType::pong,
        MessageType::error,
        MessageType::direct_event,
        MessageType::group_event,
        MessageType::invite_event,
        MessageType::file_incoming_event,
        MessageType::shutdown_event,
        MessageType::login_attempt_event,
        MessageType::group_leave,
        MessageType::group_delete,
        MessageType::group_left,
        MessageType::group_deleted,
        MessageType::group_notice_event,
        MessageType::history_query,
        MessageType::history_page,
        MessageType::missed_end,
        MessageType::file_offer_legacy,
        MessageType::legacy_file_event,
        MessageType::file_offer_check,
        MessageType::file_offer_checked,
        MessageType::transfer_cancelled_event,
    };
    std::array<std::uint8_t, std::variant_size_v<Message>> out{};
    for (std::size_t i = 0; i < codes.size(); ++i)
      out[i] = static_cast<std::uint8_t>(codes[i]);
    return out;
  }();
  static constexpr std::array<std::uint8_t, std::variant_size_v<Message>> since = [] {
    std::array<std::uint8_t, std::variant_size_v<Message>> out{};
    out.fill(1);
    // Each version's alternatives follow the previous version's.
    for (std::size_t i = alternative_index<LoginAttemptEvent, Message>(); i < out.size(); ++i)
      out[i] = 2;
    for (std::size_t i = alternative_index<HistoryQuery, Message>(); i < out.size(); ++i)
      out[i] = 3;
    return out;
  }();
};

}  // namespace tessenger::protocol::detail
