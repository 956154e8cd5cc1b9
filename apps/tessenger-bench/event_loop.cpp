#include "event_loop.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include <fmt/format.h>

namespace bench {
namespace {

// Large enough that one read takes everything a wake-up has for a
// connection under full load.
constexpr std::size_t read_buffer_size = 256 * 1024;
constexpr int max_events = 256;

std::runtime_error system_error(std::string_view what) {
  return std::runtime_error(fmt::format("{}: {}", what, std::strerror(errno)));
}

}  // namespace

std::uint64_t now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

Connection::Connection(Loop& loop, Handler& handler, std::size_t index)
    : loop_(loop), handler_(handler), index_(index) {}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
  std::erase(loop_.dirty_, this);
}

void Connection::connect(const std::string& host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw system_error("socket");
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_storage storage{};
  socklen_t length = 0;
  int parsed = 0;
  if (v6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&storage);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(port);
    parsed = ::inet_pton(AF_INET6, host.c_str(), &sa->sin6_addr);
    length = sizeof *sa;
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&storage);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    parsed = ::inet_pton(AF_INET, host.c_str(), &sa->sin_addr);
    length = sizeof *sa;
  }
  if (parsed != 1) throw std::runtime_error(fmt::format("not an IP address: {}", host));
  state_ = State::connecting;
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&storage), length) != 0 && errno != EINPROGRESS) {
    throw system_error("connect");
  }
  loop_.add(fd_, *this, EPOLLOUT);
  watching_out_ = true;
}

void Connection::close() {
  if (state_ == State::closed) return;
  state_ = State::closed;
  if (fd_ >= 0) {
    loop_.remove(fd_);
    ::close(fd_);
    fd_ = -1;
  }
}

void Connection::fail(std::string_view why) {
  if (state_ == State::closed) return;
  close();
  handler_.on_closed(*this, why);
}

void Connection::mark_dirty() {
  if (!dirty_ && state_ == State::open) {
    dirty_ = true;
    loop_.dirty_.push_back(this);
  }
}

void Connection::send(const tessenger::protocol::Message& message) {
  tessenger::protocol::encode(message, out_);
  mark_dirty();
}

void Connection::watch(bool writable) {
  if (writable == watching_out_) return;
  watching_out_ = writable;
  loop_.modify(fd_, *this, writable ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

void Connection::on_event(std::uint32_t events) {
  if (state_ == State::connecting) {
    int error = 0;
    socklen_t length = sizeof error;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) return fail(std::strerror(error));
    state_ = State::open;
    watching_out_ = false;
    loop_.modify(fd_, *this, EPOLLIN);
    handler_.on_connected(*this);
    if (!out_.empty()) mark_dirty();
    return;
  }
  if (events & EPOLLIN) read();
  if (state_ == State::open && (events & EPOLLOUT) && write()) watch(false);
  if (state_ == State::open && (events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
    fail("connection reset");
  }
}

void Connection::read() {
  const auto n = ::recv(fd_, loop_.read_buffer_.data(), loop_.read_buffer_.size(), 0);
  if (n == 0) return fail("closed by the server");
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    return fail(std::strerror(errno));
  }
  const auto received = now_ns();
  std::span<const std::byte> input(loop_.read_buffer_.data(), static_cast<std::size_t>(n));
  while (!input.empty() && state_ == State::open) {
    auto result = decoder_.feed(input);
    input = input.subspan(result.consumed);
    if (result.error) return fail(fmt::format("undecodable frame: {}", result.error.message()));
    if (result.message) handler_.on_message(*this, *result.message, received);
  }
}

bool Connection::write() {
  while (sent_ < out_.size()) {
    const auto n = ::send(fd_, out_.data() + sent_, out_.size() - sent_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return false;
      fail(std::strerror(errno));
      return false;
    }
    sent_ += static_cast<std::size_t>(n);
  }
  out_.clear();
  sent_ = 0;
  return true;
}

Timer::Timer(Loop& loop, std::function<void()> callback)
    : loop_(loop),
      fd_(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)),
      callback_(std::move(callback)) {
  if (fd_ < 0) throw system_error("timerfd_create");
  loop_.add(fd_, *this, EPOLLIN);
}

Timer::~Timer() {
  loop_.remove(fd_);
  ::close(fd_);
}

void Timer::arm_at(std::uint64_t deadline_ns) {
  itimerspec spec{};
  // A zero it_value would disarm the timer; a deadline in the past fires at once.
  deadline_ns = std::max<std::uint64_t>(deadline_ns, 1);
  spec.it_value.tv_sec = static_cast<time_t>(deadline_ns / 1'000'000'000ull);
  spec.it_value.tv_nsec = static_cast<long>(deadline_ns % 1'000'000'000ull);
  ::timerfd_settime(fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
}

void Timer::on_event(std::uint32_t) {
  std::uint64_t expirations = 0;
  if (::read(fd_, &expirations, sizeof expirations) == sizeof expirations) callback_();
}

Loop::Loop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)), read_buffer_(read_buffer_size) {
  if (epoll_ < 0) throw system_error("epoll_create1");
}

Loop::~Loop() {
  ::close(epoll_);
}

void Loop::add(int fd, Source& source, std::uint32_t events) {
  epoll_event event{events, {.ptr = &source}};
  if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) != 0) throw system_error("epoll_ctl add");
}

void Loop::modify(int fd, Source& source, std::uint32_t events) {
  epoll_event event{events, {.ptr = &source}};
  if (::epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &event) != 0) throw system_error("epoll_ctl mod");
}

void Loop::remove(int fd) {
  ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
}

void Loop::run_once(int timeout_ms) {
  epoll_event events[max_events];
  const int n = ::epoll_wait(epoll_, events, max_events, timeout_ms);
  if (n < 0 && errno != EINTR) throw system_error("epoll_wait");
  for (int i = 0; i < n; ++i)
    static_cast<Source*>(events[i].data.ptr)->on_event(events[i].events);
  flush();
}

bool Loop::run_until(const std::function<bool()>& done, std::uint64_t deadline_ns) {
  while (!done()) {
    const auto now = now_ns();
    if (now >= deadline_ns) return false;
    run_once(static_cast<int>(std::min<std::uint64_t>((deadline_ns - now) / 1'000'000 + 1, 100)));
  }
  return true;
}

void Loop::flush() {
  if (dirty_.empty()) return;
  const auto now = now_ns();
  // Indexed: a handler may mark more connections dirty while we flush.
  for (std::size_t i = 0; i < dirty_.size(); ++i) {
    Connection* connection = dirty_[i];
    connection->dirty_ = false;
    if (connection->state_ != Connection::State::open) continue;
    connection->handler_.before_write(*connection, now);
    if (!connection->write()) {
      if (connection->state_ == Connection::State::open) connection->watch(true);
    }
  }
  dirty_.clear();
}

}  // namespace bench
