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

class Presence {
 public:
  virtual ~Presence() = default;
  /// Claims `entry.record.username`. `done` gets nothing when the name is
  /// now this entry's, or the entry that holds it. Same contract as a Store:
  /// `done` from any thread, possibly inside the call.
  virtual void claim(PresenceEntry entry,
                     std::function<void(std::optional<PresenceEntry>)> done) = 0;
  /// Gives up the name if `session` of this node holds it.
  virtual void release(std::string_view username, SessionId session) = 0;
  virtual const PresenceEntry* find(std::string_view username) const = 0;
  /// Everyone online, in login order.
  virtual std::span<const OnlineRecord> online() const = 0;
};

/// One node's presence, in memory.
class LocalPresence final : public Presence {
 public:
  void claim(PresenceEntry entry, std::function<void(std::optional<PresenceEntry>)> done) override {
    const auto it = by_name_.find(entry.record.username);
    if (it != by_name_.end()) return done(it->second);
    online_.push_back(entry.record);
    by_name_.emplace(entry.record.username, std::move(entry));
    done(std::nullopt);
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
