// Drives the server's per-connection handling without sockets: the input is
// a script of operations on up to 8 connections (connect from one of a few
// addresses, bytes in, close, time passing, login timeout, a slow password
// check returning), played the way the network adapter plays them: bytes go
// through a protocol::Decoder per connection, decoded requests to the domain
// Hub, and whatever the Hub sends lands in an in-memory outbox.
//
// Besides the sanitizers, it checks that the hub
// - only sends to connections that are open, and only replies and events;
// - only sends what a client's decoder accepts with the default limits;
// - never has one user online twice, or more users online than connections.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <tessenger/protocol.hpp>

#include "core/hub.hpp"
#include "hub_doubles.hpp"

namespace p = tessenger::protocol;
using tessenger::errc;
using tessenger::core::SessionId;
using tessenger::testing::NullLogs;

namespace {

[[noreturn]] void violated(const char* property) {
  std::fprintf(stderr, "fuzz_server_session: property violated: %s\n", property);
  std::abort();
}

// Names of two characters exist; those starting with 'h' have a slow (hashed)
// password, checked through the PasswordChecker. Password: "pw-" + name.
struct Accounts : tessenger::Authenticator {
  bool exists(std::string_view user) const override { return user.size() == 2; }
  bool verify(std::string_view user, std::string_view password) const override {
    return password.size() == 5 && password.starts_with("pw-") && password.substr(3) == user;
  }
  bool slow(std::string_view user) const override { return user.starts_with('h'); }
};

struct Check {
  SessionId session;
  std::string username;
  std::string password;
};

class Harness final : public tessenger::core::Outbox, public tessenger::core::PasswordChecker {
 public:
  Harness()
      : hub_(
            config(), std::make_shared<Accounts>(), logs_, *this, {},
            tessenger::LogSink{tessenger::LogLevel::debug,
                               [](tessenger::LogLevel, std::string_view text) {
                                 if (text.empty()) violated("empty log line");
                               }},
            [this](std::span<std::uint8_t> bytes) {
              for (auto& b : bytes)
                b = static_cast<std::uint8_t>(++random_);
            },
            this) {}

  void run(std::span<const std::uint8_t> script) {
    script_ = script;
    while (!script_.empty()) {
      step();
      // As the adapter does after each batch: sessions the hub closed end now.
      for (const auto id : std::exchange(closing_, {}))
        end(id);
      check_online();
    }
  }

  // tessenger::core::Outbox
  void send(SessionId to, const p::Message& message) override { deliver(to, message); }
  void send_to_many(std::span<const SessionId> to, const p::Message& message) override {
    for (const auto id : to)
      deliver(id, message);
  }
  void close(SessionId session, errc) override {
    if (!open_.contains(session)) violated("close of a connection that is not open");
    closing_.push_back(session);
  }

  // tessenger::core::PasswordChecker
  void check(SessionId session, std::string username, std::string password) override {
    checks_.push_back({session, std::move(username), std::move(password)});
  }

 private:
  static tessenger::core::HubConfig config() {
    tessenger::core::HubConfig c;
    c.max_attempts = 3;
    c.block_duration = std::chrono::seconds(2);
    // Small limits, so that scripts of a few operations reach them.
    c.limits.max_connections = 6;
    c.limits.max_connections_per_ip = 3;
    c.limits.max_failed_logins_per_ip = 5;
    c.limits.failed_login_window_seconds = 10;
    c.limits.message_rate = 10;
    c.limits.message_burst = 20;
    c.limits.max_rate_refusals = 10;
    c.limits.max_groups_per_user = 3;
    c.limits.max_group_members = 4;
    c.limits.max_pending_password_checks = 2;
    return c;
  }

  std::uint8_t next_byte() {
    if (script_.empty()) return 0;
    const auto b = script_.front();
    script_ = script_.subspan(1);
    return b;
  }

  void step() {
    const auto op = next_byte() % 8;
    const auto slot = next_byte() % 8;
    switch (op) {
      case 0: {  // connect
        if (slots_[slot] != 0) break;
        const SessionId id = next_id_++;
        const auto address = "192.0.2." + std::to_string(next_byte() % 4);
        if (hub_.connected(id, address)) {
          slots_[slot] = id;
          open_.insert(id);
          decoders_.emplace(id, p::Decoder{});
        }
        break;
      }
      case 1: {  // bytes in
        const auto length = std::min<std::size_t>(next_byte(), script_.size());
        feed(slot, std::as_bytes(script_.first(length)));
        script_ = script_.subspan(length);
        break;
      }
      case 2:  // the peer closes
        if (slots_[slot] != 0) end(slots_[slot]);
        break;
      case 3:  // time passes
        now_.steady += std::chrono::milliseconds(10 * next_byte());
        now_.wall += 10'000 * next_byte();
        break;
      case 4:  // the login timer fires
        if (slots_[slot] != 0) hub_.login_timeout(slots_[slot]);
        break;
      case 5: {  // the oldest slow check returns (or is called off)
        if (checks_.empty()) break;
        const auto check = checks_.front();
        checks_.erase(checks_.begin());
        const bool ok = (next_byte() & 1) == 0 && Accounts{}.verify(check.username, check.password);
        hub_.password_checked(check.session, ok, now_);
        break;
      }
      case 6:  // a well-formed request, to reach deep states in few bytes
        if (slots_[slot] != 0) {
          const auto frame = p::encode(canned(next_byte()));
          feed(slot, std::as_bytes(std::span(frame)));
        }
        break;
      default:
        if (next_byte() == 0xff) hub_.shutdown();
        break;
    }
  }

  p::Message canned(std::uint8_t pick) const {
    const auto id = static_cast<p::RequestId>(pick);
    switch (pick % 14) {
      case 0:
        return p::Hello{id, 1, 1, "fuzz"};
      case 1:
        return p::Login{id, "aa", "pw-aa", 5000};
      case 2:
        return p::Login{id, "bb", "pw-bb", 5001};
      case 3:
        return p::Login{id, "hh", "pw-hh", 5002};
      case 4:
        return p::Login{id, "aa", "wrong", 5000};
      case 5:
        return p::DirectSend{id, "bb", "hello"};
      case 6:
        return p::DirectSend{id, "aa", "hi"};
      case 7:
        return p::GroupCreate{id, "g" + std::to_string(pick % 3), {"aa", "bb", "hh"}};
      case 8:
        return p::GroupJoin{id, "g" + std::to_string(pick % 3)};
      case 9:
        return p::GroupSend{id, "g" + std::to_string(pick % 3), "to all"};
      case 10:
        return p::FileOffer{id, "bb", "a.mp4", 1000, {}};
      case 11:
        return p::ActiveUsersQuery{id};
      case 12:
        return p::Ping{id, pick};
      default:
        return p::Logout{id};
    }
  }

  void feed(std::uint8_t slot, std::span<const std::byte> input) {
    const auto id = slots_[slot];
    if (id == 0) return;
    auto& decoder = decoders_.at(id);
    while (!input.empty() && open_.contains(id)) {
      auto result = decoder.feed(input);
      input = input.subspan(result.consumed);
      if (result.error) {
        hub_.protocol_error(id, result.error);
        return;
      }
      if (result.message) hub_.handle(id, *result.message, now_);
      if (std::find(closing_.begin(), closing_.end(), id) != closing_.end()) return;
    }
  }

  void end(SessionId id) {
    if (!open_.erase(id)) return;
    hub_.disconnected(id);
    decoders_.erase(id);
    for (auto& slot : slots_) {
      if (slot == id) slot = 0;
    }
  }

  void deliver(SessionId to, const p::Message& message) {
    if (!open_.contains(to)) violated("sent to a connection that is not open");
    if (p::is_request(p::type_of(message))) violated("the server sent a request");
    // What the server sends must pass a client's checks.
    const auto frame = p::encode(message);
    p::Decoder client;
    const auto result = client.feed(frame);
    if (result.error || !result.message || result.consumed != frame.size()) {
      violated("a client cannot decode what the server sent");
    }
    if (*result.message != message) violated("sent message changed on the wire");
  }

  void check_online() {
    std::set<std::string> names;
    for (const auto& record : hub_.online()) {
      if (!names.insert(record.username).second) violated("a user is online twice");
      if (!hub_.is_online(record.username)) violated("online list and lookup disagree");
    }
    if (names.size() > open_.size()) violated("more users online than connections");
  }

  NullLogs logs_;
  tessenger::core::Hub hub_;
  tessenger::core::Instant now_{std::chrono::steady_clock::time_point{} + std::chrono::hours(1),
                                1'700'000'000'000'000};
  std::span<const std::uint8_t> script_;
  std::uint8_t random_ = 0;
  SessionId next_id_ = 1;
  SessionId slots_[8] = {};
  std::set<SessionId> open_;
  std::vector<SessionId> closing_;
  std::map<SessionId, p::Decoder> decoders_;
  std::vector<Check> checks_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Harness harness;
  harness.run({data, size});
  return 0;
}
