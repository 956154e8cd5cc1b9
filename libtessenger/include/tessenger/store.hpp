#pragma once

// tessenger::Store: what the server remembers — groups and memberships,
// login failures and blocks, and the messages themselves — behind an
// asynchronous interface, so that a database writer thread or a remote
// store (Redis) can answer without ever blocking the server's event loop.
//
// Threading and lifetime: the server calls every member from its strand.
// Each operation completes by calling its `done` exactly once, from any
// thread, possibly before the call returns; the server brings the result
// back to its strand and continues the request there, in the order the
// operations were issued (a store need not keep that order itself). A store
// must outlive the servers that use it; callbacks it calls after a server
// was destroyed are dropped by that server.
//
// The default is an in-memory store (make_memory_store()); it keeps
// nothing across restarts.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <tessenger/errc.hpp>
#include <tessenger/export.hpp>
#include <tessenger/limits.hpp>
#include <tessenger/protocol.hpp>

namespace tessenger {

/// Unique across the store and increasing in the order messages were
/// accepted (so within each conversation too): one number tells a client
/// how far it has read everything.
using MessageId = protocol::MessageId;

/// errc{} on success; otherwise why, with the subject (a user or group
/// name) in `detail` where the SPEC's text names one.
struct StoreOutcome {
  errc code{};
  std::string detail;
  bool ok() const noexcept { return code == errc{}; }
};

struct GroupMember {
  std::string name;
  bool joined = false;
  /// The newest message id when the member was invited: it may read the
  /// group's messages after it, never those before.
  MessageId invited_after = 0;
  /// The newest message id when the member joined: what it missed while
  /// away is delivered from after it.
  MessageId joined_after = 0;
};

/// A stored message: the id the store gave it and the server's time.
struct StoredMessage {
  StoreOutcome outcome;
  MessageId id = 0;
};

/// A group message the store accepted, with the joined members (sender
/// excluded) it must reach.
struct StoredGroupMessage {
  StoreOutcome outcome;
  MessageId id = 0;
  std::vector<std::string> recipients;
};

/// What leaving a group did.
struct GroupDeparture {
  StoreOutcome outcome;
  bool declined = false;               ///< the user was invited, not joined
  bool removed = false;                ///< no joined member is left, so the group is gone
  std::vector<GroupMember> remaining;  ///< the members still in it (invited ones, if removed)
};

/// A deleted group's members other than the one who deleted it.
struct GroupRemoval {
  StoreOutcome outcome;
  std::vector<std::string> members;
};

/// A message sent to a user while it was away (a direct message to it, or
/// another member's message to a group it has joined).
struct MissedMessage {
  MessageId id = 0;
  std::string group;  ///< empty for a direct message
  std::string from;
  protocol::Timestamp time = 0;
  std::string text;
};

/// Missed messages in id order, at most the limit asked for.
struct MissedPage {
  StoreOutcome outcome;
  MessageId after = 0;  ///< the id it read after (the cursor's, when asked from it)
  std::vector<MissedMessage> messages;
  bool more = false;  ///< more messages follow the last one
};

/// A page of one conversation's history, for `user`, who must be in it.
struct HistoryRequest {
  std::string user;
  protocol::ConversationKind kind = protocol::ConversationKind::any;
  std::string name;  ///< the other user, or the group
  protocol::HistoryDirection direction = protocol::HistoryDirection::latest;
  MessageId anchor = 0;
  std::size_t limit = protocol::max_history_page;
};

struct HistoryResult {
  StoreOutcome outcome;
  protocol::ConversationKind kind = protocol::ConversationKind::direct;  ///< what `name` was
  std::vector<protocol::HistoryEntry> entries;                           ///< oldest first
  bool more = false;  ///< further messages exist in the direction asked
};

/// What a failed login did to the account.
struct FailedLogin {
  bool blocked_now = false;      ///< this failure reached max_attempts from its address
  bool account_blocked = false;  ///< this failure passed the account's cap from all addresses
};

/// The rules a store enforces for the server (a copy of the server's
/// configuration, given once).
struct StorePolicy {
  Limits limits;
  std::uint32_t max_attempts = 3;
  std::chrono::seconds block_duration{10};
  /// Messages older than this many days are removed, off the hot path; 0: kept.
  std::uint32_t history_days = 0;
  /// Each conversation keeps at most its newest this many messages; 0: all.
  std::uint64_t history_max = 0;
};

class TESSENGER_EXPORT Store {
 public:
  template <class T>
  using Done = std::function<void(T)>;

  virtual ~Store();

  /// Called once by the server before any other member.
  virtual void configure(const StorePolicy& policy) = 0;

  /// Creates `group` with `creator` joined and `invited` invited, at once
  /// or not at all. Fails with group_exists (detail: the group) or
  /// limit_reached (detail: the group, or the creator over its quota).
  /// Limits::max_groups_per_user counts the groups a user has joined
  /// (created ones included), never invitations, so that nobody can use up
  /// someone else's quota by inviting them.
  virtual void create_group(std::string group, std::string creator,
                            std::vector<std::string> invited, Done<StoreOutcome> done) = 0;
  /// Fails with group_not_found, not_invited or already_joined (detail: the
  /// group), or limit_reached (detail: the user) over the user's quota.
  virtual void join_group(std::string group, std::string user, Done<StoreOutcome> done) = 0;
  /// Takes `user` out of `group`, joined or only invited (a declined
  /// invitation). A group left with no joined member is removed. Fails with
  /// group_not_found or not_group_member (detail: the group).
  virtual void leave_group(std::string group, std::string user, Done<GroupDeparture> done) = 0;
  /// Removes `group` if `user` created it and is still in it. Fails with
  /// group_not_found, not_group_member or not_group_creator (detail: the group).
  virtual void delete_group(std::string group, std::string user, Done<GroupRemoval> done) = 0;
  /// Checks that `from` has joined `group` and appends the message. Fails
  /// with group_not_found_for_message, not_group_member or group_not_joined
  /// (detail: the group). On the hot path, so the text comes as views valid
  /// only during the call: a store that answers later copies what it keeps.
  virtual void append_group_message(std::string_view group, std::string_view from,
                                    std::string_view text, protocol::Timestamp time,
                                    Done<StoredGroupMessage> done) = 0;
  /// As append_group_message, for a one-to-one message (`to` exists: the
  /// server checked).
  virtual void append_direct_message(std::string_view from, std::string_view to,
                                     std::string_view text, protocol::Timestamp time,
                                     Done<StoredMessage> done) = 0;

  /// The messages `user` missed with an id after `after` (or, with
  /// `from_cursor`, after the newest one recorded as delivered to it), in id
  /// order, at most `limit`. Sees every message whose append completed before.
  virtual void missed(std::string user, MessageId after, bool from_cursor, std::size_t limit,
                      Done<MissedPage> done) = 0;
  /// Records, per user, the newest message id delivered to it.
  virtual void delivered(std::vector<std::pair<std::string, MessageId>> cursors) = 0;
  /// A page of a conversation `request.user` is in: the other user's direct
  /// conversation (empty when there is none, also for an unknown user, so
  /// that nothing is revealed), or a group it is a member of (else
  /// not_group_member, detail: the group), from the messages after its
  /// invitation only.
  virtual void history(HistoryRequest request, Done<HistoryResult> done) = 0;

  /// True while `user` may not log in from `address` (a block from failed
  /// logins: of that address, or of every address but those that logged in
  /// to the account before; SPEC §3). `address` is the key per-address limits
  /// count under (the IPv4 address, or an IPv6 /64). `now` is wall time:
  /// blocks outlive restarts, steady clocks do not.
  virtual void is_blocked(std::string user, std::string address, protocol::Timestamp now,
                          Done<bool> done) = 0;
  /// Counts a failed login of `user` from `address`. The max_attempts-th in a
  /// row from one address blocks that address for block_duration and resets
  /// its count; more than StorePolicy::max_account_failures from all
  /// addresses within block_duration block every address the account has
  /// not logged in from.
  virtual void login_failed(std::string user, std::string address, protocol::Timestamp now,
                            Done<FailedLogin> done) = 0;
  /// A successful login resets that address's count and remembers it as one
  /// the account uses.
  virtual void login_succeeded(std::string user, std::string address) = 0;
};

/// Everything in memory, lost at exit; each conversation keeps at most its
/// newest `max_messages_per_conversation` messages (history_max, when
/// smaller, wins). Answers through the same asynchronous path as any store.
TESSENGER_EXPORT std::shared_ptr<Store> make_memory_store(
    std::size_t max_messages_per_conversation = 1000);

}  // namespace tessenger
