#pragma once

// A tessenger::Client driven synchronously by a test: each request blocks
// until its reply (bounded by a deadline), and events are queued so the test
// can take them in order. Nothing sleeps: every wait ends when the awaited
// thing happens, or fails the test at the deadline.

#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <tessenger/client.hpp>

namespace tessenger::testing {

using namespace std::chrono_literals;

inline constexpr auto deadline = 20s;

struct Disconnected {
  std::error_code code;
  std::string reason;
};

using Event = std::variant<protocol::DirectEvent, protocol::GroupEvent, protocol::InviteEvent,
                           protocol::FileIncomingEvent, protocol::LoginAttemptEvent, Disconnected>;

class EventQueue {
 public:
  void push(Event event) {
    {
      std::lock_guard lock(mutex_);
      events_.push_back(std::move(event));
    }
    ready_.notify_all();
  }

  std::optional<Event> pop(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!ready_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return std::nullopt;
    auto event = std::move(events_.front());
    events_.pop_front();
    return event;
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return events_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Event> events_;
};

/// Waits for a request started by `start(callback)`; a timeout is a failed
/// check and a Failure with std::errc::timed_out.
template <class T, class Start>
Result<T> await(Start&& start) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  start([promise](Result<T> result) { promise->set_value(std::move(result)); });
  if (future.wait_for(deadline) != std::future_status::ready) {
    FAIL_CHECK("no reply within the deadline");
    return Failure{std::make_error_code(std::errc::timed_out), {}};
  }
  return future.get();
}

class ChatClient {
 public:
  /// On a thread of its own.
  explicit ChatClient(std::uint16_t port, std::string host = "127.0.0.1")
      : client_(std::make_unique<Client>(events())) {
    connect(host, port);
  }
  /// On the caller's io_context.
  ChatClient(asio::io_context& io, std::uint16_t port, std::string host = "127.0.0.1")
      : client_(std::make_unique<Client>(io, events())) {
    connect(host, port);
  }

  Client& client() { return *client_; }
  const Result<ServerInfo>& hello() const { return *hello_; }

  Result<LoggedIn> login(const std::string& user, const std::string& password,
                         std::uint16_t udp_port = 40000) {
    return await<LoggedIn>(
        [&](auto done) { client_->login(user, password, udp_port, std::move(done)); });
  }
  /// Logs in again after a lost connection, from the newest id the last one had.
  Result<LoggedIn> resume(const std::string& user, const std::string& password,
                          protocol::MessageId after) {
    return await<LoggedIn>(
        [&](auto done) { client_->login(user, password, 40000, after, std::move(done)); });
  }
  Result<ConversationHistory> history(protocol::HistoryQuery query) {
    return await<ConversationHistory>(
        [&](auto done) { client_->history(std::move(query), std::move(done)); });
  }
  /// Logs in and requires success.
  void must_login(const std::string& user, const std::string& password,
                  std::uint16_t udp_port = 40000) {
    const auto result = login(user, password, udp_port);
    REQUIRE_MESSAGE(result.ok(), user, " could not log in: ", result.error().message());
  }
  Result<DirectMessageSent> send(const std::string& to, const std::string& text) {
    return await<DirectMessageSent>(
        [&](auto done) { client_->send_direct(to, text, std::move(done)); });
  }
  Result<OnlineUsers> active_users() {
    return await<OnlineUsers>([&](auto done) { client_->active_users(std::move(done)); });
  }
  Result<NewGroup> create_group(const std::string& group, const std::vector<std::string>& members) {
    return await<NewGroup>(
        [&](auto done) { client_->create_group(group, members, std::move(done)); });
  }
  Result<JoinedGroup> join_group(const std::string& group) {
    return await<JoinedGroup>([&](auto done) { client_->join_group(group, std::move(done)); });
  }
  Result<GroupMessageSent> send_group(const std::string& group, const std::string& text) {
    return await<GroupMessageSent>(
        [&](auto done) { client_->send_group(group, text, std::move(done)); });
  }
  Result<PingReply> ping(std::uint64_t payload = 0) {
    return await<PingReply>([&](auto done) { client_->ping(payload, std::move(done)); });
  }
  Result<SessionEnded> logout() {
    return await<SessionEnded>([&](auto done) { client_->logout(std::move(done)); });
  }

  /// The next event; fails the test if none arrives within the deadline.
  Event next_event() {
    auto event = events_->pop(deadline);
    REQUIRE_MESSAGE(event.has_value(), "no event within the deadline");
    return std::move(*event);
  }
  /// The next event, which must be an E.
  template <class E>
  E next() {
    auto event = next_event();
    REQUIRE_MESSAGE(std::holds_alternative<E>(event), "unexpected event kind ", event.index());
    return std::get<E>(std::move(event));
  }
  std::size_t queued() const { return events_->size(); }
  /// True if no event is queued once every frame the server sent before a
  /// round trip has arrived (the server replies in order).
  bool quiet() {
    const auto pong = ping();
    return pong.ok() && events_->size() == 0;
  }

 private:
  ClientEvents events() {
    ClientEvents handlers;
    auto queue = events_;
    handlers.on_direct_message = [queue](const protocol::DirectEvent& e) { queue->push(e); };
    handlers.on_group_message = [queue](const protocol::GroupEvent& e) { queue->push(e); };
    handlers.on_invite = [queue](const protocol::InviteEvent& e) { queue->push(e); };
    handlers.on_file_incoming = [queue](const protocol::FileIncomingEvent& e) { queue->push(e); };
    handlers.on_login_attempt = [queue](const protocol::LoginAttemptEvent& e) { queue->push(e); };
    handlers.on_disconnected = [queue](std::error_code code, std::string_view reason) {
      queue->push(Disconnected{code, std::string(reason)});
    };
    return handlers;
  }

  void connect(const std::string& host, std::uint16_t port) {
    hello_ = await<ServerInfo>([&](auto done) { client_->connect(host, port, std::move(done)); });
  }

  std::shared_ptr<EventQueue> events_ = std::make_shared<EventQueue>();
  std::unique_ptr<Client> client_;
  std::optional<Result<ServerInfo>> hello_;
};

}  // namespace tessenger::testing
