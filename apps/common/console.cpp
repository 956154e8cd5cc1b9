#include "common/console.hpp"

#include <cerrno>
#include <string>

#include <unistd.h>

#include "common/terminal_text.hpp"

namespace tessenger::app {

void Console::line(std::string_view text) {
  auto whole = terminal_safe(text);
  whole.push_back('\n');
  std::lock_guard lock(mutex_);
  write_locked(whole);
}

void Console::write(std::string_view text) {
  std::lock_guard lock(mutex_);
  write_locked(text);
}

void Console::write_locked(std::string_view text) {
  while (!text.empty()) {
    const auto n = ::write(fd_, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    // A reader that went away is not worth failing over: drop the output.
    if (n <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace tessenger::app
