#include <algorithm>
#include <unordered_map>

#include <tessenger/store.hpp>

#include "core/presence.hpp"

namespace tessenger {

Store::~Store() = default;

namespace {

class MemoryStore final : public Store {
 public:
  void configure(const StorePolicy& policy) override { policy_ = policy; }

  void create_group(std::string group, std::string creator, std::vector<std::string> invited,
                    Done<StoreOutcome> done) override {
    if (groups_.contains(group)) return done({errc::group_exists, std::move(group)});
    if (policy_.limits.max_groups != 0 && groups_.size() >= policy_.limits.max_groups) {
      return done({errc::limit_reached, std::move(group)});
    }
    if (!may_join(creator)) return done({errc::limit_reached, std::move(creator)});
    Group entry;
    entry.creator = creator;
    ++joined_groups_[creator];
    entry.members.push_back({std::move(creator), true});
    for (auto& name : invited)
      entry.members.push_back({std::move(name), false});
    groups_.emplace(std::move(group), std::move(entry));
    done({});
  }

  void join_group(std::string group, std::string user, Done<StoreOutcome> done) override {
    const auto it = groups_.find(group);
    if (it == groups_.end()) return done({errc::group_not_found, std::move(group)});
    GroupMember* member = it->second.find(user);
    if (member == nullptr) return done({errc::not_invited, std::move(group)});
    if (member->joined) return done({errc::already_joined, std::move(group)});
    if (!may_join(user)) return done({errc::limit_reached, std::move(user)});
    member->joined = true;
    ++joined_groups_[user];
    done({});
  }

  void leave_group(std::string group, std::string user, Done<GroupDeparture> done) override {
    const auto it = groups_.find(group);
    if (it == groups_.end())
      return done({{errc::group_not_found, std::move(group)}, false, false, {}});
    auto& members = it->second.members;
    const auto member = std::find_if(members.begin(), members.end(),
                                     [&](const GroupMember& m) { return m.name == user; });
    if (member == members.end())
      return done({{errc::not_group_member, std::move(group)}, false, false, {}});
    GroupDeparture departure;
    departure.declined = !member->joined;
    if (member->joined) left_group(user);
    members.erase(member);
    departure.removed =
        std::none_of(members.begin(), members.end(), [](const GroupMember& m) { return m.joined; });
    departure.remaining = members;
    if (departure.removed) groups_.erase(it);
    done(std::move(departure));
  }

  void delete_group(std::string group, std::string user, Done<GroupRemoval> done) override {
    const auto it = groups_.find(group);
    if (it == groups_.end()) return done({{errc::group_not_found, std::move(group)}, {}});
    Group& entry = it->second;
    if (entry.find(user) == nullptr) return done({{errc::not_group_member, std::move(group)}, {}});
    if (entry.creator != user) return done({{errc::not_group_creator, std::move(group)}, {}});
    GroupRemoval removal;
    for (const auto& member : entry.members) {
      if (member.joined) left_group(member.name);
      if (member.name != user) removal.members.push_back(member.name);
    }
    groups_.erase(it);
    done(std::move(removal));
  }

  void append_group_message(std::string_view group, std::string_view from, std::string_view,
                            protocol::Timestamp, Done<StoredGroupMessage> done) override {
    const auto it = groups_.find(group);
    if (it == groups_.end()) {
      return done({{errc::group_not_found_for_message, std::string(group)}, 0, {}});
    }
    Group& entry = it->second;
    const GroupMember* sender = entry.find(from);
    if (sender == nullptr) return done({{errc::not_group_member, std::string(group)}, 0, {}});
    if (!sender->joined) return done({{errc::group_not_joined, std::string(group)}, 0, {}});
    StoredGroupMessage stored{{}, ++entry.last_id, {}};
    stored.recipients.reserve(entry.members.size() - 1);
    for (const auto& member : entry.members) {
      if (member.joined && member.name != from) stored.recipients.push_back(member.name);
    }
    done(std::move(stored));
  }

  // Nothing is kept, so one counter serves every conversation: its ids are
  // unique and increase within each of them.
  void append_direct_message(std::string_view, std::string_view, std::string_view,
                             protocol::Timestamp, Done<StoredMessage> done) override {
    done({{}, ++last_direct_id_});
  }

  void is_blocked(std::string user, std::string address, protocol::Timestamp now,
                  Done<bool> done) override {
    const auto it = accounts_.find(user);
    if (it == accounts_.end()) return done(false);
    const Account& account = it->second;
    const auto from = account.addresses.find(address);
    if (from != account.addresses.end() && from->second.blocked_until > now) return done(true);
    const bool known = from != account.addresses.end() && from->second.known;
    done(account.blocked_until > now && !known);
  }

  void login_failed(std::string user, std::string address, protocol::Timestamp now,
                    Done<FailedLogin> done) override {
    const auto period =
        std::chrono::duration_cast<std::chrono::microseconds>(policy_.block_duration).count();
    Account& account = accounts_[std::move(user)];
    FailedLogin result;
    const auto cap = policy_.limits.max_account_failures;
    if (cap != 0) {
      if (now - account.window_start >= period) {
        account.window_start = now;
        account.failures = 0;
      }
      if (++account.failures > cap) {
        account.blocked_until = now + period;
        account.failures = 0;
        account.window_start = now;
        result.account_blocked = true;
      }
    }
    Address& from = account.address(address, now);
    if (++from.failures >= policy_.max_attempts) {
      from.failures = 0;
      from.blocked_until = now + period;
      result.blocked_now = true;
    }
    done(result);
  }

  void login_succeeded(std::string user, std::string address) override {
    Account& account = accounts_[std::move(user)];
    Address& from = account.address(address, 0);
    from.failures = 0;
    from.known = true;
  }

 private:
  bool may_join(const std::string& user) const {
    const auto it = joined_groups_.find(user);
    return it == joined_groups_.end() || it->second < policy_.limits.max_groups_per_user;
  }
  void left_group(const std::string& user) {
    const auto it = joined_groups_.find(user);
    if (--it->second == 0) joined_groups_.erase(it);
  }

  struct Group {
    std::string creator;
    std::vector<GroupMember> members;  // creator first while in it, then invitees in order
    MessageId last_id = 0;
    GroupMember* find(std::string_view name) {
      const auto it = std::find_if(members.begin(), members.end(),
                                   [&](const GroupMember& m) { return m.name == name; });
      return it == members.end() ? nullptr : &*it;
    }
  };
  struct Address {
    std::uint32_t failures = 0;  // in a row
    protocol::Timestamp blocked_until = 0;
    bool known = false;  // has logged in to the account
  };
  struct Account {
    // All addresses together, within one block period.
    std::uint32_t failures = 0;
    protocol::Timestamp window_start = 0;
    protocol::Timestamp blocked_until = 0;  // for addresses that are not known
    core::StringMap<Address> addresses;

    // Addresses that failed once and went away are forgotten when the table
    // grows, so an attacker with many addresses cannot grow it without bound;
    // known ones and blocked ones stay.
    Address& address(const std::string& key, protocol::Timestamp now) {
      if (addresses.size() >= max_addresses && !addresses.contains(key)) {
        std::erase_if(addresses, [&](const auto& entry) {
          return !entry.second.known && entry.second.blocked_until <= now;
        });
      }
      return addresses[key];
    }
  };
  static constexpr std::size_t max_addresses = 4096;

  StorePolicy policy_;
  core::StringMap<Group> groups_;
  core::StringMap<std::size_t> joined_groups_;  // per user, created ones included
  core::StringMap<Account> accounts_;
  MessageId last_direct_id_ = 0;
};

}  // namespace

std::shared_ptr<Store> make_memory_store() {
  return std::make_shared<MemoryStore>();
}

}  // namespace tessenger
