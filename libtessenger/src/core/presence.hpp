#pragma once

// Who is online, and the uniqueness of names: the seam a cluster implements
// across nodes. Claiming a name is asynchronous (a cluster decides it
// atomically in its shared store); lookups answer from this node's view,
// which a cluster keeps current by subscription, so routing a message never
// waits for a round trip.

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <tessenger/errc.hpp>
#include <tessenger/protocol.hpp>

#include "core/log_store.hpp"

namespace tessenger::core {

using SessionId = std::uint64_t;

/// Lets string-keyed maps be searched with a string_view, without a copy.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const noexcept {
    return std::hash<std::string_view>{}(text);
  }
};
template <class T>
using StringMap = std::unordered_map<std::string, T, StringHash, std::equal_to<>>;

/// Where a user's session lives. `node` empty: this node.
struct Location {
  std::string node;
  SessionId session = 0;
  bool local() const noexcept { return node.empty(); }
};

struct PresenceEntry {
  OnlineRecord record;
  Location where;
};

/// How a claim ended: the name is now the entry's (code ok, no holder), is
/// held by `holder`, or could not be decided (`code`: service_unavailable).
struct ClaimOutcome {
  errc code{};
  std::optional<PresenceEntry> holder;
};

/// Carries the hub's events to users whose sessions live on other nodes.
/// Stored messages do not pass here: a cluster's store delivers those
/// itself, to every node in id order, and the hub hears of them through
/// Hub::deliver_stored.
class Router {
 public:
  virtual ~Router() = default;
  /// `message` for `users`, all online on `node`.
  virtual void forward(const std::string& node, std::span<const std::string> users,
                       const protocol::Message& message) = 0;
};

class Presence {
 public:
  virtual ~Presence() = default;
  /// Claims `entry.record.username` (see ClaimOutcome). Same contract as a
  /// Store: `done` from any thread, possibly inside the call.
  virtual void claim(PresenceEntry entry, std::function<void(ClaimOutcome)> done) = 0;
  /// Gives up the name if `session` of this node holds it.
  virtual void release(std::string_view username, SessionId session) = 0;
  virtual const PresenceEntry* find(std::string_view username) const = 0;
  /// Everyone online, in login order.
  virtual std::span<const OnlineRecord> online() const = 0;
};

/// One node's presence, in memory.
class LocalPresence final : public Presence {
 public:
  void claim(PresenceEntry entry, std::function<void(ClaimOutcome)> done) override {
    const auto it = by_name_.find(entry.record.username);
    if (it != by_name_.end()) return done({{}, it->second});
    online_.push_back(entry.record);
    by_name_.emplace(entry.record.username, std::move(entry));
    done({});
  }
  void release(std::string_view username, SessionId session) override {
    const auto it = by_name_.find(username);
    if (it == by_name_.end() || !it->second.where.local() || it->second.where.session != session)
      return;
    by_name_.erase(it);
    std::erase_if(online_, [&](const OnlineRecord& r) { return r.username == username; });
  }
  const PresenceEntry* find(std::string_view username) const override {
    const auto it = by_name_.find(username);
    return it == by_name_.end() ? nullptr : &it->second;
  }
  std::span<const OnlineRecord> online() const override { return online_; }

 private:
  StringMap<PresenceEntry> by_name_;
  std::vector<OnlineRecord> online_;  // login order
};

}  // namespace tessenger::core
