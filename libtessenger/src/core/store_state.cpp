#include "core/store_state.hpp"

#include <algorithm>

namespace tessenger::core {

namespace {

class NullJournal final : public StoreJournal {
 public:
  void group_created(std::string_view, std::string_view, std::span<const GroupMember>) override {}
  void member_joined(std::string_view, std::string_view, MessageId) override {}
  void member_removed(std::string_view, std::string_view) override {}
  void group_removed(std::string_view) override {}
  void group_message(std::string_view, MessageId, std::string_view, std::string_view,
                     protocol::Timestamp) override {}
  void direct_message(std::string_view, std::string_view, MessageId, std::string_view,
                      protocol::Timestamp) override {}
  void cursor_changed(std::string_view, MessageId) override {}
  void account_changed(std::string_view, const AccountRecord&) override {}
  void address_changed(std::string_view, std::string_view, const AddressRecord&) override {}
  void address_forgotten(std::string_view, std::string_view) override {}
};

StoreJournal& journal_or_null(StoreJournal* journal) {
  static NullJournal none;
  return journal != nullptr ? *journal : none;
}

}  // namespace

StoreOutcome refused(StoreOutcome) {
  return {errc::service_unavailable, {}};
}
GroupDeparture refused(GroupDeparture) {
  return {{errc::service_unavailable, {}}, false, false, {}};
}
GroupRemoval refused(GroupRemoval) {
  return {{errc::service_unavailable, {}}, {}};
}
StoredMessage refused(StoredMessage) {
  return {{errc::service_unavailable, {}}, 0};
}
StoredGroupMessage refused(StoredGroupMessage) {
  return {{errc::service_unavailable, {}}, 0, {}};
}
MissedPage refused(MissedPage) {
  return {{errc::service_unavailable, {}}, 0, {}, false};
}
HistoryResult refused(HistoryResult) {
  return {{errc::service_unavailable, {}}, protocol::ConversationKind::direct, {}, false};
}
FailedLogin refused(FailedLogin) {
  return {};
}
bool refused(bool found) {
  return found;
}

MissedPage oldest_missed(MessageId after, std::vector<MissedMessage> candidates,
                         std::size_t limit) {
  std::sort(candidates.begin(), candidates.end(),
            [](const MissedMessage& a, const MissedMessage& b) { return a.id < b.id; });
  MissedPage page;
  page.after = after;
  page.more = candidates.size() > limit;
  if (page.more) candidates.resize(limit);
  page.messages = std::move(candidates);
  return page;
}

std::size_t history_limit(const HistoryRequest& request) {
  return std::clamp<std::size_t>(request.limit, 1, protocol::max_history_page);
}

HistoryScope StoreState::history_scope(const HistoryRequest& request) const {
  using protocol::ConversationKind;
  if (request.kind != ConversationKind::direct) {
    if (const GroupMember* entry = member(request.name, request.user)) {
      return {{}, ConversationKind::group, entry->invited_after};
    }
    if (request.kind == ConversationKind::group) {
      return {{errc::not_group_member, request.name}, ConversationKind::group, 0};
    }
  }
  return {{}, ConversationKind::direct, 0};
}

GroupMember* StoreState::Group::find(std::string_view name) {
  const auto it = std::find_if(members.begin(), members.end(),
                               [&](const GroupMember& m) { return m.name == name; });
  return it == members.end() ? nullptr : &*it;
}

const GroupMember* StoreState::Group::find(std::string_view name) const {
  return const_cast<Group*>(this)->find(name);
}

StoreOutcome StoreState::create_group(std::string group, std::string creator,
                                      std::vector<std::string> invited) {
  if (groups_.contains(group)) return {errc::group_exists, std::move(group)};
  if (policy_.limits.max_groups != 0 && groups_.size() >= policy_.limits.max_groups) {
    return {errc::limit_reached, std::move(group)};
  }
  if (!may_join(creator)) return {errc::limit_reached, std::move(creator)};
  Group entry;
  entry.creator = creator;
  joined(creator, group);
  entry.members.push_back({std::move(creator), true, last_id_, last_id_});
  for (auto& name : invited)
    entry.members.push_back({std::move(name), false, last_id_, 0});
  journal_or_null(journal_).group_created(group, entry.creator, entry.members);
  groups_.emplace(std::move(group), std::move(entry));
  return {};
}

StoreOutcome StoreState::join_group(std::string group, std::string user) {
  const auto it = groups_.find(group);
  if (it == groups_.end()) return {errc::group_not_found, std::move(group)};
  GroupMember* member = it->second.find(user);
  if (member == nullptr) return {errc::not_invited, std::move(group)};
  if (member->joined) return {errc::already_joined, std::move(group)};
  if (!may_join(user)) return {errc::limit_reached, std::move(user)};
  member->joined = true;
  member->joined_after = last_id_;
  joined(user, group);
  journal_or_null(journal_).member_joined(group, user, last_id_);
  return {};
}

GroupDeparture StoreState::leave_group(std::string group, const std::string& user) {
  const auto it = groups_.find(group);
  if (it == groups_.end()) return {{errc::group_not_found, std::move(group)}, false, false, {}};
  auto& members = it->second.members;
  const auto member = std::find_if(members.begin(), members.end(),
                                   [&](const GroupMember& m) { return m.name == user; });
  if (member == members.end()) {
    return {{errc::not_group_member, std::move(group)}, false, false, {}};
  }
  GroupDeparture departure;
  departure.declined = !member->joined;
  if (member->joined) left_group(user, group);
  members.erase(member);
  departure.removed =
      std::none_of(members.begin(), members.end(), [](const GroupMember& m) { return m.joined; });
  departure.remaining = members;
  if (departure.removed) {
    journal_or_null(journal_).group_removed(group);
    groups_.erase(it);
  } else {
    journal_or_null(journal_).member_removed(group, user);
  }
  return departure;
}

GroupRemoval StoreState::delete_group(std::string group, const std::string& user) {
  const auto it = groups_.find(group);
  if (it == groups_.end()) return {{errc::group_not_found, std::move(group)}, {}};
  Group& entry = it->second;
  if (entry.find(user) == nullptr) return {{errc::not_group_member, std::move(group)}, {}};
  if (entry.creator != user) return {{errc::not_group_creator, std::move(group)}, {}};
  GroupRemoval removal;
  for (const auto& member : entry.members) {
    if (member.joined) left_group(member.name, group);
    if (member.name != user) removal.members.push_back(member.name);
  }
  journal_or_null(journal_).group_removed(group);
  groups_.erase(it);
  return removal;
}

StoredGroupMessage StoreState::append_group_message(std::string_view group, std::string_view from,
                                                    std::string_view text,
                                                    protocol::Timestamp time) {
  const auto it = groups_.find(group);
  if (it == groups_.end()) return {{errc::group_not_found_for_message, std::string(group)}, 0, {}};
  Group& entry = it->second;
  const GroupMember* sender = entry.find(from);
  if (sender == nullptr) return {{errc::not_group_member, std::string(group)}, 0, {}};
  if (!sender->joined) return {{errc::group_not_joined, std::string(group)}, 0, {}};
  StoredGroupMessage stored{{}, ++last_id_, {}};
  stored.recipients.reserve(entry.members.size() - 1);
  for (const auto& member : entry.members) {
    if (member.joined && member.name != from) stored.recipients.push_back(member.name);
  }
  journal_or_null(journal_).group_message(group, stored.id, from, text, time);
  return stored;
}

StoredMessage StoreState::append_direct_message(std::string_view from, std::string_view to,
                                                std::string_view text, protocol::Timestamp time) {
  StoredMessage stored{{}, ++last_id_};
  journal_or_null(journal_).direct_message(from, to, stored.id, text, time);
  return stored;
}

void StoreState::delivered(const std::vector<std::pair<std::string, MessageId>>& cursors) {
  for (const auto& [user, id] : cursors) {
    auto& cursor = cursors_[user];
    if (id <= cursor) continue;
    cursor = id;
    journal_or_null(journal_).cursor_changed(user, id);
  }
}

MessageId StoreState::cursor(std::string_view user) const {
  const auto it = cursors_.find(user);
  return it == cursors_.end() ? 0 : it->second;
}

const GroupMember* StoreState::member(std::string_view group, std::string_view user) const {
  const auto it = groups_.find(group);
  return it == groups_.end() ? nullptr : it->second.find(user);
}

std::vector<std::pair<std::string, MessageId>> StoreState::joined_groups(
    std::string_view user) const {
  std::vector<std::pair<std::string, MessageId>> out;
  const auto it = joined_groups_.find(user);
  if (it == joined_groups_.end()) return out;
  for (const auto& group : it->second)
    out.emplace_back(group, member(group, user)->joined_after);
  return out;
}

bool StoreState::is_blocked(std::string_view user, std::string_view address,
                            protocol::Timestamp now) const {
  const auto it = accounts_.find(user);
  if (it == accounts_.end()) return false;
  const Account& account = it->second;
  const auto from = account.addresses.find(address);
  if (from != account.addresses.end() && from->second.blocked_until > now) return true;
  const bool known = from != account.addresses.end() && from->second.known;
  return account.record.blocked_until > now && !known;
}

FailedLogin StoreState::login_failed(std::string user, const std::string& address,
                                     protocol::Timestamp now) {
  const auto period =
      std::chrono::duration_cast<std::chrono::microseconds>(policy_.block_duration).count();
  Account& account = accounts_[user];
  FailedLogin result;
  const auto cap = policy_.limits.max_account_failures;
  if (cap != 0) {
    AccountRecord& record = account.record;
    if (now - record.window_start >= period) {
      record.window_start = now;
      record.failures = 0;
    }
    if (++record.failures > cap) {
      record.blocked_until = now + period;
      record.failures = 0;
      record.window_start = now;
      result.account_blocked = true;
    }
    journal_or_null(journal_).account_changed(user, record);
  }
  AddressRecord& from = this->address(user, account, address, now);
  if (++from.failures >= policy_.max_attempts) {
    from.failures = 0;
    from.blocked_until = now + period;
    result.blocked_now = true;
  }
  journal_or_null(journal_).address_changed(user, address, from);
  return result;
}

void StoreState::login_succeeded(std::string user, const std::string& address) {
  Account& account = accounts_[user];
  AddressRecord& from = this->address(user, account, address, 0);
  from.failures = 0;
  from.known = true;
  journal_or_null(journal_).address_changed(user, address, from);
}

void StoreState::load_group(std::string group, std::string creator,
                            std::vector<GroupMember> members) {
  for (const auto& member : members) {
    if (member.joined) joined(member.name, group);
  }
  groups_.insert_or_assign(std::move(group), Group{std::move(creator), std::move(members)});
}

void StoreState::load_cursor(std::string user, MessageId delivered) {
  cursors_.insert_or_assign(std::move(user), delivered);
}

void StoreState::load_account(std::string user, const AccountRecord& account) {
  accounts_[std::move(user)].record = account;
}

void StoreState::load_address(const std::string& user, std::string address,
                              const AddressRecord& record) {
  accounts_[user].addresses.insert_or_assign(std::move(address), record);
}

void StoreState::clear() {
  groups_.clear();
  joined_groups_.clear();
  accounts_.clear();
  cursors_.clear();
  last_id_ = 0;
}

bool StoreState::may_join(const std::string& user) const {
  const auto it = joined_groups_.find(user);
  return it == joined_groups_.end() || it->second.size() < policy_.limits.max_groups_per_user;
}

void StoreState::left_group(const std::string& user, std::string_view group) {
  const auto it = joined_groups_.find(user);
  std::erase(it->second, group);
  if (it->second.empty()) joined_groups_.erase(it);
}

AddressRecord& StoreState::address(const std::string& user, Account& account,
                                   const std::string& key, protocol::Timestamp now) {
  auto& addresses = account.addresses;
  if (addresses.size() >= max_addresses && !addresses.contains(key)) {
    std::erase_if(addresses, [&](const auto& entry) {
      const bool forget = !entry.second.known && entry.second.blocked_until <= now;
      if (forget) journal_or_null(journal_).address_forgotten(user, entry.first);
      return forget;
    });
  }
  return addresses[key];
}

}  // namespace tessenger::core
