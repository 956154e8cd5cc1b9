#pragma once
// Stand-ins for the network adapter and the log files, for driving the hub
// (core::Hub) directly in unit tests and fuzz targets.

#include <map>
#include <span>
#include <string_view>
#include <vector>

#include "core/hub.hpp"

namespace tessenger::testing {

/// Keeps every message the hub sends, and every close it asks for.
struct RecordingOutbox : core::Outbox {
  std::map<core::SessionId, std::vector<protocol::Message>> sent;
  std::map<core::SessionId, errc> closed;

  void send(core::SessionId to, const protocol::Message& message) override {
    sent[to].push_back(message);
  }
  void send_to_many(std::span<const core::SessionId> to,
                    const protocol::Message& message) override {
    for (auto id : to)
      sent[id].push_back(message);
  }
  void close(core::SessionId session, errc reason) override { closed.emplace(session, reason); }
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

}  // namespace tessenger::testing
