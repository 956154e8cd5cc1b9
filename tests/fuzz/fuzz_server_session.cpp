// Drives the server's per-connection handling without sockets: the input is
// a script of operations on up to 8 connections (connect from one of a few
// addresses, bytes in, close, time passing, the hub's timer firing, a slow
// password check returning), played the way the network adapter plays them:
// bytes go through a protocol::Decoder per connection, decoded requests to
// the domain Hub (input held while the hub does not want it, until it asks
// to resume), the hub's posted tasks run on a queue standing in for the
// strand, and whatever the Hub sends lands in an in-memory outbox.
//
// An operation byte is `op | flags`: op is its low 3 bits; 0x08 leaves the
// posted tasks queued after it (so other input can overtake a pending
// result), 0x10 leaves the sockets the hub closed open after it.
//
// Besides the sanitizers, it checks that the hub
// - only sends to connections it accepted, replies and events in the
//   session's version that a client's decoder accepts unchanged (as far as
//   that version carries them), and pings only sessions of version 2 or
//   later;
// - sends events for a user only to logged-in sessions;
// - never has one user online twice, more users online than connections, or
//   a user online on a session it closed or forgot;
// - counts a session until its socket is closed, and never asks for more
//   password checks at once than its limit;
// - closes every session that outlives the login timeout or leaves a ping
//   unanswered, pings every silent session, and never leaves a deadline
//   behind after expire();
// - resumes every session whose input it held, and leaves none waiting once
//   everything has settled.

#include <algorithm>
#include <chrono>
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
#include <tessenger/store.hpp>

#include "core/hub.hpp"
#include "core/presence.hpp"
#include "hub_doubles.hpp"

namespace p = tessenger::protocol;
using tessenger::errc;
using tessenger::core::SessionId;
using tessenger::testing::NullLogs;
using SteadyTime = std::chrono::steady_clock::time_point;
using namespace std::chrono_literals;

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

bool is_user_event(p::MessageType type) {
  using T = p::MessageType;
  return type == T::direct_event || type == T::group_event || type == T::invite_event ||
         type == T::file_incoming_event || type == T::login_attempt_event;
}

class Harness final : public tessenger::core::Outbox, public tessenger::core::PasswordChecker {
 public:
  Harness()
      : store_(tessenger::make_memory_store()),
        hub_(config(),
             tessenger::core::HubParts{
                 std::make_shared<Accounts>(), logs_, *store_, presence_, *this, tasks_.poster(),
                 [this](std::span<std::uint8_t> bytes) {
                   for (auto& b : bytes)
                     b = static_cast<std::uint8_t>(++random_);
                 },
                 this,
                 tessenger::LogSink{tessenger::LogLevel::debug,
                                    [](tessenger::LogLevel, std::string_view text) {
                                      if (text.empty()) violated("empty log line");
                                    }}}) {}

  void run(std::span<const std::uint8_t> script) {
    script_ = script;
    while (!script_.empty()) {
      const auto op = next_byte();
      step(op & 7);
      if ((op & 0x08) == 0) run_tasks();
      if ((op & 0x10) == 0) end_closed();
      check_state();
    }
    settle();
  }

  // tessenger::core::Outbox
  void send(SessionId to, const p::Message& message) override { deliver(to, message); }
  void send_to_many(std::span<const SessionId> to, const p::Message& message) override {
    for (const auto id : to)
      deliver(id, message);
  }
  void negotiated(SessionId session, std::uint8_t version) override {
    Connection* c = live(session);
    if (c == nullptr) violated("a version negotiated for a connection that is not open");
    if (c->negotiated) violated("a version negotiated twice");
    if (version < p::min_version || version > p::version) violated("an unknown version agreed");
    c->negotiated = true;
    c->version = version;
    if (!c->decoder.set_version(version)) violated("the decoder refused the agreed version");
  }
  void close(SessionId session, errc) override {
    Connection* c = live(session);
    if (c == nullptr) violated("close of a connection that is not open");
    c->closed = true;
    // Input to a closing connection is read only to see the peer's close.
    c->held.clear();
  }
  void resume(SessionId session) override {
    if (!accepted_.contains(session)) violated("resume of a connection never accepted");
    const auto it = connections_.find(session);
    if (it == connections_.end()) return;
    it->second.resume_pending = true;
    // Later, not inside the hub's call that asked for it.
    tasks_.tasks.push_back([this, session] { unpark(session); });
  }
  // Everything is "written" at once here: the queue never holds a replay back.
  std::size_t backlog(SessionId) const override { return 0; }
  void notify_drained(SessionId) override {}

  // tessenger::core::PasswordChecker
  void check(SessionId session, std::string username, std::string password) override {
    if (live(session) == nullptr) violated("a password check for a connection that is not open");
    checks_.push_back({session, std::move(username), std::move(password)});
    if (checks_.size() > config().limits.max_pending_password_checks) {
      violated("more password checks waiting than the limit");
    }
  }

 private:
  struct Connection {
    p::Decoder decoder;  // the server's
    std::uint8_t version = p::min_version;
    bool negotiated = false;
    bool closed = false;  // by the hub; the socket is still open
    std::vector<std::byte> held;
    bool resume_pending = false;
    std::string user;  // once LoginOk went out
    SteadyTime connected_at;
    SteadyTime last_input;
    std::optional<SteadyTime> ping_sent;  // the first Ping since the last input
    p::RequestId last_ping = 0;
  };

  static tessenger::core::HubConfig config() {
    tessenger::core::HubConfig c;
    c.max_attempts = 3;
    c.block_duration = 2s;
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
    c.limits.login_timeout_seconds = 5;
    c.limits.idle_ping_seconds = 3;
    c.limits.ping_timeout_seconds = 2;
    c.probe_timeout = 1000ms;
    return c;
  }

  std::uint8_t next_byte() {
    if (script_.empty()) return 0;
    const auto b = script_.front();
    script_ = script_.subspan(1);
    return b;
  }

  Connection* live(SessionId id) {
    const auto it = connections_.find(id);
    return it == connections_.end() || it->second.closed ? nullptr : &it->second;
  }

  void step(std::uint8_t op) {
    const auto slot = next_byte() % 8;
    switch (op) {
      case 0: {  // connect
        if (slots_[slot] != 0) break;
        const SessionId id = next_id_++;
        const auto address = "192.0.2." + std::to_string(next_byte() % 4);
        if (hub_.connected(id, address, now_)) {
          slots_[slot] = id;
          accepted_.insert(id);
          auto& c = connections_[id];
          c.connected_at = now_.steady;
          c.last_input = now_.steady;
        }
        break;
      }
      case 1: {  // bytes in
        const auto length = std::min<std::size_t>(next_byte(), script_.size());
        arrive(slot, std::as_bytes(script_.first(length)));
        script_ = script_.subspan(length);
        break;
      }
      case 2:  // the socket closes (the peer's doing, or the end of the hub's close)
        if (slots_[slot] != 0) end(slots_[slot]);
        break;
      case 3:  // time passes; the clocks need not agree
        now_.steady += std::chrono::milliseconds(10 * next_byte());
        now_.wall += 10'000 * next_byte();
        break;
      case 4:  // the hub's timer fires
        fire_timer();
        break;
      case 5: {  // the oldest slow check returns (or is called off)
        if (checks_.empty()) break;
        const auto returned = checks_.front();
        checks_.erase(checks_.begin());
        const bool ok =
            (next_byte() & 1) == 0 && Accounts{}.verify(returned.username, returned.password);
        hub_.password_checked(returned.session, ok, now_);
        break;
      }
      case 6:  // a well-formed request, to reach deep states in few bytes
        if (const auto id = slots_[slot]; id != 0) {
          const auto& c = connections_.at(id);
          const auto frame = p::encode(canned(next_byte(), c), c.version);
          arrive(slot, std::as_bytes(std::span(frame)));
        }
        break;
      default:
        if (next_byte() == 0xff) hub_.shutdown();
        break;
    }
  }

  p::Message canned(std::uint8_t pick, const Connection& c) const {
    const auto id = static_cast<p::RequestId>(pick);
    switch (pick % 20) {
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
      case 13:
        return p::Logout{id};
      case 14:
        return p::Hello{id, 1, 2, "fuzz"};
      case 15:
        return p::GroupLeave{id, "g" + std::to_string(pick % 3)};
      case 16:
        return p::GroupDelete{id, "g" + std::to_string(pick % 3)};
      case 17:
        return p::Hello{id, 1, 3, "fuzz"};
      case 18:
        return p::HistoryQuery{id,
                               p::ConversationKind::any,
                               pick % 2 == 0 ? "bb" : "g0",
                               p::HistoryDirection::latest,
                               pick,
                               static_cast<std::uint16_t>(pick % 120)};
      default:  // the answer to the latest ping the server sent
        return p::Pong{c.last_ping, 0};
    }
  }

  // Bytes read from the socket, as Server::Impl::on_read takes them.
  void arrive(std::uint8_t slot, std::span<const std::byte> input) {
    const auto id = slots_[slot];
    Connection* c = live(id);
    if (c == nullptr) return;
    hub_.input(id, now_);
    c->last_input = now_.steady;
    c->ping_sent.reset();
    if (!c->held.empty() || !hub_.wants_input(id)) {
      c->held.insert(c->held.end(), input.begin(), input.end());
    } else {
      consume(id, input);
    }
  }

  void consume(SessionId id, std::span<const std::byte> input) {
    while (!input.empty()) {
      Connection* c = live(id);
      if (c == nullptr) return;
      if (!hub_.wants_input(id)) {
        c->held.insert(c->held.begin(), input.begin(), input.end());
        return;
      }
      const auto result = c->decoder.feed(input);
      input = input.subspan(result.consumed);
      if (result.error) {
        hub_.protocol_error(id, result.error);
        return;
      }
      if (result.message) hub_.handle(id, *result.message, now_);
      if (result.unknown && result.unknown->request_id) {
        hub_.unsupported(id, *result.unknown->request_id);
      }
    }
  }

  void unpark(SessionId id) {
    const auto it = connections_.find(id);
    if (it == connections_.end()) return;
    it->second.resume_pending = false;
    consume(id, std::exchange(it->second.held, {}));
  }

  void run_tasks() {
    tasks_.run();
    if (hub_.pending_operations() != 0) violated("a result of the in-memory store never came back");
  }

  void fire_timer() {
    const auto due = hub_.next_expiry();
    if (!due) return;
    if (*due > now_.steady) {
      const auto wait = *due - now_.steady;
      now_.steady = *due;
      now_.wall += std::chrono::duration_cast<std::chrono::microseconds>(wait).count();
    }
    hub_.expire(now_);
    if (const auto next = hub_.next_expiry(); next && *next <= now_.steady) {
      violated("a deadline left due after expire()");
    }
    check_deadlines();
  }

  // What expire() must have done by now.
  void check_deadlines() {
    const auto& limits = config().limits;
    const auto answer_within = std::max<std::chrono::steady_clock::duration>(
        std::chrono::seconds(limits.ping_timeout_seconds), config().probe_timeout);
    for (const auto& [id, c] : connections_) {
      if (c.closed || hub_.closing(id)) continue;
      if (c.user.empty()) {
        if (now_.steady >= c.connected_at + std::chrono::seconds(limits.login_timeout_seconds)) {
          violated("a session outlived the login timeout");
        }
        continue;
      }
      if (c.version < 2) continue;
      if (c.ping_sent) {
        if (now_.steady >= *c.ping_sent + answer_within) {
          violated("a session that does not answer pings stayed open");
        }
      } else if (now_.steady >= c.last_input + std::chrono::seconds(limits.idle_ping_seconds)) {
        violated("a silent session was not pinged");
      }
    }
  }

  void end(SessionId id) {
    if (connections_.erase(id) == 0) return;
    hub_.disconnected(id);
    for (auto& slot : slots_) {
      if (slot == id) slot = 0;
    }
  }

  void end_closed() {
    std::vector<SessionId> closed;
    for (const auto& [id, c] : connections_) {
      if (c.closed) closed.push_back(id);
    }
    for (const auto id : closed)
      end(id);
  }

  void deliver(SessionId to, const p::Message& message) {
    if (!accepted_.contains(to)) violated("sent to a connection never accepted");
    const auto type = p::type_of(message);
    Connection* c = live(to);
    if (c == nullptr) {
      // Closing or gone: the adapter drops it. A late reply may come here; an
      // event for a user must not, as the user went offline with the close.
      if (is_user_event(type)) violated("an event for a user sent to a closed session");
      return;
    }
    if (type == p::MessageType::ping) {
      if (c->version < 2) violated("a version 1 session was pinged");
    } else if (p::is_request(type)) {
      violated("the server sent a request");
    }
    if (p::since_version(type) > c->version) violated("a message newer than the session's version");
    if (is_user_event(type) && c->user.empty()) {
      violated("an event for a user sent to a session not logged in");
    }
    // What the server sends must pass a client's checks.
    const auto frame = p::encode(message, c->version);
    p::Decoder client;
    if (!client.set_version(c->version)) violated("the client decoder refused the version");
    const auto result = client.feed(frame);
    if (result.error || !result.message || result.consumed != frame.size()) {
      violated("a client cannot decode what the server sent");
    }
    // An older session's frame leaves out the fields added after its version,
    // so there the property is that the frame decodes to itself.
    if (c->version == p::version ? *result.message != message
                                 : p::encode(*result.message, c->version) != frame) {
      violated("sent message changed on the wire");
    }

    if (const auto* ok = std::get_if<p::LoginOk>(&message)) {
      if (!c->user.empty()) violated("a second LoginOk on one session");
      c->user = ok->username;
      c->last_input = std::max(c->last_input, now_.steady);
    } else if (const auto* ping = std::get_if<p::Ping>(&message)) {
      if (!c->ping_sent) c->ping_sent = now_.steady;
      c->last_ping = ping->request_id;
    }
  }

  void check_state() {
    if (hub_.sessions() != connections_.size()) {
      violated("the hub counts other sessions than the open sockets");
    }
    std::size_t live_sessions = 0;
    for (const auto& [id, c] : connections_) {
      if (c.closed) continue;
      ++live_sessions;
      // A session the hub has closed waits for its last results before the
      // socket is told.
      if (!c.user.empty() && !hub_.closing(id)) {
        const auto* entry = presence_.find(c.user);
        if (entry == nullptr || entry->where.session != id) {
          violated("a logged-in session's user is not online there");
        }
      }
      if (!c.held.empty() && hub_.wants_input(id) && !c.resume_pending) {
        violated("input held for a session that wants it, and no resume coming");
      }
    }
    std::set<std::string> names;
    for (const auto& record : hub_.online()) {
      if (!names.insert(record.username).second) violated("a user is online twice");
      if (!hub_.is_online(record.username)) violated("online list and lookup disagree");
    }
    // A name is claimed before the hub learns the outcome: only once every
    // result is in must each name belong to a live session.
    if (hub_.pending_operations() != 0) return;
    for (const auto& record : hub_.online()) {
      const auto* entry = presence_.find(record.username);
      if (entry == nullptr || live(entry->where.session) == nullptr) {
        violated("a user is online on a session that is closed or gone");
      }
    }
    if (names.size() > live_sessions) violated("more users online than connections");
  }

  // The end of the script: every check returns, every result comes back,
  // and time runs on past every deadline.
  void settle() {
    for (int round = 0; round < 64 && (!checks_.empty() || !tasks_.tasks.empty()); ++round) {
      run_tasks();
      for (const auto& waiting : std::exchange(checks_, {}))
        hub_.password_checked(waiting.session,
                              Accounts{}.verify(waiting.username, waiting.password), now_);
      run_tasks();
    }
    end_closed();
    check_state();
    now_.steady += 1h;
    now_.wall += std::chrono::duration_cast<std::chrono::microseconds>(1h).count();
    for (int round = 0; round < 64 && hub_.next_expiry(); ++round) {
      hub_.expire(now_);
      run_tasks();
      end_closed();
      if (const auto next = hub_.next_expiry(); next && *next <= now_.steady) {
        violated("a deadline left due after expire()");
      }
      now_.steady += 1h;
      now_.wall += std::chrono::duration_cast<std::chrono::microseconds>(1h).count();
    }
    check_state();
    for (const auto& [id, c] : connections_) {
      if (!hub_.wants_input(id)) violated("a session waits for input forever");
      if (c.user.empty() || c.version >= 2) violated("a session outlived its deadlines");
    }
    while (!connections_.empty())
      end(connections_.begin()->first);
    // Ending them may have left a summary of log lines to write: it is due
    // once the limiter's window has passed, and then nothing may be left.
    now_.steady += 1h;
    hub_.expire(now_);
    if (hub_.sessions() != 0 || !hub_.online().empty() || hub_.next_expiry()) {
      violated("the hub kept something of sessions that are gone");
    }
  }

  NullLogs logs_;
  tessenger::testing::TaskQueue tasks_;
  std::shared_ptr<tessenger::Store> store_;
  tessenger::core::LocalPresence presence_;
  tessenger::core::Hub hub_;
  tessenger::core::Instant now_{std::chrono::steady_clock::time_point{} + 1h,
                                1'700'000'000'000'000};
  std::span<const std::uint8_t> script_;
  std::uint8_t random_ = 0;
  SessionId next_id_ = 1;
  SessionId slots_[8] = {};
  std::set<SessionId> accepted_;
  std::map<SessionId, Connection> connections_;  // accepted, socket not yet closed
  std::vector<Check> checks_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Harness harness;
  harness.run({data, size});
  return 0;
}
