#pragma once

// The load generator's I/O: one thread, one epoll set, non-blocking sockets.
// Reads go into one shared buffer and are decoded in place by the codec;
// writes are appended to a per-connection buffer and sent with one send(2)
// per connection per wake-up, so the generator needs much less CPU per
// message than the server it drives.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tessenger/protocol.hpp>

namespace bench {

/// Monotonic time in nanoseconds (CLOCK_MONOTONIC, like steady_clock).
std::uint64_t now_ns() noexcept;

class Loop;

/// Anything registered in the epoll set.
class Source {
 public:
  virtual ~Source() = default;
  virtual void on_event(std::uint32_t events) = 0;
};

class Connection;

/// What a scenario does with a connection's traffic.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void on_connected(Connection&) {}
  /// `received_ns` is when the read that carried the frame returned.
  virtual void on_message(Connection& connection, tessenger::protocol::Message& message,
                          std::uint64_t received_ns) = 0;
  /// Called once per flush for each connection with bytes queued or marked
  /// dirty, with one clock reading shared by the flush: the place to append
  /// frames that carry their send time.
  virtual void before_write(Connection&, std::uint64_t /*now_ns*/) {}
  virtual void on_closed(Connection& connection, std::string_view why) = 0;
};

class Connection final : public Source {
 public:
  Connection(Loop& loop, Handler& handler, std::size_t index);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Starts a non-blocking connect; Handler::on_connected follows.
  void connect(const std::string& host, std::uint16_t port);
  void close();

  /// Bytes to send at the next flush; append, then call mark_dirty().
  std::vector<std::byte>& out() noexcept { return out_; }
  void mark_dirty();
  void send(const tessenger::protocol::Message& message);

  bool connected() const noexcept { return state_ == State::open; }
  bool closed() const noexcept { return state_ == State::closed; }
  std::size_t index() const noexcept { return index_; }

  void on_event(std::uint32_t events) override;

 private:
  friend class Loop;
  enum class State { idle, connecting, open, closed };
  void fail(std::string_view why);
  void read();
  bool write();  // true when everything queued has been sent
  void watch(bool writable);

  Loop& loop_;
  Handler& handler_;
  std::size_t index_;
  int fd_ = -1;
  State state_ = State::idle;
  bool dirty_ = false;
  bool watching_out_ = false;
  std::size_t sent_ = 0;
  std::vector<std::byte> out_;
  tessenger::protocol::Decoder decoder_;
};

/// A CLOCK_MONOTONIC timerfd calling back at absolute deadlines.
class Timer final : public Source {
 public:
  Timer(Loop& loop, std::function<void()> callback);
  ~Timer() override;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  void arm_at(std::uint64_t deadline_ns);
  void on_event(std::uint32_t events) override;

 private:
  Loop& loop_;
  int fd_;
  std::function<void()> callback_;
};

class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  /// Waits up to `timeout_ms` for events, dispatches them, then flushes every
  /// connection with queued bytes.
  void run_once(int timeout_ms);
  /// Runs until `done()` or the deadline; returns done().
  bool run_until(const std::function<bool()>& done, std::uint64_t deadline_ns);

  void add(int fd, Source& source, std::uint32_t events);
  void modify(int fd, Source& source, std::uint32_t events);
  void remove(int fd);

 private:
  friend class Connection;
  void flush();

  int epoll_;
  std::vector<std::byte> read_buffer_;
  std::vector<Connection*> dirty_;
};

}  // namespace bench
