#pragma once

// The rules every Store enforces (groups, memberships, quotas, login
// failures and blocks), as plain synchronous state. The memory store is this
// state alone; a durable store keeps the same state in memory and writes each
// change it reports through StoreJournal, so both behave identically.

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
  virtual void member_joined(std::string_view group, std::string_view user) = 0;
  virtual void member_removed(std::string_view group, std::string_view user) = 0;
  virtual void group_removed(std::string_view group) = 0;
  virtual void group_message(std::string_view group, MessageId id, std::string_view from,
                             std::string_view text, protocol::Timestamp time) = 0;
  virtual void account_changed(std::string_view user, const AccountRecord& account) = 0;
  virtual void address_changed(std::string_view user, std::string_view address,
                               const AddressRecord& record) = 0;
  virtual void address_forgotten(std::string_view user, std::string_view address) = 0;
};

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
  bool is_blocked(std::string_view user, std::string_view address, protocol::Timestamp now) const;
  FailedLogin login_failed(std::string user, const std::string& address, protocol::Timestamp now);
  void login_succeeded(std::string user, const std::string& address);

  // Loading what a durable store kept; no journal entries. Members in the
  // order group_created reported them.
  void load_group(std::string group, std::string creator, MessageId last_id,
                  std::vector<GroupMember> members);
  void load_account(std::string user, const AccountRecord& account);
  void load_address(const std::string& user, std::string address, const AddressRecord& record);
  /// Forgets everything (before loading again).
  void clear();

 private:
  struct Group {
    std::string creator;
    std::vector<GroupMember> members;  // creator first while in it, then invitees in order
    MessageId last_id = 0;
    GroupMember* find(std::string_view name);
  };
  struct Account {
    AccountRecord record;
    StringMap<AddressRecord> addresses;
  };

  bool may_join(const std::string& user) const;
  void joined(const std::string& user) { ++joined_groups_[user]; }
  void left_group(const std::string& user);
  AddressRecord& address(const std::string& user, Account& account, const std::string& key,
                         protocol::Timestamp now);

  // Addresses that failed once and went away are forgotten when an account's
  // table grows past this, so an attacker with many addresses cannot grow it
  // without bound; known ones and blocked ones stay.
  static constexpr std::size_t max_addresses = 4096;

  StoreJournal* journal_;
  StorePolicy policy_;
  StringMap<Group> groups_;
  StringMap<std::size_t> joined_groups_;  // per user, created ones included
  StringMap<Account> accounts_;
};

}  // namespace tessenger::core
