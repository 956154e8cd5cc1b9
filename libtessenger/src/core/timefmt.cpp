#include "core/timefmt.hpp"

#include <ctime>
#include <string>

#include <tessenger/timestamp.hpp>

namespace tessenger {
namespace {

std::time_t whole_seconds(protocol::Timestamp timestamp) {
  auto seconds = timestamp / 1'000'000;
  if (timestamp < 0 && timestamp % 1'000'000 != 0) --seconds;
  return static_cast<std::time_t>(seconds);
}

}  // namespace

std::string format_timestamp(protocol::Timestamp timestamp) {
  const auto seconds = whole_seconds(timestamp);
  std::tm local{};
  localtime_r(&seconds, &local);
  char text[64];
  const auto length = std::strftime(text, sizeof text, "%d %B %Y %H:%M:%S", &local);
  return std::string(text, length);
}

namespace core {

std::string_view format_timestamp_cached(protocol::Timestamp timestamp) {
  thread_local std::time_t cached_second = -1;
  thread_local std::string cached_text;
  const auto seconds = whole_seconds(timestamp);
  if (seconds != cached_second) {
    cached_text = tessenger::format_timestamp(timestamp);
    cached_second = seconds;
  }
  return cached_text;
}

}  // namespace core
}  // namespace tessenger
