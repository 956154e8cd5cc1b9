#include "common/line_reader.hpp"

#include <cerrno>
#include <string_view>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

namespace tessenger::app {
namespace {

// Past this a line is cut: no accepted input comes close, and memory stays bounded.
constexpr std::size_t max_line = 1024 * 1024;

}  // namespace

LineReader::LineReader(int fd) : fd_(fd) {
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe");
  }
}

LineReader::~LineReader() {
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void LineReader::interrupt() noexcept {
  const char byte = 1;
  // A full pipe already holds a wake-up, so a failed write loses nothing.
  [[maybe_unused]] const auto n = ::write(wake_[1], &byte, 1);
}

LineReader::Status LineReader::read_line(std::string& line) {
  for (;;) {
    pollfd wake{wake_[0], POLLIN, 0};
    if (::poll(&wake, 1, 0) > 0) return Status::interrupted;
    if (const auto end = buffer_.find('\n'); end != std::string::npos) {
      line.assign(buffer_, 0, end);
      buffer_.erase(0, end + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return Status::line;
    }
    if (eof_) {
      if (buffer_.empty()) return Status::end_of_input;
      line = std::move(buffer_);
      buffer_.clear();
      return Status::line;
    }
    if (!fill()) return Status::interrupted;
  }
}

// Waits for input or a wake-up; false on a wake-up.
bool LineReader::fill() {
  pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
  for (;;) {
    const int ready = ::poll(fds, 2, -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      eof_ = true;
      return true;
    }
    if (fds[1].revents != 0) return false;
    break;
  }
  char chunk[4096];
  const auto n = ::read(fd_, chunk, sizeof chunk);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) {
    eof_ = true;
    return true;
  }
  std::string_view data(chunk, static_cast<std::size_t>(n));
  if (buffer_.size() >= max_line) {
    const auto end = data.find('\n');
    if (end == std::string_view::npos) return true;
    data.remove_prefix(end);
  }
  buffer_.append(data);
  return true;
}

bool is_terminal(int fd) noexcept {
  return ::isatty(fd) == 1;
}

EchoOff::EchoOff(int fd) : fd_(fd) {
  termios settings{};
  if (!is_terminal(fd_) || ::tcgetattr(fd_, &settings) != 0) return;
  saved_lflag_ = settings.c_lflag;
  settings.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  // TCSANOW, not TCSAFLUSH: a password typed or pasted ahead must not be lost.
  active_ = ::tcsetattr(fd_, TCSANOW, &settings) == 0;
}

EchoOff::~EchoOff() {
  termios settings{};
  if (!active_ || ::tcgetattr(fd_, &settings) != 0) return;
  settings.c_lflag = static_cast<tcflag_t>(saved_lflag_);
  ::tcsetattr(fd_, TCSANOW, &settings);
}

}  // namespace tessenger::app
