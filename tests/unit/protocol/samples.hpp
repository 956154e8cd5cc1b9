#pragma once

// Messages shared by the protocol tests, the fuzz corpus generator and the
// benchmark: one of every type, with values that exercise every field.

#include <string>
#include <vector>

#include <tessenger/protocol.hpp>

namespace tessenger::protocol::samples {

inline Sha256 digest(std::uint8_t seed) {
  Sha256 d{};
  for (std::size_t i = 0; i < d.size(); ++i)
    d[i] = static_cast<std::uint8_t>(seed + i * 7);
  return d;
}

/// One message of each type, in variant order, with non-trivial values
/// (multi-byte UTF-8, high bits set in integers, negative timestamps).
inline std::vector<Message> one_of_each() {
  return {
      Hello{1, 1, 1, "tessenger-client/0.1.0"},
      Login{2, "alice", "p\xc3\xa4ss w\xc3\xb6rd", 40000, 0x8000000000000001ull},
      DirectSend{3, "bob", "gr\xc3\xbc\xc3\x9f dich \xe2\x82\xac \xf0\x9f\x98\x80"},
      ActiveUsersQuery{4},
      GroupCreate{5, "team1", {"bob", "carol", "dave"}},
      GroupJoin{6, "team1"},
      GroupSend{0xffffffffu, "team1", "\xe4\xbd\xa0\xe5\xa5\xbd"},
      Logout{8},
      FileOffer{9, "bob", "video.mp4", 0x0123456789abcdefull, digest(3)},
      Ping{10, 0xfedcba9876543210ull},
      HelloOk{1, 1, "tessenger-server/0.1.0", 65536},
      LoginOk{2, "alice"},
      DirectSent{3, 1'699'650'430'123'456, 0xfffffffffffffffeull, true},
      ActiveUsers{
          4,
          {{"bob", "192.0.2.7", 5001, 1'699'650'000'000'000}, {"carol", "2001:db8::1", 65535, -1}}},
      GroupCreated{5, "team1", {"alice", "bob", "carol", "dave"}},
      GroupJoined{6, "team1"},
      GroupSent{7, -1'000'000, 77},
      LoggedOut{8, "alice"},
      FileOfferOk{9, 42, "198.51.100.2", 6001, digest(9)},
      Pong{10, 0xfedcba9876543210ull},
      Error{11, 200,
            "b\xc3\xb6"
            "b"},
      DirectEvent{"alice", 1'699'650'430'000'001, "hi there \xf0\x9f\x91\x8b", 41, true},
      GroupEvent{"team1", "alice", 1'699'650'430'000'002, "hello team", 1ull << 40, true},
      InviteEvent{"team1", "alice"},
      FileIncomingEvent{42, "alice", "video.mp4", 1'048'576, digest(1), "203.0.113.9", 7001,
                        digest(2)},
      ShutdownEvent{301, "server stopping"},
      LoginAttemptEvent{"2001:db8::7", 1'699'650'430'000'003},
      GroupLeave{12, "team1"},
      GroupDelete{13, "team1"},
      GroupLeft{12, "team1", true},
      GroupDeleted{13, "team1"},
      GroupNoticeEvent{"team1", "carol", GroupChange::deleted},
      HistoryQuery{14, ConversationKind::group, "team1", HistoryDirection::before,
                   0x0102030405060708ull, 100},
      HistoryPage{14,
                  ConversationKind::direct,
                  "bob",
                  {{5, "bob", -7, "\xe2\x82\xac old"}, {9, "alice", 1'699'650'430'000'004, "new"}},
                  true},
      MissedEnd{0xfffffff0u},
      FileOfferLegacy{14, "198.51.100.4", 5000},
      LegacyFileEvent{"alice", "clip.mp4", "198.51.100.5", 5001},
      FileOfferCheck{14, "bob"},
      FileOfferChecked{14, "bob"},
      TransferCancelledEvent{42, "alice"},
  };
}

/// Messages whose lists are empty and whose strings are empty.
inline std::vector<Message> empty_fields() {
  return {Hello{0, 0, 0, ""},
          GroupCreate{0, "", {}},
          ActiveUsers{0, {}},
          GroupCreated{0, "", {}},
          Error{0, 0, ""},
          DirectEvent{"", 0, ""},
          ShutdownEvent{0, ""},
          FileOfferOk{0, 0, "", 0, {}},
          LoginAttemptEvent{"", 0},
          GroupLeft{0, "", false},
          GroupNoticeEvent{"", "", GroupChange::left},
          HistoryQuery{0, ConversationKind::any, "", HistoryDirection::latest, 0, 0},
          HistoryPage{0, ConversationKind::group, "", {}, false},
          MissedEnd{0},

          FileOfferLegacy{0, "", 0},
          LegacyFileEvent{"", "", "", 0},

          TransferCancelledEvent{0, ""}};
}

/// `n` bytes of valid UTF-8 mixing one- to four-byte sequences.
inline std::string utf8_of_size(std::size_t n) {
  static const std::string pieces[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
  std::string s;
  std::size_t i = 0;
  while (s.size() < n) {
    const std::string& piece = pieces[i++ % 4];
    s += s.size() + piece.size() <= n ? piece : std::string(n - s.size(), 'z');
  }
  return s;
}

/// Every string and list at exactly its limit.
inline std::vector<Message> at_limits(const Limits& l = {}) {
  const auto name = utf8_of_size(l.max_username);
  const auto group = utf8_of_size(l.max_group_name);
  const auto text = utf8_of_size(l.max_text);
  const auto file = utf8_of_size(l.max_file_name);
  const auto address = utf8_of_size(64);
  const auto detail = utf8_of_size(256);
  return {
      Hello{1, 1, 1, utf8_of_size(l.max_software_name)},
      Login{2, name, utf8_of_size(l.max_password), 65535},
      DirectSend{3, name, text},
      GroupCreate{5, group, std::vector<std::string>(l.max_list_entries, name)},
      GroupJoin{6, group},
      GroupSend{7, group, text},
      FileOffer{9, name, file, ~0ull, digest(0xff)},
      HelloOk{1, 1, utf8_of_size(l.max_software_name), ~0u},
      LoginOk{2, name},
      ActiveUsers{4, std::vector<ActiveUser>(100, ActiveUser{name, address, 1, 2})},
      GroupCreated{5, group, std::vector<std::string>(l.max_list_entries, name)},
      GroupJoined{6, group},
      LoggedOut{8, name},
      FileOfferOk{9, ~0ull, address, 65535, digest(0xfe)},
      Error{11, 65535, detail},
      DirectEvent{name, INT64_MIN, text},
      GroupEvent{group, name, INT64_MAX, text},
      InviteEvent{group, name},
      FileIncomingEvent{~0ull, name, file, ~0ull, digest(7), address, 65535, digest(8)},
      ShutdownEvent{65535, detail},
      LoginAttemptEvent{address, INT64_MIN},
      GroupLeave{~0u, group},
      GroupDelete{~0u, group},
      GroupLeft{~0u, group, true},
      GroupDeleted{~0u, group},
      GroupNoticeEvent{group, name, GroupChange::closed},
      HistoryQuery{~0u, ConversationKind::direct, name, HistoryDirection::after, ~0ull, 65535},
      HistoryPage{~0u, ConversationKind::group, group,
                  std::vector<HistoryEntry>(10, HistoryEntry{~0ull, name, INT64_MIN, text}), true},
      FileOfferLegacy{~0u, address, 65535},
      LegacyFileEvent{name, file, address, 65535},
      FileOfferCheck{~0u, name},
      FileOfferChecked{~0u, name},
      TransferCancelledEvent{~0ull, name},
  };
}

}  // namespace tessenger::protocol::samples
