#pragma once

// Calls a Store and waits for its answer, which may come from another thread.

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <tessenger/store.hpp>

namespace tessenger::testing {

template <class T, class Call>
T answer(Call call) {
  auto promise = std::make_shared<std::promise<T>>();
  auto result = promise->get_future();
  call([promise](T value) { promise->set_value(std::move(value)); });
  REQUIRE(result.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  return result.get();
}

inline constexpr protocol::Timestamp t0 = 1'800'000'000'000'000;  // µs since the epoch
inline constexpr protocol::Timestamp second = 1'000'000;

/// Synchronous calls on one store.
struct Calls {
  Store& store;

  StoreOutcome create(const std::string& group, const std::string& creator,
                      std::vector<std::string> invited = {}) {
    return answer<StoreOutcome>(
        [&](auto done) { store.create_group(group, creator, std::move(invited), done); });
  }
  StoreOutcome join(const std::string& group, const std::string& user) {
    return answer<StoreOutcome>([&](auto done) { store.join_group(group, user, done); });
  }
  GroupDeparture leave(const std::string& group, const std::string& user) {
    return answer<GroupDeparture>([&](auto done) { store.leave_group(group, user, done); });
  }
  GroupRemoval remove(const std::string& group, const std::string& user) {
    return answer<GroupRemoval>([&](auto done) { store.delete_group(group, user, done); });
  }
  StoredGroupMessage say(const std::string& group, const std::string& from,
                         const std::string& text = "hello") {
    return answer<StoredGroupMessage>(
        [&](auto done) { store.append_group_message(group, from, text, t0, done); });
  }
  StoredMessage tell(const std::string& from, const std::string& to, const std::string& text = "hi",
                     protocol::Timestamp time = t0) {
    return answer<StoredMessage>(
        [&](auto done) { store.append_direct_message(from, to, text, time, done); });
  }
  MissedPage missed(const std::string& user, MessageId after, std::size_t limit = 100) {
    return answer<MissedPage>([&](auto done) { store.missed(user, after, false, limit, done); });
  }
  MissedPage missed_since_delivered(const std::string& user, std::size_t limit = 100) {
    return answer<MissedPage>([&](auto done) { store.missed(user, 0, true, limit, done); });
  }
  HistoryResult history(const std::string& user, const std::string& name,
                        protocol::HistoryDirection direction = protocol::HistoryDirection::latest,
                        MessageId anchor = 0, std::size_t limit = 100,
                        protocol::ConversationKind kind = protocol::ConversationKind::any) {
    return answer<HistoryResult>([&](auto done) {
      store.history({user, kind, name, direction, anchor, limit}, done);
    });
  }
  bool blocked(const std::string& user, const std::string& address, protocol::Timestamp now) {
    return answer<bool>([&](auto done) { store.is_blocked(user, address, now, done); });
  }
  FailedLogin fail(const std::string& user, const std::string& address, protocol::Timestamp now) {
    return answer<FailedLogin>([&](auto done) { store.login_failed(user, address, now, done); });
  }
};

/// The rules the tests configure: small quotas, 3 attempts, 10 s blocks,
/// 5 failures of an account from all addresses.
inline StorePolicy test_policy() {
  StorePolicy policy;
  policy.limits.max_groups = 4;
  policy.limits.max_groups_per_user = 2;
  policy.limits.max_account_failures = 5;
  policy.max_attempts = 3;
  policy.block_duration = std::chrono::seconds(10);
  return policy;
}

}  // namespace tessenger::testing
