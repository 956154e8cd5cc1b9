#pragma once
// Stand-ins for the network adapter and the log files, for driving the hub
// (core::Hub) directly in unit tests, fuzz targets and benchmarks.

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string_view>
#include <vector>

#include <tessenger/store.hpp>

#include "core/hub.hpp"
#include "core/presence.hpp"

namespace tessenger::testing {

/// Keeps every message the hub sends, and every close it asks for.
struct RecordingOutbox : core::Outbox {
  std::map<core::SessionId, std::vector<protocol::Message>> sent;
  std::map<core::SessionId, errc> closed;
  std::map<core::SessionId, std::uint8_t> versions;
  std::multiset<core::SessionId> resumed;

  void send(core::SessionId to, const protocol::Message& message) override {
    sent[to].push_back(message);
  }
  void send_to_many(std::span<const core::SessionId> to,
                    const protocol::Message& message) override {
    for (auto id : to)
      sent[id].push_back(message);
  }
  void negotiated(core::SessionId session, std::uint8_t version) override {
    versions[session] = version;
  }
  void close(core::SessionId session, errc reason) override { closed.emplace(session, reason); }
  void resume(core::SessionId session) override { resumed.insert(session); }
  std::size_t backlog(core::SessionId) const override { return 0; }
  void notify_drained(core::SessionId) override {}
};

/// Logs that go nowhere.
struct NullLogs : core::LogStore {
  void user_online(std::size_t, const core::OnlineRecord&) override {}
  void user_offline() override {}
  void direct_message(protocol::Timestamp, std::string_view, std::string_view) override {}
  void group_created(std::string_view) override {}
  void group_message(std::string_view, protocol::Timestamp, std::string_view,
                     std::string_view) override {}
  void group_removed(std::string_view) override {}
  void flush(std::span<const core::OnlineRecord>, Done done) override {
    if (done) done();
  }
};

/// What the server's strand does with the hub's posted tasks: here they wait
/// in a queue until run().
struct TaskQueue {
  std::vector<std::function<void()>> tasks;

  core::Completions::Post poster() {
    return [this](std::function<void()> task) { tasks.push_back(std::move(task)); };
  }
  /// Runs every task, including those the tasks post.
  void run() {
    while (!tasks.empty()) {
      auto batch = std::exchange(tasks, {});
      for (auto& task : batch)
        task();
    }
  }
};

inline core::RandomBytes counting_random() {
  return [counter = std::uint8_t{0}](std::span<std::uint8_t> bytes) mutable {
    for (auto& b : bytes)
      b = ++counter;
  };
}

/// A hub with an in-memory store and presence, whose every call returns
/// only once the results it waits for have come back, as they would on the
/// server's strand between two reads.
struct HubRig {
  HubRig(core::HubConfig config, std::shared_ptr<const Authenticator> authenticator,
         core::LogStore& logs, core::PasswordChecker* checker = nullptr, LogSink log = {},
         std::shared_ptr<Store> backing = make_memory_store())
      : store(std::move(backing)),
        hub(std::move(config),
            core::HubParts{std::move(authenticator), logs, *store, presence, out, tasks.poster(),
                           counting_random(), checker, std::move(log)}) {}

  bool connected(core::SessionId id, std::string address, const core::Instant& now) {
    const bool ok = hub.connected(id, std::move(address), now);
    tasks.run();
    return ok;
  }
  void handle(core::SessionId id, const protocol::Message& message, const core::Instant& now) {
    hub.input(id, now);
    hub.handle(id, message, now);
    tasks.run();
  }
  void password_checked(core::SessionId id, bool ok, const core::Instant& now) {
    hub.password_checked(id, ok, now);
    tasks.run();
  }
  void expire(const core::Instant& now) {
    hub.expire(now);
    tasks.run();
  }
  void disconnected(core::SessionId id) {
    hub.disconnected(id);
    tasks.run();
  }

  RecordingOutbox out;
  TaskQueue tasks;
  std::shared_ptr<Store> store;
  core::LocalPresence presence;
  core::Hub hub;
};

}  // namespace tessenger::testing
