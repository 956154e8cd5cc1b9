#pragma once

// The rules every Store enforces (groups, memberships, quotas, login
// failures and blocks), as plain synchronous state. The memory store is this
// state alone; a durable store keeps the same state in memory and writes each
// change it reports through StoreJournal, so both behave identically.

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tessenger/store.hpp>

#include "core/presence.hpp"

namespace tessenger::core {

/// A user's login failures from one address (IPv4, or IPv6 /64).
struct AddressRecord {
  std::uint32_t failures = 0;  // in a row
  protocol::Timestamp blocked_until = 0;
  bool known = false;  // has logged in to the account
};

/// A user's login failures from all addresses together.
struct AccountRecord {
  std::uint32_t failures = 0;  // within one block period from window_start
  protocol::Timestamp window_start = 0;
  protocol::Timestamp blocked_until = 0;  // for addresses that are not known
};

/// Every change StoreState makes, in the order it makes them.
class StoreJournal {
 public:
  virtual ~StoreJournal() = default;
  /// `members`: the creator (joined) first, then the invited, in order.
  virtual void group_created(std::string_view group, std::string_view creator,
                             std::span<const GroupMember> members) = 0;
  virtual void member_joined(std::string_view group, std::string_view user,
                             MessageId joined_after) = 0;
  virtual void member_removed(std::string_view group, std::string_view user) = 0;
  virtual void group_removed(std::string_view group) = 0;
  virtual void group_message(std::string_view group, MessageId id, std::string_view from,
                             std::string_view text, protocol::Timestamp time) = 0;
  virtual void direct_message(std::string_view from, std::string_view to, MessageId id,
                              std::string_view text, protocol::Timestamp time) = 0;
  virtual void cursor_changed(std::string_view user, MessageId delivered) = 0;
  virtual void account_changed(std::string_view user, const AccountRecord& account) = 0;
  virtual void address_changed(std::string_view user, std::string_view address,
                               const AddressRecord& record) = 0;
  virtual void address_forgotten(std::string_view user, std::string_view address) = 0;
};

/// Where a history request may read: the conversation's kind and the
/// newest id before what the user may see.
struct HistoryScope {
  StoreOutcome outcome;
  protocol::ConversationKind kind = protocol::ConversationKind::direct;
  MessageId visible_after = 0;
};

/// What an operation answers when the store cannot carry it out (its
/// database or Redis failed): errc::service_unavailable; a failed login
/// whose count was not kept blocked nothing, and a block check answers what
/// it found.
StoreOutcome refused(StoreOutcome);
GroupDeparture refused(GroupDeparture);
GroupRemoval refused(GroupRemoval);
StoredMessage refused(StoredMessage);
StoredGroupMessage refused(StoredGroupMessage);
MissedPage refused(MissedPage);
HistoryResult refused(HistoryResult);
FailedLogin refused(FailedLogin);
bool refused(bool found);

/// The `limit` oldest of `candidates` (each conversation's oldest, merged).
MissedPage oldest_missed(MessageId after, std::vector<MissedMessage> candidates, std::size_t limit);

/// The request's limit, within 1..max_history_page.
std::size_t history_limit(const HistoryRequest& request);

class StoreState {
 public:
  /// `journal` (may be null) hears of every change; it must outlive this.
  explicit StoreState(StoreJournal* journal = nullptr) : journal_(journal) {}

  void configure(const StorePolicy& policy) { policy_ = policy; }

  StoreOutcome create_group(std::string group, std::string creator,
                            std::vector<std::string> invited);
  StoreOutcome join_group(std::string group, std::string user);
  GroupDeparture leave_group(std::string group, const std::string& user);
  GroupRemoval delete_group(std::string group, const std::string& user);
  StoredGroupMessage append_group_message(std::string_view group, std::string_view from,
                                          std::string_view text, protocol::Timestamp time);
  StoredMessage append_direct_message(std::string_view from, std::string_view to,
                                      std::string_view text, protocol::Timestamp time);
  /// Keeps the newest of what was delivered to each user.
  void delivered(const std::vector<std::pair<std::string, MessageId>>& cursors);
  MessageId cursor(std::string_view user) const;
  MessageId last_id() const noexcept { return last_id_; }
  /// `user`'s entry in `group`, or null if it is neither joined nor invited.
  const GroupMember* member(std::string_view group, std::string_view user) const;
  /// What `request` may read (a group the user is in wins over a user of the same name).
  HistoryScope history_scope(const HistoryRequest& request) const;
  /// The groups `user` has joined, with when it joined them.
  std::vector<std::pair<std::string, MessageId>> joined_groups(std::string_view user) const;
  bool is_blocked(std::string_view user, std::string_view address, protocol::Timestamp now) const;
  FailedLogin login_failed(std::string user, const std::string& address, protocol::Timestamp now);
  void login_succeeded(std::string user, const std::string& address);

  // Loading what a durable store kept; no journal entries. Members in the
  // order group_created reported them.
  void load_group(std::string group, std::string creator, std::vector<GroupMember> members);
  void load_account(std::string user, const AccountRecord& account);
  void load_cursor(std::string user, MessageId delivered);
  /// The newest id ever given (ids are never reused, also after deletions).
  void load_last_id(MessageId id) { last_id_ = std::max(last_id_, id); }
  void load_address(const std::string& user, std::string address, const AddressRecord& record);
  /// Forgets everything (before loading again).
  void clear();

 private:
  struct Group {
    std::string creator;
    std::vector<GroupMember> members;  // creator first while in it, then invitees in order
    GroupMember* find(std::string_view name);
    const GroupMember* find(std::string_view name) const;
  };
  struct Account {
    AccountRecord record;
    StringMap<AddressRecord> addresses;
  };

  bool may_join(const std::string& user) const;
  void joined(const std::string& user, const std::string& group) {
    joined_groups_[user].push_back(group);
  }
  void left_group(const std::string& user, std::string_view group);
  AddressRecord& address(const std::string& user, Account& account, const std::string& key,
                         protocol::Timestamp now);

  // Addresses that failed once and went away are forgotten when an account's
  // table grows past this, so an attacker with many addresses cannot grow it
  // without bound; known ones and blocked ones stay.
  static constexpr std::size_t max_addresses = 4096;

  StoreJournal* journal_;
  StorePolicy policy_;
  StringMap<Group> groups_;
  StringMap<std::vector<std::string>> joined_groups_;  // per user, created ones included
  StringMap<MessageId> cursors_;                       // per user, the newest delivered
  MessageId last_id_ = 0;
  StringMap<Account> accounts_;
};

}  // namespace tessenger::core
