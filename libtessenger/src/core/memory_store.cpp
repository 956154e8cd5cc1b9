#include <tessenger/store.hpp>

#include <algorithm>
#include <deque>
#include <set>

#include "core/store_state.hpp"

namespace tessenger {

Store::~Store() = default;

namespace {

struct Kept {
  MessageId id = 0;
  std::string from;
  protocol::Timestamp time = 0;
  std::string text;
};

std::string group_key(std::string_view group) {
  return std::string("g:").append(group);
}
std::string direct_key(std::string_view a, std::string_view b) {
  const auto [low, high] = std::minmax(a, b);
  return std::string("d:").append(low).append(1, '\0').append(high);
}

// The rules of StoreState, with the messages themselves in memory: the
// store's own journal keeps them.
class MemoryStore final : public Store, private core::StoreJournal {
 public:
  explicit MemoryStore(std::size_t max_per_conversation) : max_kept_(max_per_conversation) {}

  void configure(const StorePolicy& policy) override {
    state_.configure(policy);
    policy_ = policy;
    if (policy.history_max != 0) max_kept_ = std::min<std::uint64_t>(max_kept_, policy.history_max);
  }

  void create_group(std::string group, std::string creator, std::vector<std::string> invited,
                    Done<StoreOutcome> done) override {
    done(state_.create_group(std::move(group), std::move(creator), std::move(invited)));
  }

  void join_group(std::string group, std::string user, Done<StoreOutcome> done) override {
    done(state_.join_group(std::move(group), std::move(user)));
  }

  void leave_group(std::string group, std::string user, Done<GroupDeparture> done) override {
    done(state_.leave_group(std::move(group), user));
  }

  void delete_group(std::string group, std::string user, Done<GroupRemoval> done) override {
    done(state_.delete_group(std::move(group), user));
  }

  void append_group_message(std::string_view group, std::string_view from, std::string_view text,
                            protocol::Timestamp time, Done<StoredGroupMessage> done) override {
    done(state_.append_group_message(group, from, text, time));
  }

  void append_direct_message(std::string_view from, std::string_view to, std::string_view text,
                             protocol::Timestamp time, Done<StoredMessage> done) override {
    done(state_.append_direct_message(from, to, text, time));
  }

  void missed(std::string user, MessageId after, bool from_cursor, std::size_t limit,
              Done<MissedPage> done) override {
    if (from_cursor) after = state_.cursor(user);
    std::vector<MissedMessage> candidates;
    const auto collect = [&](const std::string& key, std::string_view group, MessageId floor) {
      const auto it = kept_.find(key);
      if (it == kept_.end()) return;
      std::size_t taken = 0;
      for (auto m = first_after(it->second, std::max(after, floor));
           m != it->second.end() && taken <= limit; ++m) {
        if (m->from == user) continue;
        candidates.push_back({m->id, std::string(group), m->from, m->time, m->text});
        ++taken;
      }
    };
    if (const auto peers = peers_.find(user); peers != peers_.end()) {
      for (const auto& peer : peers->second)
        collect(direct_key(user, peer), {}, 0);
    }
    for (const auto& [group, joined_after] : state_.joined_groups(user))
      collect(group_key(group), group, joined_after);
    done(core::oldest_missed(after, std::move(candidates), limit));
  }

  void delivered(std::vector<std::pair<std::string, MessageId>> cursors) override {
    state_.delivered(cursors);
  }

  void history(HistoryRequest request, Done<HistoryResult> done) override {
    const auto scope = state_.history_scope(request);
    HistoryResult result{scope.outcome, scope.kind, {}, false};
    if (!scope.outcome.ok()) return done(std::move(result));
    const auto key = scope.kind == protocol::ConversationKind::group
                         ? group_key(request.name)
                         : direct_key(request.user, request.name);
    const auto it = kept_.find(key);
    if (it == kept_.end()) return done(std::move(result));
    const auto& messages = it->second;
    const auto limit = core::history_limit(request);
    const auto visible = first_after(messages, scope.visible_after);
    auto begin = visible;
    auto end = messages.end();
    if (request.direction == protocol::HistoryDirection::after) {
      begin = first_after(messages, std::max(request.anchor, scope.visible_after));
      end = begin + static_cast<std::ptrdiff_t>(
                        std::min<std::size_t>(limit, static_cast<std::size_t>(end - begin)));
      result.more = end != messages.end();
    } else {
      if (request.direction == protocol::HistoryDirection::before) {
        end = std::max(visible, first_after(messages, request.anchor - std::min<MessageId>(
                                                                            request.anchor, 1)));
      }
      begin = end - static_cast<std::ptrdiff_t>(
                        std::min<std::size_t>(limit, static_cast<std::size_t>(end - visible)));
      result.more = begin != visible;
    }
    for (auto m = begin; m != end; ++m)
      result.entries.push_back({m->id, m->from, m->time, m->text});
    done(std::move(result));
  }

  void is_blocked(std::string user, std::string address, protocol::Timestamp now,
                  Done<bool> done) override {
    done(state_.is_blocked(user, address, now));
  }

  void login_failed(std::string user, std::string address, protocol::Timestamp now,
                    Done<FailedLogin> done) override {
    done(state_.login_failed(std::move(user), address, now));
  }

  void login_succeeded(std::string user, std::string address) override {
    state_.login_succeeded(std::move(user), address);
  }

 private:
  using Conversation = std::deque<Kept>;

  static Conversation::const_iterator first_after(const Conversation& messages, MessageId id) {
    return std::upper_bound(messages.begin(), messages.end(), id,
                            [](MessageId value, const Kept& m) { return value < m.id; });
  }

  void keep(std::string key, MessageId id, std::string_view from, std::string_view text,
            protocol::Timestamp time) {
    auto& messages = kept_[std::move(key)];
    messages.push_back({id, std::string(from), time, std::string(text)});
    const auto max_age = std::int64_t{policy_.history_days} * 86'400'000'000;
    while (messages.size() > max_kept_ ||
           (max_age != 0 && !messages.empty() && messages.front().time < time - max_age)) {
      messages.pop_front();
    }
  }

  // core::StoreJournal: what the state changed.
  void group_created(std::string_view, std::string_view, std::span<const GroupMember>) override {}
  void member_joined(std::string_view, std::string_view, MessageId) override {}
  void member_removed(std::string_view, std::string_view) override {}
  void group_removed(std::string_view group) override { kept_.erase(group_key(group)); }
  void group_message(std::string_view group, MessageId id, std::string_view from,
                     std::string_view text, protocol::Timestamp time) override {
    keep(group_key(group), id, from, text, time);
  }
  void direct_message(std::string_view from, std::string_view to, MessageId id,
                      std::string_view text, protocol::Timestamp time) override {
    if (peers_[std::string(from)].emplace(to).second) peers_[std::string(to)].emplace(from);
    keep(direct_key(from, to), id, from, text, time);
  }
  void cursor_changed(std::string_view, MessageId) override {}
  void account_changed(std::string_view, const core::AccountRecord&) override {}
  void address_changed(std::string_view, std::string_view, const core::AddressRecord&) override {}
  void address_forgotten(std::string_view, std::string_view) override {}

  std::size_t max_kept_;
  StorePolicy policy_;
  core::StoreState state_{this};
  core::StringMap<Conversation> kept_;
  core::StringMap<std::set<std::string, std::less<>>> peers_;  // who has a direct conversation with whom
};

}  // namespace

std::shared_ptr<Store> make_memory_store(std::size_t max_messages_per_conversation) {
  return std::make_shared<MemoryStore>(max_messages_per_conversation);
}

}  // namespace tessenger
