#include "core/timefmt.hpp"

#include <ctime>
#include <string>

namespace tessenger::core {

std::string_view format_timestamp(protocol::Timestamp timestamp) {
  thread_local std::time_t cached_second = -1;
  thread_local std::string cached_text;
  const auto seconds = static_cast<std::time_t>(timestamp / 1'000'000);
  if (seconds != cached_second) {
    std::tm local{};
    localtime_r(&seconds, &local);
    char text[64];
    const auto length = std::strftime(text, sizeof text, "%d %B %Y %H:%M:%S", &local);
    cached_text.assign(text, length);
    cached_second = seconds;
  }
  return cached_text;
}

}  // namespace tessenger::core
